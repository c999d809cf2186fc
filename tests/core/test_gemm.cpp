// icl::gemm (core/gemm.hpp): every kernel this CPU can run (AVX-512, AVX2; the others are reported
// as skipped, never failed) against Eigen's product, in float and double, on shapes that hit every
// edge of the register and cache blocks (1-wide, one less and one more than a tile, past KC, MC and
// NC), with both operands stored as is or transposed, strided operands, alpha, beta = 0 / 1 / other.
//
// Two kinds of check:
//  - exact: integer-valued operands in [-8, 8] with k <= 1100 make every product and partial sum an
//    integer below 2^24 (|sum| <= 1100 * 64 < 2^17), so every summation order gives the same exact
//    result in float and double: kernel and Eigen must agree bit for bit. This catches any wrong
//    index, missed edge or double-counted slice without a tolerance.
//  - rounding-bounded, for real-valued operands and alpha != 1: each entry of
//    alpha op(A) op(B) + beta C is a sum of k + 1 terms times alpha; any summation order has
//    |computed - exact| <= gamma_{k+2} (|alpha| |op(A)| |op(B)| + |beta C|)_ij with
//    gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability, Eq. 3.5), so two implementations
//    differ by at most twice that. The bound's own evaluation errs by a relative O(k u), covered by
//    the factor 1.01.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "icl/core/gemm.hpp"
#include "icl/core/rng.hpp"
#include "support/throws.hpp"

namespace {

using icl::Mat;
using icl::gemm::Backend;
using icl::gemm::Trans;

std::vector<Backend> kernel_backends() {
  std::vector<Backend> out;
  for (const Backend b : {Backend::avx2, Backend::avx512}) {
    if (icl::gemm::supported(b))
      out.push_back(b);
    else
      WARN("icl::gemm backend " << icl::gemm::name(b) << " not supported on this build/CPU: not tested here");
  }
  return out;
}

template <class S>
Mat<S> integer_mat(Eigen::Index r, Eigen::Index c, icl::Rng& rng) {
  Mat<S> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = static_cast<S>(std::floor(rng.uniform() * 17) - 8);
  return m;
}

template <class S>
Mat<S> real_mat(Eigen::Index r, Eigen::Index c, icl::Rng& rng) {
  Mat<S> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = static_cast<S>(rng.normal());
  return m;
}

struct Shape {
  Eigen::Index m, n, k;
};

// Edges of every register tile (float 32 x 12 and 16 x 6, double 16 x 12 and 8 x 6: sizes around
// 6, 8, 12, 16, 32), of KC (256 double, 384 float), MC (192 / 256) and NC (3072).
const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {1, 1, 1},     {1, 13, 5},    {7, 1, 3},      {5, 6, 1},    {8, 6, 4},      {16, 12, 9},   {15, 11, 17},
      {17, 13, 2},   {31, 5, 33},   {32, 12, 40},   {33, 25, 7},  {47, 7, 257},   {64, 48, 385}, {3, 9, 1100},
      {193, 19, 31}, {257, 14, 20}, {300, 30, 390}, {2, 3075, 3}, {40, 3100, 11},
  };
  return s;
}

template <class S>
void check_exact(Backend be, Trans ta, Trans tb, const Shape& sh, S beta, icl::Rng& rng) {
  const Mat<S> A = ta == Trans::none ? integer_mat<S>(sh.m, sh.k, rng) : integer_mat<S>(sh.k, sh.m, rng);
  const Mat<S> B = tb == Trans::none ? integer_mat<S>(sh.k, sh.n, rng) : integer_mat<S>(sh.n, sh.k, rng);
  const Mat<S> C0 = integer_mat<S>(sh.m, sh.n, rng);
  Mat<S> ref = C0, got = C0;
  if (beta == S(0)) got.setConstant(std::numeric_limits<S>::quiet_NaN());  // beta = 0 never reads C
  {
    icl::gemm::ScopedBackend use(Backend::eigen);
    icl::gemm::gemm<S>(ta, tb, sh.m, sh.n, sh.k, S(1), A.data(), A.rows(), B.data(), B.rows(), beta,
                       ref.data(), sh.m);
  }
  {
    icl::gemm::ScopedBackend use(be);
    icl::gemm::gemm<S>(ta, tb, sh.m, sh.n, sh.k, S(1), A.data(), A.rows(), B.data(), B.rows(), beta,
                       got.data(), sh.m);
  }
  INFO(icl::gemm::name(be) << " " << (ta == Trans::none ? "N" : "T") << (tb == Trans::none ? "N" : "T")
                           << " m " << sh.m << " n " << sh.n << " k " << sh.k << " beta " << beta);
  CHECK((got.array() == ref.array()).all());
}

