#!/bin/sh
# A whole training step, icl next to PyTorch, in one invocation (issue 11, target 3;
# docs/performance.md "A whole training step"). Runs, back to back:
#   1. icl's bench/bench_train.cpp: every config with 1 and 2 threads, REPS repetitions (medians);
#   2. bench/torch_train.py with 1 thread, then with 2 threads (best of REPS), each under the
#      issue's anchor settings: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=<t>,
#      plus OPENBLAS_CORETYPE when OpenBLAS does not recognise the CPU (bench/anchor_env.sh), and
#      OMP_WAIT_POLICY=PASSIVE: GNU OpenMP's workers otherwise spin after every parallel region and
#      take the cores from OpenBLAS's own threads (PyTorch's 2-thread step: 4.0 steps/s spinning,
#      6.6 passive, against 5.9 with one thread, L = 4, H = 64, 2-core Xeon);
# then prints one table: config, icl steps/s (1 and 2 threads), icl 2 thr / 1 thr, PyTorch steps/s
# (1 and 2 threads), icl / PyTorch.
#
#   bench/compare_train.sh [ICL_BENCH_TRAIN] [OUT_DIR]
#
# ICL_BENCH_TRAIN defaults to build/bench/icl_bench_train, OUT_DIR to build/compare_train (the JSON
# files are kept there). Environment: REPS (default 3), ICL_MIN_TIME (Google Benchmark
# --benchmark_min_time per repetition, default 2), TORCH_MIN_TIME (default 2), FILTER (a
# --benchmark_filter for icl, default all), TORCH_ARGS (extra options of torch_train.py, e.g.
# "--H 64 --L 4").
set -eu
here=$(dirname "$0")
bin=${1:-build/bench/icl_bench_train}
out=${2:-build/compare_train}
reps=${REPS:-3}
mkdir -p "$out"
. "$here/anchor_env.sh"
echo "OpenBLAS detected core: ${ANCHOR_DETECTED:-unknown}; anchor OPENBLAS_CORETYPE=${ANCHOR_CORE:-(unset)}" >&2
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" --benchmark_repetitions="$reps" --benchmark_min_time="${ICL_MIN_TIME:-2}" \
  --benchmark_filter="${FILTER:-.}" --benchmark_out="$out/icl_train.json" --benchmark_out_format=json >&2
for t in 1 2; do
  # shellcheck disable=SC2086
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$t OMP_WAIT_POLICY=PASSIVE ${ANCHOR_CORE:+OPENBLAS_CORETYPE=$ANCHOR_CORE} /usr/bin/python3 "$here/torch_train.py" \
    --threads $t --reps "$reps" --min-time "${TORCH_MIN_TIME:-2}" --json "$out/torch_$t.json" ${TORCH_ARGS:-}
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
/usr/bin/python3 "$here/torch_train.py" --table --icl-json "$out/icl_train.json" \
  --torch-json "$out/torch_1.json" "$out/torch_2.json"
