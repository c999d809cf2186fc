/// @file
/// The in-context learner: read-in Linear(D+1 -> H), learned absolute position embedding, L
/// decoder blocks, optional final LayerNorm, read-out Linear(H -> 1) at every token.
/// Backward: docs/derivations/nn_blocks.md Eq. (M1)-(M3).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/io/model_file.hpp"
#include "icl/nn/block_stack.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/layer_norm.hpp"
#include "icl/nn/linear.hpp"
#include "icl/nn/paper_block.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/pre_ln_block.hpp"

namespace icl::nn {

/// Version of the model-file layout written by icl (docs/io.md "Model files"): io::kModelFormatVersion
/// (io/model_file.hpp, the format's home), named here too.
using io::kModelFormatVersion;

/// How a Transformer sets its parameters at construction (docs/nn.md "Initialisation").
enum class Init {
  /// init_uniform_scaling (init.hpp) with Rng(TransformerOptions::init_seed): the paper code's scheme,
  /// weight matrices U(±1/sqrt(fan_in)) as torch.nn.Linear's default, LayerNorm gains 1, biases 0
  uniform_scaling,
  /// weights, biases and the position embedding 0, LayerNorm gains 1 (what a Transformer held before
  /// icl initialised at construction; a model then filled by hand or from a file)
  zeros,
};

/// Model-level options (the block options are passed separately).
struct TransformerOptions {
  bool final_norm = false;  ///< LayerNorm before the read-out ("norm_f.")
  /// The final LayerNorm's options (affine gain/bias, eps); used only with final_norm.
  LayerNormOptions final_norm_options{true, 1e-5};
  /// The parameters at construction: initialised as a PyTorch module is (Init::uniform_scaling, the
  /// default), or zero (Init::zeros).
  Init init = Init::uniform_scaling;
  std::uint64_t init_seed = 0;  ///< seed of the construction-time initialisation (Init::uniform_scaling)
};

/// Decoder-only transformer over token sequences with D+1 features (paper §1.2, §1.3).
///
/// @tparam Block PaperBlock<S, H, M, F> or PreLNBlock<S, H, M, F>
/// @tparam D     input dimension of the regression task (tokens have D+1 rows)
/// @tparam TMax  maximum sequence length (rows of the position embedding)
///
/// Per token column t of a sequence: e_t = W_in tok_t + b_in + P[t, :]ᵀ; h = blocks(e);
/// out_t = w_outᵀ (norm_f(h_t)) + b_out. Parameters (docs/nn.md): read_in.weight (H x D+1),
/// read_in.bias (H), pos_embedding.weight (TMax x H, as torch.nn.Embedding), blocks.\<l\>.*,
/// [norm_f.weight, norm_f.bias], read_out.weight (1 x H), read_out.bias (1).
template <class Block, int D, int TMax>
class Transformer {
 public:
  /// The scalar type of the blocks.
  using Scalar = typename Block::Scalar;
  /// Short alias of Scalar.
  using S = Scalar;
  static constexpr int Hidden = Block::Hidden;  ///< H
  /// Hidden width H (same as Hidden).
  static constexpr int H = Block::Hidden;
  static constexpr int InputDim = D;       ///< D
  static constexpr int TokenRows = D + 1;  ///< rows of a token
  static constexpr int MaxLen = TMax;      ///< longest sequence
  static_assert(D >= 1, "icl::nn::Transformer: the input dimension D must be at least 1");
  static_assert(TMax >= 1, "icl::nn::Transformer: the maximum sequence length TMax must be at least 1");
  /// Hidden states, H x N (N = B·T tokens of B sequences).
  using SeqType = Seq<S, H>;
  /// Token batch: (D+1) x N, one token per column (x-tokens and y-tokens, icl::data::encode).
  using Tokens = Seq<S, D + 1>;
  /// A row of per-token outputs, 1 x N.
  using RowVec = Eigen::Matrix<S, 1, Eigen::Dynamic>;
  /// The blocks' options type (PaperBlockOptions or PreLNBlockOptions).
  using BlockOptions = typename Block::Options;

