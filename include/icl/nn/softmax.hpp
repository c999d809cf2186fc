/// @file
/// Column-wise softmax (each column is a distribution over its rows) and its causal variant used
/// by attention (column i is a distribution over rows 0..i, rows > i are 0).
/// Backward: docs/derivations/nn_layers.md Eq. (S1)-(S2).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "icl/core/storage.hpp"

namespace icl::nn {

/// y.col(j) = softmax(x.col(j)) over the first `rows(j)` rows, 0 below; rows(j) = x.rows() for
/// the plain form, j + 1 for the causal form (Eq. S1). Shifts by the column maximum. y may alias x.
template <class DerivedX, class DerivedY>
void softmax_columns(const Eigen::MatrixBase<DerivedX>& x, const Eigen::MatrixBase<DerivedY>& y_,
                     bool causal = false) {
  using S = typename DerivedX::Scalar;
  auto& y = const_cast<Eigen::MatrixBase<DerivedY>&>(y_);
  const Eigen::Index R = x.rows();
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const Eigen::Index n = causal ? std::min<Eigen::Index>(j + 1, R) : R;
    const S m = x.col(j).head(n).maxCoeff();
    y.col(j).head(n) = (x.col(j).head(n).array() - m).exp().matrix();
    const S s = y.col(j).head(n).sum();
    y.col(j).head(n) /= s;
    y.col(j).tail(R - n).setZero();
  }
}

/// dx = J_softmaxᵀ dy for y = softmax_columns(x): dx_k = y_k (dy_k − Σ_l y_l dy_l) (Eq. S2).
/// Rows outside the causal window get 0. dx may alias dy.
template <class DerivedY, class DerivedDY, class DerivedDX>
void softmax_columns_backward(const Eigen::MatrixBase<DerivedY>& y, const Eigen::MatrixBase<DerivedDY>& dy,
                              const Eigen::MatrixBase<DerivedDX>& dx_, bool causal = false) {
  using S = typename DerivedY::Scalar;
  auto& dx = const_cast<Eigen::MatrixBase<DerivedDX>&>(dx_);
  const Eigen::Index R = y.rows();
  for (Eigen::Index j = 0; j < y.cols(); ++j) {
    const Eigen::Index n = causal ? std::min<Eigen::Index>(j + 1, R) : R;
    const S s = y.col(j).head(n).dot(dy.col(j).head(n));
    dx.col(j).head(n) = y.col(j).head(n).cwiseProduct((dy.col(j).head(n).array() - s).matrix());
    dx.col(j).tail(R - n).setZero();
  }
}

/// Rows of the padded score buffers of causal_softmax_blocks(): T rounded up to a multiple of 16, so
/// that every column is a whole number of SIMD packets (16 floats = one AVX-512 register; 2, 4 or 8
/// packets with SSE/AVX, also for double).
inline Eigen::Index causal_padded_rows(Eigen::Index T) { return (T + 15) / 16 * 16; }

/// The causal softmax (Eq. S1) of K score matrices at once, in place. `a` has
/// causal_padded_rows(T) rows and K·T columns: block k is columns [k·T, (k+1)·T), its rows 0..T-1
/// hold the T x T scores (column i = query i, row = key) and its padding rows are ignored on input.
/// On return column i of every block holds the weights over rows 0..i and exact zeros in every other
/// row, padding included. Equal to softmax_columns(·, ·, true) on each T x T block up to the ulps of
/// the exponential: here every exponential is the vectorised one, there the last < 16 entries of a
/// column go through std::exp. The exponentials run over whole packets: rows i+1 up to the next
/// multiple of 16 are set to the column maximum first (exp(0) = 1, then cleared), so that no column
/// has a scalar tail and no masked score reaches exp (Eigen's float exp returns a subnormal, not 0,
/// for arguments below about -87, and subnormal arithmetic is slow).
template <class S>
void causal_softmax_blocks(Eigen::Ref<Mat<S>> a, Eigen::Index T) {
  const Eigen::Index R = a.rows();
  for (Eigen::Index c = 0; c < a.cols(); ++c) {
    const Eigen::Index n = c % T + 1;                                       // keys 0..i of query i = c mod T
    const Eigen::Index np = std::min<Eigen::Index>(R, (n + 15) / 16 * 16);  // whole packets
    auto col = a.col(c);
    const S m = col.head(n).maxCoeff();
    col.segment(n, np - n).setConstant(m);
    col.head(np) = (col.head(np).array() - m).exp().matrix();
    col.tail(R - n).setZero();
    col.head(n) *= S(1) / col.head(n).sum();
  }
}

/// Backward of causal_softmax_blocks() (Eq. S2) for the same padded layout: `y` its output, `dy` the
/// upstream gradient (finite in every row, padding rows included), `dx` (may alias dy) gets
/// y ⊙ (dy − (yᵀdy) 1) over whole columns; rows outside the causal window come out exactly 0
/// because y is exactly 0 there.
template <class S>
void causal_softmax_blocks_backward(const Eigen::Ref<const Mat<S>>& y, const Eigen::Ref<const Mat<S>>& dy,
                                    Eigen::Ref<Mat<S>> dx) {
  for (Eigen::Index c = 0; c < y.cols(); ++c) {
    const S s = y.col(c).dot(dy.col(c));
    dx.col(c) = y.col(c).cwiseProduct((dy.col(c).array() - s).matrix());
  }
}

}  // namespace icl::nn
