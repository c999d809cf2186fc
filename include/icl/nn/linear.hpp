/// @file
/// Linear (affine) layer over sequences: Y = W X + b 1ᵀ, columns are tokens. PyTorch nn.Linear
/// layout: weight is Out x In, bias has Out entries. Backward: docs/derivations/nn_layers.md Eq. (L1).
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/param.hpp"

namespace icl::nn {

/// y = W x + b for every column x of a sequence.
///
/// @tparam S   scalar (float, double, long double)
/// @tparam In  input features (rows of the input sequence)
/// @tparam Out output features
///
/// Parameters (see docs/nn.md): `weight` (Out x In), `bias` (Out, absent when constructed with
/// `bias = false`). Weights and gradients live on the heap with their shape in the type.
template <class S, int In, int Out>
class Linear {
  static_assert(is_scalar_v<S>, "icl::nn::Linear: Scalar must be a floating-point type");
  static_assert(In > 0 && Out > 0, "icl::nn::Linear: In and Out must be positive compile-time sizes");

 public:
  using Scalar = S;
  static constexpr int InFeatures = In;    ///< input rows
  static constexpr int OutFeatures = Out;  ///< output rows
  using InSeq = Seq<S, In>;
  using OutSeq = Seq<S, Out>;

  /// Zero weights (and bias); fill them through weight()/bias() or parameters().
  explicit Linear(bool bias = true) : has_bias_(bias) {}

  bool has_bias() const { return has_bias_; }

  typename HeapMatrix<S, Out, In>::MapType weight() { return w_.map(); }
  typename HeapMatrix<S, Out, In>::ConstMapType weight() const { return w_.map(); }
  typename HeapMatrix<S, Out, 1>::MapType bias() { return b_.map(); }
  typename HeapMatrix<S, Out, 1>::ConstMapType bias() const { return b_.map(); }
  typename HeapMatrix<S, Out, In>::MapType weight_grad() { return dw_.map(); }
  typename HeapMatrix<S, Out, 1>::MapType bias_grad() { return db_.map(); }

  /// y = W x + b (every column). `y` must already have x.cols() columns.
  void forward(const Eigen::Ref<const InSeq>& x, Eigen::Ref<OutSeq> y) const {
    ICL_ASSERT(y.cols() == x.cols(), "Linear::forward: output has the wrong number of columns");
    y.noalias() = w_.map() * x;
    if (has_bias_) y.colwise() += b_.map();
  }

  /// Accumulates parameter gradients for upstream dy at input x: dW += dy xᵀ, db += dy 1 (Eq. L1).
  void accumulate_grad(const Eigen::Ref<const InSeq>& x, const Eigen::Ref<const OutSeq>& dy) {
    dw_.map().noalias() += dy * x.transpose();
    if (has_bias_) db_.map() += dy.rowwise().sum();
  }

  /// dx = Wᵀ dy (Eq. L1), into a preallocated dx.
  void backward_input(const Eigen::Ref<const OutSeq>& dy, Eigen::Ref<InSeq> dx) const {
    dx.noalias() = w_.map().transpose() * dy;
  }

  /// accumulate_grad + backward_input.
  void backward(const Eigen::Ref<const InSeq>& x, const Eigen::Ref<const OutSeq>& dy, Eigen::Ref<InSeq> dx) {
    accumulate_grad(x, dy);
    backward_input(dy, dx);
  }

  /// "weight" (Out x In) and, with a bias, "bias" (Out x 1); names are prefixed by `prefix`.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix,
                         const std::string& weight_name = "weight", const std::string& bias_name = "bias") {
    ps.push_back({prefix + weight_name, Out, In, w_.data(), dw_.data()});
    if (has_bias_) ps.push_back({prefix + bias_name, Out, 1, b_.data(), db_.data()});
  }
  void zero_grad() {
    dw_.map().setZero();
    db_.map().setZero();
  }

 private:
  bool has_bias_;
  HeapMatrix<S, Out, In> w_, dw_;
  HeapMatrix<S, Out, 1> b_, db_;
};

}  // namespace icl::nn
