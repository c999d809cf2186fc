/// @file
/// The paper's chains as programs of primitives: Theorem 1 (one GD step) and Theorem 2 (one
/// Sherman–Morrison step) for one example, and the n-example one-pass SGD and online ridge chains
/// (docs/constructions.md §2–§3; paper Appendices A and B, typos corrected).
#pragma once

#include <Eigen/Core>
#include <string>

#include "icl/construct/program.hpp"
#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::construct {

/// Which reading of the paper's appendix to build: the corrected one (default) or the text as printed
/// (used only to show that each printed typo really is a typo; see tests/construct/test_chains.cpp).
enum class Reading { corrected, printed };

namespace detail {
inline void check_dim(int d, const char* fn) { ICL_CHECK_ARG(d >= 1, fn, ": d: expected >= 1, got ", d); }
inline void check_finite_param(double v, const char* fn, const char* name) {
  ICL_CHECK_ARG(std::isfinite(v), fn, ": ", name, ": expected a finite value, got ", v);
}
}  // namespace detail

/// Where a chain's prediction is read: row `row` of the final state, at `column` (n = 1 chains) or at
/// every x-token column (n-example chains).
struct Readout {
  int row = 0;      ///< row of the final hidden state that holds the prediction
  int column = -1;  ///< -1: every x-token column 0, 2, 4, ...
};

/// A program together with where its answer is read.
template <class S>
struct Chain {
  Program<S> program;  ///< the exact program (run() interprets it, table() prints it)
  Readout readout;     ///< where the prediction is read from the final state
  std::string name;    ///< short label for tables, e.g. "Thm 1 (n=1)"
};

/// Theorem 1, one example (Appendix A): H = 3+4d, 9 ops; input columns [x̃1, ỹ1, x̃2]; prediction
/// w'ᵀx2 at row 3+3d, column 2, where w' = w − 2α(x1x1ᵀw − y1x1 + λw) (Eq. 11). `reading = printed`
/// uses the printed W2 = −λ in step 6.
template <class S>
Chain<S> theorem1_chain(int d, const Vec<S>& w, double alpha, double lambda,
                        Reading reading = Reading::corrected) {
  detail::check_dim(d, "theorem1_chain");
  ICL_CHECK_ARG(w.size() == d, "theorem1_chain: w: expected ", d, " entries, got ", w.size());
  detail::check_finite_param(alpha, "theorem1_chain", "alpha");
  detail::check_finite_param(lambda, "theorem1_chain", "lambda");
  using M = Mat<S>;
  using V = Vec<S>;
  Layout L;
  const RowRange y = L.add("y", 1), x = L.add("x", d), Sx = L.add("S", 1), R = L.add("R", 1),
                 G = L.add("G", d), W = L.add("W", d), GR = L.add("GR", d);
  const M I = M::Identity(d, d);
  const S lam = static_cast<S>(reading == Reading::corrected ? lambda : -lambda);
  Program<S> p(L);
  p.mov(ColumnMap::table({{1, 0}}), x, x, "x1 into column 1")
      .aff(x, {}, Sx, w.transpose(), M(), V(), "wᵀx")
      .aff(Sx, y, R, M::Ones(1, 1), -M::Ones(1, 1), V(), "wᵀx − y")
      .mul(d, 1, 1, x, R, G, "x(wᵀx − y)")
      .aff({}, {}, W, M(), M(), w, "w")
      .aff(G, W, GR, I, lam * I, V(), "g = x(wᵀx − y) + λw")
      .aff(W, GR, W, I, static_cast<S>(-2 * alpha) * I, V(), "w' = w − 2αg")
      .mov(ColumnMap::table({{2, 1}}), W, W, "w' into column 2")
      .mul(1, d, 1, W, x, RowRange::row(GR.begin), "prediction w'ᵀx2");
  return {std::move(p), {GR.begin, 2}, "Thm 1 (n=1)"};
}

