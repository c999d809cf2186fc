/// @file
/// Adapter from the constructed BlockWeights to icl::nn::PaperBlock, the paper decoder block that trained
/// models use: the realised program runs through the very same forward pass (docs/nn.md, "The paper block").
#pragma once

#include <Eigen/Core>
#include <memory>
#include <string>
#include <vector>

#include "icl/construct/realise.hpp"
#include "icl/nn/narrow_paper_block.hpp"
#include "icl/nn/paper_block.hpp"

namespace icl::construct::detail {

/// One realised layer: an nn::PaperBlock<S, H, 2, F> holding BlockWeights (query/key rows beyond the 2
/// position features, MLP units beyond this layer's width: zero), and its narrow form
/// (nn::NarrowPaperBlock: 2 query/key rows, identity values, sparse W^F and MLP; the same function).
/// Immutable and shared between the layers that realise the same op.
template <class S, int H, int F>
class Block {
 public:
  using PaperBlock = nn::PaperBlock<S, H, 2, F>;
  using NarrowBlock = nn::NarrowPaperBlock<S, H, 2, F, 2>;
  using SeqType = typename PaperBlock::SeqType;

  Block(const BlockWeights<S>& w, double ln_eps) : blk_(std::make_shared<PaperBlock>(options(ln_eps))) {
    ICL_ASSERT(w.wf.rows() == H && w.wf.cols() == 2 * H && w.w1.rows() <= F, "construct: block shape");
    PaperBlock& b = *blk_;
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
    narrow_ = std::make_shared<const NarrowBlock>(b);
  }

  SeqType forward(const SeqType& h) const { return blk_->forward(h); }
  const PaperBlock& paper_block() const { return *blk_; }
  /// The same block's narrow form (docs/constructions.md §6): what CompiledProgram runs by default.
  const NarrowBlock& narrow_block() const { return *narrow_; }
  /// Parameter views for export (ParamView needs mutable pointers; nothing is written through them).
  std::vector<nn::ParamView<S>> parameters(const std::string& prefix) const {
    return blk_->parameters(prefix);
  }

 private:
  static nn::PaperBlockOptions options(double ln_eps) {
    nn::PaperBlockOptions o;  // softmax, no 1/sqrt scaling, erf GeLU, LN without gain
    o.norm.affine = false;
    o.norm.eps = ln_eps;
    return o;
  }
  std::shared_ptr<PaperBlock> blk_;
  std::shared_ptr<const NarrowBlock> narrow_;
};

}  // namespace icl::construct::detail
