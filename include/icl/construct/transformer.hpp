/// @file
/// Constructed transformers: gd_transformer<S, D> (one-pass SGD) and ridge_transformer<S, D> (online
/// ridge, Sherman–Morrison), and ConstructedTransformer, the realised model of paper blocks behind them.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "icl/construct/chains.hpp"
#include "icl/construct/detail/block_adapter.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/io/safetensors.hpp"

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
};

/// Realised widths of the four chains (docs/constructions.md §5), for K <= 3.
template <int D>
struct ChainWidths {
  static constexpr int sgd_height = 10 + 5 * D;  ///< 4+5d data rows + ONE, RHO1, RHO2, PADP, PADM, ZERO
  static constexpr int sgd_mlp = 9 * D;          ///< 3 units · d pairs · 3 levels
  static constexpr int ridge_height = 9 + 6 * D + 4 * D * D;
  static constexpr int ridge_mlp = 3 * (2 * D * D + D);
  static constexpr int thm1_height = 11 + 4 * D;  ///< + 2 TAU rows
  static constexpr int thm1_mlp = 9 * D;
  static constexpr int thm2_height = 11 + 6 * D + 3 * D * D;  ///< + 2 TAU rows, d scratch rows
  static constexpr int thm2_mlp = 3 * (2 * D * D + D);
};

/// A realised program compiled into an ordinary stack of paper decoder blocks with H rows, 2 heads and MLP
/// width F (layers that realise the same op share weights). H and F are compile-time (as in every icl
/// model); realised_layout(program, T).height and realise(...).mlp_width give the values to use.
template <class S, int H, int F>
class CompiledProgram {
 public:
  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  using SeqType = Eigen::Matrix<S, H, Eigen::Dynamic>;

  explicit CompiledProgram(Realisation<S> realisation) : real_(std::move(realisation)) {
    ICL_CHECK_ARG(real_.layout.height == H, "CompiledProgram: the realised program has ", real_.layout.height,
                  " rows, the model type has H = ", H);
    ICL_CHECK_ARG(real_.mlp_width <= F, "CompiledProgram: the realised program needs an MLP width of ",
                  real_.mlp_width, ", the model type has F = ", F);
    for (const auto& b : real_.blocks) blocks_.emplace_back(b, real_.constants.ln_eps);
  }

  /// B = h.cols()/T sequences of T columns side by side (embed() outputs, H x (B·T)) through the stack at
  /// once; every layer's hidden state: states[0] = h, states[l] = after l layers (layers() + 1 entries).
  std::vector<SeqType> forward_all(const SeqType& h, int T) const {
    check_batch(h, T, "CompiledProgram::forward_all");
    std::vector<SeqType> states;
    states.reserve(real_.schedule.size() + 1);
    states.push_back(h);
    typename detail::Block<S, H, F>::PaperBlock::Cache cache;
    for (int b : real_.schedule) {
      SeqType out(H, h.cols());
      blocks_[static_cast<std::size_t>(b)].paper_block().forward(states.back(), T, cache, out);
      states.push_back(std::move(out));
    }
    return states;
  }
  /// The final state of B = h.cols()/T sequences of T columns run at once (equals forward() per sequence).
  SeqType forward(const SeqType& h, int T) const {
    check_batch(h, T, "CompiledProgram::forward");
    typename detail::Block<S, H, F>::PaperBlock::Cache cache;
    SeqType cur = h, out(H, h.cols());
    for (int b : real_.schedule) {
      blocks_[static_cast<std::size_t>(b)].paper_block().forward(cur, T, cache, out);
      cur.swap(out);
    }
    return cur;
  }
  /// Number of layers (the schedule's length).
  int layers() const { return static_cast<int>(real_.schedule.size()); }

