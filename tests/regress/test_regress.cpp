// Unit tests of the reference regressors against direct formulas (docs/regress.md §5).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "icl/regress.hpp"
#include "regress/reference.hpp"
#include "support/approx.hpp"
#include "support/throws.hpp"

using icl::test::gaussian;
using icl::test::IsCloseTo;
using icl::test::rel_err;
namespace rg = icl::regress;

namespace {
// Tolerance for well-conditioned (κ ≲ 1e2) problems of size ≤ 40: backward-stable solvers give
// relative errors ~ κ·d·eps, so 1e-10 for double and 2e-3 for float (eps = 1.2e-7, κ·d ≲ 1e4).
template <class S>
double tol() {
  return std::is_same_v<S, float> ? 2e-3 : 1e-10;
}
}  // namespace

TEMPLATE_TEST_CASE("regress: fit(Ols) is the min-norm SVD solution", "[regress][ols]", float, double) {
  using S = TestType;
  icl::Rng rng(1);
  for (const auto& [n, d] : {std::pair{20, 5}, std::pair{3, 8}, std::pair{8, 8}, std::pair{1, 4}}) {
    const auto X = gaussian<S>(n, d, rng);
    const auto y = gaussian<S>(n, 1, rng).col(0).eval();
    const icl::Vec<S> w = rg::fit(rg::Ols{}, X, y);
    CHECK_THAT(w, IsCloseTo(icl::test::svd_min_norm(X, y), tol<S>(), 0));
    if (n < d) {  // interpolates, and lies in the row space: w = Xᵀ(XXᵀ)⁻¹y
      CHECK_THAT((X * w).eval(), IsCloseTo(y, tol<S>(), 0));
      const icl::Vec<S> dual = X.transpose() * (X * X.transpose()).ldlt().solve(y);
      CHECK_THAT(w, IsCloseTo(dual, tol<S>(), 0));
    }
  }
}

TEMPLATE_TEST_CASE("regress: fit(Ols) on rank-deficient X is min-norm, not NaN", "[regress][ols]", float,
                   double) {
  using S = TestType;
  icl::Rng rng(2);
  // X = A·B with inner dimension 3: rank 3 in d = 6, with n = 10 > d and n = 4 < d.
  for (const int n : {10, 4}) {
    const icl::Mat<S> X = gaussian<S>(n, 3, rng) * gaussian<S>(3, 6, rng);
    const auto y = gaussian<S>(n, 1, rng).col(0).eval();
    const icl::Vec<S> w = rg::fit(rg::Ols{}, X, y);
    REQUIRE(w.allFinite());
    CHECK_THAT(w, IsCloseTo(icl::test::svd_min_norm(X, y), 10 * tol<S>(), 0));  // κ of the rank-3 part
    // a duplicated row and an all-zero X
    icl::Mat<S> Z = icl::Mat<S>::Zero(n, 6);
    CHECK(rg::fit(rg::Ols{}, Z, y).isZero());
  }
}

TEMPLATE_TEST_CASE("regress: fit(Ridge) matches the closed form and BayesRidge", "[regress][ridge]", float,
                   double) {
  using S = TestType;
  icl::Rng rng(3);
  for (const auto& [n, d] : {std::pair{20, 5}, std::pair{3, 8}}) {
    const auto X = gaussian<S>(n, d, rng);
    const auto y = gaussian<S>(n, 1, rng).col(0).eval();
    for (const double lam : {0.1, 1.0, 1e-6}) {
      const icl::Vec<S> w = rg::fit(rg::Ridge{lam}, X, y);
      CHECK_THAT(w, IsCloseTo(icl::test::ridge_closed_form(X, y, lam), tol<S>(), 0));
    }
    const icl::Vec<S> w0 = rg::fit(rg::Ridge{0}, X, y);
    CHECK_THAT(w0, IsCloseTo(icl::test::svd_min_norm(X, y), tol<S>(), 0));
  }
  CHECK(rg::BayesRidge(0.5, 0.75).lambda == Approx(0.25 / 0.5625).epsilon(1e-15));
  CHECK(rg::BayesRidge(0, 1).lambda == 0);
}

