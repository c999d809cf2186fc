/// @file
/// Argument types of the nn layers: every layer takes and writes sequences through dynamic
/// Eigen::Ref views (any matrix, Map or column block binds without a copy), so that the large
/// products instantiate once per scalar type instead of once per compile-time size.
#pragma once

#include <Eigen/Core>

#include "icl/core/storage.hpp"

namespace icl::nn {

/// Read-only view of a sequence or batch (rows = features, columns = tokens).
template <class S>
using In = Eigen::Ref<const Mat<S>>;
/// Writable view of a preallocated sequence or batch.
template <class S>
using Out = Eigen::Ref<Mat<S>>;

namespace detail {
/// A heap-stored fixed-shape weight seen as a dynamic-size matrix (for products).
template <class S>
Eigen::Map<const Mat<S>> dyn(const S* p, Eigen::Index r, Eigen::Index c) {
  return Eigen::Map<const Mat<S>>(p, r, c);
}

/// The first `cols` columns of a backward scratch matrix `m` with `rows` rows, growing `m` when it is
/// narrower (or has other rows) and never shrinking it: a block's tiles of different widths then
/// share one buffer without reallocating (PreLNBlock::backward).
template <class MatT>
Out<typename MatT::Scalar> scratch_cols(MatT& m, Eigen::Index rows, Eigen::Index cols) {
  if (m.rows() != rows || m.cols() < cols) m.resize(rows, cols);
  return m.leftCols(cols);
}
}  // namespace detail

}  // namespace icl::nn
