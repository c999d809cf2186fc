/// @file
/// The ICL linear-regression task distribution (paper §6.1) and the interleaved token encoding
/// (paper §1.3): a sequence is a matrix whose columns are tokens, x̃ = [0; x], ỹ = [y; 0_D].
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"

namespace icl::data {

/// x ~ N(0, x_std² I_D), w ~ N(w_mean·1, w_std² I_D), y = X w + noise_std · ε with ε ~ N(0, I_n).
struct TaskDistribution {
  int n;                 ///< number of (x, y) examples in a context, n >= 0
  double x_std = 1;      ///< standard deviation of every input coordinate, >= 0
  double w_std = 1;      ///< standard deviation of every weight coordinate (τ), >= 0
  double noise_std = 0;  ///< standard deviation of the label noise (σ), >= 0
  double w_mean = 0;     ///< mean of every weight coordinate (the paper's control model: w = 1 is
                         ///< w_mean = 1, w_std = 0), finite
};

/// One regression task: n examples in D dimensions and the weights that generated them.
template <class S, int D>
struct Task {
  static_assert(D >= 1, "icl::data::Task: the input dimension D must be at least 1");
  static constexpr int Dim = D;           ///< input dimension
  Eigen::Matrix<S, Eigen::Dynamic, D> X;  ///< n x D inputs, one example per row
  Eigen::Matrix<S, Eigen::Dynamic, 1> y;  ///< n labels
  Eigen::Matrix<S, D, 1> w;               ///< the ground-truth weights

  /// Number of examples (rows of X).
  int n() const { return static_cast<int>(X.rows()); }
};

/// Throws InvalidArgument naming the field unless `dist` is valid (n >= 0, finite stds >= 0).
inline void validate(const TaskDistribution& dist) {
  ICL_CHECK_ARG(dist.n >= 0, "TaskDistribution.n: expected >= 0, got ", dist.n);
  const double stds[3] = {dist.x_std, dist.w_std, dist.noise_std};
  const char* names[3] = {"TaskDistribution.x_std", "TaskDistribution.w_std", "TaskDistribution.noise_std"};
  for (int i = 0; i < 3; ++i) {
    check_finite_scalar(stds[i], names[i]);
    ICL_CHECK_ARG(stds[i] >= 0, names[i], ": expected >= 0, got ", stds[i]);
  }
  check_finite_scalar(dist.w_mean, "TaskDistribution.w_mean");
}

/// Samples a task. Draw order (part of the reproducibility contract): the D weights, then X row
/// by row (example 1 first), then the n noise values; all from rng.normal() in double, then
/// rounded to S. With noise_std == 0 no noise values are drawn.
template <class S, int D>
Task<S, D> sample_task(const TaskDistribution& dist, Rng& rng) {
  validate(dist);
  Task<S, D> t;
  Eigen::Matrix<double, D, 1> w;
  for (int k = 0; k < D; ++k) w(k) = dist.w_mean + dist.w_std * rng.normal();
  Eigen::Matrix<double, Eigen::Dynamic, D> X(dist.n, D);
  for (int i = 0; i < dist.n; ++i)
    for (int k = 0; k < D; ++k) X(i, k) = dist.x_std * rng.normal();
  Eigen::VectorXd y = X * w;
  if (dist.noise_std > 0)
    for (int i = 0; i < dist.n; ++i) y(i) += dist.noise_std * rng.normal();
  t.w = w.template cast<S>();
  t.X = X.template cast<S>();
  t.y = y.template cast<S>();
  return t;
}

/// Samples one input x ~ N(0, x_std² I_D) (a query or a probe).
template <class S, int D>
Eigen::Matrix<S, D, 1> sample_x(const TaskDistribution& dist, Rng& rng) {
  validate(dist);
  Eigen::Matrix<S, D, 1> x;
  for (int k = 0; k < D; ++k) x(k) = static_cast<S>(dist.x_std * rng.normal());
  return x;
}

/// Token matrix type for input dimension D: D+1 rows (row 0 = y slot, rows 1..D = x slot).
template <class S, int D>
using Tokens = Eigen::Matrix<S, D + 1, Eigen::Dynamic>;

/// Column of the x-token of example i (0-based): 2i. The query after n examples sits at 2n.
constexpr int x_token_column(int i) { return 2 * i; }
/// Column of the y-token of example i (0-based): 2i + 1.
constexpr int y_token_column(int i) { return 2 * i + 1; }

/// The interleaved prompt [x̃1, ỹ1, …, x̃n, ỹn] as a (D+1) x 2n matrix (paper §1.3).
template <class S, int D>
Tokens<S, D> encode(const Task<S, D>& task) {
  const int n = task.n();
  ICL_CHECK_ARG(task.y.size() == n, "encode: task.y has ", task.y.size(), " entries, expected n = ", n,
                " (task.X.rows())");
  Tokens<S, D> tok = Tokens<S, D>::Zero(D + 1, 2 * n);
  for (int i = 0; i < n; ++i) {
    tok.col(x_token_column(i)).template tail<D>() = task.X.row(i).transpose();
    tok(0, y_token_column(i)) = task.y(i);
  }
  return tok;
}

/// The prompt followed by the query token x̃q = [0; x_query]: (D+1) x (2n+1).
template <class S, int D, class Derived>
Tokens<S, D> encode(const Task<S, D>& task, const Eigen::MatrixBase<Derived>& x_query) {
  ICL_CHECK_ARG(x_query.size() == D, "encode: x_query has ", x_query.size(), " entries, expected D = ", D);
  const int n = task.n();
  Tokens<S, D> tok(D + 1, 2 * n + 1);
  tok.leftCols(2 * n) = encode(task);
  tok.col(2 * n).setZero();
  for (int k = 0; k < D; ++k) tok(1 + k, 2 * n) = static_cast<S>(x_query(k));
  return tok;
}

/// The entries of a per-token output row at the x-token columns 0, 2, 4, …: one prediction per
/// x-token, in order (ceil(T/2) of them for T tokens).
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> at_x_tokens(const Eigen::DenseBase<Derived>& row) {
  ICL_CHECK_ARG(row.rows() == 1 || row.cols() == 1, "at_x_tokens: expected a row or column vector, got ",
                row.rows(), "x", row.cols());
  const Eigen::Index T = row.size();
  Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> out((T + 1) / 2);
  for (Eigen::Index i = 0; i < out.size(); ++i) out(i) = row(2 * i);
  return out;
}

/// Number of examples encoded in a token matrix with T columns (a trailing query is allowed).
inline int examples_in(Eigen::Index T) { return static_cast<int>(T / 2); }

}  // namespace icl::data
