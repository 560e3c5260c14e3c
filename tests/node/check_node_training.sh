#!/usr/bin/env bash
# Real `starling node` processes on loopback training together: each of 4 nodes holds only 2 of
# the 4 classes of a small synthetic problem, so alone none can pass 50% test accuracy; with
# models exchanged over the authenticated streams every node must pass the floor below. Then a
# node killed with -9 resumes from its checkpoint, and a newcomer pulls a peer's model before it
# trains. Waits poll with generous bounds (no timing assertions); every process is cleaned up.
#   check_node_training.sh STARLING_BINARY
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
declare -A pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

fail() {
  echo "FAIL: $*"
  for f in n*.log; do echo "--- $f"; tail -n 40 "$f"; done
  exit 1
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.5 s until COMMAND succeeds
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what (not within ${limit}s)"
    sleep 0.5
  done
}

# Four classes: the label is the index of the largest of the first 4 of 8 values (exact LCG).
mkdir -p src
awk 'function lcg() { x = (x * 16807) % 2147483647; return x / 2147483647 }
  BEGIN { x = 11; print "label,a,b,c,d,e,f,g,h";
  for (i = 0; i < 6000; i++) { best = 0; for (j = 0; j < 8; j++) v[j] = lcg() * 2 - 1;
    for (j = 1; j < 4; j++) if (v[j] > v[best]) best = j;
    printf "%d", best; for (j = 0; j < 8; j++) printf ",%.4f", v[j]; printf "\n" } }' > src/all.csv
head -n 4001 src/all.csv > src/train.csv
{ head -n 1 src/all.csv; tail -n 2000 src/all.csv; } > src/test.csv
"$bin" data split --source src --nodes 5 --scheme classes:2 --seed 3 --out shards >/dev/null

count=4
net="127.$(($$ % 250 + 1)).1"
addr() { echo "$net.$1:7946"; }
name() { printf 'n%03d' "$1"; }
# The governor stays on, with limits no busy test machine trips.
governor=(--cpu-budget 100 --psi-cpu 100 --psi-memory 100 --psi-io 100 --busy-cpu 100)
# Even nodes wait for the link (a round due with sends in flight holds training) and start a
# round every 64 samples (at most every 200 ms, as the odd ones): the same floor. (With the even
# nodes at 100 ms, CI once saw them stuck at 47% for 240 s, refusing about half the models they
# got, likely as outliers: two refused origins never made the three that reset a merge; a small
# cluster's merge now also resets when half of its recent models are refused.)
start() {
  local i="$1" wait=() sgd=()
  ((i % 2 == 0)) && wait=(--wait-for-link --round-samples 64)
  ((i == 4)) && sgd=(--momentum 0.8)
  "$bin" node --bundle "b/$(name "$i").bundle" --state "s$i" --listen "$(addr "$i")" \
    --interface none --seed "$(addr 1)" --seed "$(addr 2)" \
    --data "shards/node-$(printf '%03d' $((i - 1)))" --test shards/test --model 8-32-4 \
    --batch 32 --eval-interval 2 --checkpoint-interval 2 "${governor[@]}" "${wait[@]}" \
    "${sgd[@]}" \
    >>"$(name "$i").log" 2>&1 &
  pids[$i]=$!
}
stat_of() { "$bin" members --state "s$1" --stats 2>/dev/null | sed -n "s/^$2 //p"; }
# Test accuracy (as a percentage) of node INDEX at least FLOOR.
accuracy_at_least() {
  local a; a="$(stat_of "$1" test_accuracy)"
  [[ -n "$a" ]] && awk -v a="$a" -v f="$2" 'BEGIN { exit !(a * 100 >= f) }'
}
counter_positive() { local v; v="$(stat_of "$1" "$2")"; [[ -n "$v" && "$v" -gt 0 ]]; }
logged() { grep -qs -- "$2" "$(name "$1").log"; }
everyone() {
  local i
  for i in $1; do "${@:2:1}" "$i" "${@:3}" || return 1; done
}

"$bin" cluster init --dir c --name training >/dev/null
"$bin" cluster enroll --cluster c --count 5 --prefix n --out-dir b >/dev/null

for i in $(seq 1 "$count"); do start "$i"; done
# Alone a node sees 2 of 4 classes: at most ~50%. 70% needs the others' models.
floor=70
wait_for 240 "every node above ${floor}% test accuracy" everyone "1 2 3 4" accuracy_at_least "$floor"
for i in 1 2 3 4; do
  counter_positive "$i" models_sent || fail "n$i sent no model"
  counter_positive "$i" learner_models_merged || fail "n$i merged no model"
  [[ "$(stat_of "$i" transfer_in_failed_handshake)" == 0 ]] || fail "n$i refused a handshake"
  [[ -n "$(stat_of "$i" learner_rounds_waited)" ]] || fail "n$i reports no learner_rounds_waited"
  busy="$(stat_of "$i" gossip_thread_busy_seconds)"
  awk -v b="$busy" 'BEGIN { exit !(b > 0) }' || fail "n$i gossip thread busy '$busy' seconds"
done
logged 2 "waits for the link" || fail "n002 does not say it waits for the link"
logged 2 "lr 0.05, momentum 0.9," || fail "n002 does not name the default SGD settings"
logged 4 "momentum 0.8," || fail "n004 does not train at --momentum 0.8"
wait_for 60 "a checkpoint on n003" test -s s3/model.ckpt

# kill -9, restart on the same state directory: training resumes from the checkpoint.
kill -KILL "${pids[3]}"; wait "${pids[3]}" 2>/dev/null || true; unset 'pids[3]'
start 3
wait_for 60 "n003 resumed from its checkpoint" logged 3 "training resumed from the checkpoint"
wait_for 120 "n003 above ${floor}% after the restart" accuracy_at_least 3 "$floor"

# A newcomer with no checkpoint pulls a peer's model before it trains.
start 5
wait_for 120 "the newcomer adopted a peer's model" logged 5 "caught up: adopted a peer's model"
wait_for 120 "the newcomer above ${floor}%" accuracy_at_least 5 "$floor"

"$bin" members --state s1 --json | grep -q '"accuracy": [01]\.' || fail "members json shows no accuracy"
kill -TERM "${pids[1]}"
rc=0; wait "${pids[1]}" || rc=$?; unset 'pids[1]'
[[ "$rc" == 0 ]] || fail "SIGTERM exit code $rc"
# Its last checkpoint serves the running average of its weights; the trained ones stay beside.
served="$("$bin" eval --model s1/model.ckpt --data shards/test)" || fail "eval of the served model"
trained="$("$bin" eval --model s1/model.ckpt --data shards/test --trained)" || fail "eval --trained"
accuracy() { sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' <<<"$1"; }
awk -v a="$(accuracy "$served")" -v f="$floor" 'BEGIN { exit !(a >= f) }' ||
  fail "served model at $(accuracy "$served")%, under ${floor}%"
[[ -n "$(accuracy "$trained")" ]] || fail "no accuracy for the trained weights: $trained"
echo "PASS"
