/// @file
/// ParamView: the one interface between models and everything that treats parameters generically
/// (optimisers, gradient clipping, checkpoints, weight export, finite-difference checks).
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

namespace icl::nn {

/// A named parameter tensor owned by a layer or model: `rows x cols` coefficients stored
/// column-major at `value`, with its gradient (same layout) at `grad`. Vectors have cols == 1.
/// Pointers stay valid for the lifetime of the owning object (no reallocation after construction).
template <class S>
struct ParamView {
  std::string name;   ///< dotted name, e.g. "blocks.0.linear1.weight" (see docs/nn.md for the scheme)
  Eigen::Index rows;  ///< rows (PyTorch's first dimension)
  Eigen::Index cols;  ///< columns (1 for vectors)
  S* value;           ///< rows*cols values, column-major
  S* grad;            ///< rows*cols gradient accumulators, column-major

  /// rows·cols, the number of scalars.
  Eigen::Index size() const { return rows * cols; }
  /// The values as a writable rows x cols matrix (no copy).
  Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> value_map() const {
    return {value, rows, cols};
  }
  /// The gradient accumulators as a writable rows x cols matrix (no copy).
  Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> grad_map() const { return {grad, rows, cols}; }
};

/// Total number of scalars in a parameter list.
template <class S>
Eigen::Index parameter_count(const std::vector<ParamView<S>>& ps) {
  Eigen::Index n = 0;
  for (const auto& p : ps) n += p.size();
  return n;
}

/// Sets every gradient to zero.
template <class S>
void zero_grad(const std::vector<ParamView<S>>& ps) {
  for (const auto& p : ps) p.grad_map().setZero();
}

}  // namespace icl::nn
