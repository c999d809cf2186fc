// Unit tests of the paper's metrics against direct formulas (docs/metrics.md §5).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "icl/metrics.hpp"
#include "icl/regress.hpp"
#include "regress/reference.hpp"
#include "support/approx.hpp"
#include "support/throws.hpp"

using icl::test::gaussian;
using icl::test::IsCloseTo;
namespace mt = icl::metrics;
namespace rg = icl::regress;

TEMPLATE_TEST_CASE("metrics: spd, mspd, ilwd and per_dim match their formulas", "[metrics][spd]", float,
                   double) {
  using S = TestType;
  icl::Rng rng(11);
  const auto A = gaussian<S>(3, 10, rng), B = gaussian<S>(3, 10, rng);
  double sum = 0, sum_u = 0;
  double row_u[3] = {0, 0, 0};  // per context: the mean over the region 1 <= i < 4
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 10; ++c) {
      const double t = double(A(r, c)) - double(B(r, c));
      sum += t * t;
      if (c >= 1 && c < 4) sum_u += t * t, row_u[r] += t * t / 3;
    }
  // float: each term is a float subtraction and square, summed in float (30 terms): ~30·eps
  const double eps = std::is_same_v<S, float> ? 1e-5 : 1e-14;
  CHECK(mt::spd(A, B) == Approx(sum / 30).epsilon(eps));
  // MSPD: columns 1, 2, 3 (d = 4 <= n = 10), the Stat of evaluate_online: mean and 95% CI over rows
  const mt::Stat ms = mt::mspd(A, B, 4);
  CHECK(ms.mean == Approx(sum_u / 9).epsilon(eps));
  CHECK(ms.count == 3);
  const double m3 = sum_u / 9;
  double var = 0;
  for (const double v : row_u) var += (v - m3) * (v - m3) / 2;
  // the CI's rounding: var is a difference of 3 squares of terms of ~1 (float: ~10 eps relative to the
  // larger of var and m3^2); sqrt halves it
  CHECK(ms.ci95 == Approx(1.96 * std::sqrt(var / 3)).epsilon(std::is_same_v<S, float> ? 1e-4 : 1e-12));
  CHECK(mt::mspd(A, B, 4, 0).mean == Approx(mt::spd(A.leftCols(4), B.leftCols(4))).epsilon(eps));
  CHECK(mt::mspd(A.topRows(1), B.topRows(1), 4).ci95 == 0);  // one context: no interval
  // n < d: the region would be cut short; refused (it was silently capped at n)
  CHECK_INVALID(mt::mspd(A, B, 40), "n >= d = 40 columns");
  CHECK_INVALID(mt::mspd(A, B, 11), "got 10 columns");
  const auto w1 = gaussian<S>(6, 1, rng), w2 = gaussian<S>(6, 1, rng);
  CHECK(mt::ilwd(w1, w2) == Approx(double((w1 - w2).squaredNorm())).epsilon(eps));
  CHECK(mt::per_dim(mt::ilwd(w1, w2), 6) == Approx(double((w1 - w2).squaredNorm()) / 6).epsilon(eps));
  CHECK(mt::spd(A, A) == 0);
}

