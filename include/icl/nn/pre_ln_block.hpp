/// @file
/// The pre-LN decoder block, identical to PyTorch's TransformerEncoderLayer(norm_first=True,
/// activation='gelu', dropout=0) with a causal mask: x = h + MHA(LN1(h)); h' = x + FF(LN2(x)).
/// Backward: docs/derivations/nn_blocks.md Eq. (P1)-(P4).
#pragma once

#include <Eigen/Core>
#include <algorithm>
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
  /// Sequences per tile: forward() and backward() run the batch tile by tile, each tile through
  /// the whole block, so that a tile's intermediates are still in the L2 cache when the next
  /// sub-layer reads them (docs/performance.md). 0 (default): tiles of about 640 KiB of MLP
  /// activations (F x tokens), at least 256 and F/2 tokens (PreLNBlock::tile_sequences(T)). The
  /// result depends on the tiling only through rounding (weight gradients are summed tile by tile).
  int tile_sequences = 0;
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

  /// What forward() keeps for one tile of whole sequences (PreLNBlockOptions::tile_sequences).
  struct Tile {
    /// Cache of LN1 (on the attention input).
    typename LayerNorm<S, H>::Cache norm1, norm2;  ///< cache of LN2 (on the MLP input)
    /// Attention cache of the tile; attn.weights(b, j) for the tile's b-th sequence.
    typename Attention::Cache attn;
    /// MLP cache (pre- and post-activation).
    typename FeedForward<S, H, F>::Cache ff;
    SeqType y;  ///< LN1(h), the attention input
    SeqType x;  ///< h + attention
    SeqType z;  ///< LN2(x), the MLP input
  };

  /// Everything forward() keeps for backward(), tile by tile; resized on first use only.
  struct Cache {
    std::vector<Tile> tiles;     ///< tile t holds sequences [t·tile_seqs, min(B, (t+1)·tile_seqs))
    Eigen::Index tile_seqs = 0;  ///< sequences per tile of the last forward()
    int T = 0;                   ///< tokens per sequence of the last forward()
    /// Backward scratch, dL/dx of one tile (H x tile_seqs·T).
    SeqType d1, d2;  ///< backward scratch, dL/d(LN1 h) of one tile
    /// Backward scratch of the attention and the MLP, one set for all tiles: backward() swaps it
    /// into each tile's layer caches in turn (an O(1) exchange of buffers), so the scratch is
    /// written while still in cache from the previous tile instead of once per tile across memory.
    typename Attention::Cache attn_scratch;
    typename FeedForward<S, H, F>::Cache ff_scratch;  ///< MLP part of the shared backward scratch
    /// Attention weights of head j in sequence b (T x T; column = query, row = key).
    typename Mat<S>::ConstBlockXpr weights(Eigen::Index b, int j) const {
      return tiles.at(static_cast<std::size_t>(b / tile_seqs)).attn.weights(b % tile_seqs, j);
    }
  };

  /// Zero attention and MLP weights, LN gains 1 and biases 0. @throws icl::InvalidArgument if
  /// opt.score_scale is set and not finite, opt.norm.eps is negative or not finite, or
  /// opt.tile_sequences is negative.
  explicit PreLNBlock(const Options& opt = {})
      : norm1(opt.norm),
        attn(AttentionOptions{opt.scores, opt.score_scale, true, true}),
        norm2(opt.norm),
        ff(opt.activation),
        tile_sequences_(opt.tile_sequences) {
    ICL_CHECK_ARG(opt.tile_sequences >= 0, "PreLNBlock: tile_sequences: expected >= 0 (0: automatic), got ",
                  opt.tile_sequences);
  }

  /// Sequences per tile for sequences of T tokens: PreLNBlockOptions::tile_sequences, or when that
  /// is 0, enough sequences for max(256, 640 KiB / (F·sizeof(S)), F/2) tokens (at least one). The
  /// first bound keeps a tile's MLP activations in L2; the last keeps the re-packing of the weights,
  /// which every product repeats per tile (about 3·F·H coefficients), below half of the tile's
  /// activation traffic (about 4·F per token) at large widths. Measured on a 2 MiB-L2 Xeon
  /// (docs/performance.md): the best tiles were 4-8 sequences of 79 tokens at H = 64, 4 at H = 128,
  /// 2-4 at H = 256 and 8-16 at H = 512 (float).
  Eigen::Index tile_sequences(int T) const {
    if (tile_sequences_ > 0) return tile_sequences_;
    const Eigen::Index in_l2 =
        Eigen::Index(640 * 1024) / (Eigen::Index(F) * static_cast<Eigen::Index>(sizeof(S)));
    const Eigen::Index tokens = std::max({Eigen::Index(256), in_l2, Eigen::Index(F / 2)});
    return std::max<Eigen::Index>(1, tokens / std::max(T, 1));
  }

  LayerNorm<S, H> norm1;    ///< "norm1."
  Attention attn;           ///< "self_attn."
  LayerNorm<S, H> norm2;    ///< "norm2."
  FeedForward<S, H, F> ff;  ///< "linear1.", "linear2."

  /// out = block(h) for B = h.cols()/T sequences of T tokens (Eq. P1), tile by tile. `out` must
  /// not alias `h`.
  /// @throws icl::InvalidArgument unless T >= 1 divides h.cols().
  void forward(const In<S>& h, int T, Cache& c, Out<S> out) const {
    ICL_CHECK_ARG(T >= 1 && h.cols() % T == 0, "PreLNBlock::forward: T: expected a divisor of the ", h.cols(),
                  " columns of h, got ", T);
    const Eigen::Index B = h.cols() / T;
    c.T = T;
    c.tile_seqs = tile_sequences(T);
    const Eigen::Index tiles = B == 0 ? 0 : (B + c.tile_seqs - 1) / c.tile_seqs;
    c.tiles.resize(static_cast<std::size_t>(tiles));
    for (Eigen::Index t = 0; t < tiles; ++t) {
      const Eigen::Index c0 = t * c.tile_seqs * T, nc = std::min(c.tile_seqs, B - t * c.tile_seqs) * T;
      Tile& k = c.tiles[static_cast<std::size_t>(t)];
      const auto ht = h.middleCols(c0, nc);
      auto ot = out.middleCols(c0, nc);
      k.y.resize(H, nc);
      k.z.resize(H, nc);
      norm1.forward(ht, k.norm1, k.y);
      k.x = ht;
      attn.forward_add(k.y, T, k.attn, k.x);  // x = h + MHA(LN1 h), the sum formed in place
      norm2.forward(k.x, k.norm2, k.z);
      ot = k.x;
      ff.forward_add(k.z, k.ff, ot);  // out = x + FF(LN2 x)
    }
  }

  /// One sequence (T = h.cols()). Allocates its own cache.
  SeqType forward(const SeqType& h) const {
    Cache c;
    SeqType out(H, h.cols());
    forward(h, static_cast<int>(h.cols()), c, out);
    return out;
  }

  /// Accumulates parameter gradients, writes dh (Eqs. P2-P4), tile by tile as forward() ran.
  void backward(const In<S>& h, Cache& c, const In<S>& dout, Out<S> dh) {
    const int T = c.T;
    const Eigen::Index B = h.cols() / std::max(T, 1);
    const Eigen::Index width = std::min(c.tile_seqs, B) * T;  // columns of the widest tile
    c.d1.resize(H, width);
    c.d2.resize(H, width);
    for (std::size_t t = 0; t < c.tiles.size(); ++t) {
      const Eigen::Index c0 = Eigen::Index(t) * c.tile_seqs * T;
      const Eigen::Index nc = std::min(c.tile_seqs, B - Eigen::Index(t) * c.tile_seqs) * T;
      Tile& k = c.tiles[t];
      const auto dt = dout.middleCols(c0, nc);
      auto dht = dh.middleCols(c0, nc);
      auto d1 = c.d1.leftCols(nc);
      auto d2 = c.d2.leftCols(nc);
      swap_scratch(k, c);
      ff.backward(k.z, k.ff, dt, d1);
      norm2.backward(k.norm2, d1, d1);
      d1 += dt;  // dx (Eq. P3)
      attn.backward(k.y, k.attn, d1, d2);
      norm1.backward(k.norm1, d2, dht);
      dht += d1;           // Eq. P4
      swap_scratch(k, c);  // (if a layer throws, the buffers stay exchanged: harmless, scratch only)
    }
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

 private:
  // Exchanges the backward scratch buffers of tile k's layer caches with the block's shared ones.
  static void swap_scratch(Tile& k, Cache& c) {
    k.attn.dheads.swap(c.attn_scratch.dheads);
    k.attn.dqkv.swap(c.attn_scratch.dqkv);
    k.attn.dA.swap(c.attn_scratch.dA);
    k.ff.dinner.swap(c.ff_scratch.dinner);
  }

  int tile_sequences_;  // PreLNBlockOptions::tile_sequences (0: automatic)
};

}  // namespace icl::nn
