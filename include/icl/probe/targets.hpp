/// @file
/// Probe targets after n exemplars (docs/probe.md §1, Eq. (P0)): the moments XᵀY, the min-norm
/// least-squares weights w_OLS, ridge weights and the task's true w; and the prompts they belong to.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/fit.hpp"

namespace icl::probe {

/// What a probe decodes after n exemplars (X_n, Y_n: the first n examples).
enum class Target {
  xty,      ///< X_nᵀY_n (d entries)
  w_ols,    ///< min-norm least squares X_n⁺Y_n
  w_ridge,  ///< (λI + X_nᵀX_n)⁻¹X_nᵀY_n (TargetSpec::lambda)
  w_true,   ///< the task's generating w
};

/// "xty", "w_ols", "w_ridge", "w_true".
inline const char* to_string(Target t) {
  switch (t) {
    case Target::xty:
      return "xty";
    case Target::w_ols:
      return "w_ols";
    case Target::w_ridge:
      return "w_ridge";
    case Target::w_true:
      return "w_true";
  }
  return "?";
}

/// The value of target `t` of `task` after its first n examples (0 <= n <= task.n()); lambda > 0 is
/// used by Target::w_ridge only.
template <class S, int D>
Eigen::Matrix<S, D, 1> target_value(const data::Task<S, D>& task, int n, Target t, double lambda = 0.1) {
  ICL_CHECK_ARG(n >= 0 && n <= task.n(), "target_value: n: expected 0..", task.n(),
                " (examples of the task), got ", n);
  const auto X = task.X.topRows(n);
  const auto y = task.y.head(n);
  switch (t) {
    case Target::xty:
      return X.transpose() * y;
    case Target::w_ols:
      return regress::fit(regress::Ols{}, X, y);
    case Target::w_ridge:
      ICL_CHECK_ARG(lambda > 0, "target_value: lambda: expected > 0 for w_ridge, got ", lambda);
      return regress::fit(regress::Ridge{lambda}, X, y);
    case Target::w_true:
      return task.w;
  }
  ::icl::detail::raise<InvalidArgument>("target_value: unknown target");
}

/// A probing data set for one n: `tasks` (each with at least n examples) and their prompts of the
/// first n examples, [x̃1, ỹ1, …, x̃n, ỹn] (2n tokens per prompt, side by side: (D+1) x (N·2n)).
template <class S, int D>
struct ProbeSet {
  int n = 0;                            ///< exemplars per prompt (the n of the targets)
  std::vector<data::Task<S, D>> tasks;  ///< the N tasks, in prompt order
  /// The N prompts side by side, (D+1) x (N·2n); prompt b is columns [2n·b, 2n·(b+1)) (data::encode).
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> tokens;
  /// T = 2n, the prompt length to pass with `tokens` (hidden_states, fit_probe).
  int tokens_per_prompt() const { return 2 * n; }
  /// Targets of every task after n examples: D x N.
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> targets(Target t, double lambda = 0.1) const {
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> V(D, static_cast<Eigen::Index>(tasks.size()));
    for (std::size_t b = 0; b < tasks.size(); ++b)
      V.col(static_cast<Eigen::Index>(b)) = target_value(tasks[b], n, t, lambda);
    return V;
  }
};

/// Draws N tasks of n examples from `dist` (its n is overridden) and encodes their prompts.
template <class S, int D>
ProbeSet<S, D> sample_probe_set(data::TaskDistribution dist, int n, int N, Rng& rng) {
  ICL_CHECK_ARG(n >= 1, "sample_probe_set: n: expected >= 1 exemplars, got ", n);
  ICL_CHECK_ARG(N >= 2, "sample_probe_set: N: expected >= 2 prompts, got ", N);
  dist.n = n;
  ProbeSet<S, D> ps;
  ps.n = n;
  ps.tokens.resize(D + 1, static_cast<Eigen::Index>(N) * 2 * n);
  for (int b = 0; b < N; ++b) {
    ps.tasks.push_back(data::sample_task<S, D>(dist, rng));
    ps.tokens.middleCols(static_cast<Eigen::Index>(b) * 2 * n, 2 * n) = data::encode(ps.tasks.back());
  }
  return ps;
}

}  // namespace icl::probe