template <class S>
void check_bounded(Backend be, Trans ta, Trans tb, const Shape& sh, S alpha, S beta, icl::Rng& rng) {
  const Mat<S> A = ta == Trans::none ? real_mat<S>(sh.m, sh.k, rng) : real_mat<S>(sh.k, sh.m, rng);
  const Mat<S> B = tb == Trans::none ? real_mat<S>(sh.k, sh.n, rng) : real_mat<S>(sh.n, sh.k, rng);
  const Mat<S> C0 = real_mat<S>(sh.m, sh.n, rng);
  Mat<S> ref = C0, got = C0;
  {
    icl::gemm::ScopedBackend use(Backend::eigen);
    icl::gemm::gemm<S>(ta, tb, sh.m, sh.n, sh.k, alpha, A.data(), A.rows(), B.data(), B.rows(), beta,
                       ref.data(), sh.m);
  }
  {
    icl::gemm::ScopedBackend use(be);
    icl::gemm::gemm<S>(ta, tb, sh.m, sh.n, sh.k, alpha, A.data(), A.rows(), B.data(), B.rows(), beta,
                       got.data(), sh.m);
  }
  const Mat<S> absA = (ta == Trans::none ? Mat<S>(A.cwiseAbs()) : Mat<S>(A.transpose().cwiseAbs()));
  const Mat<S> absB = (tb == Trans::none ? Mat<S>(B.cwiseAbs()) : Mat<S>(B.transpose().cwiseAbs()));
  const double u = std::numeric_limits<S>::epsilon() / 2;
  const double nu = double(sh.k + 2) * u;
  const double gamma = nu / (1 - nu);
  const Mat<S> scale = std::abs(alpha) * (absA * absB) + std::abs(beta) * C0.cwiseAbs();
  const Mat<S> bound = (2 * gamma * 1.01) * scale;
  INFO(icl::gemm::name(be) << " " << (ta == Trans::none ? "N" : "T") << (tb == Trans::none ? "N" : "T")
                           << " m " << sh.m << " n " << sh.n << " k " << sh.k << " alpha " << alpha
                           << " beta " << beta);
  const Mat<S> err = (got - ref).cwiseAbs();
  CHECK(((err.array() <= bound.array()) && got.array().isFinite()).all());
}

template <class S>
void run_all() {
  icl::Rng rng(2026);
  for (const Backend be : kernel_backends())
    for (const Trans ta : {Trans::none, Trans::transpose})
      for (const Trans tb : {Trans::none, Trans::transpose})
        for (const Shape& sh : shapes()) {
          check_exact<S>(be, ta, tb, sh, S(0), rng);
          check_exact<S>(be, ta, tb, sh, S(1), rng);
          check_bounded<S>(be, ta, tb, sh, S(0.375), S(0), rng);
          check_bounded<S>(be, ta, tb, sh, S(-1.25), S(1), rng);
          check_bounded<S>(be, ta, tb, sh, S(1), S(-0.5), rng);
        }
}

}  // namespace

TEST_CASE("gemm: float kernels agree with Eigen's product on every edge", "[core][gemm]") {
  run_all<float>();
}

TEST_CASE("gemm: double kernels agree with Eigen's product on every edge", "[core][gemm]") {
  run_all<double>();
}

TEST_CASE("gemm: strided operands and a block of C", "[core][gemm]") {
  icl::Rng rng(5);
  using S = float;
  // A, B and C are blocks of larger matrices (outer strides 70, 50, 90); entries of C's parent
  // outside the block must stay as they were
  const Mat<S> Abig = integer_mat<S>(70, 60, rng), Bbig = integer_mat<S>(50, 80, rng);
  const Mat<S> Cbig0 = integer_mat<S>(90, 90, rng);
  for (const Backend be : kernel_backends()) {
    for (const bool acc : {false, true}) {
      Mat<S> ref = Cbig0, got = Cbig0;
      {
        icl::gemm::ScopedBackend use(Backend::eigen);
        icl::gemm::multiply<S>(Abig.block(3, 2, 41, 37), Trans::none, Bbig.block(5, 7, 37, 45), Trans::none,
                               ref.block(4, 9, 41, 45), acc);
      }
      {
        icl::gemm::ScopedBackend use(be);
        icl::gemm::multiply<S>(Abig.block(3, 2, 41, 37), Trans::none, Bbig.block(5, 7, 37, 45), Trans::none,
                               got.block(4, 9, 41, 45), acc);
      }
      INFO(icl::gemm::name(be) << " accumulate " << acc);
      CHECK((got.array() == ref.array()).all());
      // transposed views of blocks: op(A) = (block 37 x 41)ᵀ, op(B) = (block 45 x 37)ᵀ
      Mat<S> ref2 = Cbig0, got2 = Cbig0;
      {
        icl::gemm::ScopedBackend use(Backend::eigen);
        icl::gemm::multiply<S>(Abig.block(1, 1, 37, 41), Trans::transpose, Bbig.block(2, 3, 45, 37),
                               Trans::transpose, ref2.block(0, 0, 41, 45), acc);
      }
      {
        icl::gemm::ScopedBackend use(be);
        icl::gemm::multiply<S>(Abig.block(1, 1, 37, 41), Trans::transpose, Bbig.block(2, 3, 45, 37),
                               Trans::transpose, got2.block(0, 0, 41, 45), acc);
      }
      CHECK((got2.array() == ref2.array()).all());
    }
  }
}

