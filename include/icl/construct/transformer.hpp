/// @file
/// Constructed transformers: gd_transformer<S, D> (one-pass SGD) and ridge_transformer<S, D> (online
/// ridge, Sherman–Morrison), and ConstructedTransformer, the realised model of paper blocks behind them.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "icl/construct/chains.hpp"
#include "icl/construct/detail/block_adapter.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn/transformer.hpp"

namespace icl::construct {

/// Which online-ridge chain ridge_transformer builds: the Sherman–Morrison moment form of the recipe
/// (state A⁻¹ and b = Xᵀy, prediction xᵀA⁻¹b; 9n+5 layers) or the w-form / recursive least squares
/// (state A⁻¹ and w; 12n+4 layers; docs/constructions.md §4.4). Same rows, same model type.
enum class RidgeForm { moment, w };

/// Build options of the constructed transformers.
struct TransformerOptions {
  std::optional<Constants> constants;        ///< default: Constants::defaults<S>()
  bool calibrate = true;                     ///< calibrate operand hints on sampled tasks (§4.5)
  int calibration_draws = 16;                ///< tasks used for the calibration
  std::uint64_t seed = 0x1c1;                ///< RNG seed of the calibration draws
  data::TaskDistribution distribution{0};    ///< task distribution of the calibration (n is overridden)
  RidgeForm ridge_form = RidgeForm::moment;  ///< ridge_transformer only
  /// The calibrated range (docs/constructions.md §2.8): predict refuses a prompt on which some mul's
  /// operand exceeds range_margin × the operand hint it was built with (the max over the calibration
  /// draws). Default: default_range_margin<S>() (float 2, double and long double 8: within it the
  /// measured error stays within about 10x of the error inside the calibrated magnitudes). > 0;
  /// infinity disables the check.
  std::optional<double> range_margin;
};

/// The default TransformerOptions::range_margin of scalar type S (docs/constructions.md §2.8, Table R):
/// 2 for float (its GeLU products use N = 3, so they have little headroom: float ridge at d = 4, n = 10
/// has max relative error 9e-4 inside the hints, 9e-3 at 1.5-2x, 0.14 at 2-3x), 8 for double and long
/// double (N = 500 / 600: double ridge 2.7e-10 inside, 3.6e-9 at 6-8x; SGD 7.7e-12 and 1.7e-11).
template <class S>
constexpr double default_range_margin() {
  return sizeof(S) <= 4 ? 2.0 : 8.0;
}

/// How a constructed model evaluates its paper blocks. Both give the same function (docs/constructions.md
/// §6; tests/construct/test_narrow.cpp compares them): `narrow` runs nn::NarrowPaperBlock (2 query/key
/// rows, identity values, sparse W^F and MLP, no per-layer allocation), `full` the nn::PaperBlock forward
/// with its H x H query, key and value maps (the reference). Files store the full layout either way.
enum class BlockForm { narrow, full };

/// Realised widths of the four chains (docs/constructions.md §5), for K <= 3.
template <int D>
struct ChainWidths {
  static constexpr int sgd_height = 10 + 5 * D;  ///< 4+5d data rows + ONE, RHO1, RHO2, PADP, PADM, ZERO
  static constexpr int sgd_mlp = 9 * D;          ///< 3 units · d pairs · 3 levels
  /// 3+6d+4d² data rows (both ridge forms) + the same 6 extra rows as SGD.
  static constexpr int ridge_height = 9 + 6 * D + 4 * D * D;
  /// K = 3 levels × (2d² + d) units of the widest mul (K·(distinct sums + distinct operand rows), §2.5).
  static constexpr int ridge_mlp = 3 * (2 * D * D + D);
  static constexpr int thm1_height = 11 + 4 * D;  ///< 3+4d data rows + the 6 extra rows + 2 TAU rows
  static constexpr int thm1_mlp = 9 * D;          ///< 3 units · d pairs · 3 levels, as for SGD
  /// 3+5d+3d² data rows + the 6 extra rows + 2 TAU rows + d scratch rows.
  static constexpr int thm2_height = 11 + 6 * D + 3 * D * D;
  static constexpr int thm2_mlp = 3 * (2 * D * D + D);  ///< as ridge_mlp
};

/// A realised program compiled into an ordinary stack of paper decoder blocks with H rows, 2 heads and MLP
/// width F (layers that realise the same op share weights). H and F are compile-time (as in every icl
/// model); realised_layout(program, T).height and realise(...).mlp_width give the values to use.
template <class S, int H, int F>
class CompiledProgram {
 public:
  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;  ///< data state, H_d x T
  using SeqType = Eigen::Matrix<S, H, Eigen::Dynamic>;              ///< realised state, H x T (or H x B*T)

  /// Builds the blocks from `realisation`. @throws icl::InvalidArgument if its height is not H or its MLP
  /// width exceeds F.
  explicit CompiledProgram(Realisation<S> realisation) : real_(std::move(realisation)) {
    ICL_CHECK_ARG(real_.layout.height == H, "CompiledProgram: the realised program has ", real_.layout.height,
                  " rows, the model type has H = ", H);
    ICL_CHECK_ARG(real_.mlp_width <= F, "CompiledProgram: the realised program needs an MLP width of ",
                  real_.mlp_width, ", the model type has F = ", F);
    for (const auto& b : real_.blocks) blocks_.emplace_back(b, real_.constants.ln_eps);
  }

  /// Workspace of the narrow forward, reused across layers and across calls: forward(h, T, ws) allocates
  /// nothing once ws has served a call of the same size. The narrow forward runs the sequences of a batch
  /// through the whole stack in chunks of about `chunk_columns` columns, so that the states and the blocks'
  /// buffers (H x chunk each) stay in cache: batching saves no work in the narrow form (no weight is
  /// reused across columns the way a GEMM reuses it), it only has to keep locality.
  struct Workspace {
    typename detail::Block<S, H, F>::NarrowBlock::Workspace block;  ///< shared by every layer
    SeqType state[2];                                               ///< a chunk's current and next state
    SeqType result;                                                 ///< the final states of the batch
    int chunk_columns = 128;  ///< columns per chunk (whole sequences; at least one sequence)
  };

