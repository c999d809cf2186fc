/// @file
/// Linear (affine) layer over sequences: Y = W X + b 1ᵀ, columns are tokens. PyTorch nn.Linear
/// layout: weight is Out x In, bias has Out entries. Backward: docs/derivations/nn_layers.md Eq. (L1).
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/gemm.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// y = W x + b for every column x of a sequence.
///
/// @tparam S   scalar (float, double, long double)
/// @tparam NIn  input features (rows of the input sequence)
/// @tparam NOut output features
///
/// Parameters (see docs/nn.md): `weight` (NOut x NIn), `bias` (NOut, absent when constructed with
/// `bias = false`). Weights and gradients live on the heap with their shape in the type.
template <class S, int NIn, int NOut>
class Linear {
  static_assert(is_scalar_v<S>, "icl::nn::Linear: Scalar must be a floating-point type");
  static_assert(NIn > 0 && NOut > 0, "icl::nn::Linear: NIn and NOut must be positive compile-time sizes");

 public:
  using Scalar = S;                         ///< the scalar type S
  static constexpr int InFeatures = NIn;    ///< input rows
  static constexpr int OutFeatures = NOut;  ///< output rows

  /// Zero weights (and bias); fill them through weight()/bias() or parameters().
  explicit Linear(bool bias = true) : has_bias_(bias) {}

  /// Whether the layer has a bias (constructor argument); without one, forward() ignores bias().
  bool has_bias() const { return has_bias_; }

  /// W, NOut x NIn, writable (PyTorch nn.Linear layout).
  typename HeapMatrix<S, NOut, NIn>::MapType weight() { return w_.map(); }
  /// W, NOut x NIn, read-only.
  typename HeapMatrix<S, NOut, NIn>::ConstMapType weight() const { return w_.map(); }
  /// b, NOut entries, writable.
  typename HeapMatrix<S, NOut, 1>::MapType bias() { return b_.map(); }
  /// b, NOut entries, read-only.
  typename HeapMatrix<S, NOut, 1>::ConstMapType bias() const { return b_.map(); }
  /// dL/dW accumulated by accumulate_grad()/backward(), NOut x NIn; cleared by zero_grad().
  typename HeapMatrix<S, NOut, NIn>::MapType weight_grad() { return dw_.map(); }
  /// dL/db accumulated by accumulate_grad()/backward(), NOut entries; cleared by zero_grad().
  typename HeapMatrix<S, NOut, 1>::MapType bias_grad() { return db_.map(); }

  /// y = W x + b (every column). `y` must already have x.cols() columns.
  /// @throws icl::InvalidArgument if it has not (a Ref cannot be resized).
  void forward(const In<S>& x, Out<S> y) const {
    ICL_CHECK_ARG(y.cols() == x.cols(), "Linear::forward: y: expected ", x.cols(), " columns (as x), got ",
                  y.cols());
    if (has_bias_) {
      // y = b 1ᵀ, then the product accumulates onto it: one pass over y fewer than writing W x
      // (which Eigen's GEMM starts by zeroing y) and adding b afterwards
      y.colwise() = Eigen::Map<const Vec<S>>(b_.data(), NOut);
      gemm::multiply<S>(detail::dyn(w_.data(), NOut, NIn), gemm::Trans::none, x, gemm::Trans::none, y, true);
    } else {
      gemm::multiply<S>(detail::dyn(w_.data(), NOut, NIn), gemm::Trans::none, x, gemm::Trans::none, y, false);
    }
  }

  /// y += W x + b (every column): forward() added onto y, e.g. a residual stream, without the
  /// zeroing pass of a product into a fresh output. `y` must already have x.cols() columns.
  void forward_add(const In<S>& x, Out<S> y) const {
    ICL_CHECK_ARG(y.cols() == x.cols(), "Linear::forward_add: y: expected ", x.cols(),
                  " columns (as x), got ", y.cols());
    if (has_bias_) y.colwise() += Eigen::Map<const Vec<S>>(b_.data(), NOut);
    gemm::multiply<S>(detail::dyn(w_.data(), NOut, NIn), gemm::Trans::none, x, gemm::Trans::none, y, true);
  }

  /// Accumulates parameter gradients for upstream dy at input x: dW += dy xᵀ, db += dy 1 (Eq. L1).
  void accumulate_grad(const In<S>& x, const In<S>& dy) {
    ICL_CHECK_ARG(dy.cols() == x.cols(), "Linear::accumulate_grad: dy: expected ", x.cols(),
                  " columns (as x), got ", dy.cols());
    gemm::multiply<S>(dy, gemm::Trans::none, x, gemm::Trans::transpose,
                      Eigen::Map<Mat<S>>(dw_.data(), NOut, NIn), true);
    if (has_bias_) Eigen::Map<Mat<S>>(db_.data(), NOut, 1).noalias() += dy.rowwise().sum();
  }

  /// dx = Wᵀ dy (Eq. L1), into a preallocated dx.
  void backward_input(const In<S>& dy, Out<S> dx) const {
    ICL_CHECK_ARG(dx.cols() == dy.cols(), "Linear::backward_input: dx: expected ", dy.cols(),
                  " columns (as dy), got ", dx.cols());
    gemm::multiply<S>(detail::dyn(w_.data(), NOut, NIn), gemm::Trans::transpose, dy, gemm::Trans::none, dx,
                      false);
  }

  /// accumulate_grad + backward_input.
  void backward(const In<S>& x, const In<S>& dy, Out<S> dx) {
    accumulate_grad(x, dy);
    backward_input(dy, dx);
  }

  /// "weight" (NOut x NIn) and, with a bias, "bias" (NOut x 1); names are prefixed by `prefix`.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Appends the views of parameters() to `ps`, named `prefix + weight_name` and `prefix + bias_name`
  /// (the attention's in_proj passes "in_proj_weight", "in_proj_bias").
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix,
                         const std::string& weight_name = "weight", const std::string& bias_name = "bias") {
    ps.push_back({prefix + weight_name, NOut, NIn, w_.data(), dw_.data()});
    if (has_bias_) ps.push_back({prefix + bias_name, NOut, 1, b_.data(), db_.data()});
  }
  /// Sets dL/dW and dL/db to zero.
  void zero_grad() {
    dw_.map().setZero();
    db_.map().setZero();
  }

 private:
  bool has_bias_;
  HeapMatrix<S, NOut, NIn> w_, dw_;
  HeapMatrix<S, NOut, 1> b_, db_;
};

}  // namespace icl::nn