  /// Everything forward() keeps for backward() and for probing (hidden states, attention maps);
  /// resized on first use only.
  struct Cache {
    Tokens tokens;                            ///< the input batch
    typename BlockStack<Block>::Cache stack;  ///< hidden states and per-block caches
    /// Cache of the final LayerNorm (only with a final norm).
    typename LayerNorm<S, H>::Cache norm_f;
    SeqType normed;  ///< norm_f(h_L) (only with a final norm)
    RowVec out;      ///< model output at every token, 1 x N
    /// Backward scratch: dL/dh_L, the gradient at the last block's output (H x N).
    SeqType dh, dembed;  ///< the embedding e after forward(); dL/de after backward() (H x N)
    /// Tokens per sequence of the last forward().
    int T = 0;
    /// Hidden state after l blocks (0 = embedding), H x (B·T).
    const SeqType& hidden_state(int l) const { return stack.hidden_state(l); }
    /// Attention weights of block l, head j, sequence b (T x T; column = query, row = key).
    typename Mat<S>::ConstBlockXpr attention(int l, Eigen::Index b, int j) const {
      return stack.blocks.at(static_cast<std::size_t>(l)).weights(b, j);
    }
  };

  /// L blocks built from `block_options`, initialised as `opt.init` says: by default as a PyTorch module
  /// is at construction, init_uniform_scaling (init.hpp) with Rng(opt.init_seed) (seed 0), so that two
  /// models built alike are equal and a model is never silently all zero; Init::zeros for all zeros.
  explicit Transformer(int L, const BlockOptions& block_options = {}, const TransformerOptions& opt = {})
      : stack(L, block_options),
        norm_f(opt.final_norm_options),
        final_norm_(opt.final_norm),
        block_options_(block_options),
        options_(opt) {
    if (opt.init == Init::uniform_scaling) {
      Rng rng(opt.init_seed);
      init_uniform_scaling(parameters(), rng);
    }
  }

  Linear<S, D + 1, H> read_in;  ///< "read_in."
  BlockStack<Block> stack;      ///< "blocks.<l>."
  LayerNorm<S, H> norm_f;       ///< "norm_f." (used only when has_final_norm())
  Linear<S, H, 1> read_out;     ///< "read_out."

  /// Whether the final LayerNorm norm_f runs before the read-out.
  bool has_final_norm() const { return final_norm_; }
  /// Number of blocks L.
  int layers() const { return stack.layers(); }
  /// The options the model was built with.
  const BlockOptions& block_options() const { return block_options_; }
  /// The model-level options the model was built with.
  const TransformerOptions& options() const { return options_; }

  /// The architecture as model-file metadata (docs/io.md "Trained models"): model (pre_ln | paper),
  /// d, layers, hidden, heads, mlp, max_tokens, final_norm (true | false), the block options
  /// (block.*), the final norm's options, format_version and scalar. Outside tools rely on these keys.
  std::map<std::string, std::string> architecture() const {
    constexpr bool pre_ln = std::is_same_v<BlockOptions, PreLNBlockOptions>;
    const auto& bo = block_options_;
    io::ModelArchitecture a;
    a.model = pre_ln ? "pre_ln" : "paper";
    a.scalar = io::detail::scalar_name<S>();
    a.d = D;
    a.layers = layers();
    a.hidden = H;
    a.heads = Block::Heads;
    a.mlp = Block::Inner;
    a.max_tokens = TMax;
    a.final_norm = final_norm_;
    a.block.head_width = pre_ln ? H / Block::Heads : H;
    a.block.qkv_bias = pre_ln;
    a.block.scores = bo.scores == Scores::softmax ? "softmax" : "linear";
    if constexpr (pre_ln)
      a.block.score_scale =
          bo.score_scale ? *bo.score_scale : 1.0 / std::sqrt(static_cast<double>(H / Block::Heads));
    else
      a.block.score_scale = bo.score_scale;
    a.block.norm_affine = bo.norm.affine;
    a.block.norm_eps = bo.norm.eps;
    a.block.activation = to_string(bo.activation);
    std::map<std::string, std::string> md = io::architecture_metadata(a);
    md["final_norm.affine"] = options_.final_norm_options.affine ? "true" : "false";
    md["final_norm.eps"] = io::detail::number_text(options_.final_norm_options.eps);
    return md;
  }
  /// Position embedding, TMax x H (row t is added to token t), as torch.nn.Embedding(TMax, H).
  typename HeapMatrix<S, TMax, H>::MapType pos_embedding() { return pos_.map(); }
  /// Position embedding, read-only.
  typename HeapMatrix<S, TMax, H>::ConstMapType pos_embedding() const { return pos_.map(); }

