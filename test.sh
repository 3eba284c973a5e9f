#!/usr/bin/env bash
# The test command: installs what is missing, builds (release and ASan+UBSan), runs every test,
# then every fuzz target for a bounded time.
# Exits non-zero when any test fails.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
scripts/test-clients.sh
scripts/build.sh release
(cd build && ctest --output-on-failure -j2)
if [ "${SLUICE_SKIP_ASAN:-0}" != 1 ]; then
  scripts/build.sh asan
  (cd build-asan && ctest --output-on-failure -j2)
fi
# Every libFuzzer target for a bounded time on its seed corpus (fuzz/README.md).
if [ "${SLUICE_SKIP_FUZZ:-0}" != 1 ]; then
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-15}"
fi
