/// @file
/// Output-level agreement: SPD, MSPD, ILWD between weight vectors and the per-dimension
/// normalisation (docs/metrics.md Eqs. (M1)-(M5)).
#pragma once

#include <Eigen/Core>
#include <type_traits>

#include "icl/core/error.hpp"
#include "icl/metrics/stat.hpp"

namespace icl::metrics {

/// SPD, docs/metrics.md Eq. (M1): the mean of (a − b)² over all entries of two prediction sets of
/// the same shape (for example the predictions of two algorithms on the same queries).
template <class DA, class DB>
double spd(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b) {
  static_assert(std::is_same_v<typename DA::Scalar, typename DB::Scalar>,
                "icl::metrics::spd: a and b must have the same scalar type");
  ICL_CHECK_ARG(a.rows() == b.rows() && a.cols() == b.cols(), "spd: b: expected the shape of a (", a.rows(),
                "x", a.cols(), "), got ", b.rows(), "x", b.cols());
  ICL_CHECK_ARG(a.size() > 0, "spd: a: expected at least one prediction, got none");
  ICL_CHECK_ARG(a.allFinite(), "spd: a: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(b.allFinite(), "spd: b: expected finite values, found NaN or Inf");
  return static_cast<double>((a - b).squaredNorm()) / static_cast<double>(a.size());
}

/// ILWD of one pair of weight vectors, docs/metrics.md Eq. (M2): ‖w1 − w2‖².
template <class DA, class DB>
double ilwd(const Eigen::MatrixBase<DA>& w1, const Eigen::MatrixBase<DB>& w2) {
  static_assert(std::is_same_v<typename DA::Scalar, typename DB::Scalar>,
                "icl::metrics::ilwd: w1 and w2 must have the same scalar type");
  ICL_CHECK_ARG(w1.cols() == 1 && w2.cols() == 1 && w1.rows() == w2.rows(),
                "ilwd: w2: expected a vector of the size of w1 (", w1.rows(), "), got ", w2.rows(), "x",
                w2.cols());
  ICL_CHECK_ARG(w1.allFinite(), "ilwd: w1: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(w2.allFinite(), "ilwd: w2: expected finite values, found NaN or Inf");
  return static_cast<double>((w1 - w2).squaredNorm());
}

/// Dimension normalisation as the paper plots it, docs/metrics.md Eq. (M5): value / d.
inline double per_dim(double value, int d) {
  ICL_CHECK_ARG(d >= 1, "per_dim: d: expected >= 1, got ", d);
  return value / d;
}

/// MSPD, docs/metrics.md Eq. (M4): SPD averaged over the under-determined region. `a` and `b`
/// are (contexts × n) online predictions, column i made after i examples; the region is the
/// columns first ≤ i < d. first = 1 (default) skips the prediction from no examples, as the
/// released code's online protocol scores positions 1..n−1 only. Returns the Stat of
/// evaluate_online's "mspd" rows: per context (row) the mean of (a_i − b_i)² over the region, then
/// mean and 95% CI over the contexts (count = rows; ci95 = 0 for one row).
/// @throws InvalidArgument for d < 1, first outside [0, d), fewer than d columns (n < d: the
///         region would be cut short; a d larger than the task's is the usual cause), shapes
///         that differ, no rows, or NaN/Inf predictions.
template <class DA, class DB>
Stat mspd(const Eigen::MatrixBase<DA>& a, const Eigen::MatrixBase<DB>& b, int d, int first = 1) {
  static_assert(std::is_same_v<typename DA::Scalar, typename DB::Scalar>,
                "icl::metrics::mspd: a and b must have the same scalar type");
  ICL_CHECK_ARG(d >= 1, "mspd: d: expected >= 1, got ", d);
  ICL_CHECK_ARG(first >= 0 && first < d, "mspd: first: expected in [0, d = ", d, "), got ", first);
  ICL_CHECK_ARG(a.cols() >= d, "mspd: a: expected online predictions after 0..", d - 1,
                " examples at least (n >= d = ", d, " columns), got ", a.cols(),
                " columns (is d the task dimension?)");
  ICL_CHECK_ARG(a.rows() == b.rows() && a.cols() == b.cols(), "mspd: b: expected the shape of a (", a.rows(),
                "x", a.cols(), "), got ", b.rows(), "x", b.cols());
  ICL_CHECK_ARG(a.rows() >= 1, "mspd: a: expected at least one context (row), got none");
  ICL_CHECK_ARG(a.allFinite(), "mspd: a: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(b.allFinite(), "mspd: b: expected finite values, found NaN or Inf");
  detail::Acc acc;
  for (Eigen::Index r = 0; r < a.rows(); ++r)
    acc.add(spd(a.row(r).segment(first, d - first), b.row(r).segment(first, d - first)));
  return acc.stat();
}

}  // namespace icl::metrics
