#!/usr/bin/env bash
# Checks the release binary is the one binary for every device class: fully static, and it runs
# (and trains) on CPUs without AVX, emulated by qemu-user as a Nehalem (SSE4.2, like a Celeron)
# and a Core 2 (SSE2/SSSE3 only). An AVX instruction leaking into the baseline path would
# crash there with SIGILL.
#   check_release_binary.sh STARLING_BINARY
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

describe="$(file -L "$bin")"
echo "$describe"
case "$describe" in
  *"statically linked"*) ;;
  *) echo "FAIL: $bin is not statically linked"; exit 1 ;;
esac

# The flash budget of the devices: the stripped binary stays under 4 MB.
strip -o "$work/stripped" "$bin"
size="$(stat -c %s "$work/stripped")"
echo "stripped size: $size bytes"
[ "$size" -le 4000000 ] || { echo "FAIL: stripped binary is $size bytes, over 4 MB"; exit 1; }

# A small, learnable CSV problem: the label is the index of the largest of the first 3 values.
awk 'function lcg() { x = (x * 16807) % 2147483647; return x / 2147483647 }  # exact in doubles
  BEGIN { x = 11; print "label,f0,f1,f2,f3,f4,f5,f6,f7";
  for (i = 0; i < 600; i++) { best = 0; for (j = 0; j < 8; j++) { v[j] = lcg() * 2 - 1 }
    for (j = 1; j < 3; j++) if (v[j] > v[best]) best = j;
    printf "%d", best; for (j = 0; j < 8; j++) printf ",%.4f", v[j]; printf "\n" } }' \
  > "$work/train.csv"
cp "$work/train.csv" "$work/test.csv"

for cpu in Nehalem:sse4.2 Conroe:sse2; do
  model="${cpu%%:*}"; want="${cpu##*:}"
  out="$(qemu-x86_64 -cpu "$model" "$bin" info)"
  echo "$out" | grep -E '^(cpu|features|kernels)'
  echo "$out" | grep -q "^kernels *$want " || { echo "FAIL: expected $want kernels on $model"; exit 1; }
  if echo "$out" | grep -q '^features.*avx'; then echo "FAIL: $model reported AVX"; exit 1; fi
  qemu-x86_64 -cpu "$model" "$bin" train --data "$work" --model 8-16-3 --epochs 3 --batch 16 \
      --out "$work/m.ckpt" > "$work/train.log"
  tail -n 2 "$work/train.log"
  acc="$(sed -n 's/^final test accuracy: \([0-9.]*\)%.*/\1/p' "$work/train.log")"
  awk -v a="$acc" 'BEGIN { exit !(a >= 80.0) }' || { echo "FAIL: accuracy $acc% on $model"; exit 1; }
done
echo "release binary: static, runs and trains without AVX"
