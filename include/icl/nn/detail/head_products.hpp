/// @file
/// The per-head T x T products of causal attention (docs/derivations/nn_attention.md Eqs. T2, T3,
/// T5, T6, T8) as register-tiled loops over compile-time head widths, in place of Eigen's packed
/// product: at T ≈ 80 and 16-wide heads Eigen packs both operands for every product, and packing
/// costs as much as the product (issue 20, target 3). Each output tile is NR columns held in
/// registers (NR · D scalars, D the head width: one AVX-512 register per column at D = 16 float) for
/// the whole inner range; the causal structure is followed per tile of NR columns rather than per
/// panel, so the tiles skip all but a triangle of NR² entries of the masked work.
///
/// Two shapes cover all six products:
///   thin:   C(:, j) += α Σ_{p ∈ [lo_j, hi_j)} X(:, p) · Y(p, j)      C, X: D rows, X's columns contiguous
///   square: C(i, j)  = α Σ_{r < D} Xt(i, r) · Y(r, j),  i < rows_j     Xt: X transposed, rows contiguous
/// with Y(p, j) read at Y[p·sp + j·sj] (so Y or Yᵀ of a column-major matrix), [lo_j, hi_j) the
/// causal window of the tile holding column j and rows_j the tile's rows rounded up to whole row
/// blocks. The values differ from a dense product only in the order of the additions over p (and
/// in the exact zeros the window leaves out, which add nothing): rounding.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <utility>

