/// @file
/// The pre-LN decoder block, identical to PyTorch's TransformerEncoderLayer(norm_first=True,
/// activation='gelu', dropout=0) with a causal mask: x = h + MHA(LN1(h)); h' = x + FF(LN2(x)).
/// Backward: docs/derivations/nn_blocks.md Eq. (P1)-(P4).
#pragma once

#include <Eigen/Core>
#include <optional>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/attention.hpp"
#include "icl/nn/feed_forward.hpp"
#include "icl/nn/layer_norm.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// Run-time options of a PreLNBlock; the defaults are PyTorch's.
struct PreLNBlockOptions {
  Scores scores = Scores::softmax;                       ///< softmax or linear attention scores
  std::optional<double> score_scale;                     ///< unset: 1/sqrt(H/M) as PyTorch
  LayerNormOptions norm{/*affine=*/true, /*eps=*/1e-5};  ///< both LayerNorms
  Activation activation = Activation::gelu_erf;          ///< PyTorch's 'gelu' is the erf form
};

/// Pre-LN transformer block (GPT-2 style) with standard multi-head attention (head width H/M).
///
/// @tparam S scalar, @tparam H width, @tparam M heads (H % M == 0), @tparam F MLP width.
/// Parameters, in PyTorch's named_parameters() order: self_attn.in_proj_weight (3H x H),
/// self_attn.in_proj_bias (3H), self_attn.out_proj.weight (H x H), self_attn.out_proj.bias,
/// linear1.weight (F x H), linear1.bias, linear2.weight (H x F), linear2.bias, norm1.weight,
/// norm1.bias, norm2.weight, norm2.bias.
template <class S, int H, int M, int F>
class PreLNBlock {
  static_assert(is_scalar_v<S>, "icl::nn::PreLNBlock: Scalar must be a floating-point type");
  static_assert(M >= 1 && H % M == 0, "icl::nn::PreLNBlock: H must be divisible by the number of heads M");
  static_assert(F >= 1, "icl::nn::PreLNBlock: the MLP width F must be positive");

 public:
  /// The scalar type S.
  using Scalar = S;
  static constexpr int Hidden = H;  ///< hidden width
  static constexpr int Heads = M;   ///< heads
  static constexpr int Inner = F;   ///< MLP width
  /// A sequence (or batch of sequences) of H-feature tokens, H x N.
  using SeqType = Seq<S, H>;
  /// Standard multi-head attention, head width H/M, with q/k/v and output biases.
  using Attention = MultiHeadAttention<S, H, M>;
  /// Run-time options type (PreLNBlockOptions).
  using Options = PreLNBlockOptions;

  /// Everything forward() keeps for backward(), one entry per sub-layer; resized on first use only.
  struct Cache {
    /// Cache of LN1 (on the attention input).
    typename LayerNorm<S, H>::Cache norm1, norm2;  ///< cache of LN2 (on the MLP input)
    /// Attention cache; attn.weights(b, j) is head j's T x T attention in sequence b.
    typename Attention::Cache attn;
    /// MLP cache (pre- and post-activation).
    typename FeedForward<S, H, F>::Cache ff;
    SeqType y;  ///< LN1(h), the attention input
    SeqType x;  ///< h + attention
    SeqType z;  ///< LN2(x), the MLP input
    /// Backward scratch, dL/dx (H x N).
    SeqType d1, d2;  ///< backward scratch, dL/d(LN1 h) (H x N)
  };

  /// Zero attention and MLP weights, LN gains 1 and biases 0. @throws icl::InvalidArgument if
  /// opt.score_scale is set and not finite, or opt.norm.eps is negative or not finite.
  explicit PreLNBlock(const Options& opt = {})
      : norm1(opt.norm),
        attn(AttentionOptions{opt.scores, opt.score_scale, true, true}),
        norm2(opt.norm),
        ff(opt.activation) {}

  LayerNorm<S, H> norm1;    ///< "norm1."
  Attention attn;           ///< "self_attn."
  LayerNorm<S, H> norm2;    ///< "norm2."
  FeedForward<S, H, F> ff;  ///< "linear1.", "linear2."

  /// out = block(h) for B = h.cols()/T sequences of T tokens (Eq. P1). `out` must not alias `h`.
  /// @throws icl::InvalidArgument unless T >= 1 divides h.cols().
  void forward(const In<S>& h, int T, Cache& c, Out<S> out) const {
    ICL_CHECK_ARG(T >= 1 && h.cols() % T == 0, "PreLNBlock::forward: T: expected a divisor of the ", h.cols(),
                  " columns of h, got ", T);
    const Eigen::Index N = h.cols();
    c.y.resize(H, N);
    c.x.resize(H, N);
    c.z.resize(H, N);
    norm1.forward(h, c.norm1, c.y);
    attn.forward(c.y, T, c.attn, c.x);
    c.x += h;
    norm2.forward(c.x, c.norm2, c.z);
    ff.forward(c.z, c.ff, out);
    out += c.x;
  }

  /// One sequence (T = h.cols()). Allocates its own cache.
  SeqType forward(const SeqType& h) const {
    Cache c;
    SeqType out(H, h.cols());
    forward(h, static_cast<int>(h.cols()), c, out);
    return out;
  }

  /// Accumulates parameter gradients, writes dh (Eqs. P2-P4).
  void backward(const In<S>& h, Cache& c, const In<S>& dout, Out<S> dh) {
    const Eigen::Index N = h.cols();
    c.d1.resize(H, N);
    c.d2.resize(H, N);
    ff.backward(c.z, c.ff, dout, c.d1);
    norm2.backward(c.norm2, c.d1, c.d1);
    c.d1 += dout;  // dx (Eq. P3)
    attn.backward(c.y, c.attn, c.d1, c.d2);
    norm1.backward(c.norm1, c.d2, dh);
    dh += c.d1;  // Eq. P4
  }

  /// Appends the views listed in the class description, in that order, names prefixed by `prefix`.
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    attn.append_parameters(ps, prefix + "self_attn.");
    ff.append_parameters(ps, prefix);
    norm1.append_parameters(ps, prefix + "norm1.");
    norm2.append_parameters(ps, prefix + "norm2.");
  }
  /// The parameter views of append_parameters(), names prefixed by `prefix`.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Sets every parameter gradient of the block to zero.
  void zero_grad() {
    norm1.zero_grad();
    attn.zero_grad();
    norm2.zero_grad();
    ff.zero_grad();
  }
};

}  // namespace icl::nn
