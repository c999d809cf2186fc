/// @file
/// Incremental least squares by Givens row updates of a triangular factor, with a growing
/// orthonormal basis of the row space for minimum-norm OLS (docs/regress.md §2, Eqs. (8)-(12)).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::regress::detail {

/// Adds examples (x, y) one at a time and keeps the least-squares solution after every example.
///
/// Full mode (ridge, lambda > 0): R is the d×d triangular factor of [√λ I; X], z = Qᵀ[0; y]
/// (Eq. (8)): each example is one sweep of d Givens rotations, O(d²).
///
/// Minimum-norm mode (lambda == 0): a basis U (d×r, orthonormal columns) of the span of the rows
/// seen, grown by Gram-Schmidt with one re-orthogonalisation pass ("twice is enough"), and the
/// r×r triangular factor R of the coordinates X·U (Eqs. (9)-(10)). A new row x has coordinates
/// c = Uᵀx and residual v = x − Uc; if ‖v‖ > tol (Eq. (12)) it adds the direction v/‖v‖ (rank
/// grows, a new zero column of R), otherwise the residual is dropped (rank-deficient data). The
/// row [c; ‖v‖] is then rotated into R. The min-norm solution is w = U R⁻¹ z (Eq. (11)). Once
/// r = d, U is square: the factor is carried back to the original coordinates once (the rows of
/// R·Uᵀ rotated into a fresh factor, O(d³) once, Eq. (11b)) and the solver continues in full mode
/// without U. Cost per example O(d²), memory O(d²).
///
/// R is stored transposed (L = Rᵀ, column-major) so that a row of R is contiguous.
template <class S>
class IncrementalLs {
 public:
  using Mat = icl::Mat<S>;
  using Vec = icl::Vec<S>;

  /// d >= 1, lambda >= 0 (validated by the caller).
  IncrementalLs(Eigen::Index d, double lambda)
      : d_(d),
        full_(lambda > 0),
        L_(Mat::Zero(d, d)),
        z_(Vec::Zero(d)),
        a_(d),
        w_(Vec::Zero(d)),
        dinv_(Vec::Zero(d)) {
    if (full_) {
      L_.diagonal().setConstant(static_cast<S>(std::sqrt(lambda)));
      dinv_.setConstant(S(1) / static_cast<S>(std::sqrt(lambda)));
      r_ = d;
    } else {
      U_.setZero(d, d);
      c_.resize(d);
      v_.resize(d);
    }
  }

  /// Adds one example; x has d entries.
  template <class Derived>
  void add(const Eigen::MatrixBase<Derived>& x, S y) {
    ICL_ASSERT(x.size() == d_, "IncrementalLs::add: x has the wrong size");
    if (full_) {
      a_ = x.transpose();
      rotate_in(d_, y);
      return;
    }
    const S xnorm = x.norm();
    max_row_norm_ = std::max(max_row_norm_, xnorm);
    if (r_ > 0) {
      // Classical Gram-Schmidt, twice (Giraud et al. 2005: CGS2 keeps ‖I − UᵀU‖ = O(eps)).
      c_.head(r_).noalias() = U_.leftCols(r_).transpose() * x;
      v_ = x;
      v_.noalias() -= U_.leftCols(r_) * c_.head(r_);
      a_.head(r_).noalias() = U_.leftCols(r_).transpose() * v_;
      v_.noalias() -= U_.leftCols(r_) * a_.head(r_);
      c_.head(r_) += a_.head(r_);
    } else {
      v_ = x;
    }
    const S rho = v_.norm();
    // Rank tolerance, Eq. (12): a residual below 16·d·eps·max‖x_j‖ is rounding.
    const S tol = S(16) * static_cast<S>(d_) * std::numeric_limits<S>::epsilon() * max_row_norm_;
    a_.head(r_) = c_.head(r_);
    if (rho > tol && rho > S(0)) {
      U_.col(r_) = v_ / rho;
      a_(r_) = rho;
      ++r_;
    }
    rotate_in(r_, y);
    if (r_ == d_) to_full();
  }

  /// The current solution (d entries): w = U R⁻¹ z (min-norm) or R⁻¹ z (full). Zero before any
  /// example.
  const Vec& weights() {
    if (r_ == 0) {
      w_.setZero();
      return w_;
    }
    if (full_) {
      back_substitute(w_);
    } else {
      back_substitute(a_);
      w_.noalias() = U_.leftCols(r_) * a_.head(r_);
    }
    return w_;
  }

