/// @file
/// Central finite-difference gradient checks for hand-written backward passes (double precision).
///
/// Step: h_k = cbrt(eps) · max(1, |θ_k|) ≈ 6.1e-6 · max(1, |θ_k|) with eps = 2^-52. The central
/// difference has truncation error h²/6 · |f'''| and rounding error about eps·|f|/h; this h
/// balances the two (both ~1e-11 relative for O(1) objectives), far below the 1e-6 acceptance.
/// Errors are reported per tensor, norm-wise: ||g − g_fd|| / max(||g||, ||g_fd||, tiny).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "icl/nn/param.hpp"

namespace icl::test {

/// The finite-difference step for a coordinate of value v (see the file comment).
inline double fd_step(double v) {
  return std::cbrt(std::numeric_limits<double>::epsilon()) * std::max(1.0, std::abs(v));
}

/// Central-difference gradient of f() w.r.t. the n values at x (perturbed in place, restored).
template <class F>
Eigen::VectorXd numeric_gradient(double* x, Eigen::Index n, F&& f) {
  Eigen::VectorXd g(n);
  for (Eigen::Index k = 0; k < n; ++k) {
    const double v = x[k], h = fd_step(v);
    x[k] = v + h;
    const double fp = f();
    x[k] = v - h;
    const double fm = f();
    x[k] = v;
    g(k) = (fp - fm) / (2 * h);
  }
  return g;
}

/// Norm-wise relative error of a against b (0 when both vanish).
inline double relative_error(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const double scale = std::max({a.norm(), b.norm(), 1e-300});
  return (a - b).norm() / scale;
}

/// One tensor's check result.
struct FdError {
  std::string name;
  double rel_error;
  double grad_norm;
};

/// For every parameter: relative error of its stored gradient (p.grad, filled by the caller's
/// backward for the same objective) against central differences of f().
template <class F>
std::vector<FdError> check_param_gradients(const std::vector<nn::ParamView<double>>& ps, F&& f) {
  std::vector<FdError> out;
  for (const auto& p : ps) {
    const Eigen::VectorXd analytic = Eigen::Map<const Eigen::VectorXd>(p.grad, p.size());
    const Eigen::VectorXd numeric = numeric_gradient(p.value, p.size(), f);
    out.push_back({p.name, relative_error(analytic, numeric), analytic.norm()});
  }
  return out;
}

/// Relative error of an analytic input gradient against central differences of f() w.r.t. x.
template <class Derived, class F>
double check_input_gradient(Eigen::PlainObjectBase<Derived>& x, const Eigen::MatrixBase<Derived>& analytic,
                            F&& f) {
  const Eigen::VectorXd numeric = numeric_gradient(x.data(), x.size(), f);
  const Eigen::VectorXd a = Eigen::Map<const Eigen::VectorXd>(analytic.derived().data(), analytic.size());
  return relative_error(a, numeric);
}

}  // namespace icl::test
