#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "icl/core/rng.hpp"

// Golden values. xoshiro256** with SplitMix64 seeding is fully specified; the expected numbers
// below come from an independent Python implementation of the published reference code (see
// docs/core.md), so any compiler or platform must reproduce these bits.
TEST_CASE("rng: golden raw values", "[core][rng]") {
  icl::Rng r0(0), r1(1), r42(42);
  CHECK(r0.next_u64() == 0x99ec5f36cb75f2b4ULL);
  CHECK(r0.next_u64() == 0xbf6e1f784956452aULL);
  CHECK(r0.next_u64() == 0x1a5f849d4933e6e0ULL);
  CHECK(r1.next_u64() == 0xb3f2af6d0fc710c5ULL);
  CHECK(r1.next_u64() == 0x853b559647364ceaULL);
  CHECK(r1.next_u64() == 0x92f89756082a4514ULL);
  CHECK(r42.next_u64() == 0x15780b2e0c2ec716ULL);
  CHECK(r42.next_u64() == 0x6104d9866d113a7eULL);
  CHECK(r42.next_u64() == 0xae17533239e499a1ULL);
}

TEST_CASE("rng: golden uniform and normal values", "[core][rng]") {
  // uniform() = (raw >> 11) * 2^-53 exactly, so it is pinned by the raw golden values.
  icl::Rng r(0);
  CHECK(r.uniform() == static_cast<double>(0x99ec5f36cb75f2b4ULL >> 11) * 0x1.0p-53);
  // Normals (Marsaglia polar) for seed 42, from the independent Python implementation. Only log
  // may differ between C libraries; glibc's log is correctly rounded in practice, so these are
  // compared to 1 ulp-scale tolerance 1e-15 rather than bitwise.
  icl::Rng g(42);
  const double expected[4] = {-0.7262191382447857, -0.21119691823195985, 0.2216227015035933,
                              0.5227716877560146};
  for (const double e : expected) CHECK(std::abs(g.normal() - e) <= 1e-15);
}

TEST_CASE("rng: determinism per seed, different seeds differ", "[core][rng]") {
  icl::Rng a(123), b(123), c(124);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    CHECK(x == b.next_u64());
    CHECK(x != c.next_u64());  // a 1-in-2^64 coincidence per draw
  }
}

TEST_CASE("rng: uniform and normal moments", "[core][rng]") {
  // n = 200000 draws: the standard error of the mean of U(0,1) is sqrt(1/12/n) ≈ 6.5e-4 and of
  // N(0,1) is 1/sqrt(n) ≈ 2.2e-3; the variance estimate of N(0,1) has s.e. sqrt(2/n) ≈ 3.2e-3.
  // Tolerances are 5 standard errors (a false failure has probability < 1e-6 for a fixed seed; the
  // seed is fixed, so the test is deterministic).
  icl::Rng r(7);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, mn = 1, mx = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    mn = std::min(mn, u);
    mx = std::max(mx, u);
    su += u;
    const double z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  CHECK(mn >= 0.0);
  CHECK(mx < 1.0);
  CHECK(std::abs(su / n - 0.5) < 5 * 6.5e-4);
  CHECK(std::abs(sn / n) < 5 * 2.2e-3);
  CHECK(std::abs(sn2 / n - 1.0) < 5 * 3.2e-3);
}

TEST_CASE("rng: below(n) is in range and covers it", "[core][rng]") {
  icl::Rng r(3);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = r.below(7);
    CHECK(v < 7);
    seen.insert(v);
  }
  CHECK(seen.size() == 7);
  CHECK(r.below(1) == 0);
  CHECK(r.below(0) == 0);
}

TEST_CASE("rng: jump and split give independent reproducible streams", "[core][rng]") {
  const icl::Rng base(99);
  icl::Rng s0 = base.split(0), s1 = base.split(1), s0b = base.split(0);
  icl::Rng j = base;
  j.jump();
  for (int i = 0; i < 50; ++i) {
    const auto x0 = s0.next_u64();
    CHECK(x0 == s0b.next_u64());
    CHECK(x0 == j.next_u64());  // split(0) is exactly one jump
    CHECK(x0 != s1.next_u64());
  }
  // Golden first value after one jump of seed 0 (independent Python implementation).
  icl::Rng z(0);
  z.jump();
  CHECK(z.next_u64() == 0x376215edc846d62cULL);
}

TEST_CASE("rng: state save/restore continues bit-identically, including the normal spare", "[core][rng]") {
  icl::Rng r(5);
  (void)r.normal();  // leaves a cached spare
  const auto st = r.state();
  const double a1 = r.normal(), a2 = r.normal();
  icl::Rng q(0);
  q.set_state(st);
  CHECK(q.normal() == a1);
  CHECK(q.normal() == a2);
}
