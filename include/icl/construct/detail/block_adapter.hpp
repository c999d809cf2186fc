/// @file
/// Adapter from the constructed BlockWeights to icl::nn::PaperBlock, the paper decoder block that trained
/// models use: the realised program runs through the very same forward pass (docs/nn.md, "The paper block").
#pragma once

#include <Eigen/Core>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "icl/construct/detail/row_block.hpp"
#include "icl/construct/realise.hpp"
#include "icl/nn/narrow_paper_block.hpp"
#include "icl/nn/paper_block.hpp"

namespace icl::construct::detail {

/// One realised layer: an nn::PaperBlock<S, H, 2, F> holding BlockWeights (query/key rows beyond the 2
/// position features, MLP units beyond this layer's width: zero), its narrow form (nn::NarrowPaperBlock:
/// 2 query/key rows, identity values, sparse W^F and MLP; the same function) and its row-sparse form
/// (RowBlock: the same function in place on a row-major state, what CompiledProgram runs by default).
/// The paper block and nn::NarrowPaperBlock (H x 2H, 6H x H, F x H dense matrices) are built on first
/// use (BlockForm::full, export); the row-sparse form at once. Immutable and shared between the layers
/// that realise the same op; thread-safe.
template <class S, int H, int F>
class Block {
 public:
  using PaperBlock = nn::PaperBlock<S, H, 2, F>;
  using NarrowBlock = nn::NarrowPaperBlock<S, H, 2, F, 2>;
  using SeqType = typename PaperBlock::SeqType;

  Block(const BlockWeights<S>& w, double ln_eps)
      : lazy_(std::make_shared<Lazy>()), rows_(std::make_shared<const RowBlock<S>>(w, ln_eps)) {
    ICL_ASSERT(w.wf.rows() == H && w.wf.cols() == 2 * H && w.w1.rows() <= F, "construct: block shape");
    lazy_->weights = w;
    lazy_->ln_eps = ln_eps;
  }

  SeqType forward(const SeqType& h) const { return paper_block().forward(h); }
  /// The paper block (built on first use).
  const PaperBlock& paper_block() const {
    std::call_once(lazy_->once, [this] { build(*lazy_); });
    return *lazy_->blk;
  }
  /// The same block's narrow form nn::NarrowPaperBlock (built on first use, with the paper block).
  const NarrowBlock& narrow_block() const {
    (void)paper_block();
    return *lazy_->narrow;
  }
  /// The same block evaluated row-sparse in place (row_block.hpp): what CompiledProgram runs by default.
  const RowBlock<S>& row_block() const { return *rows_; }
  /// Parameter views for export (ParamView needs mutable pointers; nothing is written through them).
  std::vector<nn::ParamView<S>> parameters(const std::string& prefix) const {
    return const_cast<PaperBlock&>(paper_block()).parameters(prefix);
  }

 private:
  struct Lazy {
    std::once_flag once;
    BlockWeights<S> weights;  // released once the blocks are built
    double ln_eps = 0;
    std::unique_ptr<PaperBlock> blk;
    std::unique_ptr<const NarrowBlock> narrow;
  };
  static void build(Lazy& z) {
    const BlockWeights<S>& w = z.weights;
    z.blk = std::make_unique<PaperBlock>(options(z.ln_eps));
    PaperBlock& b = *z.blk;
    for (int j = 0; j < 2; ++j) {
      b.attn.wq(j).setZero();
      b.attn.wk(j).setZero();
      b.attn.wq(j).topRows(w.wq[j].rows()) = w.wq[j];
      b.attn.wk(j).topRows(w.wk[j].rows()) = w.wk[j];
      b.attn.wv(j).setIdentity();  // full-width values: all routing lives in W^F
    }
    b.wf() = w.wf;
    b.bf() = w.bf;
    b.w1().setZero();
    b.b1().setZero();
    b.w2().setZero();
    const Eigen::Index f = w.w1.rows();
    if (f > 0) {
      b.w1().topRows(f) = w.w1;
      b.b1().head(f) = w.b1;
      b.w2().leftCols(f) = w.w2;
    }
    b.b2() = w.b2;
    z.narrow = std::make_unique<const NarrowBlock>(b);
    z.weights = BlockWeights<S>();
  }
  static nn::PaperBlockOptions options(double ln_eps) {
    nn::PaperBlockOptions o;  // softmax, no 1/sqrt scaling, erf GeLU, LN without gain
    o.norm.affine = false;
    o.norm.eps = ln_eps;
    return o;
  }
  std::shared_ptr<Lazy> lazy_;
  std::shared_ptr<const RowBlock<S>> rows_;
};

}  // namespace icl::construct::detail
