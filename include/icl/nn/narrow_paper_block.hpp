/// @file
/// The paper block's narrow form: a faster forward of a PaperBlock whose heads use only their first R
/// query/key rows (the rest zero) and whose values are the identity, as every constructed block does
/// (docs/constructions.md §2, §6). Same weights, same function (Eqs. 1-5 of the paper, B1 of
/// docs/derivations/nn_blocks.md); only the zeros and identities are not multiplied. docs/nn.md,
/// "The paper block's narrow form".
#pragma once

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/attention.hpp"
#include "icl/nn/layer_norm.hpp"
#include "icl/nn/paper_block.hpp"
#include "icl/nn/softmax.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// Forward-only evaluator of a PaperBlock<S, H, M, F> of the narrow form: rows >= R of every W^Q_j and
/// W^K_j are zero and every W^V_j is the identity. With O_j = V_j A_j = h A_j (identity values) the
/// attention output of Eq. 3 is
///
///   (N1)  a = Σ_j F_j h A_j + b^F = Σ_j (F_j h) A_j + b^F,   F_j = columns j·H.. of W^F,
///
/// evaluated right to left on the rows where F_j is non-zero (F_j h is a sparse product, (F_j h) A_j uses
/// only the causal half of A_j and skips its subnormal weights, (N2)), with the scores A_j from R-row
/// queries and keys. The MLP keeps only its
/// active units u (W2 column u non-zero; the others add 0·σ(·)) with W1, W2 stored sparse, and is skipped
/// with its LayerNorm when no unit is active (then h' = x + b2). Equal to PaperBlock::forward up to the
/// order of the floating-point sums and the underflow level (N2), for finite intermediate values (0·inf is
/// not formed here).
///
/// @tparam S scalar, @tparam H hidden width, @tparam M heads, @tparam F MLP width (of the full block),
/// @tparam R query/key rows per head that may be non-zero (2 for the constructions)
template <class S, int H, int M, int F, int R = 2>
class NarrowPaperBlock {
  static_assert(R >= 1 && R <= H, "icl::nn::NarrowPaperBlock: the query/key rows R must lie in [1, H]");

 public:
  using Scalar = S;                                        ///< the scalar type S
  using Full = PaperBlock<S, H, M, F>;                     ///< the block this evaluates
  using Sparse = Eigen::SparseMatrix<S, Eigen::RowMajor>;  ///< storage of W^F, W1, W2 and the q/k rows

  /// Buffers of forward(), shared by all blocks of a stack and reused across calls: they only grow, so a
  /// warm workspace makes forward() allocation-free (tests/nn/test_narrow_paper_block.cpp).
  struct Workspace {
    Mat<S> qk;                             ///< queries and keys, 2·M·R x N: [Q_1; …; Q_M; K_1; …; K_M]
    Mat<S> scores;                         ///< A of one (sequence, head), T x T
    Mat<S> g;                              ///< F_j h on F_j's non-zero rows, stacked over heads
    Mat<S> p;                              ///< (F_j h) A_j, same rows
    Mat<S> x;                              ///< h + a, H x N
    Mat<S> z;                              ///< LN(x), H x N
    Mat<S> pre;                            ///< W1 z + b1 on the active units
    Mat<S> post;                           ///< σ(pre)
    typename LayerNorm<S, H>::Cache norm;  ///< LayerNorm cache
  };

