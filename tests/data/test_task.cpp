#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include "support/throws.hpp"

#include "icl/data/task.hpp"

using icl::data::TaskDistribution;

TEMPLATE_TEST_CASE("data: sample_task moments match the distribution", "[data][task]", float, double) {
  // Pool over many tasks: N = 4000 tasks x n = 10 examples x D = 4 coordinates. For a coordinate
  // with std s, the sample mean has standard error s/sqrt(N), the sample variance s^2*sqrt(2/N).
  // Tolerances are 5 standard errors (fixed seed: deterministic; a fresh seed fails with p < 1e-6).
  constexpr int D = 4;
  const TaskDistribution dist{.n = 10, .x_std = 2.0, .w_std = 0.5, .noise_std = 0.3};
  icl::Rng rng(11);
  const int tasks = 4000;
  double wx = 0, wx2 = 0, xx = 0, xx2 = 0, rr = 0, rr2 = 0;
  long nw = 0, nx = 0, nr = 0;
  for (int t = 0; t < tasks; ++t) {
    const auto task = icl::data::sample_task<TestType, D>(dist, rng);
    REQUIRE(task.X.rows() == 10);
    REQUIRE(task.y.size() == 10);
    for (int k = 0; k < D; ++k, ++nw) {
      wx += task.w(k);
      wx2 += double(task.w(k)) * task.w(k);
    }
    for (int i = 0; i < task.X.size(); ++i, ++nx) {
      xx += task.X.data()[i];
      xx2 += double(task.X.data()[i]) * task.X.data()[i];
    }
    // Residual y - Xw is the noise: N(0, 0.3^2), up to rounding to TestType.
    const Eigen::Matrix<TestType, Eigen::Dynamic, 1> r = task.y - task.X * task.w;
    for (int i = 0; i < r.size(); ++i, ++nr) {
      rr += r(i);
      rr2 += double(r(i)) * r(i);
    }
  }
  auto check = [](double sum, double sum2, long n, double s) {
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(std::abs(mean) < 5 * s / std::sqrt(double(n)));
    CHECK(std::abs(var - s * s) < 5 * s * s * std::sqrt(2.0 / n));
  };
  check(wx, wx2, nw, 0.5);
  check(xx, xx2, nx, 2.0);
  check(rr, rr2, nr, 0.3);
}

