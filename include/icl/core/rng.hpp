/// @file
/// icl::Rng: xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64, with its own
/// uniform and normal transforms, so that a seed gives bit-identical streams on every compiler
/// and platform (the std:: distributions are implementation-defined). See docs/core.md.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace icl {

/// Portable pseudo-random engine: xoshiro256** state, SplitMix64 seeding.
///
/// Streams: `Rng(seed)` is one stream. `split(k)` returns an independent stream for worker k
/// (the parent advanced by (k+1) jumps of 2^128 steps, so workers never overlap for fewer than
/// 2^128 draws each). `jump()` advances this stream by 2^128 steps.
///
/// Satisfies std::uniform_random_bit_generator, but prefer its own uniform()/normal(): the
/// std:: distributions differ between libstdc++ and libc++.
class Rng {
 public:
  using result_type = std::uint64_t;  ///< 64 raw bits per draw

  /// Seeds the engine as reseed(seed) does; the same seed gives the same stream everywhere.
  explicit Rng(std::uint64_t seed = 0) noexcept { reseed(seed); }

  /// Re-seeds: the state is four successive SplitMix64 outputs of `seed`.
  void reseed(std::uint64_t seed) noexcept {
    std::uint64_t z = seed;
    for (auto& s : s_) s = splitmix64(z);
    has_spare_ = false;
  }

  /// Smallest value operator() returns (0), for std::uniform_random_bit_generator.
  static constexpr result_type min() noexcept { return 0; }
  /// Largest value operator() returns (2^64 − 1), for std::uniform_random_bit_generator.
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }
  /// Next 64 raw bits, same as next_u64() (the std::uniform_random_bit_generator interface).
  result_type operator()() noexcept { return next_u64(); }

  /// Next 64 raw bits (xoshiro256**).
  std::uint64_t next_u64() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1): the top 53 bits times 2^-53 (exact, no rounding).
  double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  /// Uniform double in [a, b).
  double uniform(double a, double b) noexcept { return a + (b - a) * uniform(); }

  /// Uniform integer in [0, n) for n >= 1 (bitmask rejection: unbiased and portable).
  std::uint64_t below(std::uint64_t n) noexcept {
    if (n <= 1) return 0;
    std::uint64_t mask = n - 1;
    for (int sh = 1; sh < 64; sh <<= 1) mask |= mask >> sh;
    for (;;) {
      const std::uint64_t v = next_u64() & mask;
      if (v < n) return v;
    }
  }

  /// Standard normal N(0, 1) by the Marsaglia polar method. Uses only +, *, sqrt (correctly
  /// rounded by IEEE 754) and log, so streams agree wherever the C library's log agrees (glibc
  /// on every x86-64 compiler). Values come in pairs; the spare is cached.
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

  /// N(mean, std^2).
  double normal(double mean, double std) noexcept { return mean + std * normal(); }

  /// Advances the stream by 2^128 draws (the published xoshiro256 jump polynomial).
  void jump() noexcept {
    constexpr std::array<std::uint64_t, 4> kJump = {0x180ec6d33cfd0aba, 0xd5a61266f0c9392c,
                                                    0xa9582618e03fc9aa, 0x39abdc4529b1661c};
    std::array<std::uint64_t, 4> t{};
    for (const std::uint64_t j : kJump) {
      for (int b = 0; b < 64; ++b) {
        if (j & (std::uint64_t{1} << b)) {
          for (int i = 0; i < 4; ++i) t[i] ^= s_[i];
        }
        next_u64();
      }
    }
    s_ = t;
    has_spare_ = false;
  }

  /// An independent stream for worker `k` (k >= 0): a copy of this engine jumped k+1 times.
  /// This engine is not changed, so split(0), split(1), ... are reproducible.
  Rng split(unsigned k) const noexcept {
    Rng r = *this;
    r.has_spare_ = false;
    for (unsigned i = 0; i <= k; ++i) r.jump();
    return r;
  }

  /// Everything that determines the future stream, including the cached normal spare, so a
  /// checkpoint restored with set_state() continues bit-identically.
  struct State {
    std::array<std::uint64_t, 4> s{};  ///< the four xoshiro256** state words
    double spare = 0.0;                ///< the cached second value of the last normal() pair
    bool has_spare = false;            ///< whether `spare` is returned by the next normal()
  };
  /// Snapshot of the full generator state (for checkpoints).
  State state() const noexcept { return State{s_, spare_, has_spare_}; }
  /// Restores a snapshot from state(): the stream continues exactly where it was taken.
  void set_state(const State& st) noexcept {
    s_ = st.s;
    spare_ = st.spare;
    has_spare_ = st.has_spare;
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static constexpr std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }

  std::array<std::uint64_t, 4> s_{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace icl