  /// Runs the stack of blocks on a realised state (embed() output).
  SeqType forward(SeqType h) const {
    for (int b : real_.schedule) h = blocks_[b].forward(h);
    return h;
  }
  /// Realised counterpart of Program::run: data state (H_d x T) in, data rows of the final state out.
  Matrix run(const Matrix& data_state) const {
    ICL_CHECK_ARG(data_state.rows() == real_.layout.data_rows, "CompiledProgram::run: state has ",
                  data_state.rows(), " rows, expected ", real_.layout.data_rows);
    const SeqType h = forward(real_.embed(data_state));
    return h.topRows(real_.layout.data_rows);
  }
  Resources resources() const { return real_.resources(); }
  const Realisation<S>& realisation() const { return real_; }

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
    Eigen::Matrix<double, Eigen::Dynamic, 1> sched(static_cast<Eigen::Index>(real_.schedule.size()));
    for (std::size_t l = 0; l < real_.schedule.size(); ++l)
      sched(static_cast<Eigen::Index>(l)) = real_.schedule[l];
    st.put("schedule", sched);
    const auto& L = real_.layout;
    const auto& k = real_.constants;
    auto num = [](double v) {
      std::ostringstream os;
      os.precision(17);
      os << v;
      return os.str();
    };
    st.metadata = {{"format", "icl.construct.v1"},
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

/// A realised chain: an ordinary stack of paper decoder blocks (H rows, 2 heads, MLP width F; layers that
/// realise the same op share weights), with fixed position rows in the embedding and the prediction read
/// from one row at the x-token columns. predict(encode(task, x_query)) gives one prediction per x-token.
template <class S, int D, int H, int F>
class ConstructedTransformer {
 public:
  using Scalar = S;
  using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  using Tokens = data::Tokens<S, D>;
  using SeqType = Eigen::Matrix<S, H, Eigen::Dynamic>;

  ConstructedTransformer(Chain<S> chain, Realisation<S> realisation)
      : chain_(std::move(chain)), model_(std::move(realisation)) {}

  using Matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
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
  /// H x (B·T), [0] the embedding, [l] the state after l layers.
  template <class Derived>
  std::vector<SeqType> hidden_states(const Eigen::MatrixBase<Derived>& tokens, int T) const {
    return model_.forward_all(embed_batch(tokens, T), T);
  }
  /// Predictions of B prompts of T tokens run at once: ceil(T/2) x B, column b the predictions at prompt
  /// b's x-tokens (for the n = 1 chains with a fixed read-out column: 1 x B). Equals predict() per prompt.
  template <class Derived>
  Matrix predict_batch(const Eigen::MatrixBase<Derived>& tokens, int T) const {
    const SeqType h = model_.forward(embed_batch(tokens, T), T);
    const Eigen::Index B = tokens.cols() / T;
    Matrix out(chain_.readout.column >= 0 ? 1 : (T + 1) / 2, B);
    for (Eigen::Index b = 0; b < B; ++b) out.col(b) = read(h.middleCols(b * T, T));
    return out;
  }

  /// Longest input (tokens) and most examples the model was built for.
  int max_tokens() const { return model_.realisation().layout.max_columns; }
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

  /// The final hidden state (H x T) of the stack of paper blocks.
  template <class Derived>
  SeqType forward(const Eigen::MatrixBase<Derived>& tokens) const {
    return model_.forward(embed(tokens));
  }

  /// One prediction per x-token column (in order), read at the chain's output row.
  template <class Derived>
  Vector predict(const Eigen::MatrixBase<Derived>& tokens) const {
    return read(forward(tokens));
  }

  /// The same prediction by the exact interpreter of the program (no transformer).
  template <class Derived>
  Vector predict_exact(const Eigen::MatrixBase<Derived>& tokens) const {
    (void)embed(tokens);  // same checks
    return read(chain_.program.run(chain_.program.embed(tokens)));
  }

  Resources resources() const { return model_.resources(); }
  const Chain<S>& chain() const { return chain_; }
  const Realisation<S>& realisation() const { return model_.realisation(); }
  const CompiledProgram<S, H, F>& model() const { return model_; }

 private:
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
};

template <class S, int D>
using GdTransformer = ConstructedTransformer<S, D, ChainWidths<D>::sgd_height, ChainWidths<D>::sgd_mlp>;
template <class S, int D>
using RidgeTransformer =
    ConstructedTransformer<S, D, ChainWidths<D>::ridge_height, ChainWidths<D>::ridge_mlp>;
template <class S, int D>
using Theorem1Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm1_height, ChainWidths<D>::thm1_mlp>;
template <class S, int D>
using Theorem2Transformer =
    ConstructedTransformer<S, D, ChainWidths<D>::thm2_height, ChainWidths<D>::thm2_mlp>;

namespace detail {

template <class S, int D>
Realisation<S> realise_chain(const Chain<S>& chain, int n, const TransformerOptions& opt) {
  const Constants k = opt.constants ? *opt.constants : Constants::template defaults<S>();
  k.validate();
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
  return GdTransformer<S, D>(std::move(chain), std::move(real));
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
  return RidgeTransformer<S, D>(std::move(chain), std::move(real));
}

/// Theorem 1 (one GD step from w, n = 1) as a transformer: input [x̃1, ỹ1, x̃2], one prediction (column 2).
template <class S, int D>
Theorem1Transformer<S, D> theorem1_transformer(const Eigen::Matrix<S, Eigen::Dynamic, 1>& w, double lr,
                                               double lambda, const TransformerOptions& opt = {}) {
  auto chain = theorem1_chain<S>(D, w, lr, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  return Theorem1Transformer<S, D>(std::move(chain), std::move(real));
}

/// Theorem 2 (one Sherman–Morrison step, n = 1) as a transformer: one prediction (column 2).
template <class S, int D>
Theorem2Transformer<S, D> theorem2_transformer(double lambda, const TransformerOptions& opt = {}) {
  auto chain = theorem2_chain<S>(D, lambda);
  auto real = detail::realise_chain<S, D>(chain, 1, opt);
  return Theorem2Transformer<S, D>(std::move(chain), std::move(real));
}

}  // namespace icl::construct
