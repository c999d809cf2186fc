/// @file
/// Causal multi-head self-attention over batches of sequences (columns are tokens), in the
/// standard form (head width H/M, PyTorch nn.MultiheadAttention) and the paper's form (every head
/// returns a full-width value, W^F mixes the heads), with softmax or linear (softmax-free) scores.
/// Backward: docs/derivations/nn_attention.md Eqs. (T1)-(T8).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/detail/head_products.hpp"
#include "icl/nn/linear.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/softmax.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// How attention turns scores into weights.
enum class Scores {
  softmax,  ///< column i of the weights is softmax over keys 0..i of scale·k_kᵀq_i (Eq. T2)
  linear    ///< weights are scale·k_kᵀq_i for keys 0..i, no normalisation (von Oswald et al.)
};

/// Run-time options of an attention layer.
struct AttentionOptions {
  Scores scores = Scores::softmax;  ///< softmax or linear scores
  std::optional<double> scale;      ///< score factor; unset: 1/sqrt(head query/key width)
  bool qkv_bias = true;             ///< biases on the q/k/v projections ("in_proj_bias")
  bool out_bias = true;             ///< bias on the output projection ("out_proj.bias")
};

/// Causal multi-head self-attention, generic in the head widths.
///
/// @tparam S   scalar
/// @tparam H   model width (rows of input and output)
/// @tparam M   number of heads
/// @tparam DQK query/key width of one head
/// @tparam DV  value width of one head
///
/// For every sequence (T consecutive columns of the input) and head j (Eqs. T1-T4):
///   [Q; K; V] = W_in X + b_in,  Q_j = rows [j·DQK, (j+1)·DQK) of Q (likewise K_j, V_j with DV),
///   A_j = causal_softmax(scale · K_jᵀ Q_j)   (T x T, column i = weights of query i over keys ≤ i),
///   O_j = V_j A_j,  Y = W_out [O_1; …; O_M] + b_out.
/// Parameters: "in_proj_weight" ((2·M·DQK + M·DV) x H, rows [W^Q_1..W^Q_M; W^K_1..; W^V_1..]),
/// "in_proj_bias", "out_proj.weight" (H x M·DV), "out_proj.bias". With DQK = DV = H/M this is
/// exactly PyTorch's nn.MultiheadAttention layout.
template <class S, int H, int M, int DQK, int DV>
class CausalAttention {
  static_assert(is_scalar_v<S>, "icl::nn::CausalAttention: Scalar must be a floating-point type");
  static_assert(M >= 1, "icl::nn::CausalAttention: the number of heads M must be at least 1");
  static_assert(DQK >= 1 && DV >= 1, "icl::nn::CausalAttention: head widths must be positive");

 public:
  /// The scalar type S.
  using Scalar = S;
  static constexpr int Hidden = H;              ///< model width
  static constexpr int Heads = M;               ///< heads
  static constexpr int QKWidth = DQK;           ///< query/key width per head
  static constexpr int VWidth = DV;             ///< value width per head
  static constexpr int P = M * (2 * DQK + DV);  ///< rows of the stacked q/k/v projection
  /// A sequence (or batch of sequences) of H-feature tokens, H x N.
  using SeqType = Seq<S, H>;
  /// Writable DQK x H view of one head's W^Q or W^K rows inside in_proj_weight (column stride P).
  using WeightQK = Eigen::Map<Eigen::Matrix<S, DQK, H>, Eigen::Unaligned, Eigen::OuterStride<P>>;
  /// Writable DV x H view of one head's W^V rows inside in_proj_weight (column stride P).
  using WeightV = Eigen::Map<Eigen::Matrix<S, DV, H>, Eigen::Unaligned, Eigen::OuterStride<P>>;
  /// Writable view of one head's query or key bias (DQK entries) inside in_proj_bias.
  using BiasQK = Eigen::Map<Eigen::Matrix<S, DQK, 1>>;
  /// Writable view of one head's value bias (DV entries) inside in_proj_bias.
  using BiasV = Eigen::Map<Eigen::Matrix<S, DV, 1>>;

