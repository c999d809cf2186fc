/// @file
/// The online protocol: online_predictions(algo, X, y) -> p with p(i) the prediction for X.row(i)
/// from examples 0..i-1 only (p(0) = 0, the prior mean), computed with incremental updates
/// instead of a refit per prefix (docs/regress.md §3).
#pragma once

#include <Eigen/Core>
#include <type_traits>
#include <vector>

#include "icl/core/storage.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/detail/incremental_ls.hpp"
#include "icl/regress/fit.hpp"
#include "icl/regress/knn.hpp"

namespace icl::regress {

namespace detail {

/// Calls f(i, w_i) for i = 0..n-1 where w_i (a Vec<S> of d entries) are the weights of `algo`
/// after examples 0..i-1 (w_0 = 0). Cost per prefix: Ols/Ridge O(d²) (Eqs. (8)-(11)), Gd with
/// steps == 1, Sgd, Averaging O(d), Gd with s steps O(s·d²).
template <class S, class DX, class DY, class F>
void online_visit(const Ols&, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, F&& f) {
  IncrementalLs<S> ls(X.cols(), 0.0);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    f(i, ls.weights());
    ls.add(X.row(i).transpose(), y(i));
  }
}

template <class S, class DX, class DY, class F>
void online_visit(const Ridge& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, F&& f) {
  IncrementalLs<S> ls(X.cols(), a.lambda);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    f(i, ls.weights());
    ls.add(X.row(i).transpose(), y(i));
  }
}

template <class S, class DX, class DY, class F>
void online_visit(const Gd& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, F&& f) {
  const Eigen::Index d = X.cols();
  const S two_lr = static_cast<S>(2 * a.lr), lam = static_cast<S>(a.lambda);
  Vec<S> b = Vec<S>::Zero(d), w = Vec<S>::Zero(d), g(d);
  Mat<S> A;
  if (a.steps > 1) A = Mat<S>::Zero(d, d);
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    // Eq. (3): w_i from the running moments A = XᵀX, b = Xᵀy (rank-one updates).
    w = two_lr * b;
    for (int s = 1; s < a.steps; ++s) {
      g.head(g.size()) = lam * w - b;  // a block target never resizes
      g.noalias() += A * w;
      w -= two_lr * g;
    }
    f(i, w);
    b += y(i) * X.row(i).transpose();
    if (a.steps > 1) A.noalias() += X.row(i).transpose() * X.row(i);
  }
}

template <class S, class DX, class DY, class F>
void online_visit(const Sgd& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, F&& f) {
  const S two_lr = static_cast<S>(2 * a.lr), lam = static_cast<S>(a.lambda);
  Vec<S> w = Vec<S>::Zero(X.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    f(i, w);
    const S r = X.row(i).dot(w) - y(i);  // Eq. (4)
    w *= S(1) - two_lr * lam;            // compound assignments: GCC 12 -Wuse-after-free misfires on resize
    w.noalias() -= (two_lr * r) * X.row(i).transpose();
  }
}

template <class S, class DX, class DY, class F>
void online_visit(const Averaging&, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, F&& f) {
  Vec<S> b = Vec<S>::Zero(X.cols()), w = Vec<S>::Zero(X.cols());
  for (Eigen::Index i = 0; i < X.rows(); ++i) {
    if (i > 0) w.head(w.size()) = b / static_cast<S>(i);  // Eq. (7); block target: no resize
    f(i, w);
    b += y(i) * X.row(i).transpose();
  }
}

}  // namespace detail

/// The weights of a linear algorithm after every prefix: column i (of n) holds the weights
/// fitted on examples 0..i-1 (column 0 is 0). d×n.
template <class A, class DX, class DY>
Mat<typename DX::Scalar> online_weights(const A& algo, const Eigen::MatrixBase<DX>& X,
                                        const Eigen::MatrixBase<DY>& y) {
  static_assert(is_linear_v<A>, "icl::regress::online_weights: the algorithm must be linear (not Knn)");
  using S = typename DX::Scalar;
  validate(algo, "online_weights");
  detail::check_xy(X, y, "online_weights");
  Mat<S> W(X.cols(), X.rows());
  detail::online_visit<S>(algo, X, y, [&](Eigen::Index i, const Vec<S>& w) { W.col(i) = w; });
  return W;
}

/// The online predictions p (n entries): p(i) = prediction for X.row(i) by `algo` trained on
/// examples 0..i-1 only; p(0) = 0 (no examples: the prior mean).
template <class A, class DX, class DY>
Vec<typename DX::Scalar> online_predictions(const A& algo, const Eigen::MatrixBase<DX>& X,
                                            const Eigen::MatrixBase<DY>& y) {
  static_assert(is_algorithm_v<A>, "icl::regress::online_predictions: unknown algorithm type");
  using S = typename DX::Scalar;
  validate(algo, "online_predictions");
  detail::check_xy(X, y, "online_predictions");
  Vec<S> p(X.rows());
  if constexpr (std::is_same_v<A, Ols> || std::is_same_v<A, Ridge>) {
    // Eq. (11c): in full mode the prediction for example i comes out of the rotation sweep that
    // adds it; otherwise (OLS below full rank, or a tiny γ) from the weights before adding it.
    double lambda = 0;
    if constexpr (std::is_same_v<A, Ridge>) lambda = algo.lambda;
    detail::IncrementalLs<S> ls(X.cols(), lambda);
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      S pi = S(0);
      if (i == 0) {
        ls.add(X.row(i).transpose(), y(i));  // p(0) = 0 exactly (no examples: the prior mean)
      } else if (!ls.full()) {
        pi = X.row(i).dot(ls.weights());
        ls.add(X.row(i).transpose(), y(i));
      } else if (!ls.add_predict(X.row(i).transpose(), y(i), pi)) {
        // γ too small (rare): the factor before example i is gone, so solve that prefix afresh.
        pi = predict(algo, X.topRows(i), y.head(i), X.row(i))(0);
      }
      p(i) = pi;
    }
  } else if constexpr (is_linear_v<A>) {
    detail::online_visit<S>(algo, X, y, [&](Eigen::Index i, const Vec<S>& w) { p(i) = X.row(i).dot(w); });
  } else {
    std::vector<std::pair<S, Eigen::Index>> order;
    for (Eigen::Index i = 0; i < X.rows(); ++i) p(i) = detail::knn_predict<S>(algo, X, y, i, X.row(i), order);
  }
  return p;
}

/// The naive reference protocol: a fresh predict(algo, X[0:i], y[0:i], X.row(i)) per prefix.
/// O(n) solves; for tests and as the benchmark baseline.
template <class A, class DX, class DY>
Vec<typename DX::Scalar> refit_predictions(const A& algo, const Eigen::MatrixBase<DX>& X,
                                           const Eigen::MatrixBase<DY>& y) {
  static_assert(is_algorithm_v<A>, "icl::regress::refit_predictions: unknown algorithm type");
  using S = typename DX::Scalar;
  validate(algo, "refit_predictions");
  detail::check_xy(X, y, "refit_predictions");
  Vec<S> p(X.rows());
  for (Eigen::Index i = 0; i < X.rows(); ++i) p(i) = predict(algo, X.topRows(i), y.head(i), X.row(i))(0);
  return p;
}

}  // namespace icl::regress
