/// @file
/// ConstructedTransformer<S, D, H, F>: a realised chain as a model (embedding, the CompiledProgram of paper
/// blocks, the read-out), with the calibrated-range check, the exact interpreter next to it, and save/load
/// (the file format: construct/model_file.hpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "icl/construct/chain_spec.hpp"
#include "icl/construct/chains.hpp"
#include "icl/construct/compiled_program.hpp"
#include "icl/construct/model_file.hpp"
#include "icl/construct/program.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/data/task.hpp"
#include "icl/io/safetensors.hpp"

namespace icl::construct {

/// A realised chain: an ordinary stack of paper decoder blocks (H rows, 2 heads, MLP width F; layers that
/// realise the same op share weights), with fixed position rows in the embedding and the prediction read
/// from one row at the x-token columns. predict(encode(task, x_query)) gives one prediction per x-token.
template <class S, int D, int H, int F>
class ConstructedTransformer {
 public:
  using Scalar = S;                   ///< the scalar type
  using Vector = Vec<S>;              ///< predictions, one per x-token: icl::Vec<S>
  using Tokens = data::Tokens<S, D>;  ///< token matrix, (D+1) x T (data::encode)
  using SeqType = Seq<S, H>;          ///< hidden state, H x T (or H x (B·T)): icl::Seq<S, H>

  /// Wraps a chain and its realisation; `spec` records the build parameters that save() writes and load()
  /// uses to rebuild the chain. @throws icl::InvalidArgument if the realisation does not fit H and F.
  ConstructedTransformer(Chain<S> chain, Realisation<S> realisation, ChainSpec spec = {})
      : chain_(std::move(chain)), model_(std::move(realisation)), spec_(std::move(spec)) {
    if (!(spec_.range_margin > 0)) spec_.range_margin = default_range_margin<S>();
    for (const auto& op : chain_.program.ops()) {  // the range check's aff matrices, in the form it applies
      auto& f = aff_forms_.emplace_back();
      if (op.kind != OpKind::aff) continue;
      if (!op.r.empty()) f[0] = detail::sparse_form<S>(op.W1);
      if (!op.s.empty()) f[1] = detail::sparse_form<S>(op.W2);
    }
  }

  using Matrix = Mat<S>;  ///< batched predictions: icl::Mat<S>
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
  io::SafeTensors to_safetensors() const { return detail::constructed_to_safetensors(*this); }
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
    return detail::constructed_from_safetensors<S, D, H, F>(st, context);
  }
  /// Reads `path` (see from_safetensors).
  static ConstructedTransformer load(const std::string& path) {
    return from_safetensors(io::SafeTensors::load(path), "constructed model '" + path + "'");
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
      if (op.kind == OpKind::aff)  // with its matrices' forms computed once (the same values as apply)
        construct::aff(h, op.r, op.s, op.w, op.W1, op.W2, op.bias, aff_forms_[i][0], aff_forms_[i][1]);
      else
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
  std::vector<std::array<detail::SparseForm<S>, 2>> aff_forms_;  // per op: W1's and W2's (aff ops only)
};

}  // namespace icl::construct