  /// B = h.cols()/T sequences of T columns side by side (embed() outputs, H x (B·T)) through the stack at
  /// once; every layer's hidden state: states[0] = h, states[l] = after l layers (layers() + 1 entries).
  /// `form` picks the evaluation of each block (BlockForm::narrow, the default, or the full PaperBlock).
  std::vector<SeqType> forward_all(const SeqType& h, int T, BlockForm form = BlockForm::narrow) const {
    check_batch(h, T, "CompiledProgram::forward_all");
    std::vector<SeqType> states;
    states.reserve(real_.schedule.size() + 1);
    states.push_back(h);
    if (form == BlockForm::narrow) {
      Workspace ws;
      for (std::size_t l = 0; l < real_.schedule.size(); ++l) states.emplace_back(H, h.cols());
      const Eigen::Index C = chunk_sequences(T, ws);
      for (Eigen::Index c0 = 0; c0 < h.cols(); c0 += C * T) {
        const Eigen::Index cols = std::min<Eigen::Index>(C * T, h.cols() - c0);
        for (std::size_t l = 0; l < real_.schedule.size(); ++l) {
          auto out = states[l + 1].middleCols(c0, cols);
          blocks_[static_cast<std::size_t>(real_.schedule[l])].narrow_block().forward(
              states[l].middleCols(c0, cols), T, ws.block, out);
        }
      }
      return states;
    }
    typename detail::Block<S, H, F>::PaperBlock::Cache cache;
    for (int b : real_.schedule) {
      SeqType out(H, h.cols());
      blocks_[static_cast<std::size_t>(b)].paper_block().forward(states.back(), T, cache, out);
      states.push_back(std::move(out));
    }
    return states;
  }
  /// The final state of B = h.cols()/T sequences of T columns run at once (equals forward() per sequence).
  SeqType forward(const SeqType& h, int T, BlockForm form = BlockForm::narrow) const {
    check_batch(h, T, "CompiledProgram::forward");
    if (form == BlockForm::narrow) {
      Workspace ws;
      forward(h, T, ws);
      return std::move(ws.result);
    }
    typename detail::Block<S, H, F>::PaperBlock::Cache cache;
    SeqType cur = h, out(H, h.cols());
    for (int b : real_.schedule) {
      blocks_[static_cast<std::size_t>(b)].paper_block().forward(cur, T, cache, out);
      cur.swap(out);
    }
    return cur;
  }
  /// The narrow forward into a caller-kept workspace: the final state of B = h.cols()/T sequences, held in
  /// `ws` (ws.result, valid until its next use). No heap allocation per layer; none at all once `ws` is
  /// warm (the blocks' buffers only grow).
  const SeqType& forward(const SeqType& h, int T, Workspace& ws) const {
    check_batch(h, T, "CompiledProgram::forward");
    const Eigen::Index N = h.cols(), C = chunk_sequences(T, ws), L = layers();
    if (ws.result.cols() != N) ws.result.resize(H, N);
    for (SeqType& st : ws.state)
      if (st.cols() != std::min(N, C * T)) st.resize(H, std::min(N, C * T));
    for (Eigen::Index c0 = 0; c0 < N; c0 += C * T) {
      const Eigen::Index cols = std::min(C * T, N - c0);
      const auto in = h.middleCols(c0, cols);
      auto result = ws.result.middleCols(c0, cols);
      if (L == 0) result = in;
      for (Eigen::Index l = 0; l < L; ++l) {  // chunk: in -> state[0] -> state[1] -> ... -> result
        auto out = ws.state[l % 2].leftCols(cols);
        const auto& blk = blocks_[static_cast<std::size_t>(real_.schedule[static_cast<std::size_t>(l)])];
        if (l + 1 == L) {
          if (l == 0)
            blk.narrow_block().forward(in, T, ws.block, result);
          else
            blk.narrow_block().forward(ws.state[(l - 1) % 2].leftCols(cols), T, ws.block, result);
        } else if (l == 0) {
          blk.narrow_block().forward(in, T, ws.block, out);
        } else {
          blk.narrow_block().forward(ws.state[(l - 1) % 2].leftCols(cols), T, ws.block, out);
        }
      }
    }
    return ws.result;
  }
  /// Number of layers (the schedule's length).
  int layers() const { return static_cast<int>(real_.schedule.size()); }

  /// Runs the stack of blocks on one realised state (embed() output; T = h.cols()).
  SeqType forward(const SeqType& h, BlockForm form = BlockForm::narrow) const {
    return forward(h, static_cast<int>(h.cols()), form);
  }
  /// Realised counterpart of Program::run: data state (H_d x T) in, data rows of the final state out.
  Matrix run(const Matrix& data_state) const {
    ICL_CHECK_ARG(data_state.rows() == real_.layout.data_rows, "CompiledProgram::run: state has ",
                  data_state.rows(), " rows, expected ", real_.layout.data_rows);
    const SeqType h = forward(real_.embed(data_state));
    return h.topRows(real_.layout.data_rows);
  }
  /// Realised resources: layers, residual width H_T, MLP width needed (<= F), 2 heads.
  Resources resources() const { return real_.resources(); }
  /// The realisation the blocks were built from (layout, distinct blocks, schedule, constants).
  const Realisation<S>& realisation() const { return real_; }

  /// Whole sequences per chunk of the narrow forward (at least 1).
  static Eigen::Index chunk_sequences(int T, const Workspace& ws) {
    return std::max<Eigen::Index>(1, ws.chunk_columns / T);
  }
  /// @throws icl::InvalidArgument (message prefixed by `fn`) unless T >= 1 divides h.cols().
  static void check_batch(const SeqType& h, int T, const char* fn) {
    ICL_CHECK_ARG(T >= 1 && h.cols() % T == 0, fn, ": T: expected a sequence length >= 1 dividing the ",
                  h.cols(), " columns, got ", T);
  }

  /// The model as safetensors: the distinct blocks under "blocks.<b>." with the paper block's parameter
  /// names (docs/nn.md: self_attn.in_proj_weight, self_attn.out_proj.weight/bias, linear1.*, linear2.*),
  /// "schedule" (layer l runs block schedule[l]) and the layout and constants as metadata.
  io::SafeTensors to_safetensors() const {
    io::SafeTensors st;
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      for (const auto& p : blocks_[b].parameters("blocks." + std::to_string(b) + ".")) {
        if (p.cols == 1)
          st.put(p.name, Eigen::Matrix<S, Eigen::Dynamic, 1>(p.value_map()));
        else
          st.put(p.name, p.value_map());
      }
    st.put_nd("schedule", {static_cast<std::int64_t>(real_.schedule.size())}, real_.schedule, io::DType::I64);
    if (!real_.hints.empty()) {  // the calibrated range (docs/constructions.md §2.8): (s1, s2) per op
      Eigen::MatrixXd hints(static_cast<Eigen::Index>(real_.hints.size()), 2);
      for (std::size_t i = 0; i < real_.hints.size(); ++i)
        hints.row(static_cast<Eigen::Index>(i)) << real_.hints[i].s1, real_.hints[i].s2;
      st.put("operand_hints", hints, io::DType::F64);
    }
    const auto& L = real_.layout;
    const auto& k = real_.constants;
    auto num = [](double v) { return io::detail::number_text(v); };
    st.metadata = {{"format", "icl.construct"},
                   {"format_version", std::to_string(nn::kModelFormatVersion)},
                   {"scalar", io::detail::scalar_name<S>()},
                   {"stored_dtype", io::dtype_name(io::dtype_of<S>())},
                   {"realised_mlp_width", std::to_string(real_.mlp_width)},
                   {"height", std::to_string(L.height)},
                   {"row_scr0", std::to_string(L.scr0)},
                   {"n_scr", std::to_string(L.n_scr)},
                   {"n_tables", std::to_string(L.tables.size())},
                   {"hidden", std::to_string(H)},
                   {"mlp_width", std::to_string(F)},
                   {"heads", "2"},
                   {"layers", std::to_string(real_.schedule.size())},
                   {"max_columns", std::to_string(L.max_columns)},
                   {"data_rows", std::to_string(L.data_rows)},
                   {"row_one", std::to_string(L.one)},
                   {"row_rho1", std::to_string(L.rho1)},
                   {"row_rho2", std::to_string(L.rho2)},
                   {"row_tau0", std::to_string(L.tau0)},
                   {"row_pad_p", std::to_string(L.pad_p)},
                   {"row_pad_m", std::to_string(L.pad_m)},
                   {"row_zero", std::to_string(L.zero)},
                   {"gamma", num(k.gamma)},
                   {"N", num(k.N)},
                   {"K", std::to_string(k.K)},
                   {"P", num(k.P)},
                   {"M", num(k.M)},
                   {"ln_eps", num(k.ln_eps)}};
    for (std::size_t t = 0; t < L.tables.size(); ++t) {  // the table maps: (target, source) column pairs
      std::vector<std::int64_t> pairs;
      for (const auto& [tg, src] : L.tables[t].entries()) {
        pairs.push_back(tg);
        pairs.push_back(src);
      }
      st.put_nd("embed.table." + std::to_string(t), {static_cast<std::int64_t>(pairs.size() / 2), 2}, pairs,
                io::DType::I64);
    }
    return st;
  }
  /// Writes to_safetensors() to `path` (icl::IoError on failure).
  void save(const std::string& path) const { to_safetensors().save(path); }