namespace icl::nn::detail {

/// Columns per register tile of the thin products: about 8 registers of accumulators for D·S of
/// up to 64 bytes (one zmm or two ymm per column), fewer columns for wider heads (at most 16 zmm).
template <class S, int D>
constexpr int thin_tile_cols() {
  constexpr int bytes = D * int(sizeof(S));
  return bytes <= 64 ? 8 : bytes <= 128 ? 6 : 4;
}

/// Whether the kernels below serve a head of width D in S (wider heads go through Eigen's product:
/// their accumulators would not fit in registers, and their products are large enough for packing).
template <class S, int D>
constexpr bool head_kernels_apply() {
  return D * int(sizeof(S)) <= 128;
}

/// Thin product over the columns [j0, j1) of C (D x ·, column stride ldc), tile by tile of NR:
/// C(:, j) (+)= α Σ_{p ∈ [lo, hi)} X(:, p) Y[p·sp + j·sj], with [lo, hi) = window(first, last column
/// of the tile) (a pair; entries of Y outside a column's own window must be exact zeros, or finite
/// and wanted). X: D x ·, column stride ldx. Assign: C(:, j) = …, else C(:, j) += ….
template <class S, int D, bool Assign, class Window>
EIGEN_DONT_INLINE void thin_product(S* C, Eigen::Index ldc, const S* X, Eigen::Index ldx, const S* Y, Eigen::Index sp,
                  Eigen::Index sj, Eigen::Index j0, Eigen::Index j1, S alpha, Window window) {
  constexpr int NR = thin_tile_cols<S, D>();
  using Col = Eigen::Array<S, D, 1>;
  for (Eigen::Index t0 = j0; t0 < j1; t0 += NR) {
    const int n = int(std::min<Eigen::Index>(NR, j1 - t0));
    const auto [lo, hi] = window(t0, t0 + n - 1);
    const S* y[NR];  // an edge tile repeats its last column (computed, not stored)
    for (int j = 0; j < NR; ++j) y[j] = Y + (t0 + std::min(j, n - 1)) * sj + lo * sp;
    const S* x = X + lo * ldx;
    Col acc[NR];
    for (int j = 0; j < NR; ++j) acc[j].setZero();
    for (Eigen::Index p = lo; p < hi; ++p, x += ldx) {
      const Eigen::Map<const Col> xv(x);
      const Eigen::Index o = (p - lo) * sp;
      for (int j = 0; j < NR; ++j) acc[j] += xv * y[j][o];
    }
    for (int j = 0; j < n; ++j) {
      Eigen::Map<Col> c(C + (t0 + j) * ldc);
      if constexpr (Assign)
        c = alpha * acc[j];
      else
        c += alpha * acc[j];
    }
  }
}

/// Square product: for the columns [0, n) of C (column stride ldc), tile by tile of NC columns,
/// C(i, j) = α Σ_{r < D} Xt[r·ldt + i] Y[r + j·ldy] for i < rows(last column of the tile), rows()
/// rounded up to whole blocks of MB rows (C and Xt must hold those rows: padded, Xt zero there), and
/// C(i, j) = 0 for the rows from there to zero_to (none when zero_to is 0).
template <class S, int D, class Rows>
EIGEN_DONT_INLINE void square_product(S* C, Eigen::Index ldc, const S* Xt, Eigen::Index ldt, const S* Y, Eigen::Index ldy,
                    Eigen::Index n, S alpha, Rows rows, Eigen::Index zero_to = 0) {
  constexpr int MB = 64 / int(sizeof(S));  // one 64-byte block of rows (a zmm of float or double)
  constexpr int NC = 8;
  using Blk = Eigen::Array<S, MB, 1>;
  for (Eigen::Index t0 = 0; t0 < n; t0 += NC) {
    const int m = int(std::min<Eigen::Index>(NC, n - t0));
    const Eigen::Index r1 = (rows(t0 + m - 1) + MB - 1) / MB * MB;
    eigen_assert(r1 <= ldt && r1 <= ldc && zero_to <= ldc);
    const S* y[NC];  // the tile's columns of Y (an edge tile repeats its last column: computed, not stored)
    for (int j = 0; j < NC; ++j) y[j] = Y + (t0 + std::min(j, m - 1)) * ldy;
    for (Eigen::Index i0 = 0; i0 < r1; i0 += MB) {
      Blk acc[NC];
      for (int j = 0; j < NC; ++j) acc[j].setZero();
      for (int r = 0; r < D; ++r) {
        const Eigen::Map<const Blk> x(Xt + r * ldt + i0);
        for (int j = 0; j < NC; ++j) acc[j] += x * y[j][r];
      }
      for (int j = 0; j < m; ++j) Eigen::Map<Blk>(C + i0 + (t0 + j) * ldc) = alpha * acc[j];
    }
    if (zero_to > r1)
      for (int j = 0; j < m; ++j) std::fill(C + r1 + (t0 + j) * ldc, C + zero_to + (t0 + j) * ldc, S(0));
  }
}

/// Xt = Xᵀ for X: D x T (column stride ldx) into Xt: D rows of ldt ≥ T entries, zero past T. By
/// in-register transposes of PS x PS blocks (Eigen's ptranspose, PS the packet size) where D is a
/// multiple of PS, else entry by entry.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // PacketBlock<__m512, …>: as inside Eigen
#endif
template <class S, int D>
void transpose_head(const S* X, Eigen::Index ldx, Eigen::Index T, S* Xt, Eigen::Index ldt) {
  using Packet = typename Eigen::internal::packet_traits<S>::type;
  constexpr int PS = Eigen::internal::packet_traits<S>::size;
  for (int r = 0; r < D; ++r) std::fill(Xt + r * ldt + T, Xt + (r + 1) * ldt, S(0));
  Eigen::Index i0 = 0;
  if constexpr (PS > 1 && D % PS == 0) {
    for (; i0 + PS <= T; i0 += PS)
      for (int r0 = 0; r0 < D; r0 += PS) {
        Eigen::internal::PacketBlock<Packet, PS> blk;
        for (int k = 0; k < PS; ++k) blk.packet[k] = Eigen::internal::ploadu<Packet>(X + r0 + (i0 + k) * ldx);
        Eigen::internal::ptranspose(blk);
        for (int k = 0; k < PS; ++k) Eigen::internal::pstoreu(Xt + (r0 + k) * ldt + i0, blk.packet[k]);
      }
  }
  for (Eigen::Index i = i0; i < T; ++i)
    for (int r = 0; r < D; ++r) Xt[r * ldt + i] = X[r + i * ldx];
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

}  // namespace icl::nn::detail