TEMPLATE_TEST_CASE("regress: fit(Gd), fit(Sgd), fit(Averaging) match their recursions", "[regress][gd]",
                   float, double) {
  using S = TestType;
  icl::Rng rng(4);
  const int n = 12, d = 5;
  const auto X = gaussian<S>(n, d, rng);
  const auto y = gaussian<S>(n, 1, rng).col(0).eval();
  const icl::Vec<S> b = X.transpose() * y;
  // one step from 0: 2·lr·Xᵀy (the λ term vanishes at w0 = 0)
  CHECK_THAT(rg::fit(rg::Gd{0.02}, X, y), IsCloseTo((S(0.04) * b).eval(), tol<S>(), 0));
  CHECK_THAT(rg::fit(rg::Gd{0.02, 1, 0.5}, X, y), IsCloseTo((S(0.04) * b).eval(), tol<S>(), 0));
  // three steps, written out: w ← w − 2lr(XᵀXw − Xᵀy + λw), in long double
  {
    const double lr = 0.01, lam = 0.3;
    Eigen::Matrix<long double, -1, 1> w = Eigen::Matrix<long double, -1, 1>::Zero(d);
    const auto Xl = X.template cast<long double>().eval();
    const auto yl = y.template cast<long double>().eval();
    for (int s = 0; s < 3; ++s)
      w = w - 2.0L * lr * (Xl.transpose() * (Xl * w) - Xl.transpose() * yl + lam * w);
    CHECK_THAT(rg::fit(rg::Gd{lr, 3, lam}, X, y), IsCloseTo(w.template cast<S>().eval(), tol<S>(), 0));
  }
  // SGD: one example per step, in order
  {
    const double lr = 0.03, lam = 0.01;
    Eigen::Matrix<long double, -1, 1> w = Eigen::Matrix<long double, -1, 1>::Zero(d);
    for (int i = 0; i < n; ++i) {
      const Eigen::Matrix<long double, -1, 1> x = X.row(i).transpose().template cast<long double>();
      w = w - 2.0L * lr * (x * x.dot(w) - static_cast<long double>(y(i)) * x + lam * w);
    }
    CHECK_THAT(rg::fit(rg::Sgd{lr, lam}, X, y), IsCloseTo(w.template cast<S>().eval(), tol<S>(), 0));
  }
  CHECK_THAT(rg::fit(rg::Averaging{}, X, y), IsCloseTo((b / S(n)).eval(), tol<S>(), 0));
  // fixed-size columns give fixed-size weights
  const Eigen::Matrix<S, Eigen::Dynamic, 5> Xf = X;
  const Eigen::Matrix<S, 5, 1> wf = rg::fit(rg::Averaging{}, Xf, y);
  CHECK_THAT(wf, IsCloseTo((b / S(n)).eval().template head<5>().eval(), tol<S>(), 0));
}

TEMPLATE_TEST_CASE("regress: Knn matches a brute-force sort", "[regress][knn]", float, double) {
  using S = TestType;
  icl::Rng rng(5);
  const int n = 15, d = 4;
  const auto X = gaussian<S>(n, d, rng);
  const auto y = gaussian<S>(n, 1, rng).col(0).eval();
  for (const int k : {1, 3, 5, 40}) {
    for (const bool inv : {false, true}) {
      const rg::Knn a{k, inv ? rg::KnnWeights::inverse_square : rg::KnnWeights::uniform};
      const auto p = rg::online_predictions(a, X, y);
      CHECK(p(0) == 0);
      for (int i = 1; i < n; ++i) {
        const S ref = icl::test::knn_brute<S>(k, inv, X.topRows(i), y.head(i), X.row(i).transpose());
        // (float: accumulated rounding of ≤ 5 weighted labels of size O(1))
        CHECK(static_cast<double>(p(i)) ==
              Approx(static_cast<double>(ref)).epsilon(tol<S>()).margin(tol<S>()));
      }
    }
  }
}