  /// The narrow form of `full` (weights copied; `full` may be dropped afterwards).
  /// @throws icl::InvalidArgument if a query/key row >= R is non-zero or a value map is not the identity.
  explicit NarrowPaperBlock(const Full& full)
      : scores_(full.attn.scores()), scale_(full.attn.scale()), norm_(full.norm), act_(full.ff.activation()) {
    const auto in = full.attn.in_proj().weight();  // [W^Q_1..M; W^K_1..M; W^V_1..M], each H x H
    Mat<S> qk(2 * M * R, H);
    for (int j = 0; j < M; ++j) {
      const auto q = in.middleRows(Eigen::Index(j) * H, H), k = in.middleRows(Eigen::Index(M + j) * H, H),
                 v = in.middleRows(Eigen::Index(2 * M + j) * H, H);
      ICL_CHECK_ARG(q.bottomRows(H - R).isZero(0) && k.bottomRows(H - R).isZero(0), "NarrowPaperBlock: head ",
                    j, " has non-zero query/key rows beyond the first ", R);
      ICL_CHECK_ARG(v.isIdentity(0), "NarrowPaperBlock: head ", j, "'s value map is not the identity");
      qk.middleRows(j * R, R) = q.topRows(R);
      qk.middleRows((M + j) * R, R) = k.topRows(R);
    }
    qk_ = qk.sparseView(S(1), S(0));
    qk_.makeCompressed();

    const auto wf = full.attn.out_proj().weight();  // H x M·H
    bf_ = full.attn.out_proj().bias();
    for (int j = 0; j < M; ++j) {
      const auto fj = wf.middleCols(Eigen::Index(j) * H, H);
      Head hd;
      for (int i = 0; i < H; ++i)
        if (!fj.row(i).isZero(0)) hd.rows.push_back(i);
      Mat<S> dense(static_cast<Eigen::Index>(hd.rows.size()), H);
      for (std::size_t r = 0; r < hd.rows.size(); ++r)
        dense.row(static_cast<Eigen::Index>(r)) = fj.row(hd.rows[r]);
      hd.f = dense.sparseView(S(1), S(0));
      hd.f.makeCompressed();
      hd.offset = g_rows_;
      g_rows_ += static_cast<Eigen::Index>(hd.rows.size());
      heads_.push_back(std::move(hd));
    }

    const auto w1 = full.ff.linear1.weight();  // F x H
    const auto b1 = full.ff.linear1.bias();
    const auto w2 = full.ff.linear2.weight();  // H x F
    std::vector<int> units;
    for (int u = 0; u < F; ++u)
      if (!w2.col(u).isZero(0)) units.push_back(u);
    const auto U = static_cast<Eigen::Index>(units.size());
    Mat<S> w1a(U, H), w2a(H, U);
    b1_.resize(U);
    for (Eigen::Index u = 0; u < U; ++u) {
      w1a.row(u) = w1.row(units[static_cast<std::size_t>(u)]);
      b1_(u) = b1(units[static_cast<std::size_t>(u)]);
      w2a.col(u) = w2.col(units[static_cast<std::size_t>(u)]);
    }
    w1_ = w1a.sparseView(S(1), S(0));
    w2_ = w2a.sparseView(S(1), S(0));
    w1_.makeCompressed();
    w2_.makeCompressed();
    b2_ = full.ff.linear2.bias();
  }

  /// Active MLP units (W2 columns that are not zero), <= F.
  Eigen::Index active_units() const { return b1_.size(); }
  /// Rows of F_j h computed per column over all heads (Σ_j non-zero rows of F_j), <= M·H.
  Eigen::Index mixed_rows() const { return g_rows_; }
  /// Stored non-zeros of W^F, W1, W2 and the q/k rows together (what a column costs, besides the scores).
  Eigen::Index nonzeros() const {
    Eigen::Index n = qk_.nonZeros() + w1_.nonZeros() + w2_.nonZeros();
    for (const auto& hd : heads_) n += hd.f.nonZeros();
    return n;
  }