 private:
  Realisation<S> real_;
  std::vector<detail::Block<S, H, F>> blocks_;
};

/// Realises `program` (one paper block per op) and compiles it into a CompiledProgram<S, H, F>.
template <class S, int H, int F>
CompiledProgram<S, H, F> compile(const Program<S>& program, int max_columns,
                                 const Constants& constants = Constants::defaults<S>(),
                                 const std::vector<OperandHint>& hints = {}) {
  return CompiledProgram<S, H, F>(realise(program, max_columns, constants, hints));
}

/// What a constructed model was built from; saved with it so that load() can rebuild the exact program
/// (the interpreter behind predict_exact and chain()) next to the stored weights.
struct ChainSpec {
  std::string kind;       ///< "sgd", "ridge", "ridge_w", "theorem1", "theorem2"; "" = a custom chain
  int d = 0;              ///< input dimension
  int n = 0;              ///< examples the chain was built for (1 for Theorems 1 and 2)
  double lr = 0;          ///< SGD / Theorem 1 step size α
  double lambda = 0;      ///< ridge λ (or the weight decay of SGD / Theorem 1)
  std::vector<double> w;  ///< Theorem 1's w (d entries)
  /// The calibrated range: predict refuses a prompt on which a mul operand exceeds range_margin × its
  /// operand hint (Realisation::hints; TransformerOptions::range_margin). 0 (or any value not > 0):
  /// the scalar type's default_range_margin, set by the ConstructedTransformer constructor.
  double range_margin = 0;
  /// Where the operand hints came from (printed by the range error), e.g. "16 tasks of
  /// TaskDistribution{x_std = 1, w_std = 1, noise_std = 0, w_mean = 0}, seed 449".
  std::string calibration = "operand hints given to realise()";
};

/// A realised chain: an ordinary stack of paper decoder blocks (H rows, 2 heads, MLP width F; layers that
/// realise the same op share weights), with fixed position rows in the embedding and the prediction read
/// from one row at the x-token columns. predict(encode(task, x_query)) gives one prediction per x-token.
template <class S, int D, int H, int F>
class ConstructedTransformer {
 public:
  using Scalar = S;                                     ///< the scalar type
  using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;   ///< predictions, one per x-token
  using Tokens = data::Tokens<S, D>;                    ///< token matrix, (D+1) x T (data::encode)
  using SeqType = Eigen::Matrix<S, H, Eigen::Dynamic>;  ///< hidden state, H x T (or H x (B·T))

  /// Wraps a chain and its realisation; `spec` records the build parameters that save() writes and load()
  /// uses to rebuild the chain. @throws icl::InvalidArgument if the realisation does not fit H and F.
  ConstructedTransformer(Chain<S> chain, Realisation<S> realisation, ChainSpec spec = {})
      : chain_(std::move(chain)), model_(std::move(realisation)), spec_(std::move(spec)) {
    if (!(spec_.range_margin > 0)) spec_.range_margin = default_range_margin<S>();
  }

  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;  ///< batched predictions
  /// Layers of the realised stack.
  int layers() const { return model_.layers(); }
  /// B = tokens.cols()/T prompts of T tokens side by side ((D+1) x (B·T)): their realised input states
  /// side by side (H x (B·T)). Checks the width, T and the values as embed() does.
  template <class Derived>
  SeqType embed_batch(const Eigen::MatrixBase<Derived>& tokens, int T) const {
    ICL_CHECK_ARG(T >= 1 && tokens.cols() >= T && tokens.cols() % T == 0, chain_.name,
                  " transformer: T: expected a prompt length >= 1 dividing the ", tokens.cols(),
                  " token columns, got ", T);
    const Eigen::Index B = tokens.cols() / T;
    SeqType h(H, tokens.cols());
    for (Eigen::Index b = 0; b < B; ++b) h.middleCols(b * T, T) = embed(tokens.middleCols(b * T, T));
    return h;
  }
  /// Every layer's hidden state of B prompts of T tokens run at once (for probing): layers() + 1 matrices
  /// H x (B·T), [0] the embedding, [l] the state after l layers. `form`: see BlockForm.
  /// @throws icl::InvalidArgument as embed_batch, or for a prompt outside the calibrated range
  ///         (check_range; model().forward_all(embed_batch(tokens, T), T) runs unchecked).
  template <class Derived>
  std::vector<SeqType> hidden_states(const Eigen::MatrixBase<Derived>& tokens, int T,
                                     BlockForm form = BlockForm::narrow) const {
    SeqType h = embed_batch(tokens, T);
    for (Eigen::Index c0 = 0; c0 < tokens.cols(); c0 += T) check_range(tokens.middleCols(c0, T));
    return model_.forward_all(h, T, form);
  }
  /// Predictions of B prompts of T tokens run at once: ceil(T/2) x B, column b the predictions at prompt
  /// b's x-tokens (for the n = 1 chains with a fixed read-out column: 1 x B). Equals predict() per prompt.
  /// `form`: see BlockForm (the narrow default is the fast one; full is the reference).
  /// @throws icl::InvalidArgument as embed_batch, or for a prompt outside the calibrated range (check_range).
  template <class Derived>
  Matrix predict_batch(const Eigen::MatrixBase<Derived>& tokens, int T,
                       BlockForm form = BlockForm::narrow) const {
    SeqType h = embed_batch(tokens, T);
    for (Eigen::Index c0 = 0; c0 < tokens.cols(); c0 += T) check_range(tokens.middleCols(c0, T));
    return read_batch(model_.forward(h, T, form), T);
  }
  /// predict_batch without the range check: prompts outside the calibrated range get predictions whose
  /// error grows as docs/constructions.md §2.8 states (range_ratio^{2K} times the in-range error, then
  /// unbounded). The width, length and finiteness checks stay.
  template <class Derived>
  Matrix predict_batch_unchecked(const Eigen::MatrixBase<Derived>& tokens, int T,
                                 BlockForm form = BlockForm::narrow) const {
    return read_batch(model_.forward(embed_batch(tokens, T), T, form), T);
  }

