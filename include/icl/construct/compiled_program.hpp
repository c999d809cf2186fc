/// @file
/// CompiledProgram: a realised program compiled into an ordinary stack of paper decoder blocks, with the
/// workspace of its narrow forward (BlockForm picks the narrow or the full block evaluation), and compile().
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <string>
#include <vector>

#include "icl/construct/detail/block_adapter.hpp"
#include "icl/construct/model_file.hpp"
#include "icl/construct/program.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/storage.hpp"
#include "icl/io/safetensors.hpp"

namespace icl::construct {

/// How a constructed model evaluates its paper blocks. Both give the same function (docs/constructions.md
/// §6; tests/construct/test_narrow.cpp compares them): `narrow` runs nn::NarrowPaperBlock (2 query/key
/// rows, identity values, sparse W^F and MLP, no per-layer allocation), `full` the nn::PaperBlock forward
/// with its H x H query, key and value maps (the reference). Files store the full layout either way.
enum class BlockForm { narrow, full };

/// A realised program compiled into an ordinary stack of paper decoder blocks with H rows, 2 heads and MLP
/// width F (layers that realise the same op share weights). H and F are compile-time (as in every icl
/// model); realised_layout(program, T).height and realise(...).mlp_width give the values to use.
template <class S, int H, int F>
class CompiledProgram {
 public:
  using Matrix = Mat<S>;      ///< data state, H_d x T: icl::Mat<S>
  using SeqType = Seq<S, H>;  ///< realised state, H x T (or H x B*T): icl::Seq<S, H>

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
  /// through the whole stack in chunks of about `chunk_columns` columns (whole sequences), each chunk held
  /// row-major in `state` and updated in place layer by layer (detail::RowBlock: only the rows a layer
  /// reads and writes are touched), so that the state and the blocks' buffers stay in cache: batching
  /// saves no work in the narrow form (no weight is reused across columns the way a GEMM reuses it).
  struct Workspace {
    typename detail::RowBlock<S>::Workspace block;  ///< shared by every layer
    detail::RowState<S> state;                      ///< the current chunk's state, H x chunk, row-major
    SeqType result;                                 ///< the final states of the batch
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
        ws.state = h.middleCols(c0, cols);
        ws.block.new_state();
        for (std::size_t l = 0; l < real_.schedule.size(); ++l) {
          blocks_[static_cast<std::size_t>(real_.schedule[l])].row_block().forward(ws.state.data(), cols, T,
                                                                                   ws.block);
          states[l + 1].middleCols(c0, cols) = ws.state;
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
    const Eigen::Index N = h.cols(), C = chunk_sequences(T, ws);
    if (ws.result.cols() != N) ws.result.resize(H, N);
    if (ws.state.rows() != H || ws.state.cols() != std::min(N, C * T)) ws.state.resize(H, std::min(N, C * T));
    for (Eigen::Index c0 = 0; c0 < N; c0 += C * T) {
      const Eigen::Index cols = std::min(C * T, N - c0);
      Eigen::Map<detail::RowState<S>> st(ws.state.data(), H, cols);  // a shorter last chunk: same buffer
      st = h.middleCols(c0, cols);
      ws.block.new_state();
      for (int b : real_.schedule)
        blocks_[static_cast<std::size_t>(b)].row_block().forward(st.data(), cols, T, ws.block);
      ws.result.middleCols(c0, cols) = st;
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
  io::SafeTensors to_safetensors() const { return detail::program_to_safetensors<S, H, F>(real_, blocks_); }
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

}  // namespace icl::construct
