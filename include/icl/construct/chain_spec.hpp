/// @file
/// ChainSpec: what a constructed model was built from (the chain's kind and parameters, the calibrated
/// range), saved with the model so that a load rebuilds the exact program; default_range_margin.
#pragma once

#include <string>
#include <vector>

namespace icl::construct {

/// The default TransformerOptions::range_margin of scalar type S (docs/constructions.md §2.8, Table R):
/// 2 for float (its GeLU products use N = 3, so they have little headroom: float ridge at d = 4, n = 10
/// has max relative error 9e-4 inside the hints, 9e-3 at 1.5-2x, 0.14 at 2-3x), 8 for double and long
/// double (N = 500 / 600: double ridge 2.7e-10 inside, 3.6e-9 at 6-8x; SGD 7.7e-12 and 1.7e-11).
template <class S>
constexpr double default_range_margin() {
  return sizeof(S) <= 4 ? 2.0 : 8.0;
}

/// What a constructed model was built from; saved with it so that load() can rebuild the exact program
/// (the interpreter behind predict_exact and chain()) next to the stored weights.
struct ChainSpec {
  std::string kind;       ///< "sgd", "ridge", "ridge_w", "theorem1", "theorem2"; "" = a custom chain
  int d = 0;              ///< input dimension
  int n = 0;              ///< examples the chain was built for (1 for Theorems 1 and 2)
  double lr = 0;          ///< SGD / Theorem 1 step size α
  double lambda = 0;      ///< ridge λ (or the weight decay of SGD / Theorem 1)
  std::vector<double> w;  ///< Theorem 1's w (d entries)
  /// The calibrated range: predict refuses a prompt on which a mul operand exceeds range_margin × its
  /// operand hint (Realisation::hints; TransformerOptions::range_margin). 0 (or any value not > 0):
  /// the scalar type's default_range_margin, set by the ConstructedTransformer constructor.
  double range_margin = 0;
  /// Where the operand hints came from (printed by the range error), e.g. "16 tasks of
  /// TaskDistribution{x_std = 1, w_std = 1, noise_std = 0, w_mean = 0}, seed 449".
  std::string calibration = "operand hints given to realise()";
};

}  // namespace icl::construct
