/// @file
/// Adapter between the constructed BlockWeights and the paper decoder block that runs them.
/// TEMPORARY: until icl::nn::PaperBlock lands on main this holds a minimal forward of the paper block
/// (Eqs. 1–5: 2 softmax heads without 1/sqrt scaling, full-width identity values, W^F, x = h + a,
/// h' = x + W2 GeLU_erf(W1 LN(x) + b1) + b2, LN without gain, eps from Constants).
#pragma once

#include <Eigen/Core>
#include <cmath>

#include "icl/construct/realise.hpp"

namespace icl::construct::detail {

template <class S, int H, int F>
class Block {
 public:
  using SeqType = Eigen::Matrix<S, H, Eigen::Dynamic>;

  Block(const BlockWeights<S>& w, double ln_eps) : w_(w), eps_(static_cast<S>(ln_eps)) {
    ICL_ASSERT(w.wf.rows() == H && w.w1.rows() <= F, "block shape");
  }

  SeqType forward(const SeqType& h) const {
    const Eigen::Index T = h.cols();
    SeqType x = h;
    x.colwise() += w_.bf;
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> A(T, T), Q, K;
    for (int j = 0; j < 2; ++j) {
      Q.noalias() = w_.wq[j] * h;
      K.noalias() = w_.wk[j] * h;
      A.setZero();
      for (Eigen::Index c = 0; c < T; ++c) {
        S mx = -std::numeric_limits<S>::infinity();
        for (Eigen::Index k = 0; k <= c; ++k) {
          A(k, c) = Q.col(c).dot(K.col(k));
          mx = std::max(mx, A(k, c));
        }
        S sum = 0;
        for (Eigen::Index k = 0; k <= c; ++k) sum += (A(k, c) = std::exp(A(k, c) - mx));
        for (Eigen::Index k = 0; k <= c; ++k) A(k, c) /= sum;
      }
      const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> b = h * A;  // value = identity
      x.noalias() += w_.wf.middleCols(j * H, H) * b;
    }
    SeqType z = x;
    for (Eigen::Index c = 0; c < T; ++c) {
      const S mean = z.col(c).mean();
      z.col(c).array() -= mean;
      const S var = z.col(c).squaredNorm() / S(H);
      z.col(c) /= std::sqrt(var + eps_);
    }
    SeqType out = x;
    out.colwise() += w_.b2;
    if (w_.w1.rows() > 0) {
      Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> u = w_.w1 * z;
      u.colwise() += w_.b1;
      u = u.unaryExpr([](S v) { return S(0.5) * v * (S(1) + std::erf(v / std::sqrt(S(2)))); });
      out.noalias() += w_.w2 * u;
    }
    return out;
  }

 private:
  BlockWeights<S> w_;
  S eps_;
};

}  // namespace icl::construct::detail
