// The four chains at the exact level vs closed forms and icl::regress (online SGD / ridge), and the
// paper's typos.
#include <catch2/catch.hpp>

#include "icl/construct.hpp"
#include "icl/data/task.hpp"
#include "support/approx.hpp"
#include "support/online_oracles.hpp"

using namespace icl::construct;
using icl::Mat;
using icl::Vec;

namespace {

// Random (x1, y1, x2) tokens for the n = 1 chains: columns [x̃1, ỹ1, x̃2], d+1 rows.
Mat<double> one_example_tokens(int d, icl::Rng& rng) {
  Mat<double> t = Mat<double>::Zero(d + 1, 3);
  for (int k = 0; k < d; ++k) t(1 + k, 0) = rng.normal(), t(1 + k, 2) = rng.normal();
  t(0, 1) = rng.normal();
  return t;
}

Vec<double> read_x_tokens(const Chain<double>& ch, const Mat<double>& out) {
  return icl::data::at_x_tokens(out.row(ch.readout.row));
}

template <int D>
void check_online_chains(int n) {
  icl::Rng rng(100 + 7 * D + n);
  const double lr = 0.05, lambda_sgd = 0.1, lambda = 0.5;
  const auto sgd = sgd_chain<double>(D, n, lr, lambda_sgd);
  const auto ridge = ridge_chain<double>(D, n, lambda);
  const auto ridge_w = ridge_w_chain<double>(D, n, lambda);
  CHECK(sgd.program.size() == static_cast<std::size_t>(5 * n + 3));
  CHECK(ridge.program.size() == static_cast<std::size_t>(9 * n + 5));
  CHECK(ridge_w.program.size() == static_cast<std::size_t>(12 * n + 4));
  CHECK(ridge_w.program.height() == ridge.program.height());  // same rows: same transformer type
  CHECK(sgd.program.height() == 4 + 5 * D);
  CHECK(ridge.program.height() == 3 + 6 * D + 4 * D * D);
  for (int draw = 0; draw < 3; ++draw) {
    const auto task = icl::data::sample_task<double, D>({n}, rng);
    const Eigen::Matrix<double, D, 1> xq = icl::data::sample_x<double, D>({n}, rng);
    const auto tokens = icl::data::encode(task, xq);
    const Vec<double> ps = read_x_tokens(sgd, sgd.program.run(sgd.program.embed(tokens)));
    const Vec<double> pr = read_x_tokens(ridge, ridge.program.run(ridge.program.embed(tokens)));
    const Vec<double> pw = read_x_tokens(ridge_w, ridge_w.program.run(ridge_w.program.embed(tokens)));
    const Vec<double> os = icl::test::sgd_online_oracle<double>(task.X, task.y, xq, lr, lambda_sgd);
    const Vec<double> orr = icl::test::ridge_online_oracle<double>(task.X, task.y, xq, lambda);
    INFO("d = " << D << ", n = " << n);
    // same arithmetic up to reassociation; the recipe measured <= 3.1e-15 (SGD) and 4.2e-14 (ridge, |p| <=
    // 11)
    CHECK(icl::test::max_abs_diff(ps, os) <= 1e-12);
    CHECK(icl::test::max_abs_diff(pr, orr) <= 1e-12);
    CHECK(icl::test::max_abs_diff(pw, orr) <= 1e-12);  // measured <= 6.7e-15 (d <= 8, n <= 40)
    CHECK(ps(0) == 0.0);  // no examples: the prior mean, exactly (XE(0) = x1 − x1 = 0)
    CHECK(pr(0) == 0.0);
    CHECK(pw(0) == 0.0);
  }
}

}  // namespace

