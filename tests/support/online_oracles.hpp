/// @file
/// Direct (non-incremental) oracles for the online SGD and online ridge predictions used by the
/// construct tests: p(i) = prediction for X.row(i) from examples 0..i-1, then the query last.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace icl::test {

/// One-pass SGD from w0 = 0: p_i = w_iᵀx_i, w_{i+1} = w_i − 2·lr·(x_i x_iᵀw_i − y_i x_i + λw_i); the last
/// entry is w_{n+1}ᵀx_q.
template <class S, class DX, class Dy, class Dq>
Eigen::Matrix<S, Eigen::Dynamic, 1> sgd_online_oracle(const Eigen::MatrixBase<DX>& X,
                                                      const Eigen::MatrixBase<Dy>& y,
                                                      const Eigen::MatrixBase<Dq>& xq, double lr,
                                                      double lambda) {
  const Eigen::Index n = X.rows(), d = X.cols();
  Eigen::Matrix<S, Eigen::Dynamic, 1> w = Eigen::Matrix<S, Eigen::Dynamic, 1>::Zero(d), p(n + 1);
  const S a = static_cast<S>(lr), l = static_cast<S>(lambda);
  for (Eigen::Index i = 0; i < n; ++i) {
    const Eigen::Matrix<S, Eigen::Dynamic, 1> x = X.row(i).transpose().template cast<S>();
    p(i) = w.dot(x);
    const S r = p(i) - static_cast<S>(y(i));
    w -= 2 * a * (x * r + l * w);
  }
  p(n) = w.dot(xq.template cast<S>());
  return p;
}

/// Online ridge by a direct solve per prefix: p_i = x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i}; query last.
template <class S, class DX, class Dy, class Dq>
Eigen::Matrix<S, Eigen::Dynamic, 1> ridge_online_oracle(const Eigen::MatrixBase<DX>& X,
                                                        const Eigen::MatrixBase<Dy>& y,
                                                        const Eigen::MatrixBase<Dq>& xq, double lambda) {
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
  const Eigen::Index n = X.rows(), d = X.cols();
  const Mat Xs = X.template cast<S>();
  const Vec ys = y.template cast<S>();
  Vec p(n + 1);
  for (Eigen::Index i = 0; i <= n; ++i) {
    const Mat A = Mat::Identity(d, d) * static_cast<S>(lambda) + Xs.topRows(i).transpose() * Xs.topRows(i);
    const Vec b = Xs.topRows(i).transpose() * ys.head(i);
    const Vec w = A.ldlt().solve(b);
    const Vec x = i < n ? Vec(Xs.row(i).transpose()) : Vec(xq.template cast<S>());
    p(i) = w.dot(x);
  }
  return p;
}

}  // namespace icl::test
