/// @file
/// Column-wise softmax (each column is a distribution over its rows) and its causal variant used
/// by attention (column i is a distribution over rows 0..i, rows > i are 0).
/// Backward: docs/derivations/nn_layers.md Eq. (S1)-(S2).
#pragma once

#include <Eigen/Core>
#include <cmath>

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

}  // namespace icl::nn
