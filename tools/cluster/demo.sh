#!/usr/bin/env bash
# The local-cluster demo: N devices, each with its own shard of Fashion-MNIST, train one model
# together by gossip, with no coordinator. Builds the static release (unless --bin), creates a
# cluster and enrolls N devices, splits the data, starts one `starling node` per device -- on a
# LAN of network namespaces found by beacons when run as root (tools/cluster/launch.sh), else on
# loopback addresses joined by explicit seeds -- prints one progress line every few seconds,
# shows the cluster as one device sees it (starling-inspect members, and an HTML report of its
# metrics history in build/demo-report/), and ends with each device's accuracy on the whole test
# set and the cluster's mean and min.
# Ctrl-C or any exit stops every node and removes the namespaces and the work directory.
#
#   demo.sh [--nodes N] [--seconds S] [--scheme iid|classes:K|dirichlet:A] [--encoding E]
#           [--compress none|zstd] [--merge-momentum keep|follow] [--lr X] [--momentum M]
#           [--data DIR] [--bin STARLING] [--loopback] [--deps] [--keep DIR]
#     --lr, --momentum  each node's SGD (default: the node's own, 0.05 and 0.9)
#     --bin       a starling binary; starling-inspect is taken from beside it
#     --deps      run tools/install-deps.sh first (a fresh Debian 12 machine)
#     --loopback  loopback addresses even as root
#     --keep DIR  keep the work (logs, state dirs, checkpoints) in DIR instead of a temp dir
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
nodes=16 seconds=150 scheme=iid encoding=int8 compress=none momentum=keep
data=/usr/share/datasets/fashion-mnist
bin="" loopback=0 deps=0 keep="" sgd=()
readonly PROGRESS_EVERY=5 MAX_NODES=240

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --scheme) scheme="$2"; shift 2 ;;
    --encoding) encoding="$2"; shift 2 ;;
    --compress) compress="$2"; shift 2 ;;
    --merge-momentum) momentum="$2"; shift 2 ;;
    --lr) sgd+=(--lr "$2"); shift 2 ;;
    --momentum) sgd+=(--momentum "$2"); shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --loopback) loopback=1; shift ;;
    --deps) deps=1; shift ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ "$nodes" =~ ^[0-9]+$ ]] && ((nodes >= 2 && nodes <= MAX_NODES)) ||
  { echo "demo.sh: --nodes must be 2..$MAX_NODES" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds >= 10)) || { echo "demo.sh: --seconds must be >= 10" >&2; exit 2; }

if ((deps)); then bash "$root/tools/install-deps.sh"; fi
if [[ -z "$bin" ]]; then
  echo "== building the static release"
  (cd "$root" && cmake --preset release >/dev/null &&
     cmake --build build/release --target starling starling-inspect)
  bin="$root/build/release/bin/starling"
fi
bin="$(realpath "$bin")"
inspect="$(dirname "$bin")/starling-inspect"
report_dir="$root/build/demo-report"
[[ -d "$data" ]] || { echo "demo.sh: no dataset at $data (apt install dataset-fashion-mnist, or --deps)" >&2; exit 1; }

lan=0
if ((EUID == 0 && !loopback)); then lan=1; fi
if [[ -n "$keep" ]]; then mkdir -p "$keep"; work="$(realpath "$keep")"; else work="$(mktemp -d)"; fi
declare -A pids=()
teardown() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ((lan)) && "$here/launch.sh" down || true
  [[ -n "$keep" ]] || rm -rf "$work"
}
trap teardown EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

name() { printf 'dev-%03d' "$1"; }
loop_net="127.$(($$ % 200 + 20)).0"
address() { if ((lan)); then "$here/launch.sh" addr "$1"; else echo "$loop_net.$(($1 + 1))"; fi; }

echo "== cluster of $nodes devices in $work ($( ((lan)) && echo "namespace LAN, beacons" || echo "loopback, seeds"))"
"$bin" cluster init --dir "$work/cluster" --name demo >/dev/null
"$bin" cluster enroll --cluster "$work/cluster" --count "$nodes" --prefix dev- --out-dir "$work/bundles" >/dev/null
"$bin" data split --source "$data" --nodes "$nodes" --scheme "$scheme" --seed 1 --out "$work/shards" |
  tail -n 1
if ((lan)); then
  "$here/launch.sh" down >/dev/null 2>&1 || true
  "$here/launch.sh" up "$nodes"
fi