  /// Forward state kept for backward, plus backward scratch (reused across calls).
  struct Cache {
    Seq<S, P> qkv;  ///< stacked projections, P x N
    /// Attention weights, causal_padded_rows(T) x (B·M·T): columns [(b·M + j)·T, +T) are A_j of
    /// sequence b in rows 0..T-1; the padding rows (zeros) keep every column a whole number of SIMD
    /// packets (causal_softmax_blocks). Read them through weights().
    Mat<S> attn;
    Seq<S, M * DV> heads;   ///< concatenated head outputs, M·DV x N
    Seq<S, M * DV> dheads;  ///< backward scratch: dL/d[O_1; …; O_M] in its first N columns (never shrinks)
    Seq<S, P> dqkv;         ///< backward scratch: dL/d[Q; K; V] in its first N columns (never shrinks)
    /// Backward scratch: dL/dA_j of the current (sequence, head), causal_padded_rows(T) x T.
    Mat<S> dA;
    /// Scratch of the head kernels (detail/head_products.hpp): K_jᵀ or V_jᵀ, causal_padded_rows(T) x
    /// max(DQK, DV), zero past row T.
    Mat<S> xt;
    int T = 0;  ///< tokens per sequence of the last forward() (backward() reuses it)
    /// Attention weights of head j in sequence b: T x T, column = query, row = key.
    typename Mat<S>::ConstBlockXpr weights(Eigen::Index b, int j) const {
      return attn.block(0, (b * M + j) * T, T, T);
    }
  };

  /// Zero weights and biases. The score factor is opt.scale, or 1/sqrt(DQK) when unset (PyTorch's
  /// default for DQK = H/M).
  /// @throws icl::InvalidArgument if opt.scale is set and not finite.
  explicit CausalAttention(AttentionOptions opt = {})
      : scores_(opt.scores),
        scale_(static_cast<S>(opt.scale ? *opt.scale : 1.0 / std::sqrt(static_cast<double>(DQK)))),
        in_proj_(opt.qkv_bias),
        out_proj_(opt.out_bias) {
    ICL_CHECK_ARG(!opt.scale || std::isfinite(*opt.scale), "CausalAttention: scale: expected finite, got ",
                  opt.scale.value_or(0));
  }

  /// Softmax or linear scores (fixed at construction).
  Scores scores() const { return scores_; }
  /// The factor on the scores K_jᵀQ_j (Eq. T2).
  S scale() const { return scale_; }
  /// Changes the score factor (e.g. 1 for the paper's block, which has no 1/sqrt).
  /// @throws icl::InvalidArgument unless s is finite.
  void set_scale(S s) {
    ICL_CHECK_ARG(std::isfinite(s), "CausalAttention::set_scale: s: expected finite, got ", s);
    scale_ = s;
  }

  /// The stacked projection [W^Q; W^K; W^V] (P x H) and its bias (P).
  Linear<S, H, P>& in_proj() { return in_proj_; }
  /// Read-only access to the stacked q/k/v projection.
  const Linear<S, H, P>& in_proj() const { return in_proj_; }
  /// The output projection (H x M·DV; the paper's W^F) with its bias.
  Linear<S, M * DV, H>& out_proj() { return out_proj_; }
  /// Read-only access to the output projection.
  const Linear<S, M * DV, H>& out_proj() const { return out_proj_; }

  /// Writable view of head j's query weights W^Q_j (DQK x H), 0 <= j < M (unchecked).
  WeightQK wq(int j) { return WeightQK(in_proj_.weight().data() + row_q(j)); }
  /// Writable view of head j's key weights W^K_j (DQK x H), 0 <= j < M (unchecked).
  WeightQK wk(int j) { return WeightQK(in_proj_.weight().data() + row_k(j)); }
  /// Writable view of head j's value weights W^V_j (DV x H), 0 <= j < M (unchecked).
  WeightV wv(int j) { return WeightV(in_proj_.weight().data() + row_v(j)); }
  /// Writable view of head j's query bias (DQK entries; used only with opt.qkv_bias).
  BiasQK bq(int j) { return BiasQK(in_proj_.bias().data() + row_q(j)); }
  /// Writable view of head j's key bias (DQK entries; used only with opt.qkv_bias).
  BiasQK bk(int j) { return BiasQK(in_proj_.bias().data() + row_k(j)); }
  /// Writable view of head j's value bias (DV entries; used only with opt.qkv_bias).
  BiasV bv(int j) { return BiasV(in_proj_.bias().data() + row_v(j)); }