/// Theorem 2, one example (Appendix B): H = 3+5d+3d², 14 ops; prediction y1 x1ᵀx2/(λ + ‖x1‖²) at row
/// 2+5d+3d², column 2. `reading = printed` uses the printed step 14 mul(d,1,1) (ill-formed for d > 1:
/// the builder throws InvalidArgument).
template <class S>
Chain<S> theorem2_chain(int d, double lambda, Reading reading = Reading::corrected) {
  detail::check_dim(d, "theorem2_chain");
  detail::check_finite_param(lambda, "theorem2_chain", "lambda");
  ICL_CHECK_ARG(lambda > 0, "theorem2_chain: lambda: expected > 0, got ", lambda);
  using M = Mat<S>;
  using V = Vec<S>;
  Layout L;
  const RowRange y = L.add("y", 1), x = L.add("x", d), XY = L.add("XY", d), AI = L.add("AI", d * d),
                 AU = L.add("AU", d), VA = L.add("VA", d), OU = L.add("OU", d * d), Sc = L.add("S", 1),
                 R = L.add("R", d * d), WP = L.add("WP", d), P = L.add("P", 1);
  const M Id = M::Identity(d * d, d * d);
  Program<S> p(L);
  const V a0 = (M::Identity(d, d) / static_cast<S>(lambda)).reshaped();  // symmetric: row-major = col-major
  p.mov(ColumnMap::table({{1, 0}}), x, x, "x1 into column 1")
      .mul(d, 1, 1, x, y, XY, "x1 y1 (unused)")
      .aff({}, {}, AI, M(), M(), a0, "A0⁻¹ = I/λ")
      .mul(d, d, 1, AI, x, AU, "A0⁻¹u")
      .mul(1, d, d, x, AI, VA, "vᵀA0⁻¹")
      .mul(d, 1, d, AU, VA, OU, "A0⁻¹uvᵀA0⁻¹")
      .mul(1, d, 1, VA, x, Sc, "vᵀA0⁻¹u")
      .aff(Sc, {}, Sc, M::Ones(1, 1), M(), V::Ones(1), "1 + vᵀA0⁻¹u")
      .div(OU, Sc.begin, R, "SM correction term")
      .aff(AI, R, AI, Id, -Id, V(), "A1⁻¹")
      .mul(d, d, 1, AI, x, WP, "A1⁻¹x1")
      .mul(d, 1, 1, WP, y, WP, "w' = A1⁻¹x1y1")
      .mov(ColumnMap::table({{2, 1}}), WP, WP, "w' into column 2");
  if (reading == Reading::corrected)
    p.mul(1, d, 1, WP, x, P, "prediction w'ᵀx2");
  else
    p.mul(d, 1, 1, WP, x, P, "prediction (as printed)");
  return {std::move(p), {P.begin, 2}, "Thm 2 (n=1)"};
}

/// One-pass SGD over n examples with w0 = 0 (docs/constructions.md §3.1): H = 4+5d, 5n+3 ops. Every x-token
/// column i holds w_iᵀx_i in row P, w_{i+1} = w_i − 2·lr·(x_i x_iᵀw_i − y_i x_i + λw_i).
template <class S>
Chain<S> sgd_chain(int d, int n, double lr, double lambda) {
  detail::check_dim(d, "sgd_chain");
  ICL_CHECK_ARG(n >= 1, "sgd_chain: n: expected >= 1, got ", n);
  detail::check_finite_param(lr, "sgd_chain", "lr");
  detail::check_finite_param(lambda, "sgd_chain", "lambda");
  using M = Mat<S>;
  using V = Vec<S>;
  Layout L;
  const RowRange y = L.add("y", 1), x = L.add("x", d), XE = L.add("XE", d), W = L.add("W", d),
                 Sr = L.add("S", 1), R = L.add("R", 1), G = L.add("G", d), WO = L.add("WO", d),
                 P = L.add("P", 1);
  const M I = M::Identity(d, d), one = M::Ones(1, 1);
  Program<S> p(L);
  p.mov(ColumnMap::relative(1), x, XE, "x of the previous column", "S1")
      .aff(XE, x, XE, I, -I, V(), "x_j in y-columns, 0 in column 0", "S2");
  for (int k = 0; k < n; ++k) {
    p.mul(1, d, 1, W, XE, Sr, "wᵀx_j", "B1")
        .aff(Sr, y, R, one, -one, V(), "wᵀx_j − y_j", "B2")
        .mul(d, 1, 1, XE, R, G, "x_j(wᵀx_j − y_j)", "B3")
        .aff(W, G, WO, static_cast<S>(1 - 2 * lr * lambda) * I, static_cast<S>(-2 * lr) * I, V(), "w_{j+1}",
             "B4");
    if (k + 1 < n) p.mov(ColumnMap::relative(2), WO, W, "w from the previous y-column", "B5");
  }
  p.mov(ColumnMap::relative(1), WO, W, "w_i in x-column i", "R1")
      .mul(1, d, 1, W, x, P, "prediction w_iᵀx_i", "R2");
  return {std::move(p), {P.begin, -1}, "SGD"};
}

