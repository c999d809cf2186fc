/// @file
/// The paper's decoder block (Eqs. 1-5 of the paper, digest §1.1): causal multi-head attention
/// with full-width values mixed by W^F, then x = h + a; h' = x + W2 σ(W1 LN(x) + b1) + b2, with
/// LayerNorm only on the MLP input. Backward: docs/derivations/nn_blocks.md Eq. (B1)-(B4).
#pragma once

#include <Eigen/Core>
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

/// Run-time options of a PaperBlock. The defaults are the paper's definitions: softmax scores
/// without 1/sqrt scaling, LayerNorm without gain/bias and eps = 0 (Eq. 7), erf GeLU (Eq. 6).
struct PaperBlockOptions {
  Scores scores = Scores::softmax;                       ///< softmax or linear attention scores
  double score_scale = 1.0;                              ///< factor on the scores (1 = the paper)
  LayerNormOptions norm{/*affine=*/false, /*eps=*/0.0};  ///< LN on the MLP input
  Activation activation = Activation::gelu_erf;          ///< σ
};

/// The paper's transformer layer.
///
/// @tparam S scalar (float, double, long double)
/// @tparam H hidden width
/// @tparam M heads (each returns a full H-wide value)
/// @tparam F MLP inner width
///
/// Weights (all writable, zero-initialised; see docs/nn.md for names):
///   attn.wq(j), attn.wk(j), attn.wv(j)   H x H each, head j = 0..M-1 (no biases)
///   wf(), bf()                           W^F (H x M·H) and its bias (H)
///   w1(), b1(), w2(), b2()               MLP: W1 (F x H), b1 (F), W2 (H x F), b2 (H)
///   norm.weight(), norm.bias()           LN gain/bias (only used with options.norm.affine)
template <class S, int H, int M, int F>
class PaperBlock {
  static_assert(is_scalar_v<S>, "icl::nn::PaperBlock: Scalar must be a floating-point type");
  static_assert(H >= 2 && M >= 1 && F >= 1, "icl::nn::PaperBlock: H >= 2, M >= 1 and F >= 1 are required");

 public:
  /// The scalar type S.
  using Scalar = S;
  static constexpr int Hidden = H;  ///< hidden width
  static constexpr int Heads = M;   ///< heads
  static constexpr int Inner = F;   ///< MLP width
  /// A sequence (or batch of sequences) of H-feature tokens, H x N.
  using SeqType = Seq<S, H>;
  /// The paper's attention: M heads with full-width H x H W^Q_j, W^K_j, W^V_j, mixed by W^F.
  using Attention = PaperAttention<S, H, M>;
  /// Run-time options type (PaperBlockOptions).
  using Options = PaperBlockOptions;

  /// Everything forward() keeps for backward(), one entry per sub-layer; batched use keeps one
  /// Cache per block and reuses it (resized on first use only).
  struct Cache {
    /// Attention cache; attn.weights(b, j) is head j's T x T attention in sequence b.
    typename Attention::Cache attn;
    /// LayerNorm cache (normalised x and 1/sqrt(var + eps) per column).
    typename LayerNorm<S, H>::Cache norm;
    /// MLP cache (pre- and post-activation).
    typename FeedForward<S, H, F>::Cache ff;
    SeqType x;  ///< h + a (input of the LN); then scratch in backward
    SeqType z;  ///< LN(x), the MLP input
    SeqType d;  ///< backward scratch
    /// Attention weights of head j in sequence b (T x T; column = query, row = key).
    typename Mat<S>::ConstBlockXpr weights(Eigen::Index b, int j) const { return attn.weights(b, j); }
  };

  /// Zero weights; attention with opt.scores and score factor opt.score_scale (no q/k/v biases),
  /// LN with opt.norm, σ = opt.activation. @throws icl::InvalidArgument if opt.score_scale is not
  /// finite or opt.norm.eps is negative or not finite.
  explicit PaperBlock(const Options& opt = {})
      : attn(paper_attention_options(opt.scores, opt.score_scale)), norm(opt.norm), ff(opt.activation) {}

