/// @file
/// Learning-rate schedules: linear warmup followed by a cosine decay (the paper's schedule,
/// Hugging Face's get_cosine_schedule_with_warmup), and a constant schedule.
/// See docs/train.md Eq. (5).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "icl/core/error.hpp"

namespace icl::train {

/// Multiplier of the base learning rate at step t (t = number of optimiser steps already taken,
/// so the first step uses factor(0)), docs/train.md Eq. (5):
///   t < W:  t / max(1, W)
///   t >= W: max(0, ½·(1 + cos(π · 2c · (t − W) / max(1, T − W))))
/// with W = warmup_steps, T = total_steps, c = num_cycles (0.5: one half cosine down to 0 at T).
/// This is transformers.get_cosine_schedule_with_warmup, i.e. torch.optim.lr_scheduler.LambdaLR
/// with that lambda. The paper warms up over T/5 steps: use WarmupCosine::paper(T).
struct WarmupCosine {
  std::int64_t warmup_steps = 0;  ///< W >= 0
  std::int64_t total_steps = 1;   ///< T >= W
  double num_cycles = 0.5;        ///< c >= 0

  /// The paper's setting (§6.2): warmup over one fifth of the steps, half cosine to 0.
  static WarmupCosine paper(std::int64_t total_steps) { return {total_steps / 5, total_steps, 0.5}; }

  /// Throws icl::InvalidArgument naming the first field out of range.
  void validate() const {
    ICL_CHECK_ARG(warmup_steps >= 0, "WarmupCosine.warmup_steps: expected >= 0, got ", warmup_steps);
    ICL_CHECK_ARG(total_steps >= warmup_steps, "WarmupCosine.total_steps: expected >= warmup_steps (",
                  warmup_steps, "), got ", total_steps);
    ICL_CHECK_ARG(num_cycles >= 0 && std::isfinite(num_cycles),
                  "WarmupCosine.num_cycles: expected finite >= 0, got ", num_cycles);
  }

  /// The learning-rate factor at step t: t/W during warmup, then the half cosine to 0.
  double factor(std::int64_t t) const {
    if (t < warmup_steps)
      return static_cast<double>(t) / static_cast<double>(std::max<std::int64_t>(1, warmup_steps));
    const double progress = static_cast<double>(t - warmup_steps) /
                            static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
    return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles * 2.0 * progress)));
  }
};

/// factor(t) = 1 for every t.
struct ConstantLr {
  /// Always valid.
  void validate() const {}
  /// 1 at every step.
  double factor(std::int64_t) const { return 1.0; }
};

}  // namespace icl::train