  /// y = Attention(x) for x holding B = x.cols()/T sequences of T tokens each.
  /// @throws icl::InvalidArgument unless T >= 1 divides x.cols() (else trailing columns of y
  ///         would be left unwritten).
  void forward(const In<S>& x, int T, Cache& c, Out<S> y) const {
    attend(x, T, c);
    out_proj_.forward(c.heads, y);  // Eq. T4
  }

  /// y += Attention(x): forward() added onto y (the residual connection of a block) without a
  /// separate pass over y. Same checks and cache as forward().
  void forward_add(const In<S>& x, int T, Cache& c, Out<S> y) const {
    attend(x, T, c);
    out_proj_.forward_add(c.heads, y);  // Eq. T4
  }

  /// Accumulates parameter gradients and writes dx (Eqs. T5-T8). `x` is forward's input.
  void backward(const In<S>& x, Cache& c, const In<S>& dy, Out<S> dx) {
    const Eigen::Index N = x.cols();
    const int T = c.T;
    const Eigen::Index B = N / T;
    const Eigen::Index Tp = causal_padded_rows(T);
    // Backward scratch: the first N columns of dheads and dqkv (grown, never shrunk: see
    // detail::scratch_cols).
    Out<S> dheads = detail::scratch_cols(c.dheads, M * DV, N);
    Out<S> dqkv = detail::scratch_cols(c.dqkv, P, N);
    c.dA.resize(Tp, T);
    out_proj_.accumulate_grad(c.heads, dy);
    out_proj_.backward_input(dy, dheads);
    if constexpr (kHeadKernels) {
      backward_heads(c, dheads, dqkv, B, T);
    } else {
      backward_heads_eigen(c, dheads, dqkv, B, T);
    }
    in_proj_.accumulate_grad(x, dqkv);
    in_proj_.backward_input(dqkv, dx);
  }

 private:
  // Whether the head products run through detail/head_products.hpp (narrow heads) or Eigen's product.
  static constexpr bool kHeadKernels =
      detail::head_kernels_apply<S, DQK>() && detail::head_kernels_apply<S, DV>();

  // Eqs. T5-T8 per (sequence, head) by Eigen's products over the panels of Eq. T9 (wide heads).
  void backward_heads_eigen(Cache& c, Out<S>& dheads, Out<S>& dqkv, Eigen::Index B, int T) const {
    // Every per-head product below accumulates (+=) into zeroed memory: Eigen's `=` product would
    // zero its destination itself, column by column (DV or T entries each), which costs more than
    // these contiguous passes. dqkv is zeroed here in one pass, dA (contiguous Tp x T) per head.
    dqkv.setZero();
    for (Eigen::Index b = 0; b < B; ++b) {
      for (int j = 0; j < M; ++j) {
        const Eigen::Ref<const Mat<S>> Q = c.qkv.block(row_q(j), b * T, DQK, T);
        const Eigen::Ref<const Mat<S>> K = c.qkv.block(row_k(j), b * T, DQK, T);
        const Eigen::Ref<const Mat<S>> V = c.qkv.block(row_v(j), b * T, DV, T);
        const Eigen::Ref<const Mat<S>> A = c.attn.block(0, (b * M + j) * T, T, T);
        const Eigen::Ref<const Mat<S>> dO = dheads.block(j * DV, b * T, DV, T);
        // dA zeroed: its padding rows and the entries below the staircase of panels (Eq. T9) are
        // never written by the products; Eq. T7 reads them (times exact zeros of A, so they must be
        // finite) and writes back zeros.
        c.dA.setZero();
        Eigen::Ref<Mat<S>> dA = c.dA.topRows(T);
        auto dV = dqkv.block(row_v(j), b * T, DV, T);
        auto dQ = dqkv.block(row_q(j), b * T, DQK, T);
        auto dK = dqkv.block(row_k(j), b * T, DQK, T);
        // Eqs. T5, T6 over the panels of Eq. T9: dV = dO Aᵀ by row panels of A, dA = Vᵀ dO by column panels.
        for_each_panel(T, [&](Eigen::Index c0, Eigen::Index w) {
          dV.middleCols(c0, w).noalias() += dO.rightCols(T - c0) * A.block(c0, c0, w, T - c0).transpose();
          dA.block(0, c0, c0 + w, w).noalias() += V.leftCols(c0 + w).transpose() * dO.middleCols(c0, w);
        });
        if (scores_ == Scores::softmax)
          causal_softmax_blocks_backward<S>(c.attn.middleCols((b * M + j) * T, T), c.dA, c.dA);  // Eq. T7
        else
          dA.template triangularView<Eigen::StrictlyLower>().setZero();
        // Eq. T8: dQ = scale · K dA by column panels, dK = scale · Q dAᵀ by row panels of dA.
        for_each_panel(T, [&](Eigen::Index c0, Eigen::Index w) {
          dQ.middleCols(c0, w).noalias() += scale_ * (K.leftCols(c0 + w) * dA.block(0, c0, c0 + w, w));
          dK.middleCols(c0, w).noalias() +=
              scale_ * (Q.rightCols(T - c0) * dA.block(c0, c0, w, T - c0).transpose());
        });
      }
    }
  }