# The governor stays on, with limits a demo machine shared by N nodes does not trip.
governor=(--cpu-budget 100 --psi-cpu 100 --psi-memory 100 --psi-io 100 --busy-cpu 100)
start() {
  local i="$1" shard; shard="$(printf 'node-%03d' $((i - 1)))"
  local args=(node --bundle "$work/bundles/$(name "$i").bundle" --state "$work/state/$i"
              --data "$work/shards/$shard" --test "$work/shards/test" --encoding "$encoding"
              --compress "$compress"
              --merge-momentum "$momentum" "${sgd[@]}"
              "${governor[@]}")
  if ((lan)); then
    ip netns exec "$("$here/launch.sh" ns "$i")" "$bin" "${args[@]}" >"$work/$(name "$i").log" 2>&1 &
  else
    args+=(--listen "$(address "$i"):7946" --interface none --seed "$(address 1):7946"
           --seed "$(address 2):7946")
    "$bin" "${args[@]}" >"$work/$(name "$i").log" 2>&1 &
  fi
  pids[$i]=$!
}
stat_of() { "$bin" members --state "$work/state/$1" --stats 2>/dev/null | sed -n "s/^$2 //p"; }

for i in $(seq 1 "$nodes"); do start "$i"; done
started=$SECONDS
echo "== training for ${seconds}s: one line every ${PROGRESS_EVERY}s (test accuracy on 2,000 images)"
while ((SECONDS - started < seconds)); do
  sleep "$PROGRESS_EVERY"
  accs=() sent=0 bytes=0 live=0
  for i in $(seq 1 "$nodes"); do
    stats="$("$bin" members --state "$work/state/$i" --stats 2>/dev/null || true)"
    [[ -n "$stats" ]] || continue
    live=$((live + 1))
    a="$(sed -n 's/^test_accuracy //p' <<<"$stats")"
    [[ -n "$a" ]] && accs+=("$a")
    sent=$((sent + $(sed -n 's/^models_sent //p' <<<"$stats")))
    bytes=$((bytes + $(sed -n 's/^stream_bytes_sent //p' <<<"$stats")))
  done
  printf '%5ds  %2d/%d up  ' $((SECONDS - started)) "$live" "$nodes"
  if ((${#accs[@]})); then
    printf '%s\n' "${accs[@]}" | awk -v n="${#accs[@]}" -v sent="$sent" -v bytes="$bytes" '
      { s += $1; if (NR == 1 || $1 < m) m = $1 }
      END { printf "accuracy mean %5.2f%% min %5.2f%% (%d evaluated)  models sent %d  %.1f MB\n",
            100 * s / n, 100 * m, n, sent, bytes / 1e6 }'
  else
    echo "waiting for the first evaluations"
  fi
done

if [[ -x "$inspect" ]]; then
  echo "== the cluster as $(name 1) sees it: starling-inspect members --state STATE"
  "$inspect" members --state "$work/state/1" || echo "   (starling-inspect could not read $(name 1))"
  if "$inspect" report --state "$work/state/1" --out "$report_dir" >/dev/null; then
    echo "   metrics history of $(name 1) over the run: $report_dir/index.html"
  else
    echo "   (no report: $(name 1) has no metrics history yet)"
  fi
else
  echo "== (no starling-inspect beside $bin: the inspection view is skipped)"
fi

echo "== stopping (each node leaves and writes its last checkpoint)"
total_bytes=0 cpu_ticks=0 total_transfers=0 total_links=0
for i in $(seq 1 "$nodes"); do
  total_bytes=$((total_bytes + $(stat_of "$i" stream_bytes_sent || echo 0)))
  total_transfers=$((total_transfers + $(stat_of "$i" transfers_started || echo 0)))
  total_links=$((total_links + $(stat_of "$i" links_opened_out || echo 0)))
  read -r -a st <"/proc/${pids[$i]}/stat" || true
  cpu_ticks=$((cpu_ticks + ${st[13]:-0} + ${st[14]:-0}))
done
for i in $(seq 1 "$nodes"); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
for i in $(seq 1 "$nodes"); do wait "${pids[$i]}" 2>/dev/null || true; done
pids=()

echo "== each device's model on the whole test set (10,000 images)"
results="$work/results.txt"
: >"$results"
for i in $(seq 1 "$nodes"); do
  acc="$("$bin" eval --model "$work/state/$i/model.ckpt" --data "$work/shards/test" 2>/dev/null |
         sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' | head -n 1)"
  printf '%s  %s%%\n' "$(name "$i")" "${acc:-?}" | tee -a "$results"
done
awk -v ticks="$cpu_ticks" -v hz="$(getconf CLK_TCK)" -v bytes="$total_bytes" -v wall="$seconds" \
    -v transfers="$total_transfers" -v links="$total_links" '
  $2 != "?%" { a = $2 + 0; s += a; n++; if (n == 1 || a < m) m = a }
  END { if (n) printf "cluster: mean %.2f%%  min %.2f%% over %d devices; %.1f MB of model streams sent in %d transfers over %d links; %.0f CPU-seconds in %ds\n",
        s / n, m, n, bytes / 1e6, transfers, links, ticks / hz, wall }' "$results"