TEMPLATE_TEST_CASE("metrics: implicit_fit recovers linear predictors and matches the LS formula",
                   "[metrics][implicit]", float, double) {
  using S = TestType;
  // float: a least-squares solve of 40x9 with κ ~ 3: relative error ~ κ·d·eps ≈ 3e-5
  const double tol = std::is_same_v<S, float> ? 1e-4 : 1e-11;
  icl::Rng rng(12);
  const int m = 40, d = 8;
  const auto P = gaussian<S>(m, d, rng);
  const auto w = gaussian<S>(d, 1, rng).col(0).eval();
  // a linear predictor: recovered exactly, R² = 1
  const auto lin = [&](const icl::Mat<S>& Q) { return (Q * w).eval(); };
  const auto f0 = mt::implicit_weights(lin, P);
  CHECK_THAT(f0.w, IsCloseTo(w, tol, 0));
  CHECK(f0.r2 == Approx(1).margin(tol));
  // with an intercept: affine predictor recovered
  const auto aff = [&](const icl::Mat<S>& Q) { return (Q * w).array() + S(0.7); };
  const auto f1 = mt::implicit_weights([&](const auto& Q) { return aff(Q).matrix().eval(); }, P, true);
  CHECK_THAT(f1.w, IsCloseTo(w, tol, 0));
  CHECK(double(f1.intercept) == Approx(0.7).epsilon(tol));
  // a non-linear predictor: ŵ = (PᵀP)⁻¹Pᵀŷ in long double, R² = 1 − SS_res / SS_tot
  icl::Vec<S> yhat(m);
  for (int i = 0; i < m; ++i) yhat(i) = P(i, 0) * P(i, 0) + S(0.5) * P(i, 1) - std::abs(P(i, 2));
  const auto f2 = mt::implicit_fit(P, yhat);
  const icl::Mat<long double> Pl = P.template cast<long double>();
  const icl::Vec<long double> yl = yhat.template cast<long double>();
  const icl::Vec<long double> wl = (Pl.transpose() * Pl).ldlt().solve(Pl.transpose() * yl);
  CHECK_THAT(f2.w, IsCloseTo(wl.template cast<S>().eval(), tol, 0));
  const long double ss_res = (yl - Pl * wl).squaredNorm(), ss_tot = (yl.array() - yl.mean()).square().sum();
  CHECK(f2.r2 == Approx(double(1 - ss_res / ss_tot)).epsilon(tol));
  CHECK(f2.r2 < 0.9);
  // fewer probes than inputs: the minimum-norm fit interpolates
  const auto f3 = mt::implicit_fit(P.topRows(3), yhat.head(3));
  CHECK_THAT((P.topRows(3) * f3.w).eval(), IsCloseTo(yhat.head(3).eval(), tol, tol));
  CHECK(f3.r2 == Approx(1).margin(tol));
  // a constant predictor: SS_tot = 0 and a perfect fit with the intercept → R² = 1
  const icl::Vec<S> c = icl::Vec<S>::Constant(m, S(2));
  CHECK(mt::implicit_fit(P, c, true).r2 == 1);
}

// evaluate() against a direct re-computation with the same random stream: tasks, then probes.
TEST_CASE("metrics: evaluate matches a direct computation", "[metrics][evaluate]") {
  constexpr int D = 4;
  const icl::data::TaskDistribution dist{6, 1.0, 1.0, 0.1};
  mt::EvalOptions opt;
  opt.n_contexts = 5;
  opt.n_probes = 7;
  // Averaging (linear: own weights), OLS as a plain callable (no weights: implicit fit), kNN
  std::vector<mt::Predictor<double>> preds = {mt::predictor<double>(rg::Averaging{})};
  mt::Predictor<double> ols_callable;
  ols_callable.name = "ols-callable";
  ols_callable.predict = [](const Eigen::MatrixXd& X, const Eigen::VectorXd& y, const Eigen::MatrixXd& Q) {
    return Eigen::VectorXd(Q * icl::test::svd_min_norm<double>(X, y));
  };
  preds.push_back(ols_callable);
  preds.push_back(mt::predictor<double>(rg::Knn{2}));
  icl::Rng rng(13);
  const mt::EvalResult res = mt::evaluate<double, D>(dist, preds, opt, rng);
  REQUIRE(res.names.size() == 3);
  // direct: prefix i = 5 (5 examples: over-determined for d = 4)
  const int i = 5;
  icl::Rng rng2(13);
  std::vector<double> spd_ak, ilwd_ao, err_o, r2_k;
  for (int c = 0; c < opt.n_contexts; ++c) {
    const auto task = icl::data::sample_task<double, D>(dist, rng2);
    Eigen::MatrixXd Q(opt.n_probes + 1, D);
    for (int j = 0; j < opt.n_probes; ++j)
      Q.row(j + 1) = icl::data::sample_x<double, D>(dist, rng2).transpose();
    Q.row(0) = task.X.row(i);
    const Eigen::MatrixXd X = task.X.topRows(i);
    const Eigen::VectorXd y = task.y.head(i);
    const Eigen::VectorXd wa = X.transpose() * y / double(i), wo = icl::test::svd_min_norm<double>(X, y);
    const Eigen::VectorXd pa = Q * wa;
    Eigen::VectorXd pk(Q.rows());
    for (int r = 0; r < Q.rows(); ++r)
      pk(r) = icl::test::knn_brute<double>(2, false, X, y, Q.row(r).transpose());
    spd_ak.push_back((pa - pk).squaredNorm() / double(Q.rows()));
    ilwd_ao.push_back((wa - wo).squaredNorm());  // a linear predictor's implicit fit is its weights
    const double e = Q.row(0).dot(wo) - task.y(i);
    err_o.push_back(e * e);
    const Eigen::MatrixXd P = Q.bottomRows(opt.n_probes);
    const Eigen::VectorXd wk = icl::test::svd_min_norm<double>(P, pk.tail(opt.n_probes));
    const Eigen::VectorXd res_k = pk.tail(opt.n_probes) - P * wk;
    const Eigen::ArrayXd yk = pk.tail(opt.n_probes).array();
    r2_k.push_back(1 - res_k.squaredNorm() / (yk - yk.mean()).square().sum());
  }
  auto check_stat = [&](const mt::Stat& s, const std::vector<double>& v) {
    double mean = 0, var = 0;
    for (const double t : v) mean += t / double(v.size());
    for (const double t : v) var += (t - mean) * (t - mean) / double(v.size() - 1);
    // sums of 5 terms computed in different orders, and solver rounding (κ ~ 10): 1e-9 relative
    CHECK(s.mean == Approx(mean).epsilon(1e-9));
    CHECK(s.ci95 == Approx(1.96 * std::sqrt(var / double(v.size()))).epsilon(1e-8));
    CHECK(s.count == int(v.size()));
  };
  check_stat(res.at("spd", "Averaging", "kNN(2, uniform)", i), spd_ak);
  check_stat(res.at("ilwd", "ols-callable", "Averaging", i), ilwd_ao);
  check_stat(res.at("sq_error", "ols-callable", "truth", i), err_o);
  check_stat(res.at("r2", "kNN(2, uniform)", "", i), r2_k);
  CHECK_INVALID(res.at("spd", "nope", "Averaging", i), "no row");
  // prefix 0: every algorithm predicts 0
  CHECK(res.at("spd", "Averaging", "ols-callable", 0).mean == 0);

  // CSV: header and one line per row
  const std::string path = "icl_test_metrics_eval.csv";
  mt::write_csv(res, path);
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  CHECK(line == "metric,a,b,examples,mean,ci95,mean_per_dim,ci95_per_dim,count");
  int lines = 0;
  while (std::getline(f, line)) ++lines;
  CHECK(lines == int(res.rows.size()));
  std::remove(path.c_str());
}

