/// @file
/// Direct reference formulas for the regress and metrics tests: fresh SVD solves, closed forms,
/// brute-force k-NN, Gaussian test data.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>
#include <vector>

#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"

namespace icl::test {

/// n×d matrix of N(0, 1) entries (drawn in double, rounded to S).
template <class S>
Mat<S> gaussian(Eigen::Index n, Eigen::Index d, Rng& rng) {
  Mat<S> m(n, d);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < d; ++j) m(i, j) = static_cast<S>(rng.normal());
  return m;
}

/// Minimum-norm least squares by a fresh SVD: w = V Σ⁺ Uᵀ y, singular values below
/// max(n, d)·eps·σ_max treated as zero (numpy.linalg.lstsq's default rcond).
template <class S>
Vec<S> svd_min_norm(const Mat<S>& X, const Vec<S>& y) {
  if (X.rows() == 0) return Vec<S>::Zero(X.cols());
  Eigen::JacobiSVD<Mat<S>> svd(X, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec<S>& s = svd.singularValues();
  const S tol = static_cast<S>(std::max(X.rows(), X.cols())) * std::numeric_limits<S>::epsilon() * s(0);
  Vec<S> uty = svd.matrixU().transpose() * y;
  for (Eigen::Index k = 0; k < s.size(); ++k) uty(k) = s(k) > tol ? uty(k) / s(k) : S(0);
  return svd.matrixV() * uty;
}

/// Ridge by its closed form (XᵀX + λI)⁻¹Xᵀy, solved in long double (reference only).
template <class S>
Vec<S> ridge_closed_form(const Mat<S>& X, const Vec<S>& y, double lambda) {
  const Mat<long double> Xl = X.template cast<long double>();
  Mat<long double> A = Xl.transpose() * Xl;
  A.diagonal().array() += static_cast<long double>(lambda);
  const Vec<long double> b = Xl.transpose() * y.template cast<long double>();
  const Vec<long double> w = A.ldlt().solve(b);
  return w.template cast<S>();
}

/// k-NN by a full stable sort of all distances (reference for the partial-sort implementation).
template <class S>
S knn_brute(int k, bool inverse_square, const Mat<S>& X, const Vec<S>& y, const Vec<S>& q) {
  const Eigen::Index m = X.rows();
  if (m == 0) return S(0);
  std::vector<Eigen::Index> idx(static_cast<std::size_t>(m));
  std::iota(idx.begin(), idx.end(), Eigen::Index{0});
  std::vector<long double> dist(static_cast<std::size_t>(m));
  for (Eigen::Index j = 0; j < m; ++j) {
    long double s = 0;
    for (Eigen::Index c = 0; c < X.cols(); ++c) {
      const long double t = static_cast<long double>(X(j, c)) - static_cast<long double>(q(c));
      s += t * t;
    }
    dist[static_cast<std::size_t>(j)] = s;
  }
  std::stable_sort(idx.begin(), idx.end(), [&](Eigen::Index a, Eigen::Index b) {
    return dist[static_cast<std::size_t>(a)] < dist[static_cast<std::size_t>(b)];
  });
  const auto kk = static_cast<std::size_t>(std::min<Eigen::Index>(k, m));
  long double num = 0, den = 0;
  bool zero = dist[static_cast<std::size_t>(idx[0])] == 0;
  for (std::size_t t = 0; t < kk; ++t) {
    const long double dj = dist[static_cast<std::size_t>(idx[t])];
    long double wgt = 1;
    if (inverse_square) wgt = zero ? (dj == 0 ? 1 : 0) : 1 / dj;
    num += wgt * static_cast<long double>(y(idx[t]));
    den += wgt;
  }
  return static_cast<S>(num / den);
}

/// Relative difference ‖a − b‖ / max(‖b‖, floor).
template <class A, class B>
double rel_err(const A& a, const B& b, double floor = 1e-300) {
  return static_cast<double>((a - b).norm()) / std::max(static_cast<double>(b.norm()), floor);
}

}  // namespace icl::test