TEST_CASE("Theorem 1 chain (one GD step) matches Eq. 11 for d in {1, 4, 8}", "[construct]") {
  icl::Rng rng(11);
  const double alpha = 0.05, lambda = 0.3;
  for (int d : {1, 4, 8}) {
    for (int draw = 0; draw < 5; ++draw) {
      Vec<double> w(d);
      for (int k = 0; k < d; ++k) w(k) = rng.normal();
      const auto ch = theorem1_chain<double>(d, w, alpha, lambda);
      CHECK(ch.program.size() == 9u);
      CHECK(ch.program.height() == 3 + 4 * d);
      const Mat<double> t = one_example_tokens(d, rng);
      const Mat<double> out = ch.program.run(ch.program.embed(t));
      const Vec<double> x1 = t.col(0).tail(d), x2 = t.col(2).tail(d);
      const double y1 = t(0, 1);
      const Vec<double> wp = w - 2 * alpha * (x1 * x1.dot(w) - y1 * x1 + lambda * w);
      // a handful of O(1) products and sums in a different order: a few ulps
      CHECK(std::abs(out(ch.readout.row, 2) - wp.dot(x2)) <= 1e-13);
    }
  }
  // w = 0: prediction 2α y1 x1ᵀx2, independent of λ
  const auto ch0 = theorem1_chain<double>(4, Vec<double>::Zero(4), alpha, lambda);
  const Mat<double> t = one_example_tokens(4, rng);
  const Mat<double> out = ch0.program.run(ch0.program.embed(t));
  CHECK(std::abs(out(ch0.readout.row, 2) - 2 * alpha * t(0, 1) * t.col(0).tail(4).dot(t.col(2).tail(4))) <=
        1e-14);
}

TEST_CASE("Theorem 2 chain (one Sherman–Morrison step) matches y1 x1ᵀx2/(λ + |x1|²)", "[construct]") {
  icl::Rng rng(12);
  const double lambda = 0.5;
  for (int d : {1, 4, 8}) {
    const auto ch = theorem2_chain<double>(d, lambda);
    CHECK(ch.program.size() == 14u);
    CHECK(ch.program.height() == 3 + 5 * d + 3 * d * d);
    for (int draw = 0; draw < 5; ++draw) {
      const Mat<double> t = one_example_tokens(d, rng);
      const Mat<double> out = ch.program.run(ch.program.embed(t));
      const Vec<double> x1 = t.col(0).tail(d), x2 = t.col(2).tail(d);
      const double expect = t(0, 1) * x1.dot(x2) / (lambda + x1.squaredNorm());
      // Sherman–Morrison in a different order than the closed form; recipe measured <= 8.4e-15
      CHECK(std::abs(out(ch.readout.row, 2) - expect) <= 1e-13);
    }
  }
}