namespace detail {

/// Both online-ridge chains share their rows, set-up (S1–S3) and the Sherman–Morrison update of A⁻¹
/// (B1–B6); they differ in the second half of the state: the moments b (B7, B8; prediction xᵀA⁻¹b) or
/// the weights w (W7–W11; prediction wᵀx).
template <class S>
Chain<S> online_ridge_chain(int d, int n, double lambda, bool w_form) {
  const char* fn = w_form ? "ridge_w_chain" : "ridge_chain";
  check_dim(d, fn);
  ICL_CHECK_ARG(n >= 1, fn, ": n: expected >= 1, got ", n);
  check_finite_param(lambda, fn, "lambda");
  ICL_CHECK_ARG(lambda > 0, fn, ": lambda: expected > 0, got ", lambda);
  using M = Mat<S>;
  using V = Vec<S>;
  Layout L;
  // B/BO hold b or w, TY holds x_j y_j or the update of w (same rows, so the same model type)
  const RowRange y = L.add("y", 1), x = L.add("x", d), XE = L.add("XE", d), AI = L.add("AI", d * d),
                 B = L.add(w_form ? "W" : "B", d), U = L.add("U", d), Sc = L.add("S", 1),
                 OU = L.add("OU", d * d), R = L.add("R", d * d), AO = L.add("AO", d * d),
                 BO = L.add(w_form ? "WO" : "BO", d), TY = L.add(w_form ? "G" : "TY", d), P = L.add("P", 1);
  const M I = M::Identity(d, d), Id2 = M::Identity(d * d, d * d), one = M::Ones(1, 1);
  const RowRange state{AI.begin, B.end}, state_out{AO.begin, BO.end}, K{R.begin, R.begin + d};
  const V a0 = (M::Identity(d, d) / static_cast<S>(lambda)).reshaped();
  Program<S> p(L);
  p.mov(ColumnMap::relative(1), x, XE, "x of the previous column", "S1")
      .aff(XE, x, XE, I, -I, V(), "x_j in y-columns, 0 in column 0", "S2")
      .aff({}, {}, AI, M(), M(), a0, "A⁻¹ = I/λ", "S3");
  for (int k = 0; k < n; ++k) {
    p.mul(d, d, 1, AI, XE, U, "A_j⁻¹x_j", "B1")
        .mul(1, d, 1, XE, U, Sc, "x_jᵀA_j⁻¹x_j", "B2")
        .aff(Sc, {}, Sc, one, M(), V::Ones(1), "1 + x_jᵀA_j⁻¹x_j", "B3")
        .mul(d, 1, d, U, U, OU, "UUᵀ", "B4")
        .div(OU, Sc.begin, R, "UUᵀ/|S|", "B5")
        .aff(AI, R, AO, Id2, -Id2, V(), "A_{j+1}⁻¹", "B6");
    if (w_form)
      p.mul(1, d, 1, B, XE, P, "w_jᵀx_j (scratch in P)", "W7")
          .aff(y, P, P, one, -one, V(), "e_j = y_j − w_jᵀx_j", "W8")
          .mul(d, 1, 1, U, P, TY, "A_j⁻¹x_j e_j", "W9")
          .div(TY, Sc.begin, K, "gain · e_j", "W10")
          .aff(B, K, BO, I, I, V(), "w_{j+1}", "W11");
    else
      p.mul(d, 1, 1, XE, y, TY, "x_j y_j", "B7").aff(B, TY, BO, I, I, V(), "b_{j+1}", "B8");
    if (k + 1 < n)
      p.mov(ColumnMap::relative(2), state_out, state,
            w_form ? "(A⁻¹, w) from the previous y-column" : "(A⁻¹, b) from the previous y-column",
            w_form ? "W12" : "B9");
  }
  if (w_form) {
    p.mov(ColumnMap::relative(1), state_out, state, "(A_i⁻¹, w_i) in x-column i", "R1")
        .mul(1, d, 1, B, x, P, "prediction w_iᵀx_i", "R2");
    return {std::move(p), {P.begin, -1}, "ridge (w-form)"};
  }
  p.mov(ColumnMap::relative(1), state_out, state, "(A_i⁻¹, b_i) in x-column i", "R1")
      .mul(d, d, 1, AI, B, U, "w_i = A_i⁻¹b_i", "R2")
      .mul(1, d, 1, U, x, P, "prediction w_iᵀx_i", "R3");
  return {std::move(p), {P.begin, -1}, "ridge"};
}

}  // namespace detail

/// Online ridge via Sherman–Morrison, moment form (docs/constructions.md §3.2): H = 3+6d+4d², 9n+5 ops.
/// Every x-token column i holds x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i} in row P.
template <class S>
Chain<S> ridge_chain(int d, int n, double lambda) {
  return detail::online_ridge_chain<S>(d, n, lambda, false);
}

/// Online ridge in the w-form (recursive least squares; recipe §7, docs/constructions.md §4.4): the same
/// rows as ridge_chain (H = 3+6d+4d²; W and WO take the places of the moments B and BO, G that of TY),
/// 12n+4 ops. The state carried from column to column is (A_j⁻¹, w_j) instead of (A_j⁻¹, b_j):
/// w_{j+1} = w_j + A_j⁻¹x_j (y_j − w_jᵀx_j) / (1 + x_jᵀA_j⁻¹x_j), the Sherman–Morrison gain times the
/// a-priori residual, so the prediction w_iᵀx_i never multiplies A⁻¹ (and its rounding) by a moment
/// vector that grows with n. Every x-token column i holds x_iᵀ(λI + X_{<i}ᵀX_{<i})⁻¹X_{<i}ᵀY_{<i} in P.
template <class S>
Chain<S> ridge_w_chain(int d, int n, double lambda) {
  return detail::online_ridge_chain<S>(d, n, lambda, true);
}

}  // namespace icl::construct