  // Eqs. T5-T8 per (sequence, head) by the head kernels: every column of dQ, dK, dV and of the
  // top rows of dA is written (=) once, so nothing is zeroed first; the products follow the causal
  // window per tile of columns (detail/head_products.hpp).
  void backward_heads(Cache& c, Out<S>& dheads, Out<S>& dqkv, Eigen::Index B, int T) const {
    using Index = Eigen::Index;
    using W = std::pair<Index, Index>;
    const Index Tp = c.dA.rows(), ldq = c.qkv.outerStride(), ldo = dheads.outerStride(),
                ldd = dqkv.outerStride();
    c.xt.resize(Tp, std::max(DQK, DV));
    auto upto = [](Index, Index last) { return W(0, last + 1); };  // keys 0..j of query j
    auto from = [T](Index first, Index) { return W(first, T); };   // queries i..T-1 of key i
    auto keys = [](Index q) { return q + 1; };
    for (Index b = 0; b < B; ++b) {
      for (int j = 0; j < M; ++j) {
        const S* Q = c.qkv.data() + row_q(j) + b * T * ldq;
        const S* K = c.qkv.data() + row_k(j) + b * T * ldq;
        const S* V = c.qkv.data() + row_v(j) + b * T * ldq;
        const S* A = c.attn.data() + (b * M + j) * T * Tp;
        const S* dO = dheads.data() + j * DV + b * T * ldo;
        S* dQ = dqkv.data() + row_q(j) + b * T * ldd;
        S* dK = dqkv.data() + row_k(j) + b * T * ldd;
        S* dV = dqkv.data() + row_v(j) + b * T * ldd;
        // Eq. T5: dV(:, i) = Σ_{q ≥ i} dO(:, q) A(i, q)
        detail::thin_product<S, DV, true>(dV, ldd, dO, ldo, A, Tp, 1, 0, T, S(1), from);
        // Eq. T6: dA = Vᵀ dO on and above the diagonal (by row blocks), zero below to the padding
        detail::transpose_head<S, DV>(V, ldq, T, c.xt.data(), Tp);
        detail::square_product<S, DV>(c.dA.data(), Tp, c.xt.data(), Tp, dO, ldo, T, S(1), keys, Tp);
        if (scores_ == Scores::softmax)
          causal_softmax_blocks_backward<S>(c.attn.middleCols((b * M + j) * T, T), c.dA, c.dA);  // Eq. T7
        else
          c.dA.topRows(T).template triangularView<Eigen::StrictlyLower>().setZero();
        // Eq. T8: dQ(:, q) = scale Σ_{k ≤ q} K(:, k) dZ(k, q), dK(:, k) = scale Σ_{q ≥ k} Q(:, q) dZ(k, q)
        detail::thin_product<S, DQK, true>(dQ, ldd, K, ldq, c.dA.data(), 1, Tp, 0, T, scale_, upto);
        detail::thin_product<S, DQK, true>(dK, ldd, Q, ldq, c.dA.data(), Tp, 1, 0, T, scale_, from);
      }
    }
  }

