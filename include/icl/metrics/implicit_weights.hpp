/// @file
/// Implicit linear weights of any predictor: the least-squares linear fit of its outputs on
/// probe inputs, and the R² of that fit (docs/metrics.md Eqs. (M3), (M6)).
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::metrics {

/// The result of an implicit-weights fit.
template <class S>
struct ImplicitFit {
  Eigen::Matrix<S, Eigen::Dynamic, 1> w;  ///< d fitted weights ŵ
  S intercept = S(0);                     ///< fitted intercept b (0 without the intercept option)
  double r2 = 1;                          ///< coefficient of determination of the fit, Eq. (M6)
};

/// Least-squares fit ŷ ≈ probes·w (+ b), docs/metrics.md Eq. (M3): the minimum-norm solution by
/// a complete orthogonal decomposition (so fewer probes than unknowns still gives an answer).
/// probes is m×d (one probe per row), predictions has m entries. With intercept = true a
/// column of ones is appended, as the authors' released code did (sklearn LinearRegression with
/// fit_intercept=True). R² = 1 − SS_res/SS_tot with SS_tot around the mean of the predictions
/// (sklearn's r2_score; if SS_tot = 0 it is 1 for a fit exact up to rounding, i.e.
/// SS_res <= m·(8·eps·max|ŷ|)², else 0).
template <class DQ, class DP>
ImplicitFit<typename DQ::Scalar> implicit_fit(const Eigen::MatrixBase<DQ>& probes,
                                              const Eigen::MatrixBase<DP>& predictions,
                                              bool intercept = false) {
  using S = typename DQ::Scalar;
  static_assert(std::is_same_v<S, typename DP::Scalar>,
                "icl::metrics::implicit_fit: probes and predictions must have the same scalar type");
  const Eigen::Index m = probes.rows(), d = probes.cols();
  ICL_CHECK_ARG(m >= 1 && d >= 1, "implicit_fit: probes: expected m >= 1 probes of d >= 1 inputs, got ", m,
                "x", d);
  ICL_CHECK_ARG(predictions.cols() == 1 && predictions.rows() == m,
                "implicit_fit: predictions: expected a vector of m = ", m, " entries (probes.rows()), got ",
                predictions.rows(), "x", predictions.cols());
  ICL_CHECK_ARG(probes.allFinite(), "implicit_fit: probes: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(predictions.allFinite(),
                "implicit_fit: predictions: expected finite values, found NaN or Inf");
  Mat<S> A(m, d + (intercept ? 1 : 0));
  A.leftCols(d) = probes;
  if (intercept) A.col(d).setOnes();
  const Vec<S> yhat = predictions;
  const Eigen::CompleteOrthogonalDecomposition<Mat<S>> cod(A);
  const Vec<S> coef = cod.solve(yhat);
  ImplicitFit<S> out;
  out.w = coef.head(d);
  if (intercept) out.intercept = coef(d);
  Vec<S> resid = yhat;
  resid.noalias() -= A * coef;
  const double ss_res = static_cast<double>(resid.squaredNorm());
  const double ss_tot = static_cast<double>((yhat.array() - yhat.mean()).matrix().squaredNorm());
  // SS_tot = 0 (a constant predictor): 1 for a fit exact up to rounding, else 0 (Eq. (M6))
  const double eps = static_cast<double>(std::numeric_limits<S>::epsilon());
  const double round_floor =
      static_cast<double>(m) * std::pow(8 * eps * static_cast<double>(yhat.cwiseAbs().maxCoeff()), 2);
  out.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : (ss_res <= round_floor ? 1.0 : 0.0);
  return out;
}

/// ŵ_A of docs/metrics.md Eq. (M3) for any predictor: calls predictor(probes) (m×d in, m
/// predictions out) and fits them with implicit_fit.
template <class F, class DQ>
ImplicitFit<typename DQ::Scalar> implicit_weights(F&& predictor, const Eigen::MatrixBase<DQ>& probes,
                                                  bool intercept = false) {
  using S = typename DQ::Scalar;
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> P = probes;
  const Eigen::Matrix<S, Eigen::Dynamic, 1> yhat = std::forward<F>(predictor)(P);
  return implicit_fit(P, yhat, intercept);
}

}  // namespace icl::metrics
