#!/usr/bin/env bash
# Portability check of the kernels: cross-compiles core/ (quant formats, kernels, thread pool,
# float ops) and its tests for aarch64 and runs them under qemu-user. On a CPU without x86 SIMD
# the dispatcher must pick the scalar path and every test must pass; this is the base a NEON
# path would be added to (docs/kernels.md). Installs the cross toolchain, qemu-user and arm64
# libnuma when missing (Debian; needs root or sudo; enables the arm64 architecture in dpkg).
# Usage: scripts/check-aarch64.sh [build-dir]   (default build-aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-aarch64}
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
need=()
for p in g++-aarch64-linux-gnu qemu-user libnuma-dev:arm64 cmake ninja-build googletest; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "sluice: installing ${need[*]}" >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || "${sudo_cmd[@]}" dpkg --add-architecture arm64
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DSLUICE_CORE_ONLY=ON \
  -DSLUICE_GTEST_SOURCE_DIR=/usr/src/googletest >/dev/null
cmake --build "$build" -j "$(nproc)"
file "$build/tests/kernels_tests" | grep -q "ARM aarch64" || {
  echo "sluice: $build/tests/kernels_tests is not an aarch64 binary" >&2
  exit 1
}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