  Attention attn;           ///< the M heads and W^F ("self_attn." in parameter names)
  LayerNorm<S, H> norm;     ///< λ on the MLP input ("norm.")
  FeedForward<S, H, F> ff;  ///< W1, σ, W2 ("linear1.", "linear2.")

  /// W^F, the head-mixing output projection (H x M·H, columns j·H.. for head j), writable.
  typename HeapMatrix<S, H, M * H>::MapType wf() { return attn.out_proj().weight(); }
  /// b^F, the bias of W^F (H entries), writable.
  typename HeapMatrix<S, H, 1>::MapType bf() { return attn.out_proj().bias(); }
  /// W1, the first MLP weight (F x H), writable.
  typename HeapMatrix<S, F, H>::MapType w1() { return ff.linear1.weight(); }
  /// b1, the first MLP bias (F entries), writable.
  typename HeapMatrix<S, F, 1>::MapType b1() { return ff.linear1.bias(); }
  /// W2, the second MLP weight (H x F), writable.
  typename HeapMatrix<S, H, F>::MapType w2() { return ff.linear2.weight(); }
  /// b2, the second MLP bias (H entries), writable.
  typename HeapMatrix<S, H, 1>::MapType b2() { return ff.linear2.bias(); }

  /// out = block(h) for B = h.cols()/T sequences of T tokens (Eq. B1). `out` must not alias `h`.
  /// @throws icl::InvalidArgument unless T >= 1 divides h.cols().
  void forward(const In<S>& h, int T, Cache& c, Out<S> out) const {
    ICL_CHECK_ARG(T >= 1 && h.cols() % T == 0, "PaperBlock::forward: T: expected a divisor of the ", h.cols(),
                  " columns of h, got ", T);
    const Eigen::Index N = h.cols();
    c.x.resize(H, N);
    c.z.resize(H, N);
    attn.forward(h, T, c.attn, c.x);  // a
    c.x += h;                         // x = h + a
    norm.forward(c.x, c.norm, c.z);   // z = λ(x)
    ff.forward(c.z, c.ff, out);       // f = W2 σ(W1 z + b1) + b2
    out += c.x;                       // h' = x + f
  }

  /// One sequence (T = h.cols()): returns block(h). Allocates its own cache.
  SeqType forward(const SeqType& h) const {
    Cache c;
    SeqType out(H, h.cols());
    forward(h, static_cast<int>(h.cols()), c, out);
    return out;
  }

  /// Accumulates parameter gradients, writes dh (Eqs. B2-B4). `h` is forward's input.
  void backward(const In<S>& h, Cache& c, const In<S>& dout, Out<S> dh) {
    const Eigen::Index N = h.cols();
    c.d.resize(H, N);
    ff.backward(c.z, c.ff, dout, c.d);  // dz
    norm.backward(c.norm, c.d, c.d);    // dx from the MLP path
    c.d += dout;                        // dx = dout + J_λᵀ J_ffᵀ dout   (Eq. B3)
    attn.backward(h, c.attn, c.d, dh);  // J_attnᵀ dx
    dh += c.d;                          // dh = dx + J_attnᵀ dx          (Eq. B4)
  }

  /// Parameter names (prefix + ...), in this order: self_attn.in_proj_weight (3·M·H x H),
  /// self_attn.out_proj.weight (H x M·H), self_attn.out_proj.bias, linear1.weight, linear1.bias,
  /// linear2.weight, linear2.bias, and with an affine LN norm.weight, norm.bias.
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    attn.append_parameters(ps, prefix + "self_attn.");
    ff.append_parameters(ps, prefix);
    norm.append_parameters(ps, prefix + "norm.");
  }
  /// The views listed at append_parameters(), names prefixed by `prefix`.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Sets every parameter gradient of the block to zero.
  void zero_grad() {
    attn.zero_grad();
    norm.zero_grad();
    ff.zero_grad();
  }
};

}  // namespace icl::nn
