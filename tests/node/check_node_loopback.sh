#!/usr/bin/env bash
# Real `starling node` processes on loopback addresses, joined through explicit seeds, each losing
# 10% of its datagrams (the hidden test-only hook): everyone sees everyone; kill -9 is logged
# "peer failed" by every survivor and nobody else is; a restart comes back up; SIGTERM is logged
# "peer left" and exits 0; a revocation handed to one node (`starling revoke`) reaches the others.
# Waits poll with a bound; every process is cleaned up.
#   check_node_loopback.sh STARLING_BINARY
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
  for f in n*.log; do echo "--- $f"; cat "$f"; done
  exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what (not within ${limit}s)"
    sleep 0.1
  done
}

count=4
net="127.$(($$ % 250 + 1)).0"  # a loopback /24 of its own, so parallel runs do not collide
addr() { echo "$net.$1:7946"; }
name() { printf 'n%03d' "$1"; }
start() {  # start INDEX: node INDEX, seeded with nodes 1 and 2
  local i="$1"
  "$bin" node --bundle "b/$(name "$i").bundle" --state "s$i" --listen "$(addr "$i")" \
    --interface none --seed "$(addr 1)" --seed "$(addr 2)" \
    --test-drop-rate 0.1 --test-fault-seed "$i" >>"$(name "$i").log" 2>&1 &
  pids[$i]=$!
}
alive_seen_by() { [[ "$("$bin" members --state "s$1" --json 2>/dev/null | grep -c '"state": "alive"')" == "$2" ]]; }
sees_as() {  # sees_as INDEX NAME STATE: node INDEX lists NAME in STATE
  "$bin" members --state "s$1" --json 2>/dev/null | grep "\"$2\"" | grep -q "\"state\": \"$3\""
}
logged() { grep -q -- "$2" "$(name "$1").log"; }
logged_times() { [[ "$(grep -c -- "$2" "$(name "$1").log")" == "$3" ]]; }
everyone() {  # everyone "INDICES" CHECK ARGS...: CHECK holds for each index
  local i
  for i in $1; do "${@:2:1}" "$i" "${@:3}" || return 1; done
}

"$bin" cluster init --dir c --name loopback >/dev/null
"$bin" cluster enroll --cluster c --count "$count" --prefix n --out-dir b >/dev/null

for i in $(seq 1 "$count"); do start "$i"; done
wait_for 20 "all see all alive" everyone "1 2 3 4" alive_seen_by $((count - 1))
"$bin" members --state s1 | grep -q "n004" || fail "members table lists n004"

kill -KILL "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true; unset 'pids[2]'
wait_for 30 "kill -9 logged as failed" everyone "1 3 4" logged "peer failed n002"
everyone "1 3 4" sees_as n002 dead || fail "survivors do not list n002 as dead"

start 2  # same state directory: a higher incarnation, seen up again
wait_for 20 "restart seen up" everyone "1 3 4" logged_times "peer up n002" 2
wait_for 20 "the restarted node sees everyone" alive_seen_by 2 $((count - 1))

kill -TERM "${pids[4]}"
rc=0; wait "${pids[4]}" || rc=$?; unset 'pids[4]'
[[ "$rc" == 0 ]] || fail "SIGTERM exit code $rc"
logged 4 "left" || fail "n004 did not log its leave"
wait_for 10 "leave logged as left" everyone "1 2 3" logged "peer left n004"
for i in 1 2 3; do ! logged "$i" "peer failed n004" || fail "n004's leave was taken for a failure"; done
[[ ! -e s4/control.sock ]] || fail "control socket left behind"
for i in 1 2 3; do
  ! grep "peer failed" "$(name "$i").log" | grep -v "peer failed n002" | grep -q . ||
    fail "a false failure at 10% loss"
done

# The operator revokes n003 through node 1 alone: it reaches node 2 too, which keeps the file.
"$bin" cluster revoke --cluster c --name n003 --out n003.revoked >/dev/null
"$bin" revoke --state s1 n003.revoked | grep -q "revoked" || fail "node 1 did not take the revocation"
# (at 10% loss the first copy may be lost: the summary exchange, 1 s later and every 30 s, repairs it)
wait_for 70 "the revocation reaches every member" everyone "1 2" logged "peer revoked n003"
ls s2/*.revoked >/dev/null 2>&1 || fail "node 2 did not keep the revocation"
"$bin" revoke --state s2 n003.revoked | grep -q "already revoked" || fail "a second hand-over is news"
echo "PASS"
