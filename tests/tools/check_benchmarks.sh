#!/usr/bin/env bash
# Checks every benchmark still runs to the end and prints its figures, at the smallest settings.
# It checks that they run, never how fast: timings are for notes, not assertions. (A cap on
# signature checks once made bench_crypto abort before printing anything, unnoticed.)
#   check_benchmarks.sh BENCH_CRYPTO BENCH_GOSSIP BENCH_STREAM BENCH_GEMM BENCH_TRAIN
set -euo pipefail
(($# == 5)) || { echo "usage: $0 BENCH_CRYPTO BENCH_GOSSIP BENCH_STREAM BENCH_GEMM BENCH_TRAIN" >&2; exit 2; }
data=/usr/share/datasets/fashion-mnist
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

run() {
  local name="$1"; shift
  local rc=0
  "$@" > "$out" 2>&1 || rc=$?
  ((rc == 0)) || { echo "FAIL: $name exited with $rc ($*)"; cat "$out"; exit 1; }
  local lines; lines="$(wc -l < "$out")"
  ((lines >= 3)) || { echo "FAIL: $name printed $lines lines"; cat "$out"; exit 1; }
  echo "ok: $name ($lines lines)"
}

run bench_crypto "$1" --runs 1
run bench_gossip "$2" --runs 1
run bench_stream "$3" --runs 1
run bench_gemm "$4" --seconds 0.01 --batch 64
if [[ -d "$data" ]]; then
  run bench_train "$5" --data "$data" --seconds 0.05 --repeats 1 --batch 64
else
  echo "skip: bench_train (no dataset at $data)"
fi
