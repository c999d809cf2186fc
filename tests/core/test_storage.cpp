#include <Eigen/Core>
#include <catch2/catch.hpp>

#include "support/throws.hpp"

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

TEST_CASE("storage: a 512x2048 float weight with a compile-time shape lives on the heap", "[core][storage]") {
  // 4 MiB: far above Eigen's 128 KiB fixed-size limit, so a plain Eigen::Matrix<float,512,2048>
  // would not compile (see the static_assert in Eigen's DenseStorage).
  static_assert(!icl::fits_on_stack<float, 512, 2048>);
  using W = icl::HeapMatrix<float, 512, 2048>;
  static_assert(W::Rows == 512 && W::Cols == 2048);
  W w;  // one allocation
  CHECK(w.map().isZero(0));
  CHECK(reinterpret_cast<std::uintptr_t>(w.data()) % 64 == 0);
  for (int c = 0; c < 2048; ++c)
    for (int r = 0; r < 512; ++r) w.map()(r, c) = static_cast<float>((r + 3 * c) % 7) - 3.0f;

  Eigen::Matrix<float, 2048, 1> x = Eigen::Matrix<float, 2048, 1>::Ones();
  Eigen::Matrix<float, 512, 1> y;
  Eigen::internal::set_is_malloc_allowed(false);  // the hot path: a product into a preallocated output
  y.noalias() = w.map() * x;
  Eigen::internal::set_is_malloc_allowed(true);
  // Reference: the same sum in double over the known pattern (exact: small integers).
  for (int r = 0; r < 512; r += 37) {
    double s = 0;
    for (int c = 0; c < 2048; ++c) s += (r + 3 * c) % 7 - 3.0;
    CHECK(y(r) == static_cast<float>(s));
  }

  const W copy = w;  // deep copy: one allocation, same values
  CHECK(copy.data() != w.data());
  CHECK((copy.map().array() == w.map().array()).all());
  w.map()(0, 0) = 100.0f;
  CHECK(copy.map()(0, 0) != 100.0f);
  W moved = std::move(w);  // no copy of the coefficients
  CHECK(moved.map()(0, 0) == 100.0f);
}

TEST_CASE("storage: a moved-from HeapMatrix can be copied from and assigned to", "[core][storage]") {
  // A move leaves the source without a buffer; copying from or into it used std::copy_n on a null
  // pointer (a segmentation fault in any build).
  using W = icl::HeapMatrix<double, 3, 2>;
  W a;
  a.map().setConstant(2.5);
  W b(std::move(a));
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
  CHECK_FALSE(b.empty());
  const W c(a);  // copy of an empty matrix: empty, nothing read
  CHECK(c.empty());
  a = b;  // copy into an empty matrix: a buffer of its own, b's values
  REQUIRE_FALSE(a.empty());
  CHECK(a.data() != b.data());
  CHECK((a.map().array() == 2.5).all());
  W d(std::move(a));
  a = Eigen::Matrix<double, 3, 2>::Constant(-1.0);  // an expression into an empty matrix
  REQUIRE_FALSE(a.empty());
  CHECK((a.map().array() == -1.0).all());
  CHECK((d.map().array() == 2.5).all());
  d = c;  // assigning an empty matrix empties the target, as for a std::vector
  CHECK(d.empty());
  W e;
  e = std::move(b);  // move assignment swaps buffers: both stay usable
  CHECK((e.map().array() == 2.5).all());
  CHECK_FALSE(b.empty());
}

TEST_CASE("error policy: checked entry points throw with the argument named", "[core][error]") {
  CHECK_THROWS_MATCHES([] { ICL_CHECK_ARG(1 > 2, "f: k: expected >= 1, got ", 0); }(), icl::InvalidArgument,
                       icl::test::MessageContains("f: k: expected >= 1, got 0"));
  Eigen::Vector2d v(1, std::nan(""));
  CHECK_THROWS_MATCHES(icl::check_finite(v, "f: X"), icl::InvalidArgument,
                       icl::test::MessageContains("f: X: expected finite values"));
  CHECK_NOTHROW(icl::check_finite(Eigen::Vector2d(1, 2), "f: X"));
}