TEMPLATE_TEST_CASE("regress: Knn ties and zero distances are deterministic", "[regress][knn]", float,
                   double) {
  using S = TestType;
  // 1-D points (exact integers, so squared distances are exact): query 0.
  icl::Mat<S> X(5, 1);
  X << 1, -1, 2, 0, 0;
  icl::Vec<S> y(5);
  y << 10, 20, 30, 40, 50;
  const icl::Mat<S> q = icl::Mat<S>::Zero(1, 1);
  const auto first2 = X.topRows(2).eval();
  const auto first2y = y.head(2).eval();
  // tie at distance 1 between examples 0 and 1: k = 1 takes the earlier one
  CHECK(rg::predict(rg::Knn{1}, first2, first2y, q)(0) == S(10));
  CHECK(rg::predict(rg::Knn{1, rg::KnnWeights::inverse_square}, first2, first2y, q)(0) == S(10));
  // zero distances (examples 3 and 4): inverse-square uses only them, uniformly
  CHECK(rg::predict(rg::Knn{3, rg::KnnWeights::inverse_square}, X, y, q)(0) == S(45));
  // uniform with k = 3: 40, 50 and the earlier of the two ties at distance 1 (10)
  CHECK(rg::predict(rg::Knn{3}, X, y, q)(0) == Approx((40.0 + 50 + 10) / 3).epsilon(1e-6));
  // k = 1 among two zero-distance points takes the earlier (example 3)
  CHECK(rg::predict(rg::Knn{1, rg::KnnWeights::inverse_square}, X, y, q)(0) == S(40));
  // inverse-square without zeros: weights 1, 1, 1/4 for distances 1, 1, 2
  const auto first3 = X.topRows(3).eval();
  const auto first3y = y.head(3).eval();
  CHECK(rg::predict(rg::Knn{3, rg::KnnWeights::inverse_square}, first3, first3y, q)(0) ==
        Approx((10.0 + 20 + 30 / 4.0) / 2.25).epsilon(1e-6));
}

TEMPLATE_TEST_CASE("regress: online_predictions equal a refit at every prefix", "[regress][online]", float,
                   double) {
  using S = TestType;
  icl::Rng rng(6);
  for (const auto& nd : {std::pair{30, 6}, std::pair{9, 16}}) {
    // Plain variables, not a structured binding: Clang 14 cannot capture bindings in lambdas.
    const int n = nd.first, d = nd.second;
    const auto X = gaussian<S>(n, d, rng);
    const auto y = gaussian<S>(n, 1, rng).col(0).eval();
    auto check = [&](const auto& algo) {
      INFO(rg::name(algo) << " n=" << n << " d=" << d);
      const auto p = rg::online_predictions(algo, X, y);
      const auto ref = rg::refit_predictions(algo, X, y);
      REQUIRE(p.size() == n);
      CHECK(p(0) == 0);
      // predictions are O(‖x‖‖w‖) ~ d; the solvers differ only by rounding (κ·d·eps)
      CHECK_THAT(p, IsCloseTo(ref, tol<S>(), tol<S>()));
      if constexpr (rg::is_linear_v<std::decay_t<decltype(algo)>>) {
        const auto W = rg::online_weights(algo, X, y);
        for (int i = 0; i < n; i += 4) {
          const icl::Vec<S> wi = rg::fit(algo, X.topRows(i), y.head(i));
          CHECK_THAT(W.col(i).eval(), IsCloseTo(wi, tol<S>(), tol<S>()));
        }
      }
    };
    check(rg::Ols{});
    check(rg::Ridge{0.1});
    check(rg::BayesRidge(0.5, 1.0));
    check(rg::Ridge{0});
    check(rg::Gd{0.02});
    check(rg::Gd{0.01, 4, 0.1});
    check(rg::Sgd{0.03});
    check(rg::Sgd{0.01, 0.01});
    check(rg::Averaging{});
    check(rg::Knn{3});
    check(rg::Knn{3, rg::KnnWeights::inverse_square});
  }
}

// The stability requirement of issue 3: the incremental min-norm solution against a fresh SVD
// solve at every prefix, across n < d → n ≥ d, d ≤ 32, n ≤ 200, double.
TEST_CASE("regress: online OLS is stable against a fresh SVD at every prefix", "[regress][online][ols]") {
  icl::Rng rng(7);
  for (const int d : {4, 16, 32}) {
    const int n = 200;
    const auto X = gaussian<double>(n, d, rng);
    // noisy labels, so the over-determined prefixes have non-zero residuals
    const Eigen::VectorXd y =
        X * gaussian<double>(d, 1, rng).col(0) + 0.5 * gaussian<double>(n, 1, rng).col(0);
    const Eigen::MatrixXd W = rg::online_weights(rg::Ols{}, X, y);
    double worst = 0, worst_kappa = 0;
    for (int i = 1; i < n; i += (i < 2 * d ? 1 : 7)) {
      const Eigen::MatrixXd Xi = X.topRows(i);
      const Eigen::VectorXd ref = icl::test::svd_min_norm<double>(Xi, y.head(i));
      worst = std::max(worst, rel_err(W.col(i), ref));
      Eigen::JacobiSVD<Eigen::MatrixXd> svd(Xi);
      const auto& s = svd.singularValues();
      worst_kappa = std::max(worst_kappa, s(0) / s(s.size() - 1));
    }
    INFO("d = " << d << ": max rel err " << worst << ", max prefix condition number " << worst_kappa);
    // requirement of the issue (measured: see docs/regress.md §5)
    CHECK(worst <= 1e-10);
  }
}