  /// Longest input (tokens) and most examples the model was built for.
  int max_tokens() const { return model_.realisation().layout.max_columns; }
  /// max_tokens() / 2: the n_examples the model was built for (the query is the extra token).
  int max_examples() const { return max_tokens() / 2; }

  /// The realised input state of a token matrix: checks the width and the length.
  template <class Derived>
  SeqType embed(const Eigen::MatrixBase<Derived>& tokens) const {
    ICL_CHECK_ARG(tokens.rows() == D + 1, chain_.name, " transformer: tokens: expected D+1 = ", D + 1,
                  " rows (token width), got ", tokens.rows());
    ICL_CHECK_ARG(tokens.cols() >= 1 && tokens.cols() <= max_tokens(), chain_.name,
                  " transformer: built for at most ", max_examples(), " examples (", max_tokens(),
                  " tokens), got ", tokens.cols(), " tokens");
    check_finite(tokens, "ConstructedTransformer: tokens");
    return model_.realisation().embed(tokens);
  }

  /// How far one prompt ((D+1) x T, checked as embed() does) drives the realised multiplications beyond
  /// the magnitudes they were calibrated for: the max over every mul op and both operands of
  /// max |operand entry| / operand hint, computed by the exact interpreter (a few % of predict's cost).
  /// 0 for a program without mul; infinity when no hints are known (a file without operand_hints).
  template <class Derived>
  double range_ratio(const Eigen::MatrixBase<Derived>& tokens) const {
    (void)embed(tokens);
    return scan_range(tokens, std::numeric_limits<double>::infinity()).ratio;
  }
  /// @throws icl::InvalidArgument naming the op, its operands' magnitudes, the calibrated limits and the
  ///         calibration, unless range_ratio(tokens) <= spec().range_margin (docs/constructions.md §2.8).
  template <class Derived>
  void check_range(const Eigen::MatrixBase<Derived>& tokens) const {
    (void)embed(tokens);
    const RangeScan r = scan_range(tokens, spec_.range_margin);
    if (r.ratio <= spec_.range_margin) return;
    if (r.unknown)
      icl::detail::raise<InvalidArgument>(
          chain_.name,
          " transformer: the calibrated range is unknown (the model file has no operand_hints); "
          "rebuild the model, or call predict_unchecked (docs/constructions.md §2.8)");
    const auto& op = chain_.program.ops()[static_cast<std::size_t>(r.op)];
    const OperandHint& hint = model_.realisation().hints[static_cast<std::size_t>(r.op)];
    icl::detail::raise<InvalidArgument>(
        chain_.name, " transformer: input outside the calibrated range: op ", r.op + 1, " (mul, '",
        op.meaning, "') has operands up to ", r.a1, " and ", r.a2, ", ", r.op_ratio,
        " times the magnitudes it was calibrated for (", hint.s1, " and ", hint.s2, ", from ",
        spec_.calibration, "); accepted up to range_margin = ", spec_.range_margin,
        " times. Rescale the inputs to the calibrated scale, build the model for a wider range "
        "(TransformerOptions::distribution covering these inputs, e.g. x_std = their scale; ridge then "
        "loses accuracy as the scale grows) or call predict_unchecked (error bounds: docs/constructions.md "
        "§2.8)");
  }

  /// The final hidden state (H x T) of the stack of paper blocks (`form`: see BlockForm).
  /// @throws icl::InvalidArgument as embed(), or for a prompt outside the calibrated range (check_range).
  template <class Derived>
  SeqType forward(const Eigen::MatrixBase<Derived>& tokens, BlockForm form = BlockForm::narrow) const {
    SeqType h = embed(tokens);
    check_range(tokens);
    return model_.forward(h, form);
  }

  /// One prediction per x-token column (in order), read at the chain's output row.
  /// `form`: see BlockForm (BlockForm::full runs the reference PaperBlock forward).
  /// @throws icl::InvalidArgument for a wrong width, too many tokens, NaN/Inf, or a prompt outside the
  ///         range the model was calibrated for (check_range: some mul operand above range_margin × its
  ///         calibrated magnitude; the message names the op and how to build for a wider range).
  template <class Derived>
  Vector predict(const Eigen::MatrixBase<Derived>& tokens, BlockForm form = BlockForm::narrow) const {
    return read(forward(tokens, form));
  }
  /// predict without the range check (docs/constructions.md §2.8 gives the error outside the range:
  /// about range_ratio(tokens)^{2K} times the in-range error while that is small, then unbounded).
  template <class Derived>
  Vector predict_unchecked(const Eigen::MatrixBase<Derived>& tokens,
                           BlockForm form = BlockForm::narrow) const {
    return read(model_.forward(embed(tokens), form));
  }

  /// The same prediction by the exact interpreter of the program (no transformer; no range check: the
  /// exact program has no calibrated range).
  template <class Derived>
  Vector predict_exact(const Eigen::MatrixBase<Derived>& tokens) const {
    (void)embed(tokens);  // same checks
    return read(chain_.program.run(chain_.program.embed(tokens)));
  }

  /// Realised resources: layers, residual width H_T, MLP width, 2 heads.
  Resources resources() const { return model_.resources(); }
  /// The exact program and its readout (chain().program.table() prints it like the paper's appendix).
  const Chain<S>& chain() const { return chain_; }
  /// The realisation: layout with the extra rows, distinct blocks, layer schedule, constants.
  const Realisation<S>& realisation() const { return model_.realisation(); }
  /// The underlying stack of paper blocks (runs realised states; no token checks).
  const CompiledProgram<S, H, F>& model() const { return model_; }
  /// The chain's build parameters (kind "" for a model built from a custom chain).
  const ChainSpec& spec() const { return spec_; }

