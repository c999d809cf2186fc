// Exact Lemma-1 primitives: semantics on small states, in-place use, run-time and compile-time checks.
#include <catch2/catch.hpp>

#include "icl/construct.hpp"
#include "icl/core/rng.hpp"
#include "support/approx.hpp"

using icl::Mat;
using icl::construct::ColumnMap;
using icl::construct::RowRange;

namespace {
Mat<double> random_state(int H, int T, std::uint64_t seed) {
  icl::Rng rng(seed);
  Mat<double> h(H, T);
  for (int c = 0; c < T; ++c)
    for (int r = 0; r < H; ++r) h(r, c) = rng.normal();
  return h;
}
}  // namespace

TEST_CASE("mov: relative offset is clamped at column 0, table map writes only its targets", "[construct]") {
  const Mat<double> h0 = random_state(6, 5, 1);
  Mat<double> h = h0;
  icl::construct::mov(h, ColumnMap::relative(2), RowRange{0, 2}, RowRange{3, 5});
  for (int c = 0; c < 5; ++c) {
    const int s = c < 2 ? 0 : c - 2;
    CHECK(h.col(c).segment(3, 2) == h0.col(s).segment(0, 2));  // copies are exact
    CHECK(h.col(c).segment(0, 3) == h0.col(c).segment(0, 3));  // other rows unchanged
    CHECK(h(5, c) == h0(5, c));
  }
  Mat<double> g = h0;
  icl::construct::mov(g, ColumnMap::table({{3, 1}}), RowRange{2, 4}, RowRange{2, 4});
  CHECK(g.col(3).segment(2, 2) == h0.col(1).segment(2, 2));
  g.col(3).segment(2, 2) = h0.col(3).segment(2, 2);
  CHECK(g == h0);  // with src == dst, every other column is untouched
}

TEST_CASE("mul: row-major blocks, every column, in-place allowed", "[construct]") {
  const int a = 2, b = 3, c = 2;
  const Mat<double> h0 = random_state(6 + 6 + 4, 3, 2);
  Mat<double> h = h0;
  icl::construct::mul(h, a, b, c, RowRange{0, 6}, RowRange{6, 12}, RowRange{12, 16});
  for (int col = 0; col < 3; ++col) {
    Mat<double> A1(a, b), A2(b, c);
    for (int i = 0; i < a; ++i)
      for (int k = 0; k < b; ++k) A1(i, k) = h0(i * b + k, col);
    for (int k = 0; k < b; ++k)
      for (int j = 0; j < c; ++j) A2(k, j) = h0(6 + k * c + j, col);
    const Mat<double> P = A1 * A2;
    for (int i = 0; i < a; ++i)
      for (int j = 0; j < c; ++j)
        CHECK(h(12 + i * c + j, col) == Approx(P(i, j)).margin(1e-15));  // one dot of 3
  }
  // in place: w = r2 (d x 1 times 1 x 1 written over the d x 1 operand)
  Mat<double> g = h0;
  icl::construct::mul(g, 3, 1, 1, RowRange{0, 3}, RowRange{3, 4}, RowRange{0, 3});
  for (int col = 0; col < 3; ++col)
    for (int i = 0; i < 3; ++i) CHECK(g(i, col) == h0(i, col) * h0(3, col));  // single product: exact
}

TEST_CASE("div and aff: absolute divisor, in-place aff reads the old state", "[construct]") {
  Mat<double> h0 = random_state(8, 4, 3);
  h0(2, 1) = -0.5;
  Mat<double> h = h0;
  icl::construct::div(h, RowRange{0, 2}, 2, RowRange{4, 6});
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 2; ++i) CHECK(h(4 + i, c) == h0(i, c) / std::abs(h0(2, c)));  // one IEEE division
  Mat<double> g = h0;
  Mat<double> W1(2, 2), W2(2, 1);
  W1 << 1, 2, 3, 4;
  W2 << -1, 0.5;
  const Eigen::Vector2d b(0.25, -2);
  icl::construct::aff(g, RowRange{0, 2}, RowRange{7, 8}, RowRange{0, 2}, W1, W2, b);
  const Mat<double> expect = (W1 * h0.topRows(2) + W2 * h0.row(7)).colwise() + b;
  CHECK_THAT(Mat<double>(g.topRows(2)), icl::test::IsCloseTo(expect, 0, 1e-14));  // 3 products of O(1) terms
  CHECK(g.bottomRows(6) == h0.bottomRows(6));
}

