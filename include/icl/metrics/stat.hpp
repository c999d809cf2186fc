/// @file
/// The statistic every metric reports: mean and 95% confidence interval over contexts
/// (docs/metrics.md Eq. (M7)), and its accumulator.
#pragma once

#include <cmath>

namespace icl::metrics {

/// Mean and 95% confidence half-width (normal approximation: 1.96·s/√N, s the sample standard
/// deviation over contexts; docs/metrics.md Eq. (M7)).
struct Stat {
  double mean = 0;  ///< sample mean over contexts of the per-context value
  double ci95 = 0;  ///< half-width 1.96·s/√count of the 95% interval; 0 when count < 2
  int count = 0;    ///< number of values averaged (contexts)
};

namespace detail {

// Welford accumulator over contexts.
struct Acc {
  double mean = 0, m2 = 0;
  int count = 0;
  void add(double v) {
    ++count;
    const double delta = v - mean;
    mean += delta / count;
    m2 += delta * (v - mean);
  }
  Stat stat() const {
    Stat s;
    s.mean = mean;
    s.count = count;
    s.ci95 = count > 1 ? 1.96 * std::sqrt(m2 / (count - 1)) / std::sqrt(static_cast<double>(count)) : 0.0;
    return s;
  }
};

}  // namespace detail

}  // namespace icl::metrics