  /// Runs B = tokens.cols()/T sequences of T tokens ((D+1) x (B·T)); the per-token output is
  /// c.out (1 x B·T); hidden states and attention maps stay in c.
  /// @throws InvalidArgument for a wrong token width, T outside [1, TMax], a column count that
  /// is not a multiple of T, or NaN/Inf tokens.
  void forward(const Eigen::Ref<const Mat<S>>& tokens, int T, Cache& c) const {
    ICL_CHECK_ARG(tokens.rows() == D + 1, "Transformer::forward: tokens: expected D+1 = ", D + 1,
                  " rows, got ", tokens.rows());
    ICL_CHECK_ARG(T >= 1 && T <= TMax, "Transformer::forward: T: expected a sequence length in [1, ", TMax,
                  "], got ", T);
    ICL_CHECK_ARG(tokens.cols() % T == 0, "Transformer::forward: tokens: expected a multiple of T = ", T,
                  " columns, got ", tokens.cols());
    check_finite(tokens, "Transformer::forward: tokens");
    const Eigen::Index N = tokens.cols(), B = N / T;
    c.T = T;
    c.tokens = tokens;
    c.dembed.resize(H, N);  // the embedding, kept in dembed's storage until backward
    read_in.forward(c.tokens, c.dembed);
    for (Eigen::Index b = 0; b < B; ++b) c.dembed.middleCols(b * T, T) += pos_.map().topRows(T).transpose();
    stack.forward(c.dembed, T, c.stack);
    c.out.resize(1, N);
    if (final_norm_) {
      c.normed.resize(H, N);
      norm_f.forward(c.stack.hidden.back(), c.norm_f, c.normed);
      read_out.forward(c.normed, c.out);
    } else {
      read_out.forward(c.stack.hidden.back(), c.out);
    }
  }

  /// Accumulates every parameter gradient for upstream dout = d(loss)/d(c.out) (1 x N).
  void backward(Cache& c, const In<S>& dout) {
    const Eigen::Index N = dout.cols(), T = c.T, B = N / T;
    c.dh.resize(H, N);
    c.dembed.resize(H, N);
    read_out.accumulate_grad(final_norm_ ? c.normed : c.stack.hidden.back(), dout);
    read_out.backward_input(dout, c.dh);
    if (final_norm_) norm_f.backward(c.norm_f, c.dh, c.dh);
    stack.backward(c.stack, c.dh, c.dembed);
    for (Eigen::Index b = 0; b < B; ++b) dpos_.map().topRows(T) += c.dembed.middleCols(b * T, T).transpose();
    read_in.accumulate_grad(c.tokens, c.dembed);
  }