  /// out = block(h) for B = h.cols()/T sequences of T tokens, as PaperBlock::forward (Eq. B1 with (N1)).
  /// `out` must not alias `h`. No heap allocation once `w` has served a call of at least this size.
  /// @throws icl::InvalidArgument unless T >= 1 divides h.cols().
  void forward(const In<S>& h, int T, Workspace& w, Out<S> out) const {
    ICL_CHECK_ARG(T >= 1 && h.cols() % T == 0, "NarrowPaperBlock::forward: T: expected a divisor of the ",
                  h.cols(), " columns of h, got ", T);
    const Eigen::Index N = h.cols(), B = N / T, U = active_units();
    grow(w.qk, 2 * M * R, N);
    grow(w.scores, T, T);
    grow(w.g, g_rows_, N);
    grow(w.p, g_rows_, N);
    grow(w.x, H, N);
    auto qk = w.qk.topLeftCorner(2 * M * R, N);
    auto A = w.scores.topLeftCorner(T, T);
    auto g = w.g.topLeftCorner(g_rows_, N);
    auto p = w.p.topLeftCorner(g_rows_, N);
    auto x = w.x.topLeftCorner(H, N);

    // attention (N1): scores from R-row queries and keys, exactly as CausalAttention::forward (Eq. T2)
    qk.noalias() = qk_ * h;
    for (const auto& hd : heads_) g.middleRows(hd.offset, hd.f.rows()).noalias() = hd.f * h;
    for (Eigen::Index b = 0; b < B; ++b) {
      for (int j = 0; j < M; ++j) {
        const Head& hd = heads_[static_cast<std::size_t>(j)];
        if (hd.f.rows() == 0) continue;  // W^F ignores this head
        const auto Q = qk.block(j * R, b * T, R, T);
        const auto K = qk.block((M + j) * R, b * T, R, T);
        A.noalias() = scale_ * (K.transpose() * Q);
        if (scores_ == Scores::softmax)
          softmax_columns(A, A, /*causal=*/true);
        else
          A.template triangularView<Eigen::StrictlyLower>().setZero();
        // (N2) (F_j h) A_j over the causal half (column c of A_j has keys 0..c), skipping the weights
        // below the smallest normal number (they change the sum by less than min·Σ_k|g_k|, the underflow
        // level of the floating-point model; exact zeros change nothing): the constructions' position
        // softmax underflows (Eigen's exp stops at ≈ 5.6e-309 in double) a few keys away from its
        // target, so a column costs a few axpys instead of c + 1
        const auto gb = g.block(hd.offset, b * T, hd.f.rows(), T);
        auto pb = p.block(hd.offset, b * T, hd.f.rows(), T);
        for (int c = 0; c < T; ++c) {
          auto pc = pb.col(c);
          pc.setZero();
          for (int k = 0; k <= c; ++k) {
            using std::abs;
            if (const S a = A(k, c); abs(a) >= std::numeric_limits<S>::min()) pc += a * gb.col(k);
          }
        }
      }
    }
    x.setZero();
    for (const auto& hd : heads_)
      for (std::size_t r = 0; r < hd.rows.size(); ++r)
        x.row(hd.rows[r]) += p.row(hd.offset + static_cast<Eigen::Index>(r));
    x.colwise() += bf_;
    x += h;  // x = h + a

    // MLP on the active units (Eq. 5): h' = x + W2 σ(W1 LN(x) + b1) + b2
    if (U == 0) {
      out.colwise() = b2_;
    } else {
      grow(w.z, H, N);
      grow(w.pre, U, N);
      grow(w.post, U, N);
      auto z = w.z.topLeftCorner(H, N);
      auto pre = w.pre.topLeftCorner(U, N);
      auto post = w.post.topLeftCorner(U, N);
      norm_.forward(x, w.norm, z);
      pre.noalias() = w1_ * z;
      pre.colwise() += b1_;
      activation_forward(act_, pre, post);
      out.noalias() = w2_ * post;
      out.colwise() += b2_;
    }
    out += x;
  }

 private:
  struct Head {
    std::vector<int> rows;    ///< rows of W^F where F_j is non-zero
    Sparse f;                 ///< those rows of F_j, rows.size() x H
    Eigen::Index offset = 0;  ///< first row of this head in Workspace::g and ::p
  };

  static void grow(Mat<S>& m, Eigen::Index rows, Eigen::Index cols) {
    if (m.rows() < rows || m.cols() < cols) m.resize(std::max(m.rows(), rows), std::max(m.cols(), cols));
  }

  Scores scores_;
  S scale_;
  LayerNorm<S, H> norm_;
  Activation act_;
  Sparse qk_;
  std::vector<Head> heads_;
  Eigen::Index g_rows_ = 0;
  Vec<S> bf_, b1_, b2_;
  Sparse w1_, w2_;
};

}  // namespace icl::nn
