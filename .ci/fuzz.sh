#!/usr/bin/env bash
# CI stage: the libFuzzer targets of tests/fuzz (docs/reliability.md): safetensors, checkpoint, construct. Configures a Clang build with
# ICL_FUZZ=ON (Debug at -O1: ICL_ASSERT and Eigen's asserts stay on, so a failed assert is a
# finding), builds only the fuzz targets, then runs each from its committed seed corpus for a
# bounded time. Exits non-zero on any finding (crash, sanitizer report, uncaught exception, a
# broken property, an input slower than the per-input timeout, memory above the RSS limit).
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_SEED      libFuzzer's random seed (default 1: CI replays the same input sequence on every
#                  run, so CI's verdict does not depend on chance; FUZZ_SEED=0 draws a fresh seed, for
#                  exploratory runs that look further; a finding of those goes into the seed corpus
#                  or a unit test once fixed)
#   FUZZ_BUILD_DIR build directory (default build-fuzz)
# A finding is saved as $FUZZ_BUILD_DIR/artifacts/<target>-crash-<sha1> (replay: run the target on
# that file). Requires clang++ and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-1}
build=${FUZZ_BUILD_DIR:-build-fuzz}
start=$(date +%s)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DICL_FUZZ=ON -DICL_WARNINGS_AS_ERRORS=ON \
  -DICL_BUILD_TESTS=OFF -DICL_BUILD_BENCHMARKS=OFF -DICL_BUILD_EXAMPLES=OFF -DICL_INSTALL=OFF > /dev/null
cmake --build "$build" -j2 --target icl_fuzz
echo "== fuzz targets built after $(( $(date +%s) - start )) s =="

# UBSan reports abort the run (libFuzzer then saves the input); nothing is suppressed.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
mkdir -p "$build/artifacts"
status=0
for target in safetensors checkpoint construct; do
  work="$build/corpus/$target"          # new inputs go here, never into the repository
  mkdir -p "$work"
  echo "== fuzz_$target for $seconds s, seed $seed =="
  log="$build/fuzz_$target.log"
  max_len=16384             # checkpoints of fuzz_model.hpp: 8-14 KB
  if [ "$target" = construct ]; then
    max_len=131072          # constructed models of construct_model.hpp: 60-110 KB
  fi
  set +e
  "$build/tests/fuzz/icl_fuzz_$target" "$work" "tests/fuzz/corpus/$target" -dict="tests/fuzz/$target.dict" \
    -max_total_time="$seconds" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 -print_funcs=0 -artifact_prefix="$build/artifacts/$target-" > "$log" 2>&1
  rc=$?
  set -e
  grep -v -E '^#[0-9]+.*(NEW|REDUCE|pulse)|# Uses: ' "$log" | tail -n 80
  if [ "$rc" -ne 0 ]; then
    echo "== fuzz_$target: FINDING (exit $rc); input saved under $build/artifacts/, log $log ==" >&2
    status=1
  fi
done
echo "== fuzzing done after $(( $(date +%s) - start )) s =="
exit $status