  /// The self-describing model file (docs/io.md "Constructed models", format_version 1): model().
  /// to_safetensors() (the distinct paper blocks, the I64 schedule, layout and constants, the table
  /// maps) plus the architecture keys (model = constructed, d, layers, hidden, heads, mlp, max_tokens,
  /// final_norm), the block semantics (block.*), the chain (chain.*), the readout row and column
  /// (readout.*), the embedding recipe (embed.*; the tensor embed.position, max_tokens x H, holds the
  /// position rows added to column c) and the scalar (long double is stored as F64).
  io::SafeTensors to_safetensors() const {
    io::SafeTensors st = model_.to_safetensors();
    const auto& L = model_.realisation().layout;
    auto num = [](double v) { return io::detail::number_text(v); };
    const std::map<std::string, std::string> more = {
        {"format", "icl.constructed"},
        {"model", "constructed"},
        {"d", std::to_string(D)},
        {"mlp", std::to_string(F)},
        {"max_tokens", std::to_string(L.max_columns)},
        {"final_norm", "false"},
        {"block.head_width", std::to_string(H)},
        {"block.qkv_bias", "false"},
        {"block.scores", "softmax"},
        {"block.score_scale", "1"},
        {"block.norm_affine", "false"},
        {"block.norm_eps", num(model_.realisation().constants.ln_eps)},
        {"block.activation", "gelu_erf"},
        {"block.in_proj_layout", "[Wq_1; Wq_2; Wk_1; Wk_2; Wv_1; Wv_2], each H x H, no bias"},
        {"chain.kind", spec_.kind.empty() ? "custom" : spec_.kind},
        {"chain.name", chain_.name},
        {"chain.d", std::to_string(spec_.d)},
        {"chain.n", std::to_string(spec_.n)},
        {"chain.lr", num(spec_.lr)},
        {"chain.lambda", num(spec_.lambda)},
        {"range.margin", num(spec_.range_margin)},
        {"range.calibration", spec_.calibration},
        {"readout.row", std::to_string(chain_.readout.row)},
        {"readout.column", std::to_string(chain_.readout.column)},
        {"embed.token_rows", std::to_string(D + 1)},
        {"embed.formula",
         "h[:, c] = [token_c; 0] + embed.position[c, :]; position rows: row_one = 1, row_rho1 = c/Ts, "
         "row_rho2 = (c/Ts)^2, row_tau0 + k = source_k(c)/Ts with Ts = max_tokens and source_k from "
         "embed.table.<k> ((target, source) pairs; other columns read themselves)"}};
    for (const auto& [k, v] : more) st.metadata[k] = v;
    if (!spec_.w.empty())
      st.put("chain.w",
             Eigen::Map<const Eigen::VectorXd>(spec_.w.data(), static_cast<Eigen::Index>(spec_.w.size())),
             io::dtype_of<S>());
    // the position rows exactly as embed() adds them (in S)
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> zero =
        Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>::Zero(D + 1, L.max_columns);
    st.put_matrix("embed.position", model_.realisation().embed(zero).transpose());
    return st;
  }
  /// Writes to_safetensors() to `path`. @throws icl::IoError if it cannot be written.
  void save(const std::string& path) const { to_safetensors().save(path); }

