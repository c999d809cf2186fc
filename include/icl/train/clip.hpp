/// @file
/// Gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (2-norm over all parameters
/// together), and a finiteness check of every gradient. See docs/train.md Eq. (6).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/nn/param.hpp"

namespace icl::train {

/// Total 2-norm of all gradients, ‖(‖g_1‖, …, ‖g_P‖)‖ accumulated in double.
template <class S>
double grad_norm(const std::vector<nn::ParamView<S>>& ps) {
  double sq = 0;
  for (const auto& p : ps) {
    for (Eigen::Index k = 0; k < p.size(); ++k) {
      const double g = static_cast<double>(p.grad[k]);
      sq += g * g;
    }
  }
  return std::sqrt(sq);
}

/// Scales every gradient by min(1, max_norm / (N + 1e-6)) where N = grad_norm(ps), exactly the
/// rule of torch.nn.utils.clip_grad_norm_ (which also multiplies by 1 when no clipping is
/// needed, so that is a no-op here too), docs/train.md Eq. (6). Returns N (before clipping).
/// A non-finite N throws NumericalError (PyTorch's error_if_nonfinite=True) naming the first
/// non-finite gradient tensor.
template <class S>
double clip_grad_norm(const std::vector<nn::ParamView<S>>& ps, double max_norm) {
  ICL_CHECK_ARG(max_norm > 0 && std::isfinite(max_norm),
                "clip_grad_norm: max_norm: expected finite > 0, got ", max_norm);
  const double total = grad_norm(ps);
  if (!std::isfinite(total)) {
    for (const auto& p : ps)
      if (!p.grad_map().allFinite())
        detail::raise<NumericalError>("clip_grad_norm: gradient of '", p.name, "' is not finite");
    detail::raise<NumericalError>("clip_grad_norm: total gradient norm overflows: ", total);
  }
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    const S c = static_cast<S>(coef);
    for (const auto& p : ps) p.grad_map() *= c;
  }
  return total;
}

/// Name of the first parameter whose gradient (grads = true) or value (grads = false) has
/// a NaN or Inf, or "" if all are finite.
template <class S>
std::string first_nonfinite(const std::vector<nn::ParamView<S>>& ps, bool grads) {
  for (const auto& p : ps) {
    const bool ok = grads ? p.grad_map().allFinite() : p.value_map().allFinite();
    if (!ok) return p.name;
  }
  return {};
}

}  // namespace icl::train
