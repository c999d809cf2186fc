/// @file
/// The factories of the constructed transformers: gd_transformer<S, D> (one-pass SGD), ridge_transformer<S,
/// D> (online ridge, Sherman–Morrison), theorem1_transformer and theorem2_transformer, their build options
/// (TransformerOptions, RidgeForm), realised widths (ChainWidths) and model types (GdTransformer, ...).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "icl/construct/chain_spec.hpp"
#include "icl/construct/chains.hpp"
#include "icl/construct/constructed_transformer.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/data/task.hpp"
#include "icl/io/model_file.hpp"

namespace icl::construct {

/// Which online-ridge chain ridge_transformer builds: the Sherman–Morrison moment form of the recipe
/// (state A⁻¹ and b = Xᵀy, prediction xᵀA⁻¹b; 9n+5 layers) or the w-form / recursive least squares
/// (state A⁻¹ and w; 12n+4 layers; docs/constructions.md §4.4). Same rows, same model type. The w-form
/// is the default: in double it is 20–100× more accurate (largest error against online ridge at d = 8,
/// n = 40 about 5e-11 instead of 1e-9 to 5e-9; at d = 16, n = 100 about 2e-10 instead of 5e-9 to 2e-8,
/// docs/constructions.md §4.6) for about 5 % more time per context, although it has a third more
/// layers. RidgeForm::moment is the recipe's chain, whose layers and rows the recipe's tables describe.
enum class RidgeForm { moment, w };

/// Build options of the constructed transformers.
struct TransformerOptions {
  std::optional<Constants> constants;        ///< default: Constants::defaults<S>()
  bool calibrate = true;                     ///< calibrate operand hints on sampled tasks (§4.5)
  int calibration_draws = 16;                ///< tasks used for the calibration
  std::uint64_t seed = 0x1c1;                ///< RNG seed of the calibration draws
  data::TaskDistribution distribution{0};    ///< task distribution of the calibration (n is overridden)
  RidgeForm ridge_form = RidgeForm::w;       ///< ridge_transformer only (RidgeForm: why the w-form)
  /// The calibrated range (docs/constructions.md §2.8): predict refuses a prompt on which some mul's
  /// operand exceeds range_margin × the operand hint it was built with (the max over the calibration
  /// draws). Default: default_range_margin<S>() (float 2, double and long double 8: within it the
  /// measured error stays within about 10x of the error inside the calibrated magnitudes). > 0;
  /// infinity disables the check.
  std::optional<double> range_margin;
};

/// Realised widths of the four chains (docs/constructions.md §5), for K <= 3.
template <int D>
struct ChainWidths {
  static constexpr int sgd_height = 10 + 5 * D;  ///< 4+5d data rows + ONE, RHO1, RHO2, PADP, PADM, ZERO
  static constexpr int sgd_mlp = 9 * D;          ///< 3 units · d pairs · 3 levels
  /// 3+6d+4d² data rows (both ridge forms) + the same 6 extra rows as SGD.
  static constexpr int ridge_height = 9 + 6 * D + 4 * D * D;
  /// K = 3 levels × (2d² + d) units of the widest mul (K·(distinct sums + distinct operand rows), §2.5).
  static constexpr int ridge_mlp = 3 * (2 * D * D + D);
  static constexpr int thm1_height = 11 + 4 * D;  ///< 3+4d data rows + the 6 extra rows + 2 TAU rows
  static constexpr int thm1_mlp = 9 * D;          ///< 3 units · d pairs · 3 levels, as for SGD
  /// 3+5d+3d² data rows + the 6 extra rows + 2 TAU rows + d scratch rows.
  static constexpr int thm2_height = 11 + 6 * D + 3 * D * D;
  static constexpr int thm2_mlp = 3 * (2 * D * D + D);  ///< as ridge_mlp
};

/// Model type of gd_transformer<S, D> (one-pass SGD): H = 10+5D, F = 9D.
template <class S, int D>
using GdTransformer = ConstructedTransformer<S, D, ChainWidths<D>::sgd_height, ChainWidths<D>::sgd_mlp>;
/// Model type of ridge_transformer<S, D> (either ridge form): H = 9+6D+4D², F = 3(2D²+D).
template <class S, int D>
using RidgeTransformer =
    ConstructedTransformer<S, D, ChainWidths<D>::ridge_height, ChainWidths<D>::ridge_mlp>;
/// Model type of theorem1_transformer<S, D> (one GD step, n = 1): H = 11+4D, F = 9D.
template <class S, int D>
using Theorem1Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm1_height, ChainWidths<D>::thm1_mlp>;
/// Model type of theorem2_transformer<S, D> (one Sherman–Morrison step, n = 1): H = 11+6D+3D²,
/// F = 3(2D²+D).
template <class S, int D>
using Theorem2Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm2_height, ChainWidths<D>::thm2_mlp>;

namespace detail {

/// The ChainSpec of a factory-built model: the chain's parameters plus the calibrated range of `opt`.
template <class S>
ChainSpec chain_spec(std::string kind, int d, int n, double lr, double lambda, std::vector<double> w,
                     const TransformerOptions& opt) {
  ChainSpec spec{std::move(kind), d, n, lr, lambda, std::move(w)};
  spec.range_margin = opt.range_margin ? *opt.range_margin : default_range_margin<S>();
  if (opt.calibrate) {
    const auto& t = opt.distribution;
    spec.calibration = std::to_string(opt.calibration_draws) +
                       " tasks of TaskDistribution{x_std = " + io::detail::number_text(t.x_std) +
                       ", w_std = " + io::detail::number_text(t.w_std) +
                       ", noise_std = " + io::detail::number_text(t.noise_std) +
                       ", w_mean = " + io::detail::number_text(t.w_mean) + "}, seed " +
                       std::to_string(opt.seed);
  } else {
    spec.calibration = "no calibration (TransformerOptions::calibrate = false: every hint 1)";
  }
  return spec;
}

template <class S, int D>
Realisation<S> realise_chain(const Chain<S>& chain, int n, const TransformerOptions& opt) {
  const Constants k = opt.constants ? *opt.constants : Constants::template defaults<S>();
  k.validate();
  ICL_CHECK_ARG(!opt.range_margin || *opt.range_margin > 0,
                "TransformerOptions.range_margin: expected > 0 (infinity: no range check), got ",
                opt.range_margin.value_or(0));
  std::vector<OperandHint> hints;
  if (opt.calibrate) {
    ICL_CHECK_ARG(opt.calibration_draws >= 1, "TransformerOptions.calibration_draws: expected >= 1, got ",
                  opt.calibration_draws);
    data::TaskDistribution dist = opt.distribution;
    dist.n = n;
    Rng rng(opt.seed);
    std::vector<Mat<S>> states;
    for (int i = 0; i < opt.calibration_draws; ++i) {
      const auto task = data::sample_task<S, D>(dist, rng);
      const Eigen::Matrix<S, D, 1> xq = data::sample_x<S, D>(dist, rng);
      states.push_back(chain.program.embed(data::encode(task, xq)));
    }
    hints = calibrate_hints(chain.program, states);
  }
  return realise(chain.program, 2 * n + 1, k, hints);
}

}  // namespace detail

/// A transformer of paper blocks whose prediction at every x-token column equals one-pass SGD from w0 = 0:
/// w_{i+1} = w_i − 2·lr·(x_i x_iᵀw_i − y_i x_i + λw_i) (icl::regress::Sgd{lr, lambda}), for up to
/// n_examples examples plus a query. 5n+3 layers, H = 10+5D, F = 9D.
template <class S, int D>
GdTransformer<S, D> gd_transformer(int n_examples, double lr, double lambda,
                                   const TransformerOptions& opt = {}) {
  static_assert(D >= 1, "icl::construct::gd_transformer: the input dimension D must be at least 1");
  auto chain = sgd_chain<S>(D, n_examples, lr, lambda);
  auto real = detail::realise_chain<S, D>(chain, n_examples, opt);
  return GdTransformer<S, D>(std::move(chain), std::move(real),
                             detail::chain_spec<S>("sgd", D, n_examples, lr, lambda, {}, opt));
}

/// A transformer of paper blocks whose prediction at every x-token column equals online ridge regression
/// x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i} (icl::regress::Ridge{lambda}), by Sherman–Morrison updates, for up
/// to n_examples examples plus a query. 12n+4 layers with the default opt.ridge_form = RidgeForm::w
/// (9n+5 with RidgeForm::moment), H = 9+6D+4D², F = 3(2D²+D). lambda > 0.
template <class S, int D>
RidgeTransformer<S, D> ridge_transformer(int n_examples, double lambda, const TransformerOptions& opt = {}) {
  static_assert(D >= 1, "icl::construct::ridge_transformer: the input dimension D must be at least 1");
  auto chain = opt.ridge_form == RidgeForm::w ? ridge_w_chain<S>(D, n_examples, lambda)
                                              : ridge_chain<S>(D, n_examples, lambda);
  auto real = detail::realise_chain<S, D>(chain, n_examples, opt);
  return RidgeTransformer<S, D>(std::move(chain), std::move(real),
                                detail::chain_spec<S>(opt.ridge_form == RidgeForm::w ? "ridge_w" : "ridge", D,
                                                      n_examples, 0, lambda, {}, opt));
}

/// Theorem 1 (one GD step from w, n = 1) as a transformer: input [x̃1, ỹ1, x̃2], one prediction (column 2).
template <class S, int D>
Theorem1Transformer<S, D> theorem1_transformer(const Vec<S>& w, double lr, double lambda,
                                               const TransformerOptions& opt = {}) {
  auto chain = theorem1_chain<S>(D, w, lr, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  std::vector<double> wd(static_cast<std::size_t>(w.size()));
  for (Eigen::Index i = 0; i < w.size(); ++i) wd[static_cast<std::size_t>(i)] = static_cast<double>(w(i));
  return Theorem1Transformer<S, D>(std::move(chain), std::move(real),
                                   detail::chain_spec<S>("theorem1", D, 1, lr, lambda, wd, opt));
}

/// Theorem 2 (one Sherman–Morrison step, n = 1) as a transformer: one prediction (column 2).
template <class S, int D>
Theorem2Transformer<S, D> theorem2_transformer(double lambda, const TransformerOptions& opt = {}) {
  auto chain = theorem2_chain<S>(D, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  return Theorem2Transformer<S, D>(std::move(chain), std::move(real),
                                   detail::chain_spec<S>("theorem2", D, 1, 0, lambda, {}, opt));
}

}  // namespace icl::construct