TEST_CASE("gemm: sizes zero and k = 0", "[core][gemm]") {
  for (const Backend be : {Backend::eigen, Backend::avx2, Backend::avx512}) {
    if (!icl::gemm::supported(be)) continue;
    icl::gemm::ScopedBackend use(be);
    Mat<double> A(3, 0), B(0, 4), C = Mat<double>::Constant(3, 4, 2.0);
    icl::gemm::multiply<double>(A, Trans::none, B, Trans::none, C, true);  // C += (3 x 0)(0 x 4): unchanged
    CHECK((C.array() == 2.0).all());
    icl::gemm::gemm<double>(Trans::none, Trans::none, 3, 4, 0, 1.0, A.data(), 3, B.data(), 1, 0.5, C.data(),
                            3);
    CHECK((C.array() == 1.0).all());  // beta C
    icl::gemm::gemm<double>(Trans::none, Trans::none, 3, 4, 0, 1.0, A.data(), 3, B.data(), 1, 0.0, C.data(),
                            3);
    CHECK((C.array() == 0.0).all());  // beta = 0 writes zeros
    Mat<double> E(0, 5);
    icl::gemm::multiply<double>(Mat<double>(0, 2), Trans::none, Mat<double>(2, 5), Trans::none,
                                E);  // nothing to do
    CHECK(E.size() == 0);
  }
}

TEST_CASE("gemm: bad arguments are refused with the argument named", "[core][gemm]") {
  Mat<float> A(4, 3), B(5, 6), C(4, 6);
  A.setOnes();
  B.setOnes();
  CHECK_INVALID(icl::gemm::multiply<float>(A, Trans::none, B, Trans::none, C), "inner dimensions must agree");
  Mat<float> B3(3, 6), Cbad(5, 6);
  CHECK_INVALID(icl::gemm::multiply<float>(A, Trans::none, B3, Trans::none, Cbad), "C: expected 4 x 6");
  CHECK_INVALID(icl::gemm::gemm<float>(Trans::none, Trans::none, 4, 6, 3, 1.f, A.data(), 3, B3.data(), 3, 0.f,
                                       C.data(), 4),
                "lda: expected >= 4");
  CHECK_INVALID(icl::gemm::gemm<float>(Trans::none, Trans::transpose, 4, 6, 3, 1.f, A.data(), 4, B3.data(), 3,
                                       0.f, C.data(), 4),
                "ldb: expected >= 6");
  CHECK_INVALID(icl::gemm::gemm<float>(Trans::none, Trans::none, 4, 6, 3, 1.f, A.data(), 4, B3.data(), 3, 0.f,
                                       C.data(), 2),
                "ldc: expected >= 4");
  CHECK_INVALID(icl::gemm::gemm<float>(Trans::none, Trans::none, -1, 6, 3, 1.f, A.data(), 4, B3.data(), 3,
                                       0.f, C.data(), 4),
                "sizes must be >= 0");
}

TEST_CASE("gemm: backend selection", "[core][gemm]") {
  CHECK(icl::gemm::supported(Backend::eigen));
  CHECK(icl::gemm::backend() == icl::gemm::compiled_default());  // nothing else in the suite leaves it set
  const Backend before = icl::gemm::backend();
  {
    icl::gemm::ScopedBackend use(icl::gemm::best_supported());
    CHECK(icl::gemm::backend() == icl::gemm::best_supported());
  }
  CHECK(icl::gemm::backend() == before);
  for (const Backend b : {Backend::avx2, Backend::avx512})
    if (!icl::gemm::supported(b)) CHECK_INVALID(icl::gemm::set_backend(b), "not supported");
  CHECK(std::string(icl::gemm::name(Backend::avx512)) == "avx512");
}