 public:
  /// "in_proj_weight", "in_proj_bias" (with qkv_bias), "out_proj.weight", "out_proj.bias" (with
  /// out_bias), each name prefixed by `prefix`; PyTorch's order.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Appends the views of parameters() to `ps`.
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    in_proj_.append_parameters(ps, prefix, "in_proj_weight", "in_proj_bias");
    out_proj_.append_parameters(ps, prefix + "out_proj.");
  }
  /// Sets all parameter gradients to zero.
  void zero_grad() {
    in_proj_.zero_grad();
    out_proj_.zero_grad();
  }

 private:
  // Eqs. T1-T3 for B = x.cols()/T sequences: fills c.qkv, c.attn and c.heads.
  void attend(const In<S>& x, int T, Cache& c) const {
    const Eigen::Index N = x.cols();
    ICL_CHECK_ARG(T >= 1 && N % T == 0, "CausalAttention::forward: T: expected a divisor of the ", N,
                  " columns of x, got ", T);
    const Eigen::Index B = N / T;
    c.T = T;
    c.qkv.resize(P, N);
    c.attn.resize(causal_padded_rows(T), B * M * T);
    c.heads.resize(M * DV, N);
    in_proj_.forward(x, c.qkv);
    if constexpr (kHeadKernels) {
      attend_heads(c, B, T);
      return;
    }
    c.heads.setZero();  // the products accumulate into zeroed memory (see backward())
    for (Eigen::Index b = 0; b < B; ++b) {
      for (int j = 0; j < M; ++j) {
        const Eigen::Ref<const Mat<S>> Q = c.qkv.block(row_q(j), b * T, DQK, T);
        const Eigen::Ref<const Mat<S>> K = c.qkv.block(row_k(j), b * T, DQK, T);
        const Eigen::Ref<const Mat<S>> V = c.qkv.block(row_v(j), b * T, DV, T);
        Eigen::Ref<Mat<S>> A = c.attn.block(0, (b * M + j) * T, T, T);
        auto O = c.heads.block(j * DV, b * T, DV, T);
        c.attn.middleCols((b * M + j) * T, T).setZero();  // contiguous Tp x T
        // Eq. T2 (Z = scale · KᵀQ) over the column panels of Eq. T9: the masked entries below the
        // staircase are skipped (the softmax never reads them).
        for_each_panel(T, [&](Eigen::Index c0, Eigen::Index w) {
          A.block(0, c0, c0 + w, w).noalias() +=
              scale_ * (K.leftCols(c0 + w).transpose() * Q.middleCols(c0, w));
        });
        if (scores_ == Scores::softmax)
          causal_softmax_blocks<S>(c.attn.middleCols((b * M + j) * T, T), T);
        else
          A.template triangularView<Eigen::StrictlyLower>().setZero();
        for_each_panel(T, [&](Eigen::Index c0, Eigen::Index w) {  // Eq. T3: O = V A, column panels of A
          O.middleCols(c0, w).noalias() += V.leftCols(c0 + w) * A.block(0, c0, c0 + w, w);
        });
      }
    }
  }

  // Eqs. T2, T3 per (sequence, head) by the head kernels (narrow heads): Z = scale · KᵀQ on and above
  // the diagonal (by row blocks; the rows below are overwritten by the softmax, which writes every
  // row of its columns, padding included), then O = V A with O's columns written (=) once.
  void attend_heads(Cache& c, Eigen::Index B, int T) const {
    using Index = Eigen::Index;
    const Index Tp = c.attn.rows(), ldq = c.qkv.outerStride(), ldh = c.heads.outerStride();
    c.xt.resize(Tp, std::max(DQK, DV));
    auto upto = [](Index, Index last) { return std::pair<Index, Index>(0, last + 1); };
    auto keys = [](Index q) { return q + 1; };
    for (Index b = 0; b < B; ++b) {
      for (int j = 0; j < M; ++j) {
        const S* Q = c.qkv.data() + row_q(j) + b * T * ldq;
        const S* K = c.qkv.data() + row_k(j) + b * T * ldq;
        const S* V = c.qkv.data() + row_v(j) + b * T * ldq;
        auto Acols = c.attn.middleCols((b * M + j) * T, T);
        S* A = Acols.data();
        if (scores_ != Scores::softmax) Acols.setZero();  // linear: zeros below the diagonal and padding
        detail::transpose_head<S, DQK>(K, ldq, T, c.xt.data(), Tp);
        detail::square_product<S, DQK>(A, Tp, c.xt.data(), Tp, Q, ldq, T, scale_, keys);  // Eq. T2
        if (scores_ == Scores::softmax)
          causal_softmax_blocks<S>(Acols, T);
        else
          Acols.topRows(T).template triangularView<Eigen::StrictlyLower>().setZero();
        // Eq. T3: O(:, q) = Σ_{k ≤ q} V(:, k) A(k, q)
        detail::thin_product<S, DV, true>(c.heads.data() + j * DV + b * T * ldh, ldh, V, ldq, A, 1, Tp, 0, T,
                                          S(1), upto);
      }
    }
  }

  // Eq. T9: the per-head T x T products run over np column panels of the queries, [c_p, c_{p+1}).
  // Weight column i (query i) is zero below row i, so panel p of A, Z and dA is zero below row
  // c_{p+1} and every product with them skips that block: (np+1)/(2·np) of the dense work for equal
  // panels. Panels are about 32 columns wide (measured at T = 79 on AVX-512, attention forward+
  // backward: 2 and 4 panels tie, 5-10 % faster than 1 at H = 64-128; 3 panels were slower than 2),
  // with edges at multiples of 8 (whole SIMD packets of the result rows for float AVX; edges at
  // multiples of 4 or 16 measured slower). One panel (no split) below T = 48.
  static int causal_panels(int T) { return std::max(1, (T + 16) / 32); }
  static Eigen::Index panel_begin(int p, int np, int T) {
    return p == np ? T : (Eigen::Index(p) * T / np + 7) / 8 * 8;
  }
  // Calls f(c0, w) for every panel [c0, c0 + w) of Eq. T9, in order.
  template <class F>
  static void for_each_panel(int T, F&& f) {
    const int np = causal_panels(T);
    for (int p = 0; p < np; ++p) {
      const Eigen::Index c0 = panel_begin(p, np, T);
      f(c0, panel_begin(p + 1, np, T) - c0);
    }
  }

  static constexpr Eigen::Index row_q(int j) { return Eigen::Index(j) * DQK; }
  static constexpr Eigen::Index row_k(int j) { return Eigen::Index(M) * DQK + Eigen::Index(j) * DQK; }
  static constexpr Eigen::Index row_v(int j) { return Eigen::Index(2) * M * DQK + Eigen::Index(j) * DV; }

  Scores scores_;
  S scale_;
  Linear<S, H, P> in_proj_;
  Linear<S, M * DV, H> out_proj_;
};