  /// Reads a file written by save() into this model type, trusting the stored weights (nothing is
  /// realised or calibrated again; the program behind predict_exact is rebuilt from chain.*).
  /// Everything is checked against the model type and against the file's own sizes before anything is
  /// built, so a file cannot make the loader allocate or work beyond its size (docs/io.md).
  /// @throws icl::IoError naming the key when the file is not a constructed model, was written before
  ///         format_version 1, was built for another type (d, hidden, mlp, heads) or an unknown chain,
  ///         describes a chain that is not valid (chain.n < 1, a non-finite or invalid lr or λ), a
  ///         layout, layer count, schedule or readout other than the chain's, constants outside
  ///         Constants::validate, non-finite block weights or operand hints.
  static ConstructedTransformer from_safetensors(const io::SafeTensors& st,
                                                 const std::string& context = "constructed model") {
    const auto& md = st.metadata;
    auto get = [&](const std::string& key) -> const std::string& {
      const auto it = md.find(key);
      ICL_CHECK_IO(it != md.end(), context, ": metadata '", key, "' is missing",
                   key == "format_version"
                       ? " (written before model-file format 1, icl 0.x, or not an icl model)"
                       : "");
      return it->second;
    };
    auto integer = [&](const std::string& key) {
      const std::string& v = get(key);
      long long out = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
      ICL_CHECK_IO(r.ec == std::errc() && r.ptr == v.data() + v.size() && out >= -1 && out <= (1LL << 30),
                   context, ": metadata '", key, "' = '", v, "' is not an integer in range");
      return static_cast<int>(out);
    };
    auto real = [&](const std::string& key) {
      const std::string& v = get(key);
      double out = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
      ICL_CHECK_IO(r.ec == std::errc() && r.ptr == v.data() + v.size(), context, ": metadata '", key, "' = '",
                   v, "' is not a number");
      return out;
    };
    // A builder's InvalidArgument on what the file says is the file's fault: an IoError naming `what`.
    auto as_io = [&](const char* what, auto&& build) {
      try {
        return build();
      } catch (const InvalidArgument& e) {
        icl::detail::raise<IoError>(context, ": ", what, " does not describe a valid model: ", e.what());
      }
    };
    ICL_CHECK_IO(get("format_version") == std::to_string(nn::kModelFormatVersion), context,
                 ": format_version = ", get("format_version"), ", this icl reads version ",
                 nn::kModelFormatVersion);
    ICL_CHECK_IO(get("model") == "constructed", context, ": model = ", get("model"),
                 ", expected a constructed model (load trained models with icl::train::load_model)");
    auto expect = [&](const std::string& key, int want, const char* what) {
      const int got = integer(key);
      ICL_CHECK_IO(got == want, context, ": the file is for another model type: ", key, " = ", got,
                   " in the file, ", want, " in the model type (", what, ")");
    };
    expect("d", D, "D");
    expect("hidden", H, "H");
    expect("mlp", F, "F");
    expect("heads", 2, "heads");

    // 1. The chain, against the type and the file's own sizes, before it is rebuilt: d is the type's, and
    //    n is bounded by the stored schedule (one I64 entry per layer), so that the rebuild's work and
    //    memory (O(layers · d²)) are bounded by the file's size.
    ChainSpec spec;
    spec.kind = get("chain.kind");
    const bool n1 = spec.kind == "theorem1" || spec.kind == "theorem2";
    ICL_CHECK_IO(n1 || spec.kind == "sgd" || spec.kind == "ridge" || spec.kind == "ridge_w", context,
                 ": chain.kind = '", spec.kind,
                 "' cannot be rebuilt (sgd, ridge, ridge_w, theorem1 or theorem2 expected)");
    spec.d = integer("chain.d");
    ICL_CHECK_IO(spec.d == D, context, ": chain.d = ", spec.d, ", the model type has D = ", D);
    spec.n = integer("chain.n");
    ICL_CHECK_IO(spec.n >= 1 && (!n1 || spec.n == 1), context, ": chain.n = ", spec.n, ": expected ",
                 n1 ? "1 (Theorems 1 and 2 take one example)" : "at least 1 example");
    const long long n = spec.n;
    const long long want_layers = spec.kind == "sgd"        ? 5 * n + 3
                                  : spec.kind == "ridge"    ? 9 * n + 5
                                  : spec.kind == "ridge_w"  ? 12 * n + 4
                                  : spec.kind == "theorem1" ? 9
                                                            : 14;
    const int layers = integer("layers");
    ICL_CHECK_IO(layers == want_layers, context, ": layers = ", layers, ", but a ", spec.kind,
                 " chain with chain.n = ", spec.n, " has ", want_layers, " layers");
    ICL_CHECK_IO(st.has("schedule"), context, ": tensor 'schedule' is missing");
    const auto& sched_shape = st.info("schedule").shape;
    ICL_CHECK_IO(sched_shape.size() == 1 && sched_shape[0] == layers, context,
                 ": tensor 'schedule' has shape ", io::shape_string(sched_shape), ", expected [", layers,
                 "] (layers)");
    spec.lr = real("chain.lr");
    spec.lambda = real("chain.lambda");
    if (st.has("chain.w")) {
      const auto& wsh = st.info("chain.w").shape;
      ICL_CHECK_IO(wsh.size() == 1 && wsh[0] == D, context, ": tensor 'chain.w' has shape ",
                   io::shape_string(wsh), ", expected [", D, "]");
      const Eigen::VectorXd w = st.get_vector<double>("chain.w");
      ICL_CHECK_IO(w.allFinite(), context, ": tensor 'chain.w' has a NaN or infinite entry");
      spec.w.assign(w.data(), w.data() + w.size());
    }
    if (md.count("range.margin")) {
      spec.range_margin = real("range.margin");
      ICL_CHECK_IO(spec.range_margin > 0, context, ": metadata 'range.margin' = ", spec.range_margin,
                   ", expected > 0 (inf: no range check)");
    }
    spec.calibration = md.count("range.calibration") ? get("range.calibration") : "unknown";
    Chain<S> chain = as_io("chain.*", [&] { return rebuild_chain(spec, context); });
    ICL_CHECK_IO(chain.program.size() == static_cast<std::size_t>(layers), context, ": layers = ", layers,
                 ", but the rebuilt ", spec.kind, " chain has ", chain.program.size(), " ops");

    // 2. The layout: exactly the one realise() derives from the rebuilt program for 2n+1 columns.
    Realisation<S> r;
    auto& L = r.layout;
    L.data_rows = integer("data_rows");
    L.one = integer("row_one");
    L.rho1 = integer("row_rho1");
    L.rho2 = integer("row_rho2");
    L.tau0 = integer("row_tau0");
    L.pad_p = integer("row_pad_p");
    L.pad_m = integer("row_pad_m");
    L.zero = integer("row_zero");
    L.scr0 = integer("row_scr0");
    L.n_scr = integer("n_scr");
    L.height = integer("height");
    L.max_columns = integer("max_columns");
    ICL_CHECK_IO(L.max_columns == 2 * spec.n + 1, context, ": max_columns = ", L.max_columns,
                 ", but a chain of ", spec.n, " examples takes 2n+1 = ", 2 * spec.n + 1, " tokens");
    const RealisedLayout want = realised_layout(chain.program, L.max_columns);
    const std::pair<const char*, std::pair<int, int>> rows[] = {{"data_rows", {L.data_rows, want.data_rows}},
                                                                {"row_one", {L.one, want.one}},
                                                                {"row_rho1", {L.rho1, want.rho1}},
                                                                {"row_rho2", {L.rho2, want.rho2}},
                                                                {"row_tau0", {L.tau0, want.tau0}},
                                                                {"row_pad_p", {L.pad_p, want.pad_p}},
                                                                {"row_pad_m", {L.pad_m, want.pad_m}},
                                                                {"row_zero", {L.zero, want.zero}},
                                                                {"row_scr0", {L.scr0, want.scr0}},
                                                                {"n_scr", {L.n_scr, want.n_scr}},
                                                                {"height", {L.height, want.height}}};
    for (const auto& [key, got_want] : rows)
      ICL_CHECK_IO(got_want.first == got_want.second, context, ": metadata '", key, "' = ", got_want.first,
                   ", but the ", spec.kind, " chain's realised layout has ", got_want.second);
    ICL_CHECK_IO(L.height == H, context, ": height = ", L.height, " (the type has H = ", H, ")");
    const int n_tables = integer("n_tables");
    ICL_CHECK_IO(n_tables == static_cast<int>(want.tables.size()), context, ": n_tables = ", n_tables,
                 ", but the chain has ", want.tables.size(), " table maps");
    for (int t = 0; t < n_tables; ++t) {
      const std::string name = "embed.table." + std::to_string(t);
      ICL_CHECK_IO(st.has(name), context, ": tensor '", name, "' is missing");
      const auto& sh = st.info(name).shape;
      const auto& want_pairs = want.tables[static_cast<std::size_t>(t)].entries();
      ICL_CHECK_IO(sh.size() == 2 && sh[0] == static_cast<std::int64_t>(want_pairs.size()) && sh[1] == 2,
                   context, ": tensor '", name, "' has shape ", io::shape_string(sh), ", expected [",
                   want_pairs.size(), ", 2]");
      const std::vector<double> v = st.get_nd(name);
      for (std::size_t i = 0; i < want_pairs.size(); ++i)
        ICL_CHECK_IO(v[2 * i] == want_pairs[i].first && v[2 * i + 1] == want_pairs[i].second, context,
                     ": tensor '", name, "' pair ", i, " is (", v[2 * i], ", ", v[2 * i + 1],
                     "), the chain's table map has (", want_pairs[i].first, ", ", want_pairs[i].second, ")");
    }
    L.tables = want.tables;

    // 3. Constants, widths, schedule, blocks, readout and hints.
    Constants& k = r.constants;
    k.gamma = real("gamma");
    k.N = real("N");
    k.K = integer("K");
    k.P = real("P");
    k.M = real("M");
    k.ln_eps = real("ln_eps");
    as_io("the constants (gamma, N, K, P, M, ln_eps)", [&] {
      k.validate();
      return 0;
    });
    r.mlp_width = integer("realised_mlp_width");
    ICL_CHECK_IO(r.mlp_width >= 0 && r.mlp_width <= F, context, ": realised_mlp_width = ", r.mlp_width,
                 " is outside [0, F = ", F, "]");

    int n_blocks = 0;
    while (n_blocks < layers && st.has("blocks." + std::to_string(n_blocks) + ".linear1.weight")) ++n_blocks;
    const std::vector<double> sched = st.get_nd("schedule");
    for (const double b : sched) {
      ICL_CHECK_IO(b >= 0 && b < n_blocks && b == static_cast<double>(static_cast<int>(b)), context,
                   ": schedule entry ", b, " is not one of the ", n_blocks, " stored blocks");
      r.schedule.push_back(static_cast<int>(b));
    }
    for (int b = 0; b < n_blocks; ++b)
      r.blocks.push_back(read_block(st, "blocks." + std::to_string(b) + ".", context));
    Readout ro;
    ro.row = integer("readout.row");
    ro.column = integer("readout.column");
    ICL_CHECK_IO(ro.row == chain.readout.row && ro.column == chain.readout.column, context, ": readout row ",
                 ro.row, " / column ", ro.column, ", but the ", spec.kind, " chain reads row ",
                 chain.readout.row, " / column ", chain.readout.column);
    if (st.has("operand_hints")) {  // absent in files written before the calibrated range was stored
      const auto& hsh = st.info("operand_hints").shape;
      ICL_CHECK_IO(hsh.size() == 2 && hsh[0] == layers && hsh[1] == 2, context,
                   ": tensor 'operand_hints' has shape ", io::shape_string(hsh), ", expected [", layers,
                   ", 2] (one (s1, s2) per op)");
      const Eigen::MatrixXd hints = st.get<double>("operand_hints", layers, 2);
      for (Eigen::Index i = 0; i < hints.rows(); ++i) {
        ICL_CHECK_IO(
            std::isfinite(hints(i, 0)) && std::isfinite(hints(i, 1)) && hints(i, 0) > 0 && hints(i, 1) > 0,
            context, ": tensor 'operand_hints' row ", i, " = (", hints(i, 0), ", ", hints(i, 1),
            "): expected finite positive operand magnitudes");
        r.hints.push_back(OperandHint{hints(i, 0), hints(i, 1)});
      }
    }
    return as_io("the realisation",
                 [&] { return ConstructedTransformer(std::move(chain), std::move(r), std::move(spec)); });
  }
  /// Reads `path` (see from_safetensors).
  static ConstructedTransformer load(const std::string& path) {
    return from_safetensors(io::SafeTensors::load(path), "constructed model '" + path + "'");
  }

