/// @file
/// A stack of L decoder blocks (L chosen at run time) run on an H x N state holding B sequences
/// of T tokens; keeps every layer's hidden state for backward and for probing.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// L blocks of one type applied in order: h_{l+1} = block_l(h_l).
///
/// `Block` is PaperBlock<S, H, M, F> or PreLNBlock<S, H, M, F> (anything with Scalar, Hidden,
/// Cache, forward(h, T, cache, out), backward(h, cache, dout, dh), append_parameters, zero_grad).
template <class Block>
class BlockStack {
 public:
  /// The scalar type of the blocks.
  using Scalar = typename Block::Scalar;
  /// Short alias of Scalar.
  using S = Scalar;
  static constexpr int H = Block::Hidden;  ///< hidden width
  /// A state (or batch of sequences) of H-feature tokens, H x N.
  using SeqType = Seq<S, H>;

  /// Everything forward() keeps: the L + 1 hidden states and each block's cache; resized on first
  /// use only, so one Cache can be reused across batches of the same shape.
  struct Cache {
    /// Per-block caches (blocks[l].weights(b, j): block l's T x T attention, head j, sequence b).
    std::vector<typename Block::Cache> blocks;
    std::vector<SeqType> hidden;  ///< hidden[0] = input, hidden[l+1] = output of block l
    /// Backward scratch, H x N.
    SeqType dscratch;
    /// Tokens per sequence of the last forward().
    int T = 0;
    /// Hidden state after l blocks (l = 0: the input), H x N.
    const SeqType& hidden_state(int l) const { return hidden.at(static_cast<std::size_t>(l)); }
  };

  BlockStack() = default;
  /// L blocks, each constructed from `opt`. @throws icl::InvalidArgument if L < 0.
  template <class Options>
  BlockStack(int L, const Options& opt) {
    ICL_CHECK_ARG(L >= 0, "BlockStack: L: expected >= 0, got ", L);
    blocks.reserve(static_cast<std::size_t>(L));
    for (int l = 0; l < L; ++l) blocks.emplace_back(opt);
  }
  /// L blocks with default options (Block::Options{}). @throws icl::InvalidArgument if L < 0.
  explicit BlockStack(int L) : BlockStack(L, typename Block::Options{}) {}

  std::vector<Block> blocks;  ///< the layers, in order; push/erase freely before running

  /// Number of blocks L (blocks.size()).
  int layers() const { return static_cast<int>(blocks.size()); }

  /// Runs all blocks on `in` (B = in.cols()/T sequences); the result is c.hidden.back().
  /// @throws icl::InvalidArgument unless T >= 1 divides in.cols().
  void forward(const In<S>& in, int T, Cache& c) const {
    ICL_CHECK_ARG(T >= 1 && in.cols() % T == 0, "BlockStack::forward: T: expected a divisor of the ",
                  in.cols(), " columns, got ", T);
    const std::size_t L = blocks.size();
    c.T = T;
    c.blocks.resize(L);
    c.hidden.resize(L + 1);
    c.hidden[0] = in;
    for (std::size_t l = 0; l < L; ++l) {
      c.hidden[l + 1].resize(H, in.cols());
      blocks[l].forward(c.hidden[l], T, c.blocks[l], c.hidden[l + 1]);
    }
  }

  /// One sequence: returns the state after all blocks. Allocates its own cache.
  SeqType forward(const SeqType& in) const {
    Cache c;
    forward(in, static_cast<int>(in.cols()), c);
    return c.hidden.back();
  }

  /// Accumulates every block's parameter gradients; writes d(loss)/d(input) into din.
  void backward(Cache& c, const In<S>& dout, Out<S> din) {
    const std::size_t L = blocks.size();
    din = dout;
    c.dscratch.resize(H, dout.cols());
    for (std::size_t l = L; l-- > 0;) {
      blocks[l].backward(c.hidden[l], c.blocks[l], din, c.dscratch);
      din = c.dscratch;
    }
  }

  /// Block l's parameters are named "<prefix><l>.<block name>", e.g. "blocks.0.linear1.weight".
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    for (std::size_t l = 0; l < blocks.size(); ++l)
      blocks[l].append_parameters(ps, prefix + std::to_string(l) + ".");
  }
  /// All blocks' parameter views, block l named "<prefix><l>.<block name>" (default prefix "blocks.").
  std::vector<ParamView<S>> parameters(const std::string& prefix = "blocks.") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Sets every block's parameter gradients to zero.
  void zero_grad() {
    for (auto& b : blocks) b.zero_grad();
  }
};

}  // namespace icl::nn