TEST_CASE("data: noiseless tasks satisfy y = Xw exactly in double", "[data][task]") {
  icl::Rng rng(1);
  const auto t = icl::data::sample_task<double, 8>({.n = 40}, rng);
  CHECK((t.y - t.X * t.w).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("data: sampling is deterministic per seed", "[data][task]") {
  icl::Rng a(5), b(5), c(6);
  const auto ta = icl::data::sample_task<double, 3>({.n = 7, .noise_std = 0.1}, a);
  const auto tb = icl::data::sample_task<double, 3>({.n = 7, .noise_std = 0.1}, b);
  const auto tc = icl::data::sample_task<double, 3>({.n = 7, .noise_std = 0.1}, c);
  CHECK(ta.X == tb.X);
  CHECK(ta.y == tb.y);
  CHECK(ta.w == tb.w);
  CHECK(ta.X != tc.X);
  // The documented draw order: w first, then X row by row, from rng.normal().
  icl::Rng r(5);
  for (int k = 0; k < 3; ++k) CHECK(ta.w(k) == r.normal());
  for (int i = 0; i < 7; ++i)
    for (int k = 0; k < 3; ++k) CHECK(ta.X(i, k) == r.normal());
}

TEST_CASE("data: encode lays out the interleaved prompt exactly", "[data][encode]") {
  icl::data::Task<double, 2> t;
  t.X.resize(3, 2);
  t.X << 1, 2, 3, 4, 5, 6;
  t.y = Eigen::Vector3d(10, 20, 30);
  t.w.setZero();
  const auto tok = icl::data::encode(t);
  Eigen::Matrix<double, 3, 6> expected;
  // columns:  x̃1 ỹ1  x̃2 ỹ2  x̃3 ỹ3
  expected << 0, 10, 0, 20, 0, 30,  //
      1, 0, 3, 0, 5, 0,             //
      2, 0, 4, 0, 6, 0;
  CHECK(tok == expected);
  const auto q = icl::data::encode(t, Eigen::Vector2d(7, 8));
  REQUIRE(q.cols() == 7);
  CHECK(q.leftCols(6) == expected);
  CHECK(q.col(6) == Eigen::Vector3d(0, 7, 8));
  CHECK(icl::data::x_token_column(2) == 4);
  CHECK(icl::data::y_token_column(2) == 5);
  // Reading predictions back at the x-token columns 0, 2, 4, 6.
  Eigen::RowVectorXd out(7);
  out << 0, 1, 2, 3, 4, 5, 6;
  CHECK(icl::data::at_x_tokens(out) == Eigen::Vector4d(0, 2, 4, 6));
  CHECK(icl::data::examples_in(7) == 3);
}

TEST_CASE("data: bad input gives clear errors", "[data][task]") {
  icl::Rng rng(0);
  CHECK_THROWS_MATCHES((icl::data::sample_task<double, 2>({.n = -1}, rng)), icl::InvalidArgument,
                       icl::test::MessageContains("TaskDistribution.n"));
  CHECK_THROWS_MATCHES((icl::data::sample_task<double, 2>({.n = 3, .x_std = -1}, rng)), icl::InvalidArgument,
                       icl::test::MessageContains("TaskDistribution.x_std"));
  CHECK_THROWS_MATCHES((icl::data::sample_task<double, 2>({.n = 3, .noise_std = NAN}, rng)),
                       icl::InvalidArgument,
                       icl::test::MessageContains("noise_std: expected a finite value"));
  icl::data::Task<double, 2> t;
  t.X.resize(3, 2);
  t.X.setZero();
  t.y.resize(2);
  CHECK_THROWS_MATCHES(icl::data::encode(t), icl::InvalidArgument,
                       icl::test::MessageContains("task.y has 2 entries"));
  t.y.resize(3);
  CHECK_THROWS_MATCHES(icl::data::encode(t, Eigen::Vector3d::Zero()), icl::InvalidArgument,
                       icl::test::MessageContains("x_query has 3 entries, expected D = 2"));
}

TEST_CASE("data: w_mean shifts the weights (the paper's control model: w = 1)", "[data][task]") {
  // w_mean = 1, w_std = 0: every task has w = 1 exactly (1 + 0·normal), y = X·1
  icl::Rng rng(3);
  const icl::data::TaskDistribution ones{5, 1.0, 0.0, 0.0, 1.0};
  const auto t = icl::data::sample_task<double, 4>(ones, rng);
  CHECK(t.w == Eigen::Vector4d::Ones());
  CHECK((t.y - t.X.rowwise().sum()).cwiseAbs().maxCoeff() == 0);
  // the draw order is unchanged: w_mean = 0 gives the stream of the default distribution, and a
  // shifted mean moves w by exactly w_mean
  icl::Rng a(9), b(9);
  const auto t0 = icl::data::sample_task<double, 4>({5}, a);
  icl::data::TaskDistribution shifted{5};
  shifted.w_mean = 2.5;
  const auto t1 = icl::data::sample_task<double, 4>(shifted, b);
  CHECK(t1.X == t0.X);
  // w_mean + z is one rounded double addition: off by at most half an ulp of |w| < 8, i.e. 8.9e-16
  CHECK((t1.w - t0.w - Eigen::Vector4d::Constant(2.5)).cwiseAbs().maxCoeff() <= 2e-15);
  shifted.w_mean = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH((icl::data::sample_task<double, 4>(shifted, b)),
                    Catch::Contains("TaskDistribution.w_mean"));
}
