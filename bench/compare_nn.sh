#!/usr/bin/env bash
# icl's layers next to PyTorch in the same run (issue 11, targets 1 and 2; docs/performance.md).
#
#   bench/compare_nn.sh BUILD_DIR [ROUNDS] [H...]        e.g. bench/compare_nn.sh build 3 64 128 256
#
# Runs ROUNDS alternating rounds of (icl_bench_nn, PyTorch) on the block and its GEMM references, one
# thread each, and prints one table: icl's medians over all rounds' repetitions, PyTorch's best round
# (each round the median of 3 repetitions; its timings swing 2-5x between runs), icl's rate as a share of the same run's GEMM of
# the block's largest product (4H x H times H x N) and icl's speed relative to PyTorch.
#
# The anchor: Debian's python3-torch on OpenBLAS (libopenblas0-pthread), one thread
# (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)), the environment's OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE dropped, with OpenBLAS's fastest kernels for this CPU (bench/anchor_env.sh: a core
# from the CPU flags when OpenBLAS does not recognise the CPU; ANCHOR_CORETYPE forces one, e.g.
# Haswell to time the AVX2 anchor next to an icl build for -march=x86-64-v3). icl's benchmark runs
# under the same settings (they matter only to a build with -DICL_USE_BLAS=ON, whose products go to
# the same OpenBLAS). FILTER overrides the benchmark filter.
set -euo pipefail
build=${1:?usage: bench/compare_nn.sh BUILD_DIR [ROUNDS] [H...]}
rounds=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
widths=("$@")
[ ${#widths[@]} -gt 0 ] || widths=(64 128 256)
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bench/icl_bench_nn
[ -x "$bin" ] || { echo "compare_nn.sh: $bin not found: build the target icl_bench_nn first" >&2; exit 2; }
py=/usr/bin/python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

hs=$(IFS='|'; echo "${widths[*]}")
gemms=$(for h in "${widths[@]}"; do printf 'gemm/m:%s/k:%s/n:5056$|' $((4 * h)) "$h"; done)
filter=${FILTER:-"^(fma_peak$|${gemms%|}|block/(fwd|fwdbwd)/H:($hs)$)"}

. "$here/anchor_env.sh"
detected=$ANCHOR_DETECTED
core=$ANCHOR_CORE
blas_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1)
[ -n "$core" ] && blas_env+=(OPENBLAS_CORETYPE="$core")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores;" \
     "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OpenBLAS detected core: ${detected:-unknown}; anchor runs with OPENBLAS_CORETYPE=${core:-(unset: OpenBLAS chooses)}"
echo "icl filter: $filter"

for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: icl" >&2
  "${blas_env[@]}" "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.2 --benchmark_repetitions=3 \
    --benchmark_out="$out/icl_$r.json" --benchmark_out_format=json > /dev/null
  echo "round $r/$rounds: PyTorch" >&2
  "${blas_env[@]}" "$py" "$here/torch_nn.py" --H "${widths[@]}" --layers block --reps 3 --min-time 0.3 \
    --save "$out/torch_$r.json" > /dev/null
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" "$here/torch_nn.py" --icl-json "$out"/icl_*.json --torch-json "$out"/torch_*.json \
  --H "${widths[@]}" --layers block
