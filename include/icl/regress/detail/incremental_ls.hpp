/// @file
/// Incremental least squares by Givens row updates of a triangular factor, with a growing
/// orthonormal basis of the row space for minimum-norm OLS (docs/regress.md §3, Eqs. (8)-(11)).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>

#include "icl/core/error.hpp"

namespace icl::regress::detail {

/// Adds examples (x, y) one at a time and keeps the least-squares solution after every example.
///
/// Ridge mode (lambda > 0): R is the d×d triangular factor of [X; √λ I], z = Qᵀ[y; 0] (Eq. (8)):
/// each example is one sweep of d Givens rotations, O(d²).
///
/// Minimum-norm mode (lambda == 0): a basis U (d×r, orthonormal columns) of the span of the rows
/// seen, grown by Gram-Schmidt with one re-orthogonalisation pass ("twice is enough"), and the
/// r×r triangular factor R of the coordinates X·U (Eqs. (9)-(10)). A new row x has coordinates
/// c = Uᵀx and residual v = x − Uc; if ‖v‖ > tol it adds the direction v/‖v‖ (rank grows, a new
/// zero column of R), otherwise the residual is dropped (rank-deficient data). The row [c; ‖v‖]
/// is then rotated into R. The min-norm solution is w = U R⁻¹ z (Eq. (11)): X·U has full column
/// rank r, and any w component outside span(U) would add norm without changing the fit.
/// Cost per example O(d·r + r²) <= O(d²), memory O(d²).
template <class S>
class IncrementalLs {
 public:
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;
  using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;

  /// d >= 1, lambda >= 0 (validated by the caller).
  IncrementalLs(Eigen::Index d, double lambda)
      : d_(d),
        ridge_(lambda > 0),
        R_(Mat::Zero(d, d)),
        z_(Vec::Zero(d)),
        a_(d),
        t_(Vec::Zero(d)),
        w_(Vec::Zero(d)) {
    if (ridge_) {
      R_.diagonal().setConstant(static_cast<S>(std::sqrt(lambda)));
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
    if (ridge_) {
      a_ = x.transpose();
      rotate_in(r_, y);
      return;
    }
    const S xnorm = x.norm();
    max_row_norm_ = std::max(max_row_norm_, xnorm);
    Eigen::Index r_new = r_;
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
    // Rank tolerance (docs/regress.md Eq. (12)): a residual below 16·d·eps·max‖x_j‖ is rounding.
    const S tol = S(16) * static_cast<S>(d_) * std::numeric_limits<S>::epsilon() * max_row_norm_;
    if (r_ < d_ && rho > tol && rho > S(0)) {
      U_.col(r_) = v_ / rho;
      r_new = r_ + 1;
    }
    a_.head(r_) = c_.head(r_);
    if (r_new > r_) a_(r_) = rho;
    r_ = r_new;
    rotate_in(r_, y);
  }

  /// The current solution (d entries): w = U R⁻¹ z (min-norm) or R⁻¹ z (ridge). Zero before any
  /// example.
  const Vec& weights() {
    if (r_ == 0) {
      w_.setZero();
      return w_;
    }
    t_.head(r_) = R_.topLeftCorner(r_, r_).template triangularView<Eigen::Upper>().solve(z_.head(r_));
    if (ridge_) {
      w_ = t_;
    } else {
      w_.noalias() = U_.leftCols(r_) * t_.head(r_);
    }
    return w_;
  }

  /// Numerical rank of the rows seen (d in ridge mode).
  Eigen::Index rank() const { return r_; }

 private:
  // One sweep of Givens rotations zeroing a_(0..r-1) against the rows of R (Eq. (8)); y rides
  // along in z. What is left of y is the residual of the new example and is dropped.
  void rotate_in(Eigen::Index r, S y) {
    for (Eigen::Index k = 0; k < r; ++k) {
      const S ak = a_(k);
      if (ak == S(0)) continue;
      const S rkk = R_(k, k);
      const S h = std::hypot(rkk, ak);
      const S c = rkk / h, s = ak / h;
      R_(k, k) = h;
      for (Eigen::Index j = k + 1; j < r; ++j) {
        const S rj = R_(k, j), aj = a_(j);
        R_(k, j) = c * rj + s * aj;
        a_(j) = c * aj - s * rj;
      }
      const S zk = z_(k);
      z_(k) = c * zk + s * y;
      y = c * y - s * zk;
    }
  }

  Eigen::Index d_;
  bool ridge_;
  Eigen::Index r_ = 0;
  S max_row_norm_ = S(0);
  Mat R_;
  Vec z_, a_, t_, w_;
  Mat U_;
  Vec c_, v_;
};

}  // namespace icl::regress::detail
