/// @file
/// Position-wise feed-forward layer H -> F -> H: Y = W2 σ(W1 X + b1) + b2 (PyTorch names linear1,
/// linear2). Backward: docs/derivations/nn_layers.md Eq. (F1)-(F2).
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "icl/core/storage.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/linear.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// Two linear layers with an elementwise activation between them.
template <class S, int H, int F>
class FeedForward {
  static_assert(is_scalar_v<S>, "icl::nn::FeedForward: Scalar must be a floating-point type");

 public:
  using Scalar = S;                 ///< the scalar type S
  static constexpr int Hidden = H;  ///< input/output width
  static constexpr int Inner = F;   ///< inner width
  /// A sequence of H-feature tokens (H x T).
  using SeqType = Seq<S, H>;

  /// What forward() keeps for backward(), plus backward's scratch; resized on first use only.
  struct Cache {
    Seq<S, F> pre;     ///< W1 x + b1
    Seq<S, F> post;    ///< σ(pre)
    Seq<S, F> dinner;  ///< backward scratch: dL/d(pre) in its first T columns (never shrinks)
  };

  /// Zero weights and biases, activation σ = `act` (default: erf GeLU, PyTorch's 'gelu').
  explicit FeedForward(Activation act = Activation::gelu_erf) : act_(act) {}

  /// The activation σ.
  Activation activation() const { return act_; }
  /// Changes σ (for instance to compare GeLU forms); the weights are kept.
  void set_activation(Activation a) { act_ = a; }

  Linear<S, H, F> linear1;  ///< W1 (F x H), b1 (F)
  Linear<S, F, H> linear2;  ///< W2 (H x F), b2 (H)

  /// y = W2 σ(W1 x + b1) + b2 for every column (Eq. F1); x and y are H x N, y preallocated. Fills
  /// `c` for backward().
  void forward(const In<S>& x, Cache& c, Out<S> y) const {
    inner(x, c);
    linear2.forward(c.post, y);
  }

  /// y += W2 σ(W1 x + b1) + b2: forward() added onto y (a block's residual stream) without a
  /// separate pass over y. Fills `c` for backward() like forward().
  void forward_add(const In<S>& x, Cache& c, Out<S> y) const {
    inner(x, c);
    linear2.forward_add(c.post, y);
  }

  /// Accumulates parameter gradients, writes dx (may alias dy).
  void backward(const In<S>& x, Cache& c, const In<S>& dy, Out<S> dx) {
    Out<S> dinner = detail::scratch_cols(c.dinner, F, x.cols());
    linear2.accumulate_grad(c.post, dy);
    linear2.backward_input(dy, dinner);
    activation_backward(act_, c.pre, dinner, dinner);
    linear1.accumulate_grad(x, dinner);
    linear1.backward_input(dinner, dx);
  }

  /// "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias" after `prefix`.
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    linear1.append_parameters(ps, prefix + "linear1.");
    linear2.append_parameters(ps, prefix + "linear2.");
  }
  /// The four parameters of append_parameters(), names prefixed by `prefix`.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Sets the gradients of linear1 and linear2 to zero.
  void zero_grad() {
    linear1.zero_grad();
    linear2.zero_grad();
  }

 private:
  void inner(const In<S>& x, Cache& c) const {  // pre = W1 x + b1, post = σ(pre)
    c.pre.resize(F, x.cols());
    c.post.resize(F, x.cols());
    linear1.forward(x, c.pre);
    activation_forward(act_, c.pre, c.post);
  }

  Activation act_;
};

}  // namespace icl::nn
