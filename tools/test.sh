#!/usr/bin/env bash
# Installs the dependencies, then builds and runs every test: the sanitizer build (ASan+UBSan)
# and the static release build (which also checks the binary runs on a CPU without AVX).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake --workflow --preset asan
cmake --workflow --preset release
