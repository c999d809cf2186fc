/// @file
/// k-nearest-neighbour prediction with a deterministic neighbour order (docs/regress.md
/// Eqs. (5)-(6)).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <numeric>
#include <vector>

#include "icl/regress/algorithms.hpp"

namespace icl::regress::detail {

/// Prediction of Knn `a` at the query q from the first m rows of (X, y); 0 when m == 0.
///
/// Neighbour order: ascending squared distance ‖q − x_j‖², ties broken by the smaller example
/// index j (the earlier example wins). The first min(k, m) in that order are the neighbours.
/// Uniform weights: the mean of their labels (Eq. (5)). Inverse-square weights (Eq. (6)): if
/// any neighbour has distance exactly 0, the mean of the labels of the zero-distance neighbours
/// (scikit-learn's rule for weights='distance'); otherwise Σ y_j/‖q−x_j‖² / Σ 1/‖q−x_j‖²,
/// evaluated as Σ y_j·(δ/δ_j) / Σ (δ/δ_j) with δ the smallest squared distance so that no
/// weight overflows.
///
/// `order` is scratch space (resized to m).
template <class S, class DX, class DY, class DQ>
S knn_predict(const Knn& a, const Eigen::MatrixBase<DX>& X, const Eigen::MatrixBase<DY>& y, Eigen::Index m,
              const Eigen::MatrixBase<DQ>& q, std::vector<std::pair<S, Eigen::Index>>& order) {
  if (m == 0) return S(0);
  order.resize(static_cast<std::size_t>(m));
  for (Eigen::Index j = 0; j < m; ++j) {
    order[static_cast<std::size_t>(j)] = {(X.row(j) - q).squaredNorm(), j};
  }
  const Eigen::Index k = std::min<Eigen::Index>(a.k, m);
  const auto kth = order.begin() + k;
  // pair's operator< compares (distance², index): a strict total order, so the result is unique.
  std::partial_sort(order.begin(), kth, order.end());
  if (a.weights == KnnWeights::uniform) {
    S sum(0);
    for (auto it = order.begin(); it != kth; ++it) sum += y(it->second);
    return sum / static_cast<S>(k);
  }
  const S delta = order.front().first;  // smallest squared distance
  if (delta == S(0)) {
    S sum(0);
    Eigen::Index cnt = 0;
    for (auto it = order.begin(); it != kth && it->first == S(0); ++it, ++cnt) sum += y(it->second);
    return sum / static_cast<S>(cnt);
  }
  S num(0), den(0);
  for (auto it = order.begin(); it != kth; ++it) {
    const S wgt = delta / it->first;
    num += wgt * y(it->second);
    den += wgt;
  }
  return num / den;
}

}  // namespace icl::regress::detail