// Rank-deficient streams: rows in a 3-dim subspace of R^8 for 12 examples, then full-rank rows.
TEST_CASE("regress: online OLS handles rank deficiency and later rank growth", "[regress][online][ols]") {
  icl::Rng rng(8);
  const int d = 8, n = 30;
  Eigen::MatrixXd X = gaussian<double>(n, d, rng);
  X.topRows(12) = gaussian<double>(12, 3, rng) * gaussian<double>(3, d, rng);
  X.row(13) = X.row(2);  // a duplicate later on
  const Eigen::VectorXd y = gaussian<double>(n, 1, rng).col(0);
  const Eigen::MatrixXd W = rg::online_weights(rg::Ols{}, X, y);
  REQUIRE(W.allFinite());
  for (int i = 1; i < n; ++i) {
    const Eigen::VectorXd ref = icl::test::svd_min_norm<double>(X.topRows(i), y.head(i));
    INFO("prefix " << i);
    // the rank-3 block has κ ≈ 10-100; 1e-10 as for well-conditioned data
    CHECK(rel_err(W.col(i), ref) <= 1e-10);
  }
}

// Ill-conditioned X (singular values log-spaced over κ), noiseless: the error of both the
// incremental scheme and the fresh SVD grows like κ·eps; the documented bound is
// rel err ≤ d·κ·eps against a long double reference.
TEST_CASE("regress: online OLS on ill-conditioned X stays within d·κ·eps", "[regress][online][ols]") {
  icl::Rng rng(9);
  const int d = 8, n = 40;
  for (const double kappa : {1e4, 1e8}) {
    const Eigen::MatrixXd A = gaussian<double>(n, d, rng), B = gaussian<double>(d, d, rng);
    const Eigen::MatrixXd U =
        Eigen::HouseholderQR<Eigen::MatrixXd>(A).householderQ() * Eigen::MatrixXd::Identity(n, d);
    const Eigen::MatrixXd V = Eigen::HouseholderQR<Eigen::MatrixXd>(B).householderQ();
    Eigen::VectorXd s(d);
    for (int k = 0; k < d; ++k) s(k) = std::pow(kappa, -double(k) / (d - 1));
    const Eigen::MatrixXd X = U * s.asDiagonal() * V.transpose();
    const Eigen::VectorXd y = X * gaussian<double>(d, 1, rng).col(0);
    const Eigen::MatrixXd W = rg::online_weights(rg::Ols{}, X, y);
    double worst = 0;
    for (int i = d; i < n; ++i) {
      const icl::Mat<long double> Xl = X.topRows(i).cast<long double>();
      const icl::Vec<long double> yl = y.head(i).cast<long double>();
      const Eigen::VectorXd ref = Xl.colPivHouseholderQr().solve(yl).cast<double>();
      worst = std::max(worst, rel_err(W.col(i), ref));
    }
    INFO("kappa " << kappa << ": max rel err " << worst);
    CHECK(worst <= d * kappa * std::numeric_limits<double>::epsilon());
  }
}