TEST_CASE("primitives: run-time range errors are InvalidArgument", "[construct]") {
  Mat<double> h = Mat<double>::Zero(6, 3);
  using icl::InvalidArgument;
  CHECK_THROWS_AS(icl::construct::mul(h, 2, 1, 1, RowRange{0, 3}, RowRange{3, 4}, RowRange{4, 6}),
                  InvalidArgument);
  CHECK_THROWS_AS(icl::construct::mul(h, 2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 4}),
                  InvalidArgument);
  CHECK_THROWS_AS(icl::construct::mul(h, 2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{5, 7}),
                  InvalidArgument);
  CHECK_THROWS_AS(icl::construct::div(h, RowRange{0, 2}, 2, RowRange{1, 3}), InvalidArgument);
  CHECK_THROWS_AS(icl::construct::div(h, RowRange{0, 2}, 3, RowRange{2, 4}), InvalidArgument);
  CHECK_THROWS_AS(icl::construct::mov(h, ColumnMap::relative(1), RowRange{0, 2}, RowRange{2, 5}),
                  InvalidArgument);
  CHECK_THROWS_AS(ColumnMap::table({{0, 1}}), InvalidArgument);  // reads the future
  CHECK_THROWS_AS(ColumnMap::relative(-1), InvalidArgument);
  CHECK_THROWS_AS(icl::construct::aff(h, RowRange{0, 2}, RowRange{}, RowRange{2, 3}, Mat<double>::Ones(1, 3),
                                      Mat<double>(1, 0), Eigen::VectorXd::Zero(1)),
                  InvalidArgument);
  CHECK_THROWS_WITH(icl::construct::mul(h, 2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 4}),
                    Catch::Contains("expected a*c = 2"));
}

TEST_CASE("aff with precomputed sparse forms: the values of aff, and a form of another matrix refused",
          "[construct]") {
  Mat<double> h0 = random_state(40, 5, 11);
  // a mostly-zero W1 (a shifted identity plus one entry: 17 of 16*16, under the 1/8 limit, so the
  // entry-by-entry path) and a dense W2 (the plain product)
  Mat<double> W1 = Mat<double>::Zero(16, 16), W2 = Mat<double>::Random(16, 3);
  for (int i = 0; i < 15; ++i) W1(i, i + 1) = 1;
  W1(15, 0) = -0.5;
  W1(3, 7) = 2;
  const Eigen::VectorXd b = Eigen::VectorXd::LinSpaced(16, -1, 1);
  const RowRange r{0, 16}, s{30, 33}, w{16, 32};
  const auto f1 = icl::construct::detail::sparse_form<double>(W1), f2 = icl::construct::detail::sparse_form<double>(W2);
  CHECK_FALSE(f1.dense);
  CHECK(f1.entries.size() == 17);
  CHECK(f2.dense);
  Mat<double> g = h0, h = h0;
  icl::construct::aff(g, r, s, w, W1, W2, b);
  icl::construct::aff(h, r, s, w, W1, W2, b, f1, f2);
  CHECK(h == g);  // the same operations in the same order: bitwise
  const Mat<double> expect = (W1 * h0.topRows(16) + W2 * h0.middleRows(30, 3)).colwise() + b;
  CHECK_THAT(Mat<double>(h.middleRows(16, 16)), icl::test::IsCloseTo(expect, 0, 1e-14));  // <= 4 O(1) terms
  Mat<double> W1b = W1;
  W1b(3, 7) = 3;  // f1 is no longer its form
  CHECK_THROWS_WITH(icl::construct::aff(h, r, s, w, W1b, W2, b, f1, f2),
                    Catch::Contains("the form of W1 is not sparse_form(W1)"));
  const auto f_big = icl::construct::detail::sparse_form<double>(Mat<double>::Identity(20, 20));
  CHECK_THROWS_AS(icl::construct::aff(h, r, s, w, W1, W2, b, f_big, f2), icl::InvalidArgument);
}

TEST_CASE("primitives: compile-time ranges give the run-time results", "[construct]") {
  using H6 = Eigen::Matrix<double, 6, Eigen::Dynamic>;
  H6 h = random_state(6, 2, 4);
  H6 g = h;
  icl::construct::mul<2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 5}>(h);
  icl::construct::mul(g, 2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 5});
  CHECK(h == g);
  icl::construct::div<RowRange{0, 2}, 2, RowRange{3, 5}>(h);
  icl::construct::div(g, RowRange{0, 2}, 2, RowRange{3, 5});
  CHECK(h == g);
  icl::construct::mov<RowRange{0, 1}, RowRange{5, 6}>(h, ColumnMap::relative(1));
  icl::construct::mov(g, ColumnMap::relative(1), RowRange{0, 1}, RowRange{5, 6});
  CHECK(h == g);
  const Eigen::Matrix<double, 1, 2> W1(1, -1);
  icl::construct::aff<RowRange{0, 2}, RowRange{}, RowRange{2, 3}>(h, W1, Mat<double>(1, 0),
                                                                  Eigen::VectorXd::Ones(1));
  icl::construct::aff(g, RowRange{0, 2}, RowRange{}, RowRange{2, 3}, W1, Mat<double>(1, 0),
                      Eigen::VectorXd::Ones(1));
  CHECK(h == g);
}