TEST_CASE("metrics: Fig. 1 ordering (Ridge(0.1) closest to OLS, kNN far)", "[metrics][fig1]") {
  // the setting of Fig. 1's classical half (examples/fig1_classical), smaller: d = 8, noiseless
  const std::vector<mt::Predictor<double>> preds = {mt::predictor<double>(rg::Ols{}),
                                                    mt::predictor<double>(rg::Ridge{0.1}),
                                                    mt::predictor<double>(rg::Knn{3})};
  mt::EvalOptions eo;
  eo.n_contexts = 48;
  eo.n_probes = 16;
  icl::Rng rng(0);
  const mt::EvalResult res = mt::evaluate<double, 8>(icl::data::TaskDistribution{10}, preds, eo, rng);
  for (const int i : {2, 5, 9}) {
    INFO("examples " << i);
    const double ridge = res.at("spd", "OLS", "Ridge(0.1)", i).mean,
                 knn = res.at("spd", "OLS", "kNN(3, uniform)", i).mean;
    CHECK(ridge < knn);
    CHECK(res.at("ilwd", "OLS", "Ridge(0.1)", i).mean < res.at("ilwd", "OLS", "kNN(3, uniform)", i).mean);
  }
  // noiseless, over-determined: OLS is exact
  CHECK(res.at("sq_error", "OLS", "truth", 9).mean < 1e-20);
}

