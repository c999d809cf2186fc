#!/usr/bin/env bash
# Compile-time cost of icl's headers (issue 11, target 5; docs/performance.md, "Compile time").
#
# Compiles one translation unit per case (compile only, -c: no linking) and prints a Markdown
# table of the median CPU time (user + sys, from /usr/bin/time) and the peak memory (max RSS) of
# the compiler, under the project's Release flags (-std=c++20 -O3 -DNDEBUG) and under Debug
# (-std=c++20 -O0 -g). CPU time rather than wall time: on a loaded machine wall time measures the
# other processes too.
#
#   scripts/compile_times.sh [case ...]     # no case: all of them
#
# Cases: eigen (empty TU with <Eigen/Core>: the baseline), core data io regress metrics nn train
# construct probe icl (the umbrella header icl/<case>.hpp alone: the cost of parsing it), and
# four small programs: prog_train (train a pre-LN model for a few steps), prog_regress (evaluate
# two classical regressors with the metrics), prog_construct (build a constructed ridge transformer
# and run it), prog_load (load a model file into a pre-LN transformer).
#
# Environment: CXX (default g++), REPS (repetitions per cell, default 3; the median is printed),
# EIGEN (default /usr/include/eigen3), CONFIGS ("release debug" by default; either alone),
# KEEP (a directory: keep the generated sources there), EXTRA (more compiler flags, e.g.
# -ftime-report), ICL_INCLUDE (the icl headers to measure, default the repository's include/; e.g.
# an older version: git archive <commit> include | tar -x -C /tmp/old, ICL_INCLUDE=/tmp/old/include).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CXX=${CXX:-g++}
REPS=${REPS:-3}
EIGEN=${EIGEN:-/usr/include/eigen3}
CONFIGS=${CONFIGS:-release debug}
EXTRA=${EXTRA:-}
ICL_INCLUDE=${ICL_INCLUDE:-$root/include}
[ -x /usr/bin/time ] || { echo "compile_times.sh: needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }

work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT

areas="core data io regress metrics nn train construct probe icl"
all_cases="eigen $areas prog_train prog_regress prog_construct prog_load"
cases=${*:-$all_cases}

# ---- the translation units ----------------------------------------------------------------------
printf '#include <Eigen/Core>\nint main() { return 0; }\n' > "$work/eigen.cpp"
for a in $areas; do
  printf '#include "icl/%s.hpp"\nint main() { return 0; }\n' "$a" > "$work/$a.cpp"
done

# Train a small pre-LN model (d = 4, H = 32, M = 2, 2 layers) for a few steps: examples/train.cpp
# reduced to the training loop.
cat > "$work/prog_train.cpp" <<'CPP'
#include <iostream>
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/trainer.hpp"
constexpr int kD = 4, kN = 16, kH = 32, kM = 2, kF = 4 * kH, kTMax = 2 * kN - 1;
using Model = icl::nn::PreLNTransformer<float, kD, kH, kM, kF, kTMax>;
int main() {
  icl::train::TrainConfig cfg;
  cfg.steps = 10;
  cfg.batch = 8;
  cfg.task.n = kN;
  Model model(2);
  icl::Rng rng(1);
  icl::nn::init_uniform_scaling(model.parameters(), rng);
  icl::train::Trainer<Model> trainer(model, cfg, &std::cout);
  trainer.run();
  std::cout << trainer.history().back().eval_loss << "\n";
}
CPP

# Evaluate two classical regressors (OLS, ridge) with the metrics (SPD, ILWD per prefix), d = 4.
cat > "$work/prog_regress.cpp" <<'CPP'
#include <iostream>
#include "icl/metrics.hpp"
int main() {
  const icl::data::TaskDistribution dist{.n = 8};
  const std::vector<icl::metrics::Predictor<double>> preds{
      icl::metrics::predictor<double>(icl::regress::Ols{}),
      icl::metrics::predictor<double>(icl::regress::Ridge{0.1})};
  icl::metrics::EvalOptions opt;
  opt.n_contexts = 8;
  icl::Rng rng(5);
  const icl::metrics::EvalResult res = icl::metrics::evaluate<double, 4>(dist, preds, opt, rng);
  std::cout << res.at("spd", res.names[0], res.names[1], 3).mean << "\n";
}
CPP

# Build a constructed ridge transformer (d = 2) and run it on one encoded task.
cat > "$work/prog_construct.cpp" <<'CPP'
#include <iostream>
#include "icl/construct/transformer.hpp"
#include "icl/data/task.hpp"
int main() {
  constexpr int kD = 2, kN = 4;
  icl::Rng rng(3);
  const icl::data::TaskDistribution dist{.n = kN};
  const auto task = icl::data::sample_task<double, kD>(dist, rng);
  const auto model = icl::construct::ridge_transformer<double, kD>(kN, 0.1);
  std::cout << model.predict(icl::data::encode(task)).transpose() << "\n";
}
CPP

# Load a model file into a pre-LN transformer and predict.
cat > "$work/prog_load.cpp" <<'CPP'
#include <iostream>
#include "icl/data/task.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/checkpoint.hpp"
constexpr int kD = 4, kN = 16, kH = 32, kM = 2, kF = 4 * kH, kTMax = 2 * kN - 1;
using Model = icl::nn::PreLNTransformer<float, kD, kH, kM, kF, kTMax>;
int main(int argc, char** argv) {
  if (argc < 2) return 1;
  Model model(2);
  icl::train::load_model(model, argv[1]);
  icl::Rng rng(3);
  const icl::data::TaskDistribution dist{.n = kN};
  const auto task = icl::data::sample_task<float, kD>(dist, rng);
  std::cout << model.predict(icl::data::encode(task).leftCols(2 * kN - 1)).transpose() << "\n";
}
CPP

# ---- measuring ------------------------------------------------------------------------------------
flags_release="-std=c++20 -O3 -DNDEBUG"
flags_debug="-std=c++20 -O0 -g"

# measure <case> <config>: prints "median_cpu_s max_rss_MiB" over REPS compilations.
measure() {
  local c=$1 cfg=$2 flags times=() mems=() i out
  flags=flags_$cfg
  for ((i = 0; i < REPS; ++i)); do
    # shellcheck disable=SC2086
    /usr/bin/time -o "$work/$c.$cfg.time" -f '%U %S %M' "$CXX" ${!flags} $EXTRA -I"$ICL_INCLUDE" \
      -isystem "$EIGEN" -c "$work/$c.cpp" -o "$work/$c.$cfg.o" 2>"$work/$c.$cfg.log" || {
      echo "compile_times.sh: $c ($cfg) failed:" >&2; cat "$work/$c.$cfg.log" >&2; exit 1; }
    out=$(tail -n 1 "$work/$c.$cfg.time")
    times+=("$(awk '{printf "%.2f", $1 + $2}' <<<"$out")")
    mems+=("$(awk '{printf "%.0f", $3 / 1024}' <<<"$out")")
  done
  local mt mm
  mt=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  mm=$(printf '%s\n' "${mems[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  echo "$mt $mm"
}

echo "<!-- $("$CXX" --version | head -n 1); $REPS runs per cell, median; $(date -u +%Y-%m-%dT%H:%MZ) -->"
header="| case |"
rule="|---|"
for cfg in $CONFIGS; do
  case $cfg in
    release) header+=" -O3 -DNDEBUG: CPU s | peak MiB |" ;;
    debug) header+=" -O0 -g: CPU s | peak MiB |" ;;
    *) echo "compile_times.sh: unknown config $cfg" >&2; exit 1 ;;
  esac
  rule+="---:|---:|"
done
echo "$header"
echo "$rule"
for c in $cases; do
  [ -f "$work/$c.cpp" ] || { echo "compile_times.sh: unknown case $c (cases: $all_cases)" >&2; exit 1; }
  case $c in
    eigen) label="\`<Eigen/Core>\` only (baseline)" ;;
    prog_*) label="program: ${c#prog_}" ;;
    *) label="\`icl/$c.hpp\`" ;;
  esac
  row="| $label |"
  for cfg in $CONFIGS; do
    read -r t m <<<"$(measure "$c" "$cfg")"
    row+=" $t | $m |"
  done
  echo "$row"
done