 private:
  static Chain<S> rebuild_chain(const ChainSpec& c, const std::string& context) {
    if (c.kind == "sgd") return sgd_chain<S>(c.d, c.n, c.lr, c.lambda);
    if (c.kind == "ridge") return ridge_chain<S>(c.d, c.n, c.lambda);
    if (c.kind == "ridge_w") return ridge_w_chain<S>(c.d, c.n, c.lambda);
    if (c.kind == "theorem2") return theorem2_chain<S>(c.d, c.lambda);
    if (c.kind == "theorem1") {
      ICL_CHECK_IO(static_cast<int>(c.w.size()) == c.d, context, ": chain.w has ", c.w.size(),
                   " entries, expected d = ", c.d);
      Eigen::Matrix<S, Eigen::Dynamic, 1> w(c.d);
      for (int i = 0; i < c.d; ++i) w(i) = static_cast<S>(c.w[static_cast<std::size_t>(i)]);
      return theorem1_chain<S>(c.d, w, c.lr, c.lambda);
    }
    icl::detail::raise<IoError>(context, ": chain.kind = '", c.kind,
                                "' cannot be rebuilt (sgd, ridge, ridge_w, theorem1 or theorem2 expected)");
  }

  /// One stored paper block back as BlockWeights: query/key rows beyond the 2 position features must be
  /// zero and the values the identity (the construction's block form), else the file is refused.
  static BlockWeights<S> read_block(const io::SafeTensors& st, const std::string& p,
                                    const std::string& context) {
    using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
    const Matrix in = st.get<S>(p + "self_attn.in_proj_weight", 6 * H, H);
    BlockWeights<S> w;
    for (int j = 0; j < 2; ++j) {
      const auto q = in.middleRows(j * H, H), kk = in.middleRows((2 + j) * H, H),
                 v = in.middleRows((4 + j) * H, H);
      ICL_CHECK_IO(q.bottomRows(H - 2).isZero(0) && kk.bottomRows(H - 2).isZero(0) && v.isIdentity(0),
                   context, ": block '", p,
                   "' is not of the constructed form (query/key rows beyond 2 must be zero, values "
                   "the identity)");
      w.wq[j] = q.topRows(2);
      w.wk[j] = kk.topRows(2);
    }
    w.wf = st.get<S>(p + "self_attn.out_proj.weight", H, 2 * H);
    w.bf = st.get_vector<S>(p + "self_attn.out_proj.bias", H);
    w.w1 = st.get<S>(p + "linear1.weight", F, H);
    w.b1 = st.get_vector<S>(p + "linear1.bias", F);
    w.w2 = st.get<S>(p + "linear2.weight", H, F);
    w.b2 = st.get_vector<S>(p + "linear2.bias", H);
    const std::pair<const char*, bool> finite[] = {{"self_attn.in_proj_weight", in.allFinite()},
                                                   {"self_attn.out_proj.weight", w.wf.allFinite()},
                                                   {"self_attn.out_proj.bias", w.bf.allFinite()},
                                                   {"linear1.weight", w.w1.allFinite()},
                                                   {"linear1.bias", w.b1.allFinite()},
                                                   {"linear2.weight", w.w2.allFinite()},
                                                   {"linear2.bias", w.b2.allFinite()}};
    for (const auto& [name, ok] : finite)
      ICL_CHECK_IO(ok, context, ": tensor '", p, name, "' has a NaN or infinite entry");
    return w;
  }

 private:
  struct RangeScan {
    double ratio = 0;       // max |operand| / hint over every mul op (infinity: no hints known)
    int op = -1;            // the first op whose ratio exceeds the scan's limit (-1: none)
    double op_ratio = 0;    // that op's ratio
    double a1 = 0, a2 = 0;  // and its operand magnitudes
    bool unknown = false;   // no hints known (a file without operand_hints)
  };
  // The exact program on one prompt, recording every mul's operand magnitudes against its hint; the first
  // op beyond `limit` is where the realised model starts to go wrong (its inputs are still accurate).
  template <class Derived>
  RangeScan scan_range(const Eigen::MatrixBase<Derived>& tokens, double limit) const {
    const auto& ops = chain_.program.ops();
    const auto& hints = model_.realisation().hints;
    RangeScan out;
    if (hints.size() != ops.size()) {
      out.ratio = std::numeric_limits<double>::infinity();
      out.unknown = true;
      return out;
    }
    Matrix h = chain_.program.embed(tokens);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto& op = ops[i];
      if (op.kind == OpKind::mul) {
        const double a1 = static_cast<double>(h.middleRows(op.r.begin, op.r.size()).cwiseAbs().maxCoeff());
        const double a2 = static_cast<double>(h.middleRows(op.s.begin, op.s.size()).cwiseAbs().maxCoeff());
        double ratio = std::max(a1 / hints[i].s1, a2 / hints[i].s2);
        if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();  // an overflowed exact state
        out.ratio = std::max(out.ratio, ratio);
        if (out.op < 0 && !(ratio <= limit)) out = {out.ratio, static_cast<int>(i), ratio, a1, a2, false};
        if (std::isinf(out.ratio)) return out;
      }
      Program<S>::apply(op, h);
    }
    return out;
  }
  Matrix read_batch(const SeqType& h, int T) const {
    const Eigen::Index B = h.cols() / T;
    Matrix out(chain_.readout.column >= 0 ? 1 : (T + 1) / 2, B);
    for (Eigen::Index b = 0; b < B; ++b) out.col(b) = read(h.middleCols(b * T, T));
    return out;
  }
  template <class Derived>
  Vector read(const Eigen::MatrixBase<Derived>& h) const {
    if (chain_.readout.column >= 0) {
      ICL_CHECK_ARG(h.cols() > chain_.readout.column, chain_.name, ": needs ", chain_.readout.column + 1,
                    " tokens, got ", h.cols());
      return Vector::Constant(1, h(chain_.readout.row, chain_.readout.column));
    }
    return data::at_x_tokens(h.row(chain_.readout.row));
  }

