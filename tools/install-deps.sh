#!/usr/bin/env bash
# Installs everything Starling builds, tests and benchmarks with, from Debian 12 packages only.
# Usage: bash tools/install-deps.sh [--bench]   (run as root, or via sudo)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ninja-build pkg-config file
  help2man systemd dpkg-dev python3
  libasio-dev libsodium-dev
  libflatbuffers-dev flatbuffers-compiler
  libxtensor-dev libxsimd-dev xtl-dev
  doctest-dev zlib1g-dev libzstd-dev libcli11-dev libtomlplusplus-dev
  dataset-fashion-mnist
  qemu-user
  clang libclang-rt-14-dev
  tshark chromium python3 libxml2-utils
)
if [ "${1:-}" = "--bench" ]; then
  packages+=(python3-torch python3-numpy libopenblas0-pthread linux-perf)
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
