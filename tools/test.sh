#!/usr/bin/env bash
# Installs the dependencies, then builds and runs every test: the sanitizer build (ASan+UBSan),
# the static release build (which also checks the binary runs on a CPU without AVX), and each
# libFuzzer target for a short run from a fixed seed (clang, ASan+UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake --workflow --preset asan
cmake --workflow --preset release
cmake --workflow --preset fuzz