namespace detail {
template <int H, int M>
constexpr int checked_head_width() {
  static_assert(M >= 1 && H % M == 0,
                "icl::nn::MultiHeadAttention: H must be divisible by the number of heads M");
  return H / M;
}
}  // namespace detail

/// Standard causal multi-head attention (head width H/M, default scale 1/sqrt(H/M), biases), the
/// layout of PyTorch's nn.MultiheadAttention(H, M).
template <class S, int H, int M>
using MultiHeadAttention =
    CausalAttention<S, H, M, detail::checked_head_width<H, M>(), detail::checked_head_width<H, M>()>;

/// The paper's attention (Eq. 3): M heads, each with full-width H x H query, key and value maps and
/// no q/k/v biases; W^F (H x M·H, with bias) mixes the concatenated heads. Construct with
/// paper_attention_options() for the paper's defaults (softmax, no 1/sqrt scaling).
template <class S, int H, int M>
using PaperAttention = CausalAttention<S, H, M, H, H>;

/// Options of the paper's attention: softmax (or `scores`), score factor `scale` (1 = the paper,
/// no scaling), no q/k/v biases, W^F bias.
inline AttentionOptions paper_attention_options(Scores scores = Scores::softmax, double scale = 1.0) {
  return AttentionOptions{scores, scale, /*qkv_bias=*/false, /*out_bias=*/true};
}

}  // namespace icl::nn
