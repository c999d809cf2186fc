/// @file
/// The paper's training objective (Eq. 8, digest §1.3): the model sees the first 2n-1 tokens of
/// each prompt; its output at the x-token of example i (column 2i) is compared with y_i; squared
/// errors are averaged over the n prefixes and the batch. Gradient: docs/derivations/nn_blocks.md Eq. (E1).
#pragma once

#include <Eigen/Core>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::nn {

/// Splits B concatenated prompts [x̃1, ỹ1, …, x̃n, ỹn] ((D+1) x (B·2n)) into the model input
/// (the first 2n-1 tokens of each, (D+1) x (B·(2n-1))) and the targets (n x B, y_i of prompt b
/// at (i, b), read from row 0 of the y-tokens).
template <class DerivedP, class DerivedI, class DerivedY>
void split_prompts(const Eigen::MatrixBase<DerivedP>& prompts, int n,
                   Eigen::PlainObjectBase<DerivedI>& inputs, Eigen::PlainObjectBase<DerivedY>& targets) {
  ICL_CHECK_ARG(n >= 1, "split_prompts: n: expected >= 1, got ", n);
  ICL_CHECK_ARG(prompts.cols() % (2 * n) == 0, "split_prompts: prompts: expected a multiple of 2n = ", 2 * n,
                " columns, got ", prompts.cols());
  const Eigen::Index B = prompts.cols() / (2 * n), T = 2 * n - 1;
  inputs.resize(prompts.rows(), B * T);
  targets.resize(n, B);
  for (Eigen::Index b = 0; b < B; ++b) {
    inputs.middleCols(b * T, T) = prompts.middleCols(b * 2 * n, T);
    for (int i = 0; i < n; ++i) targets(i, b) = prompts(0, b * 2 * n + 2 * i + 1);
  }
}

/// Eq. (8): L = (1/count) Σ_b Σ_i (out(b·T + 2i) − y(i, b))² with n = (T+1)/2 x-tokens per
/// sequence and count = B·n by default. With `dout` (resized to 1 x N) also the gradient
/// dL/dout = 2 (out − y)/count at x-token columns, 0 elsewhere (Eq. E1). `count` > 0 overrides the
/// normaliser (used to split a batch into chunks that sum to the full-batch loss).
template <class S, class DerivedO, class DerivedY>
S icl_loss(const Eigen::MatrixBase<DerivedO>& out, const Eigen::MatrixBase<DerivedY>& targets, int T,
           Eigen::Matrix<S, 1, Eigen::Dynamic>* dout = nullptr, double count = 0) {
  ICL_CHECK_ARG(T >= 1 && T % 2 == 1, "icl_loss: T: expected an odd length 2n-1, got ", T);
  ICL_CHECK_ARG(out.rows() == 1 && out.cols() % T == 0, "icl_loss: out: expected 1 x (B·T), got ", out.rows(),
                "x", out.cols());
  const Eigen::Index B = out.cols() / T;
  const int n = (T + 1) / 2;
  ICL_CHECK_ARG(targets.rows() == n && targets.cols() == B, "icl_loss: targets: expected ", n, "x", B,
                ", got ", targets.rows(), "x", targets.cols());
  const S denom = static_cast<S>(count > 0 ? count : static_cast<double>(B * n));
  if (dout) dout->setZero(1, out.cols());
  S sum = 0;
  for (Eigen::Index b = 0; b < B; ++b) {
    for (int i = 0; i < n; ++i) {
      const Eigen::Index col = b * T + 2 * i;
      const S e = static_cast<S>(out(0, col)) - static_cast<S>(targets(i, b));
      sum += e * e;
      if (dout) (*dout)(0, col) = S(2) * e / denom;
    }
  }
  return sum / denom;
}

}  // namespace icl::nn
