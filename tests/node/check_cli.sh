#!/usr/bin/env bash
# The `starling` CLI end to end on small data: split, train, resume, eval, and that bad input
# gets a clear error and the documented exit code without touching existing files.
#   check_cli.sh STARLING_BINARY
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# exit code of a command, without tripping set -e
code() { set +e; "$@" >"$work/out" 2>"$work/err"; local rc=$?; set -e; echo "$rc"; }

# A learnable CSV problem: the label is the index of the largest of the first 3 of 6 values.
mkdir -p "$work/src"
awk 'function lcg() { x = (x * 16807) % 2147483647; return x / 2147483647 }  # exact in doubles
  BEGIN { x = 3; print "label,a,b,c,d,e,f";
  for (i = 0; i < 900; i++) { best = 0; for (j = 0; j < 6; j++) v[j] = lcg() * 2 - 1;
    for (j = 1; j < 3; j++) if (v[j] > v[best]) best = j;
    printf "%d", best; for (j = 0; j < 6; j++) printf ",%.4f", v[j]; printf "\n" } }' \
  > "$work/src/train.csv"
head -n 301 "$work/src/train.csv" > "$work/src/test.csv"

"$bin" data split --source "$work/src" --nodes 3 --scheme iid --seed 4 --out "$work/shards" > /dev/null
for n in 000 001 002; do [ -f "$work/shards/node-$n/train.csv" ] || fail "missing shard node-$n"; done
[ -f "$work/shards/test/test.csv" ] || fail "test split not copied"

"$bin" train --data "$work/shards/node-000" --test "$work/shards/test" --model 6-16-3 --epochs 2 \
    --batch 16 --out "$work/m.ckpt" > "$work/train.log"
grep -q '^epoch 2/2' "$work/train.log" || fail "no plain per-epoch line: $(cat "$work/train.log")"
[ -f "$work/m.ckpt" ] || fail "no checkpoint written"

"$bin" train --data "$work/shards/node-000" --test "$work/shards/test" --model 6-16-3 --epochs 4 \
    --batch 16 --out "$work/m.ckpt" --resume "$work/m.ckpt" > "$work/resume.log"
grep -q '^resumed from .* at epoch 2' "$work/resume.log" || fail "resume: $(cat "$work/resume.log")"
grep -q '^epoch 4/4' "$work/resume.log" || fail "resume did not finish"
[ -f "$work/m.ckpt.prev" ] || fail "previous checkpoint not kept"

"$bin" eval --model "$work/m.ckpt" --data "$work/shards/test" --confusion > "$work/eval.log"
acc="$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$work/eval.log")"
awk -v a="$acc" 'BEGIN { exit !(a >= 80.0) }' || fail "accuracy $acc%"
grep -q '^confusion' "$work/eval.log" || fail "no confusion matrix"

# Bad input: clear errors, documented exit codes, nothing clobbered.
cp "$work/m.ckpt" "$work/good.ckpt"
printf 'garbage' > "$work/bad.ckpt"
[ "$(code "$bin" eval --model "$work/bad.ckpt" --data "$work/shards/test")" = 2 ] || fail "bad checkpoint exit code"
grep -q 'starling: error: .*bad.ckpt' "$work/err" || fail "bad checkpoint message: $(cat "$work/err")"
[ "$(code "$bin" train --data "$work/nowhere" --epochs 1)" = 2 ] || fail "missing data dir exit code"
grep -q 'starling: error: .*nowhere' "$work/err" || fail "missing data message"
[ "$(code "$bin" train --data "$work/shards/node-000" --model mlp --epochs 1 --out "$work/m.ckpt")" = 2 ] \
    || fail "feature mismatch exit code"
grep -q '6 features' "$work/err" || fail "feature mismatch message: $(cat "$work/err")"
cmp -s "$work/m.ckpt" "$work/good.ckpt" || fail "a refused run touched the checkpoint"
[ "$(code "$bin" train --data "$work/src" --epochs 0)" = 2 ] || fail "epochs 0 accepted"
[ "$(code "$bin" train --data "$work/src" --model 6-x-3)" = 2 ] || fail "bad model accepted"
[ "$(code "$bin" data split --source "$work/src" --nodes 2 --scheme classes:0 --out "$work/x")" = 2 ] \
    || fail "bad scheme accepted"
[ "$(code "$bin" train --data "$work/src" --simd avx9)" = 2 ] || fail "bad --simd accepted"
[ "$(code "$bin" node --round-samples 0)" = 2 ] || fail "--round-samples 0 accepted"
grep -q 'round-samples' "$work/err" || fail "--round-samples message: $(cat "$work/err")"
[ "$(code "$bin" node --round-interval 60001)" = 2 ] || fail "--round-interval 60001 accepted"
grep -q 'round-interval' "$work/err" || fail "--round-interval message: $(cat "$work/err")"
[ "$(code "$bin" node --momentum 1)" = 2 ] || fail "--momentum 1 accepted"
grep -q 'momentum' "$work/err" || fail "--momentum message: $(cat "$work/err")"
[ "$(code "$bin" node --lr 0)" = 2 ] || fail "--lr 0 accepted"
grep -q '\-\-lr' "$work/err" || fail "--lr message: $(cat "$work/err")"
[ "$(code "$bin" nonsense)" = 2 ] || fail "unknown subcommand exit code"

echo "cli: split, train, resume, eval and refusals behave"
