/// @file
/// Parameter initialisation over ParamView lists: the paper code's "uniform scaling"
/// (U(±1/sqrt(fan_in)), digest §1.2) with LayerNorm gains 1 and biases 0.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "icl/core/rng.hpp"
#include "icl/nn/param.hpp"

namespace icl::nn {

/// True for LayerNorm parameters by the naming scheme (a path component starting with "norm").
inline bool is_layer_norm_param(const std::string& name) {
  return name.rfind("norm", 0) == 0 || name.find(".norm") != std::string::npos;
}

/// Every matrix W (rows x cols, cols = fan_in) ~ U(±1/sqrt(cols)); every vector of length n
/// (biases) ~ U(±1/sqrt(n)); pos_embedding (TMax x H) ~ U(±1/sqrt(TMax)) as flax's uniform
/// scaling of shape (1, TMax, H); LayerNorm weights = 1, biases = 0. Draws in list order,
/// column-major within a tensor, one rng.uniform() per value (reproducible for a seed).
template <class S>
void init_uniform_scaling(const std::vector<ParamView<S>>& ps, Rng& rng) {
  for (const auto& p : ps) {
    if (is_layer_norm_param(p.name)) {
      const bool gain = p.name.size() >= 6 && p.name.compare(p.name.size() - 6, 6, "weight") == 0;
      p.value_map().setConstant(gain ? S(1) : S(0));
      continue;
    }
    const bool pos = p.name.find("pos_embedding") != std::string::npos;
    const double fan_in = static_cast<double>(pos ? p.rows : (p.cols > 1 ? p.cols : p.rows));
    const double a = 1.0 / std::sqrt(fan_in);
    for (Eigen::Index k = 0; k < p.size(); ++k) p.value[k] = static_cast<S>(rng.uniform(-a, a));
  }
}

}  // namespace icl::nn
