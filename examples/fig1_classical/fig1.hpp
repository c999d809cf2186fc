// The classical half of the paper's Fig. 1 (d = 8, noiseless): SPD/d and ILWD/d of Ridge(0.1),
// GD, SGD, k-NN and Averaging against OLS per number of examples (docs/metrics.md §4). Figure code of
// the example fig1_classical (it was include/icl/metrics/fig1.hpp, icl::metrics::fig1_classical, ...):
// the library's part is metrics::evaluate, which any predictor list runs through.
#pragma once

#include <cstdint>
#include <iomanip>
#include <ostream>
#include <string>
#include <vector>

#include "icl/metrics/evaluate.hpp"
#include "icl/regress/algorithms.hpp"

namespace fig1 {

namespace mt = icl::metrics;

/// Settings of classical(); the defaults are the paper's (d = 8 fixed, noiseless, x and w
/// standard normal) with 16 examples per context (the paper's x-axes run to 14).
struct Options {
  int n_examples = 16;     ///< examples per context
  int n_contexts = 256;    ///< contexts averaged over
  int n_probes = 32;       ///< probes per context for ILWD (implicit fit of k-NN)
  std::uint64_t seed = 0;  ///< seed of icl::Rng
};

// predictors and classical are templates with defaults so that nothing is instantiated in a
// translation unit that includes this header without calling them (docs/performance.md, "Compile
// time": as plain inline functions in icl/metrics.hpp they cost every includer 4.5-6 s of CPU).

/// The predictors of Fig. 1's classical half, OLS first: OLS, Ridge(0.1), GD(0.02), SGD(0.03),
/// kNN(3, uniform), Averaging (learning rates from the paper's legends, §4).
/// @tparam S scalar of the predictors (double in Fig. 1)
template <class S = double>
std::vector<mt::Predictor<S>> predictors() {
  namespace rg = icl::regress;
  return {mt::predictor<S>(rg::Ols{}),    mt::predictor<S>(rg::Ridge{0.1}),
          mt::predictor<S>(rg::Gd{0.02}), mt::predictor<S>(rg::Sgd{0.03}),
          mt::predictor<S>(rg::Knn{3}),   mt::predictor<S>(rg::Averaging{})};
}

/// Runs metrics::evaluate<double, D>() (D = 8: Fig. 1) on the Fig. 1 setting with predictors() (plus `extra`
/// predictors, for example a trained transformer, compared against OLS in the same table).
/// @tparam D input dimension (the paper's Fig. 1: 8)
template <int D = 8>
mt::EvalResult classical(const Options& opt = {}, const std::vector<mt::Predictor<double>>& extra = {}) {
  ICL_CHECK_ARG(opt.n_examples >= 2, "fig1::classical: opt.n_examples: expected >= 2, got ", opt.n_examples);
  icl::data::TaskDistribution dist{opt.n_examples};
  std::vector<mt::Predictor<double>> preds = predictors<double>();
  preds.insert(preds.end(), extra.begin(), extra.end());
  mt::EvalOptions eo;
  eo.n_contexts = opt.n_contexts;
  eo.n_probes = opt.n_probes;
  icl::Rng rng(opt.seed);
  return mt::evaluate<double, D>(dist, preds, eo, rng);
}

/// Prints the Fig. 1 table of `res`: one line per number of examples 1..n−1, SPD/d then ILWD/d
/// of every predictor against the first one (OLS).
inline void print_table(std::ostream& os, const mt::EvalResult& res) {
  const std::string& ref = res.names.front();
  os << "SPD/d and ILWD/d against " << ref << " (d = " << res.d << ", mean over contexts)\n";
  const int w = 16;
  const auto cols = static_cast<int>(res.names.size()) - 1;
  os << std::setw(4) << "" << std::left << std::setw(w * cols) << "  SPD/d vs " + ref << "  ILWD/d vs " + ref
     << std::right << "\n";
  os << std::setw(4) << "n";
  for (int rep = 0; rep < 2; ++rep)
    for (std::size_t p = 1; p < res.names.size(); ++p) os << std::setw(w) << res.names[p];
  os << "\n";
  for (int i = 1; i < res.n; ++i) {
    os << std::setw(4) << i;
    for (const char* metric : {"spd", "ilwd"})
      for (std::size_t p = 1; p < res.names.size(); ++p)
        os << std::setw(w) << std::setprecision(4) << res.at(metric, ref, res.names[p], i).mean / res.d;
    os << "\n";
  }
}

}  // namespace fig1