TEST_CASE("each paper typo in the recipe is a typo: printed fails, corrected passes", "[construct]") {
  icl::Rng rng(13);
  const int d = 4;
  // (2) Theorem 1 step 6: printed W2 = −λ gives the wrong step; corrected +λ matches Eq. 11.
  Vec<double> w(d);
  for (int k = 0; k < d; ++k) w(k) = rng.normal();
  const Mat<double> t = one_example_tokens(d, rng);
  const Vec<double> x1 = t.col(0).tail(d), x2 = t.col(2).tail(d);
  const double oracle = (w - 2 * 0.05 * (x1 * x1.dot(w) - t(0, 1) * x1 + 0.3 * w)).dot(x2);
  const auto fixed = theorem1_chain<double>(d, w, 0.05, 0.3, Reading::corrected);
  const auto printed = theorem1_chain<double>(d, w, 0.05, 0.3, Reading::printed);
  const double e_fixed = std::abs(fixed.program.run(fixed.program.embed(t))(fixed.readout.row, 2) - oracle);
  const double e_printed =
      std::abs(printed.program.run(printed.program.embed(t))(printed.readout.row, 2) - oracle);
  CHECK(e_fixed <= 1e-13);  // rounding only
  // the printed sign differs from the oracle by 4αλ wᵀx2 (exactly, in exact arithmetic)
  CHECK(e_printed == Approx(std::abs(4 * 0.05 * 0.3 * w.dot(x2))).epsilon(1e-9));
  CHECK(e_printed > 1e-3);
  // (3) Theorem 2 step 14: printed mul(d,1,1) is ill-formed for d > 1 (needs d output rows).
  CHECK_THROWS_AS(theorem2_chain<double>(d, 0.5, Reading::printed), icl::InvalidArgument);
  {  // corrected: a 1 x 1 product read at row 2+5d+3d², equal to the closed form (as in the Theorem 2 case)
    const auto ch = theorem2_chain<double>(d, 0.5, Reading::corrected);
    const auto& last = ch.program.ops().back();
    CHECK((last.kind == OpKind::mul && last.a == 1 && last.b == d && last.c == 1 && last.w.size() == 1));
    CHECK(ch.readout.row == 2 + 5 * d + 3 * d * d);
    const double expect2 = t(0, 1) * x1.dot(x2) / (0.5 + x1.squaredNorm());
    CHECK(std::abs(ch.program.run(ch.program.embed(t))(ch.readout.row, 2) - expect2) <= 1e-13);
  }
  // (1) mov argument order: reading the appendix's "mov(; 1, 0, ...)" as (source 1 -> target 0) is acausal.
  CHECK_THROWS_AS(ColumnMap::table({{0, 1}}), icl::InvalidArgument);
  {  // (target 1 <- source 0): column 1 reads column 0, every other column reads itself
    const ColumnMap m = ColumnMap::table({{1, 0}});
    CHECK(m.source(1) == 0);
    CHECK(m.source(0) == 0);
    CHECK(m.source(2) == 2);
  }
  // (4) footnote 1 as printed (|w| = c*d) instead of a*c: Theorem 1 step 4 is mul(d,1,1) with |w| = d;
  // the printed rule would ask for c*d = 1*d ... but a step-9 style mul(1,d,1) has |w| = 1 != c*d = d.
  Layout L;
  const RowRange a = L.add("a", d), b = L.add("b", d), out = L.add("out", d);
  Program<double> q(L);
  CHECK_THROWS_AS(q.mul(1, d, 1, a, b, out), icl::InvalidArgument);  // printed size: rejected
  q.mul(1, d, 1, a, b, RowRange::row(out.begin));  // corrected size: accepted, and it is the dot product
  REQUIRE(q.size() == 1u);
  Mat<double> h = Mat<double>::Zero(L.height(), 2);
  for (int k = 0; k < 2 * d; ++k) h(k, 0) = rng.normal(), h(k, 1) = rng.normal();
  const Mat<double> r = q.run(h);
  for (int c = 0; c < 2; ++c)  // a sum of d = 4 products: rounding <= 4ε·Σ|a_k b_k|
    CHECK(std::abs(r(out.begin, c) - h.col(c).head(d).dot(h.col(c).segment(d, d))) <= 1e-14);
  CHECK(r.bottomRows(d - 1).isZero(0));  // only the one output row is written
}

TEST_CASE("online SGD and ridge chains match icl::regress online_predictions, d in {1,4,8}, n in {1,5,20,40}",
          "[construct]") {
  for (int n : {1, 5, 20, 40}) {
    check_online_chains<1>(n);
    check_online_chains<4>(n);
    check_online_chains<8>(n);
  }
}

TEST_CASE("program printer renders the paper's table and resources", "[construct]") {
  const auto ch = theorem1_chain<double>(2, Vec<double>::Zero(2), 0.1, 0.0);
  const std::string tab = ch.program.table();
  CHECK_THAT(tab, Catch::Contains("| 4 | mul(2,1,1, x, R) | (5, 7) G | x(wᵀx − y) |"));
  CHECK_THAT(tab, Catch::Contains("| 1 | mov {1<-0}, x | (1, 3) x | x1 into column 1 |"));
  const Resources r = ch.program.resources();
  CHECK(r.layers == 9);
  CHECK(r.residual_width == 11);
  CHECK(r.heads == 2);
}
