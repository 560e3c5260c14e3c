#!/usr/bin/env bash
# Runs the benchmark harness and prints the results together: Starling's GEMM kernels at every
# runnable SIMD level (bench_gemm), OpenBLAS sgemm on the same shapes (openblas_sgemm.py), and the
# PyTorch MLP training speed (torch_mlp.py speed). Figures are for notes and reports only.
#
#   tools/bench/run.sh [BUILD_DIR]        BUILD_DIR defaults to build/release
#
# Build the release preset first, from the repository root:
#   cmake --workflow --preset release                       (configure, build, test)
#   cmake --preset release && cmake --build build/release   (configure and build only)
# Any build dir with bench_gemm works, e.g. one configured with -DCMAKE_BUILD_TYPE=Release.
#
# The Python yardsticks need Debian's /usr/bin/python3 with python3-numpy and python3-torch, and
# libopenblas0-pthread (otherwise libblas.so.3 is the reference BLAS and every figure is far too
# low). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set in the environment, force a core or a
# cache size that slows OpenBLAS down, so they are removed for the numpy and torch commands only.
# Extra knobs: BENCH_SECONDS (bench_gemm/openblas budget per shape, default 0.3),
# TORCH_SECONDS (each torch timed run, default 2). Keep the machine otherwise idle.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=${1:-build/release}
case $build_dir in /*) ;; *) build_dir=$repo/$build_dir ;; esac
bench=$build_dir/bin/bench_gemm
bench_train=$build_dir/bin/bench_train
python=/usr/bin/python3
seconds=${BENCH_SECONDS:-0.3}
torch_seconds=${TORCH_SECONDS:-2}

if [[ ! -x $bench ]]; then
    echo "run.sh: $bench not found; build first (see the header of $0)" >&2
    exit 1
fi

# The Python yardsticks, without the OpenBLAS overrides (only in these commands).
yardstick() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" "$@"; }

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
echo "== Starling kernels: $bench"
"$bench" --seconds "$seconds"
echo
echo "== Starling MLP 784-256-128-10 training speed (1 thread, data in memory as uint8)"
"$bench_train" --seconds "$torch_seconds"
echo
echo "== OpenBLAS sgemm via numpy (1 thread)"
yardstick "$repo/tools/bench/openblas_sgemm.py" --seconds "$seconds"
echo
echo "== PyTorch MLP 784-256-128-10 training speed (1 thread)"
yardstick "$repo/tools/bench/torch_mlp.py" speed --seconds "$torch_seconds"
