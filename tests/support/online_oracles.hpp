/// @file
/// The online SGD and ridge predictions the construct tests compare against, taken from icl::regress
/// (itself tested against fresh solves and scikit-learn): p(i) = prediction for X.row(i) from examples
/// 0..i-1, then the query's prediction from all n examples last — what a constructed transformer
/// returns for encode(task, x_query).
#pragma once

#include <Eigen/Core>

#include "icl/regress.hpp"

namespace icl::test {

/// icl::regress::online_predictions(algo, [X; x_qᵀ], [y; 0]) in scalar S (the query's label is never
/// used: its prediction comes from examples 0..n-1 only).
template <class S, class Algo, class DX, class Dy, class Dq>
Eigen::Matrix<S, Eigen::Dynamic, 1> online_with_query(const Algo& algo, const Eigen::MatrixBase<DX>& X,
                                                      const Eigen::MatrixBase<Dy>& y,
                                                      const Eigen::MatrixBase<Dq>& xq) {
  const Eigen::Index n = X.rows(), d = X.cols();
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> Xq(n + 1, d);
  Eigen::Matrix<S, Eigen::Dynamic, 1> yq = Eigen::Matrix<S, Eigen::Dynamic, 1>::Zero(n + 1);
  Xq.topRows(n) = X.template cast<S>();
  Xq.row(n) = xq.transpose().template cast<S>();
  yq.head(n) = y.template cast<S>();
  return regress::online_predictions(algo, Xq, yq);
}

/// One-pass SGD from w0 = 0 (icl::regress::Sgd{lr, lambda}); the last entry is the query's prediction.
template <class S, class DX, class Dy, class Dq>
Eigen::Matrix<S, Eigen::Dynamic, 1> sgd_online_oracle(const Eigen::MatrixBase<DX>& X,
                                                      const Eigen::MatrixBase<Dy>& y,
                                                      const Eigen::MatrixBase<Dq>& xq, double lr,
                                                      double lambda) {
  return online_with_query<S>(regress::Sgd{lr, lambda}, X, y, xq);
}

/// Online ridge x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i} (icl::regress::Ridge{lambda}); query last.
template <class S, class DX, class Dy, class Dq>
Eigen::Matrix<S, Eigen::Dynamic, 1> ridge_online_oracle(const Eigen::MatrixBase<DX>& X,
                                                        const Eigen::MatrixBase<Dy>& y,
                                                        const Eigen::MatrixBase<Dq>& xq, double lambda) {
  return online_with_query<S>(regress::Ridge{lambda}, X, y, xq);
}

}  // namespace icl::test