  Chain<S> chain_;
  CompiledProgram<S, H, F> model_;
  ChainSpec spec_;
};

/// Model type of gd_transformer<S, D> (one-pass SGD): H = 10+5D, F = 9D.
template <class S, int D>
using GdTransformer = ConstructedTransformer<S, D, ChainWidths<D>::sgd_height, ChainWidths<D>::sgd_mlp>;
/// Model type of ridge_transformer<S, D> (either ridge form): H = 9+6D+4D², F = 3(2D²+D).
template <class S, int D>
using RidgeTransformer =
    ConstructedTransformer<S, D, ChainWidths<D>::ridge_height, ChainWidths<D>::ridge_mlp>;
/// Model type of theorem1_transformer<S, D> (one GD step, n = 1): H = 11+4D, F = 9D.
template <class S, int D>
using Theorem1Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm1_height, ChainWidths<D>::thm1_mlp>;
/// Model type of theorem2_transformer<S, D> (one Sherman–Morrison step, n = 1): H = 11+6D+3D²,
/// F = 3(2D²+D).
template <class S, int D>
using Theorem2Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm2_height, ChainWidths<D>::thm2_mlp>;

namespace detail {

/// The ChainSpec of a factory-built model: the chain's parameters plus the calibrated range of `opt`.
template <class S>
ChainSpec chain_spec(std::string kind, int d, int n, double lr, double lambda, std::vector<double> w,
                     const TransformerOptions& opt) {
  ChainSpec spec{std::move(kind), d, n, lr, lambda, std::move(w)};
  spec.range_margin = opt.range_margin ? *opt.range_margin : default_range_margin<S>();
  if (opt.calibrate) {
    const auto& t = opt.distribution;
    spec.calibration = std::to_string(opt.calibration_draws) +
                       " tasks of TaskDistribution{x_std = " + io::detail::number_text(t.x_std) +
                       ", w_std = " + io::detail::number_text(t.w_std) +
                       ", noise_std = " + io::detail::number_text(t.noise_std) +
                       ", w_mean = " + io::detail::number_text(t.w_mean) + "}, seed " +
                       std::to_string(opt.seed);
  } else {
    spec.calibration = "no calibration (TransformerOptions::calibrate = false: every hint 1)";
  }
  return spec;
}

template <class S, int D>
Realisation<S> realise_chain(const Chain<S>& chain, int n, const TransformerOptions& opt) {
  const Constants k = opt.constants ? *opt.constants : Constants::template defaults<S>();
  k.validate();
  ICL_CHECK_ARG(!opt.range_margin || *opt.range_margin > 0,
                "TransformerOptions.range_margin: expected > 0 (infinity: no range check), got ",
                opt.range_margin.value_or(0));
  std::vector<OperandHint> hints;
  if (opt.calibrate) {
    ICL_CHECK_ARG(opt.calibration_draws >= 1, "TransformerOptions.calibration_draws: expected >= 1, got ",
                  opt.calibration_draws);
    data::TaskDistribution dist = opt.distribution;
    dist.n = n;
    Rng rng(opt.seed);
    std::vector<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> states;
    for (int i = 0; i < opt.calibration_draws; ++i) {
      const auto task = data::sample_task<S, D>(dist, rng);
      const Eigen::Matrix<S, D, 1> xq = data::sample_x<S, D>(dist, rng);
      states.push_back(chain.program.embed(data::encode(task, xq)));
    }
    hints = calibrate_hints(chain.program, states);
  }
  return realise(chain.program, 2 * n + 1, k, hints);
}

}  // namespace detail

/// A transformer of paper blocks whose prediction at every x-token column equals one-pass SGD from w0 = 0:
/// w_{i+1} = w_i − 2·lr·(x_i x_iᵀw_i − y_i x_i + λw_i) (icl::regress::Sgd{lr, lambda}), for up to
/// n_examples examples plus a query. 5n+3 layers, H = 10+5D, F = 9D.
template <class S, int D>
GdTransformer<S, D> gd_transformer(int n_examples, double lr, double lambda,
                                   const TransformerOptions& opt = {}) {
  static_assert(D >= 1, "icl::construct::gd_transformer: the input dimension D must be at least 1");
  auto chain = sgd_chain<S>(D, n_examples, lr, lambda);
  auto real = detail::realise_chain<S, D>(chain, n_examples, opt);
  return GdTransformer<S, D>(std::move(chain), std::move(real),
                             detail::chain_spec<S>("sgd", D, n_examples, lr, lambda, {}, opt));
}

/// A transformer of paper blocks whose prediction at every x-token column equals online ridge regression
/// x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i} (icl::regress::Ridge{lambda}), by Sherman–Morrison updates, for up
/// to n_examples examples plus a query. 9n+5 layers (12n+4 with opt.ridge_form = RidgeForm::w),
/// H = 9+6D+4D², F = 3(2D²+D). lambda > 0.
template <class S, int D>
RidgeTransformer<S, D> ridge_transformer(int n_examples, double lambda, const TransformerOptions& opt = {}) {
  static_assert(D >= 1, "icl::construct::ridge_transformer: the input dimension D must be at least 1");
  auto chain = opt.ridge_form == RidgeForm::w ? ridge_w_chain<S>(D, n_examples, lambda)
                                              : ridge_chain<S>(D, n_examples, lambda);
  auto real = detail::realise_chain<S, D>(chain, n_examples, opt);
  return RidgeTransformer<S, D>(std::move(chain), std::move(real),
                                detail::chain_spec<S>(opt.ridge_form == RidgeForm::w ? "ridge_w" : "ridge", D,
                                                      n_examples, 0, lambda, {}, opt));
}

/// Theorem 1 (one GD step from w, n = 1) as a transformer: input [x̃1, ỹ1, x̃2], one prediction (column 2).
template <class S, int D>
Theorem1Transformer<S, D> theorem1_transformer(const Eigen::Matrix<S, Eigen::Dynamic, 1>& w, double lr,
                                               double lambda, const TransformerOptions& opt = {}) {
  auto chain = theorem1_chain<S>(D, w, lr, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  std::vector<double> wd(static_cast<std::size_t>(w.size()));
  for (Eigen::Index i = 0; i < w.size(); ++i) wd[static_cast<std::size_t>(i)] = static_cast<double>(w(i));
  return Theorem1Transformer<S, D>(std::move(chain), std::move(real),
                                   detail::chain_spec<S>("theorem1", D, 1, lr, lambda, wd, opt));
}

/// Theorem 2 (one Sherman–Morrison step, n = 1) as a transformer: one prediction (column 2).
template <class S, int D>
Theorem2Transformer<S, D> theorem2_transformer(double lambda, const TransformerOptions& opt = {}) {
  auto chain = theorem2_chain<S>(D, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  return Theorem2Transformer<S, D>(std::move(chain), std::move(real),
                                   detail::chain_spec<S>("theorem2", D, 1, 0, lambda, {}, opt));
}

}  // namespace icl::construct
