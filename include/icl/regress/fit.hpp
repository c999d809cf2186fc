/// @file
/// Batch solutions: fit(algo, X, y) -> weights of a linear algorithm, predict(algo, X, y, probes)
/// -> predictions of any algorithm (docs/regress.md §2).
#pragma once

#include <Eigen/Dense>
#include <type_traits>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/knn.hpp"

namespace icl::regress {

namespace detail {

/// Throws InvalidArgument unless X is n×d with d >= 1, y has n entries and both are finite.
template <class DX, class DY>
void check_xy(const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, const char* where) {
  static_assert(std::is_floating_point_v<typename DX::Scalar>,
                "icl::regress: the scalar type of X must be a floating-point type");
  static_assert(std::is_same_v<typename DX::Scalar, typename DY::Scalar>,
                "icl::regress: X and y must have the same scalar type");
  static_assert(DY::ColsAtCompileTime == 1 || DY::ColsAtCompileTime == Eigen::Dynamic,
                "icl::regress: y must be a column vector");
  ICL_CHECK_ARG(X.cols() >= 1, where, ": X: expected at least one column (d >= 1), got ", X.rows(), "x",
                X.cols());
  ICL_CHECK_ARG(y.cols() == 1 && y.rows() == X.rows(), where, ": y: expected a vector of n = ", X.rows(),
                " entries (X.rows()), got ", y.rows(), "x", y.cols());
  ICL_CHECK_ARG(X.allFinite(), where, ": X: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(y.allFinite(), where, ": y: expected finite values, found NaN or Inf");
}

template <class DX, class DQ>
void check_probes(const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DQ>& probes, const char* where) {
  static_assert(std::is_same_v<typename DX::Scalar, typename DQ::Scalar>,
                "icl::regress: X and probes must have the same scalar type");
  ICL_CHECK_ARG(probes.cols() == X.cols(), where, ": probes: expected ", X.cols(), " columns (d), got ",
                probes.rows(), "x", probes.cols());
  ICL_CHECK_ARG(probes.allFinite(), where, ": probes: expected finite values, found NaN or Inf");
}

/// Weights vector type matching X's compile-time column count.
template <class DX>
using WeightsOf = Eigen::Matrix<typename DX::Scalar, DX::ColsAtCompileTime, 1>;

}  // namespace detail

/// Minimum-norm least squares, Eq. (1): complete orthogonal decomposition of X (Eigen's
/// CompleteOrthogonalDecomposition, column-pivoted QR + RZ), never the normal equations.
/// n = 0 gives w = 0.
template <class DX, class DY>
detail::WeightsOf<DX> fit(const Ols&, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y) {
  using S = typename DX::Scalar;
  detail::check_xy(X, y, "fit(Ols)");
  detail::WeightsOf<DX> w = detail::WeightsOf<DX>::Zero(X.cols());
  if (X.rows() == 0) return w;
  const Eigen::CompleteOrthogonalDecomposition<Mat<S>> cod(X);
  w = cod.solve(y.eval());
  return w;
}

/// Ridge, Eq. (2): orthogonal decomposition of the stacked matrix [X; √λ I] against [y; 0] (full
/// column rank for λ > 0, and no squaring of the condition number). λ = 0 is fit(Ols).
template <class DX, class DY>
detail::WeightsOf<DX> fit(const Ridge& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y) {
  using S = typename DX::Scalar;
  validate(a, "fit(Ridge)");
  detail::check_xy(X, y, "fit(Ridge)");
  if (a.lambda == 0) return fit(Ols{}, X, y);
  const Eigen::Index n = X.rows(), d = X.cols();
  Mat<S> A(n + d, d);
  A.topRows(n) = X;
  A.bottomRows(d).setZero();
  A.bottomRows(d).diagonal().setConstant(static_cast<S>(std::sqrt(a.lambda)));
  Vec<S> b = Vec<S>::Zero(n + d);
  b.head(n) = y;
  // (COD rather than HouseholderQR: the latter's solve trips GCC 12 -Wmaybe-uninitialized in Eigen)
  const Eigen::CompleteOrthogonalDecomposition<Mat<S>> qr(A);
  detail::WeightsOf<DX> w = qr.solve(b);
  return w;
}

/// Gradient descent, Eq. (3): `steps` full-batch steps from w0 = 0. steps == 1 is w = 2·lr·Xᵀy.
template <class DX, class DY>
detail::WeightsOf<DX> fit(const Gd& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y) {
  using S = typename DX::Scalar;
  validate(a, "fit(Gd)");
  detail::check_xy(X, y, "fit(Gd)");
  const S two_lr = static_cast<S>(2 * a.lr), lam = static_cast<S>(a.lambda);
  const Vec<S> b = X.transpose() * y;
  detail::WeightsOf<DX> w = two_lr * b;  // first step from w0 = 0
  if (a.steps > 1) {
    const Mat<S> A = X.transpose() * X;
    Vec<S> g(X.cols());
    for (int s = 1; s < a.steps; ++s) {
      // compound assignments only: GCC 12 -Wuse-after-free misfires on Eigen's resize-on-assign
      g.head(g.size()) = lam * w - b;  // a block target never resizes
      g.noalias() += A * w;
      w -= two_lr * g;
    }
  }
  return w;
}

/// One-pass SGD, Eq. (4): examples in order, one per step, from w0 = 0.
template <class DX, class DY>
detail::WeightsOf<DX> fit(const Sgd& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y) {
  using S = typename DX::Scalar;
  validate(a, "fit(Sgd)");
  detail::check_xy(X, y, "fit(Sgd)");
  const S two_lr = static_cast<S>(2 * a.lr), lam = static_cast<S>(a.lambda);
  detail::WeightsOf<DX> w = detail::WeightsOf<DX>::Zero(X.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    const S r = X.row(i).dot(w) - y(i);  // x xᵀw − y x = (xᵀw − y) x
    w *= S(1) - two_lr * lam;            // compound assignments: see fit(Gd)
    w.noalias() -= (two_lr * r) * X.row(i).transpose();
  }
  return w;
}

/// Averaging, Eq. (7): w = Xᵀy / n; n = 0 gives w = 0.
template <class DX, class DY>
detail::WeightsOf<DX> fit(const Averaging&, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y) {
  using S = typename DX::Scalar;
  detail::check_xy(X, y, "fit(Averaging)");
  detail::WeightsOf<DX> w = detail::WeightsOf<DX>::Zero(X.cols());
  if (X.rows() > 0) w.noalias() = X.transpose() * y / static_cast<S>(X.rows());
  return w;
}

/// Predictions of `algo` trained on (X, y) at every row of `probes` (m×d). Linear algorithms:
/// probes · fit(algo, X, y); Knn: Eqs. (5)-(6) per probe. With n = 0 every prediction is 0.
template <class A, class DX, class DY, class DQ>
Vec<typename DX::Scalar> predict(const A& algo, const Eigen::MatrixBase<DX>& X,
                                 const Eigen::MatrixBase<DY>& y, const Eigen::MatrixBase<DQ>& probes) {
  static_assert(is_algorithm_v<A>, "icl::regress::predict: unknown algorithm type");
  using S = typename DX::Scalar;
  detail::check_probes(X, probes, "predict");
  if constexpr (is_linear_v<A>) {
    const Vec<S> w = fit(algo, X, y);
    Vec<S> p = probes * w;
    return p;
  } else {
    validate(algo, "predict(Knn)");
    detail::check_xy(X, y, "predict(Knn)");
    Vec<S> p(probes.rows());
    std::vector<std::pair<S, Eigen::Index>> order;
    for (Eigen::Index i = 0; i < probes.rows(); ++i)
      p(i) = detail::knn_predict<S>(algo, X, y, X.rows(), probes.row(i), order);
    return p;
  }
}

}  // namespace icl::regress