TEST_CASE("metrics: bad input names the argument", "[metrics][errors]") {
  const Eigen::MatrixXd A = Eigen::MatrixXd::Ones(2, 3), B = Eigen::MatrixXd::Ones(3, 2);
  CHECK_INVALID(mt::spd(A, B), "spd: b");
  CHECK_INVALID(mt::spd(Eigen::MatrixXd(0, 0), Eigen::MatrixXd(0, 0)), "spd: a");
  Eigen::MatrixXd An = A;
  An(0, 0) = std::nan("");
  CHECK_INVALID(mt::spd(An, A), "spd: a: expected finite");
  CHECK_INVALID(mt::ilwd(Eigen::VectorXd::Ones(3), Eigen::VectorXd::Ones(4)), "ilwd: w2");
  CHECK_INVALID(mt::mspd(A, A, 0), "mspd: d");
  CHECK_INVALID(mt::mspd(A, A, 1), "mspd: first");  // no column with 1 <= i < 1
  CHECK_INVALID(mt::mspd(An, A, 3), "mspd: a: expected finite");
  CHECK_INVALID(mt::mspd(Eigen::MatrixXd(0, 3), Eigen::MatrixXd(0, 3), 3), "at least one context");
  CHECK_INVALID(mt::per_dim(1.0, 0), "per_dim: d");
  CHECK_INVALID(mt::implicit_fit(Eigen::MatrixXd(0, 3), Eigen::VectorXd(0)), "implicit_fit: probes");
  CHECK_INVALID(mt::implicit_fit(A, Eigen::VectorXd::Ones(3)), "implicit_fit: predictions");
  std::vector<mt::Predictor<double>> preds = {mt::predictor<double>(rg::Ols{})};
  icl::Rng rng(1);
  mt::EvalOptions opt;
  opt.n_contexts = 1;
  CHECK_INVALID((mt::evaluate<double, 2>({3}, preds, opt, rng)), "n_contexts");
  opt.n_contexts = 2;
  CHECK_INVALID((mt::evaluate<double, 2>({0}, preds, opt, rng)), "dist.n");
  preds.push_back(mt::predictor<double>(rg::Ols{}));
  CHECK_INVALID((mt::evaluate<double, 2>({3}, preds, opt, rng)), "unique names");
  CHECK_INVALID(mt::predictor<double>(rg::Knn{0}), "k: expected >= 1");
}

TEST_CASE("metrics: evaluate checks the size and finiteness of a weights() result", "[metrics][errors]") {
  // The callback's result used to be copied into a d-row column unchecked: a wrong size read out
  // of bounds in Release, NaN weights silently became NaN ILWD rows.
  mt::Predictor<double> p = mt::predictor<double>(rg::Ols{});
  const auto ols_weights = p.weights;
  icl::Rng rng(3);
  mt::EvalOptions opt;
  opt.n_contexts = 2;
  opt.n_probes = 4;
  p.weights = [](const Eigen::MatrixXd&, const Eigen::VectorXd&) { return Eigen::VectorXd::Ones(1).eval(); };
  CHECK_INVALID((mt::evaluate<double, 2>({3}, {p}, opt, rng)),
                "weights() returned 1 entries, expected d = 2");
  p.weights = [](const Eigen::MatrixXd&, const Eigen::VectorXd&) { return Eigen::VectorXd::Ones(5).eval(); };
  CHECK_INVALID((mt::evaluate<double, 2>({3}, {p}, opt, rng)), "weights() returned 5 entries");
  p.weights = [](const Eigen::MatrixXd&, const Eigen::VectorXd&) {
    return Eigen::Vector2d(1.0, std::numeric_limits<double>::quiet_NaN()).eval();
  };
  CHECK_INVALID((mt::evaluate<double, 2>({3}, {p}, opt, rng)), "'OLS': weights() returned NaN or Inf");
  p.weights = ols_weights;  // the regressor's own weights: accepted, and used for ILWD
  mt::Predictor<double> implicit = mt::predictor<double>(rg::Ols{});
  implicit.name = "OLS, implicit fit";
  implicit.weights = nullptr;  // ILWD through the implicit fit of its predictions at the probes
  const mt::EvalResult res = mt::evaluate<double, 2>({3}, {p, implicit}, opt, rng);
  for (int i = 0; i < 3; ++i) {
    INFO("prefix " << i);
    const mt::Stat s = res.at("ilwd", "OLS", "OLS, implicit fit", i);
    CHECK(s.count == 2);
    // the same linear predictor: the implicit fit (a 4 x 2 least-squares solve of Gaussian probes,
    // κ < 1e3) recovers its weights (|w| ~ 1) to κ·2^-53 ~ 1e-13, so ILWD = |Δw|² <= 1e-24;
    // own weights that were mangled on the way (scaled, permuted) would leave O(1)
    CHECK(s.mean <= 1e-24);
  }
}