  /// One prompt ((D+1) x T, an icl::data::encode result): the prediction at every x-token column
  /// 0, 2, 4, … in order (ceil(T/2) entries).
  ///
  /// TMax convention (docs/nn.md): a model trained on n examples sees 2n − 1 tokens
  /// [x̃1, ỹ1, …, x̃n]; built for TMax = 2n + 1 it also takes the query after n examples. A trailing
  /// y-token (even T, as encode(task) without a query ends) is dropped before the forward pass: by
  /// causality it changes no x-token output, so predict(encode(task)) works with TMax = 2n − 1.
  /// @throws InvalidArgument naming the TMax to build for when the prompt is longer than that.
  template <class Derived>
  Vec<S> predict(const Eigen::MatrixBase<Derived>& tokens) const {
    ICL_CHECK_ARG(tokens.rows() == D + 1, "Transformer::predict: tokens: expected D+1 = ", D + 1,
                  " rows, got ", tokens.rows());
    ICL_CHECK_ARG(tokens.cols() >= 1, "Transformer::predict: tokens: expected at least one token, got 0");
    const Eigen::Index T = tokens.cols() % 2 == 0 ? tokens.cols() - 1 : tokens.cols();  // x-token last
    ICL_CHECK_ARG(T <= TMax, "Transformer::predict: tokens: ", tokens.cols(), " tokens (", (T + 1) / 2,
                  " x-tokens) need a model built for TMax >= ", T, ", this one has TMax = ", TMax,
                  " (n examples and a query: TMax = 2n + 1; n examples only: 2n − 1)");
    const Mat<S> tok = tokens.leftCols(T).template cast<S>();
    Cache c;
    forward(tok, static_cast<int>(tok.cols()), c);
    Vec<S> p((tok.cols() + 1) / 2);
    for (Eigen::Index i = 0; i < p.size(); ++i) p(i) = c.out(2 * i);
    return p;
  }

  /// B = tokens.cols()/T prompts of T tokens side by side ((D+1) x (B·T)) in one forward pass:
  /// ceil(T/2) x B, column b the predictions at prompt b's x-token columns (predict() per prompt).
  template <class Derived>
  Mat<S> predict_batch(const Eigen::MatrixBase<Derived>& tokens, int T) const {
    ICL_CHECK_ARG(tokens.rows() == D + 1, "Transformer::predict_batch: tokens: expected D+1 = ", D + 1,
                  " rows, got ", tokens.rows());
    const Mat<S> tok = tokens.template cast<S>();
    Cache c;
    forward(tok, T, c);
    const Eigen::Index B = tok.cols() / T, P = (T + 1) / 2;
    Mat<S> p(P, B);
    for (Eigen::Index b = 0; b < B; ++b)
      for (Eigen::Index i = 0; i < P; ++i) p(i, b) = c.out(b * T + 2 * i);
    return p;
  }

  /// Appends every parameter view in the order of the class description, names prefixed by `prefix`.
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix = "") {
    read_in.append_parameters(ps, prefix + "read_in.");
    ps.push_back({prefix + "pos_embedding.weight", TMax, H, pos_.data(), dpos_.data()});
    stack.append_parameters(ps, prefix + "blocks.");
    if (final_norm_) norm_f.append_parameters(ps, prefix + "norm_f.");
    read_out.append_parameters(ps, prefix + "read_out.");
  }
  /// All parameter views (see the class description for names and shapes).
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Sets every parameter gradient (including the position embedding's) to zero.
  void zero_grad() {
    read_in.zero_grad();
    dpos_.map().setZero();
    stack.zero_grad();
    norm_f.zero_grad();
    read_out.zero_grad();
  }

 private:
  bool final_norm_;
  BlockOptions block_options_;
  TransformerOptions options_;
  HeapMatrix<S, TMax, H> pos_, dpos_;
};

/// The pre-LN model (PyTorch TransformerEncoderLayer(norm_first=True) blocks).
template <class S, int D, int H, int M, int F, int TMax>
using PreLNTransformer = Transformer<PreLNBlock<S, H, M, F>, D, TMax>;
/// The paper's model (paper blocks).
template <class S, int D, int H, int M, int F, int TMax>
using PaperTransformer = Transformer<PaperBlock<S, H, M, F>, D, TMax>;

}  // namespace icl::nn
