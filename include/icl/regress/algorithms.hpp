/// @file
/// The reference regressors of the paper (§4 of docs/regress.md): parameter structs, their
/// validation, display names and the BayesRidge factory.
#pragma once

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "icl/core/error.hpp"

namespace icl::regress {

/// Minimum-norm ordinary least squares: w = X⁺y (docs/regress.md Eq. (1)).
struct Ols {};

/// Ridge regression, w = (XᵀX + λI)⁻¹Xᵀy, lambda >= 0 (docs/regress.md Eq. (2)); lambda = 0 is Ols.
struct Ridge {
  double lambda;  ///< λ >= 0, the L2 penalty on ‖w‖² (finite)
};

/// `steps` full-batch gradient steps from w0 = 0 on Σ(wᵀx_j − y_j)² + λ‖w‖²:
/// w ← w − 2·lr·(XᵀXw − Xᵀy + λw) (docs/regress.md Eq. (3)). Gd{lr} is w = 2·lr·Xᵀy.
struct Gd {
  double lr;          ///< step size (> 0, finite): w ← w − 2·lr·(XᵀXw − Xᵀy + λw)
  int steps = 1;      ///< number of full-batch steps (>= 1)
  double lambda = 0;  ///< λ >= 0, the L2 penalty on ‖w‖² (finite)
};

/// One pass of SGD with batch size 1, in order, from w0 = 0:
/// w ← w − 2·lr·(x xᵀw − y x + λw) (docs/regress.md Eq. (4)).
struct Sgd {
  double lr;          ///< step size (> 0, finite); one update per example
  double lambda = 0;  ///< λ >= 0, the L2 penalty on ‖w‖² (finite)
};

/// Neighbour weights of Knn: uniform, or proportional to 1/‖x − x_j‖² (docs/regress.md Eq. (6)).
enum class KnnWeights { uniform, inverse_square };

/// k nearest neighbours among the examples seen (k = min(k, n)); docs/regress.md Eqs. (5)-(6).
struct Knn {
  int k = 3;  ///< number of neighbours (>= 1); fewer than k examples use all of them
  KnnWeights weights = KnnWeights::uniform;  ///< how the k neighbours' labels are averaged (Eq. (5) or (6))
};

/// The averaging estimator w = Xᵀy / n (docs/regress.md Eq. (7)).
struct Averaging {};

/// The Bayes-optimal predictor for w ~ N(0, τ²I) and noise N(0, σ²): Ridge{σ²/τ²}
/// (docs/regress.md Eq. (2b)). sigma >= 0, tau > 0.
inline Ridge BayesRidge(double sigma, double tau) {
  check_finite_scalar(sigma, "BayesRidge: sigma");
  check_finite_scalar(tau, "BayesRidge: tau");
  ICL_CHECK_ARG(sigma >= 0, "BayesRidge: sigma: expected >= 0, got ", sigma);
  ICL_CHECK_ARG(tau > 0, "BayesRidge: tau: expected > 0, got ", tau);
  return Ridge{(sigma * sigma) / (tau * tau)};
}

/// True for the algorithms whose hypothesis is linear (fit() returns their weights).
template <class A>
inline constexpr bool is_linear_v =
    std::is_same_v<A, Ols> || std::is_same_v<A, Ridge> || std::is_same_v<A, Gd> || std::is_same_v<A, Sgd> ||
    std::is_same_v<A, Averaging>;

/// True for every algorithm of this header.
template <class A>
inline constexpr bool is_algorithm_v = is_linear_v<A> || std::is_same_v<A, Knn>;

// --- validation: throws InvalidArgument naming the field ---------------------------------------

/// No-op (Ols has no parameters); lets generic code validate any algorithm.
inline void validate(const Ols&, const char* = "") {}
/// No-op: Averaging has no parameters.
inline void validate(const Averaging&, const char* = "") {}

/// Throws icl::InvalidArgument (`"<where>: lambda: …"`) unless lambda is finite and >= 0.
inline void validate(const Ridge& a, const char* where = "Ridge") {
  ICL_CHECK_ARG(std::isfinite(a.lambda) && a.lambda >= 0, where,
                ": lambda: expected a finite value >= 0, got ", a.lambda);
}

/// Throws icl::InvalidArgument naming the field unless lr is finite and > 0, steps >= 1, and
/// lambda is finite and >= 0.
inline void validate(const Gd& a, const char* where = "Gd") {
  ICL_CHECK_ARG(std::isfinite(a.lr) && a.lr > 0, where, ": lr: expected a finite value > 0, got ", a.lr);
  ICL_CHECK_ARG(a.steps >= 1, where, ": steps: expected >= 1, got ", a.steps);
  ICL_CHECK_ARG(std::isfinite(a.lambda) && a.lambda >= 0, where,
                ": lambda: expected a finite value >= 0, got ", a.lambda);
}

/// Throws icl::InvalidArgument naming the field unless lr is finite and > 0 and lambda is finite
/// and >= 0.
inline void validate(const Sgd& a, const char* where = "Sgd") {
  ICL_CHECK_ARG(std::isfinite(a.lr) && a.lr > 0, where, ": lr: expected a finite value > 0, got ", a.lr);
  ICL_CHECK_ARG(std::isfinite(a.lambda) && a.lambda >= 0, where,
                ": lambda: expected a finite value >= 0, got ", a.lambda);
}

/// Throws icl::InvalidArgument naming the field unless k >= 1 and weights is a KnnWeights
/// enumerator.
inline void validate(const Knn& a, const char* where = "Knn") {
  ICL_CHECK_ARG(a.k >= 1, where, ": k: expected >= 1, got ", a.k);
  ICL_CHECK_ARG(a.weights == KnnWeights::uniform || a.weights == KnnWeights::inverse_square, where,
                ": weights: expected KnnWeights::uniform or KnnWeights::inverse_square");
}

// --- display names, as the paper's legends write them -------------------------------------------

/// "OLS", the legend name.
inline std::string name(const Ols&) { return "OLS"; }
/// "Averaging", the legend name.
inline std::string name(const Averaging&) { return "Averaging"; }
/// `"Ridge(<lambda>)"`, the legend name.
inline std::string name(const Ridge& a) { return ::icl::detail::concat("Ridge(", a.lambda, ")"); }
/// `"GD(<lr>)"`, with `", steps=<steps>"` if steps != 1 and `", lambda=<lambda>"` if lambda != 0.
inline std::string name(const Gd& a) {
  std::ostringstream os;
  os << "GD(" << a.lr;
  if (a.steps != 1) os << ", steps=" << a.steps;
  if (a.lambda != 0) os << ", lambda=" << a.lambda;
  os << ")";
  return os.str();
}
/// `"SGD(<lr>)"`, with `", lambda=<lambda>"` when lambda != 0.
inline std::string name(const Sgd& a) {
  std::ostringstream os;
  os << "SGD(" << a.lr;
  if (a.lambda != 0) os << ", lambda=" << a.lambda;
  os << ")";
  return os.str();
}
/// `"kNN(<k>, uniform)"` or `"kNN(<k>, inverse_square)"`.
inline std::string name(const Knn& a) {
  return ::icl::detail::concat("kNN(", a.k,
                               a.weights == KnnWeights::uniform ? ", uniform)" : ", inverse_square)");
}

}  // namespace icl::regress