// online_predictions of Ols/Ridge read the prediction off the rotation sweep (docs/regress.md
// Eq. (11c)) instead of solving for w: check it at every prefix against fresh solves, across the
// n < d -> n >= d transition, and the small-γ fallback (Ridge with a vanishing λ, where the
// second example's γ ≈ √λ/‖x‖ is far below √eps).
TEST_CASE("regress: online OLS/Ridge predictions (Eq. 11c) match fresh solves at every prefix",
          "[regress][online][ols]") {
  icl::Rng rng(10);
  for (const int d : {4, 16, 32}) {
    const int n = 200;
    const auto X = gaussian<double>(n, d, rng);
    const Eigen::VectorXd y =
        X * gaussian<double>(d, 1, rng).col(0) + 0.5 * gaussian<double>(n, 1, rng).col(0);
    const Eigen::VectorXd p_ols = rg::online_predictions(rg::Ols{}, X, y);
    const Eigen::VectorXd p_ridge = rg::online_predictions(rg::Ridge{0.1}, X, y);
    double worst_ols = 0, worst_ridge = 0;
    for (int i = 1; i < n; i += (i < 2 * d ? 1 : 7)) {
      const Eigen::MatrixXd Xi = X.topRows(i);
      const Eigen::VectorXd w_ols = icl::test::svd_min_norm<double>(Xi, y.head(i));
      const Eigen::MatrixXd A = Xi.transpose() * Xi + 0.1 * Eigen::MatrixXd::Identity(d, d);
      const Eigen::VectorXd w_ridge = A.ldlt().solve(Xi.transpose() * y.head(i));
      // error relative to the natural scale ‖x‖‖w‖ of a prediction (|xᵀw| may cancel to ~0)
      const double xn = X.row(i).norm();
      worst_ols = std::max(worst_ols, std::abs(p_ols(i) - X.row(i).dot(w_ols)) / (xn * w_ols.norm()));
      worst_ridge =
          std::max(worst_ridge, std::abs(p_ridge(i) - X.row(i).dot(w_ridge)) / (xn * w_ridge.norm()));
    }
    INFO("d = " << d << ": OLS " << worst_ols << ", Ridge " << worst_ridge);
    CHECK(worst_ols <= 1e-10);  // the requirement of issue 3 (well-conditioned, double)
    CHECK(worst_ridge <= 1e-10);
  }
  // small γ: Ridge{1e-20} on 6 examples in R^4 takes the fallback solve for examples 1..3
  const auto X = gaussian<double>(6, 4, rng);
  const Eigen::VectorXd y = gaussian<double>(6, 1, rng).col(0);
  const Eigen::VectorXd p = rg::online_predictions(rg::Ridge{1e-20}, X, y);
  const Eigen::VectorXd ref = rg::refit_predictions(rg::Ridge{1e-20}, X, y);
  REQUIRE(p.allFinite());
  // the interpolating prefixes (i <= 4) have κ(X_i) ≈ 10; both solvers err by O(κ·eps)
  CHECK_THAT(p, IsCloseTo(ref, 1e-10, 1e-10));
}

TEST_CASE("regress: bad input names the argument", "[regress][errors]") {
  const Eigen::MatrixXd X = Eigen::MatrixXd::Ones(4, 3);
  const Eigen::VectorXd y = Eigen::VectorXd::Ones(4), y3 = Eigen::VectorXd::Ones(3);
  CHECK_INVALID(rg::fit(rg::Ols{}, X, y3), "y: expected a vector of n = 4");
  CHECK_INVALID(rg::online_predictions(rg::Ridge{-1}, X, y), "lambda");
  CHECK_INVALID(rg::fit(rg::Ridge{std::nan("")}, X, y), "lambda");
  CHECK_INVALID(rg::online_predictions(rg::Gd{0}, X, y), "lr");
  CHECK_INVALID(rg::online_predictions(rg::Gd{0.1, 0}, X, y), "steps");
  CHECK_INVALID(rg::fit(rg::Sgd{-0.1}, X, y), "lr");
  CHECK_INVALID(rg::online_predictions(rg::Knn{0}, X, y), "k: expected >= 1");
  CHECK_INVALID(rg::BayesRidge(1, 0), "tau");
  CHECK_INVALID(rg::BayesRidge(-1, 1), "sigma");
  Eigen::MatrixXd Xn = X;
  Xn(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_INVALID(rg::online_predictions(rg::Ols{}, Xn, y), "X: expected finite");
  Eigen::VectorXd yi = y;
  yi(0) = std::numeric_limits<double>::infinity();
  CHECK_INVALID(rg::fit(rg::Averaging{}, X, yi), "y: expected finite");
  CHECK_INVALID(rg::predict(rg::Ols{}, X, y, Eigen::MatrixXd::Ones(2, 4)), "probes");
  CHECK_INVALID(rg::fit(rg::Ols{}, Eigen::MatrixXd(4, 0), y), "d >= 1");
  // n = 0 is meaningful: no examples, the prior mean
  CHECK(rg::online_predictions(rg::Ols{}, Eigen::MatrixXd(0, 3), Eigen::VectorXd(0)).size() == 0);
  CHECK(rg::fit(rg::Ridge{0.1}, Eigen::MatrixXd(0, 3), Eigen::VectorXd(0)).isZero());
  CHECK(rg::predict(rg::Knn{3}, Eigen::MatrixXd(0, 3), Eigen::VectorXd(0), Eigen::MatrixXd::Ones(2, 3))
            .isZero());
}
