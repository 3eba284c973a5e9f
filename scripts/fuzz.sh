#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET...]: builds the libFuzzer targets (fuzz/) with clang into build-fuzz/
# and runs each on a copy of its seed corpus (fuzz/corpus/TARGET) for SECONDS (default 20).
# Fails on the first crash, hang, leak or UB report; the reproducer is kept in
# build-fuzz/artifacts/ (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf archive trace tokenizer chat_template safetensors)
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF >/dev/null
fi
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$t/." "$work/"
  log=build-fuzz/fuzz_$t.log
  set +e
  "build-fuzz/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
    -artifact_prefix="build-fuzz/artifacts/$t-" -print_final_stats=1 "$work" >"$log" 2>&1
  rc=$?
  set -e
  rm -rf "$work"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz_$t: FAILED after $runs runs (log: $log; reproducer in build-fuzz/artifacts/)" >&2
    exit 1
  fi
  echo "fuzz_$t: $runs runs in ${seconds}s, no crash"
done