  /// Adds (x, y) and, in full mode (ridge, or OLS at full rank), returns in p the a-priori
  /// prediction xᵀw of the solution BEFORE this example, read off the rotation sweep (Eq. (11c)):
  /// the sweep leaves ỹ = γ·(y − xᵀw) with γ = Π_k c_k, so xᵀw = y − ỹ/γ with no solve. Returns
  /// false (p untouched; the example is still added) in min-norm mode, or when γ is so small
  /// (x dominates the factor by ~1/√eps) that ỹ/γ would amplify rounding: the caller then
  /// predicts another way.
  template <class Derived>
  bool add_predict(const Eigen::MatrixBase<Derived>& x, S y, S& p) {
    if (!full_) {
      add(x, y);
      return false;
    }
    ICL_ASSERT(x.size() == d_, "IncrementalLs::add_predict: x has the wrong size");
    a_ = x.transpose();
    S gamma = S(1);
    const S y_left = rotate_in(d_, y, &gamma);
    if (!(gamma >= min_gamma())) return false;
    p = y - y_left / gamma;
    return true;
  }

  /// True once the factor is in the original coordinates (ridge, or OLS at full rank).
  bool full() const { return full_; }

  /// Numerical rank of the rows seen (d in full mode).
  Eigen::Index rank() const { return r_; }

 private:
  // t(0..r-1) = R⁻¹ z with R = Lᵀ: t_k = (z_k − Σ_{j>k} L(j,k) t_j) / L(k,k), column k of L
  // contiguous (Eq. (11)); 1 / L(k,k) is kept by the rotations (dinv_), so no division here.
  void back_substitute(Vec& t) const {
    S* tp = t.data();
    for (Eigen::Index k = r_ - 1; k >= 0; --k) {
      const S* lk = L_.col(k).data();
      S acc = z_(k);
      for (Eigen::Index j = k + 1; j < r_; ++j) acc -= lk[j] * tp[j];
      tp[k] = acc * dinv_(k);
    }
  }

  // sqrt(a² + b²) without std::hypot's cost; falls back to it when the squares over/underflow.
  static S hyp(S a, S b) {
    const S h = std::sqrt(a * a + b * b);
    if (h > std::numeric_limits<S>::min() * S(1e4) && h < std::numeric_limits<S>::max() / S(4)) return h;
    return std::hypot(a, b);
  }

  // One sweep of Givens rotations zeroing a_(0..r-1) against the rows of R (Eq. (8)); y rides
  // along in z. What is left of y is the residual of the new example and is dropped.
  // gamma (optional) is multiplied by the cosines; returns what is left of y.
  S rotate_in(Eigen::Index r, S y, S* gamma = nullptr) {
    S g = S(1);
    for (Eigen::Index k = 0; k < r; ++k) {
      const S ak = a_(k);
      if (ak == S(0)) continue;
      const S rkk = L_(k, k);
      const S h = hyp(rkk, ak);
      const S inv = S(1) / h;  // one division per rotation; it is also the new 1 / L(k,k)
      const S c = rkk * inv, s = ak * inv;
      L_(k, k) = h;
      dinv_(k) = inv;
      S* lk = L_.col(k).data();
      S* a = a_.data();
      for (Eigen::Index j = k + 1; j < r; ++j) {
        const S lj = lk[j], aj = a[j];
        lk[j] = c * lj + s * aj;
        a[j] = c * aj - s * lj;
      }
      const S zk = z_(k);
      z_(k) = c * zk + s * y;
      y = c * y - s * zk;
      g *= c;
    }
    if (gamma) *gamma *= g;
    return y;
  }

  // Eq. (11b): r = d, so min ‖R t − z‖ with w = U t is min ‖(R Uᵀ) w − z‖: rotate the rows of
  // R·Uᵀ (the columns of U·L) with z into a fresh factor and drop U.
  void to_full() {
    const Mat M_t = U_ * L_;  // columns = rows of R·Uᵀ (L_ is zero above its diagonal)
    const Vec z = z_;
    L_.setZero();
    z_.setZero();
    full_ = true;
    for (Eigen::Index k = 0; k < d_; ++k) {
      a_.head(d_) = M_t.col(k);
      rotate_in(d_, z(k));
    }
    dinv_ = L_.diagonal().cwiseInverse();  // a skipped rotation (a_k = 0) left dinv_(k) stale
    U_.resize(0, 0);
  }

  // Below γ = √eps the a-priori prediction of add_predict is not used. ỹ/γ multiplies the
  // rounding of ỹ (≈ eps·‖[z; y]‖) by 1/γ = √(1 + ‖R⁻ᵀx‖²), the same factor a substitution
  // xᵀR⁻¹z would suffer; for γ ≥ √eps that error stays ≤ √eps·‖[z; y]‖. Smaller γ means x
  // dominates everything seen so far by a factor ≥ 1/√eps: rare, and the caller then solves.
  static S min_gamma() { return std::sqrt(std::numeric_limits<S>::epsilon()); }

  Eigen::Index d_;
  bool full_;
  Eigen::Index r_ = 0;
  S max_row_norm_ = S(0);
  Mat L_;
  Vec z_, a_, w_;
  Vec dinv_;  // 1 / L(k,k) for k < r
  Mat U_;
  Vec c_, v_;
};

}  // namespace icl::regress::detail
