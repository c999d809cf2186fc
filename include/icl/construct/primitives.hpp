/// @file
/// The exact Lemma-1 primitives mov, mul, div, aff on a hidden-state matrix (paper §2.1, Lemma 1).
///
/// A hidden state is an H x T matrix: rows are hidden units, columns are timesteps. Every primitive
/// reads the state *before* the op (in-place use is allowed wherever the paper allows it) and copies
/// every row it does not name. Matrices stored in a row range are row-major: entry (r, c) of an
/// a x b block sits at row begin + r*b + c (docs/constructions.md §1).
///
/// Two forms of each primitive:
/// * run-time row ranges: checked, throwing icl::InvalidArgument with a readable message;
/// * compile-time row ranges as template arguments (mul<a, b, c, R1, R2, W>(h)): checked by
///   static_assert, including "inside the width" when the state has a fixed number of rows.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "icl/construct/row_range.hpp"
#include "icl/core/error.hpp"

namespace icl::construct {

namespace detail {

template <class S>
using RowMajor = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline void check_range(RowRange r, Eigen::Index height, const char* fn, const char* arg) {
  ICL_CHECK_ARG(r.valid_for(static_cast<int>(height)), fn, ": ", arg, ": expected a row range inside [0, ",
                height, ") with begin <= end, got ", to_string(r));
}

}  // namespace detail

/// Checks mul's preconditions (footnote 1, corrected): |r1| = a*b, |r2| = b*c, |w| = a*c, all inside
/// [0, height). Throws InvalidArgument.
inline void check_mul(Eigen::Index height, int a, int b, int c, RowRange r1, RowRange r2, RowRange w) {
  ICL_CHECK_ARG(a >= 1 && b >= 1 && c >= 1, "mul: sizes a, b, c: expected >= 1, got ", a, ", ", b, ", ", c);
  detail::check_range(r1, height, "mul", "r1");
  detail::check_range(r2, height, "mul", "r2");
  detail::check_range(w, height, "mul", "w");
  ICL_CHECK_ARG(r1.size() == a * b, "mul: r1 ", to_string(r1), " has ", r1.size(),
                " rows, expected a*b = ", a * b);
  ICL_CHECK_ARG(r2.size() == b * c, "mul: r2 ", to_string(r2), " has ", r2.size(),
                " rows, expected b*c = ", b * c);
  ICL_CHECK_ARG(w.size() == a * c, "mul: w ", to_string(w), " has ", w.size(),
                " rows, expected a*c = ", a * c);
}

/// Checks div's preconditions: ranges inside [0, height), |w| = |r|, w disjoint from r and c_row.
inline void check_div(Eigen::Index height, RowRange r, int c_row, RowRange w) {
  detail::check_range(r, height, "div", "r");
  detail::check_range(w, height, "div", "w");
  ICL_CHECK_ARG(c_row >= 0 && c_row < height, "div: c_row: expected a row in [0, ", height, "), got ", c_row);
  ICL_CHECK_ARG(w.size() == r.size(), "div: w ", to_string(w), " has ", w.size(),
                " rows, expected |r| = ", r.size());
  ICL_CHECK_ARG(!w.overlaps(r) && !w.contains(c_row), "div: target w ", to_string(w),
                " must be disjoint from the numerator r ", to_string(r), " and the divisor row ", c_row);
}

/// Checks aff's preconditions: ranges inside [0, height), W1 is |w| x |r|, W2 is |w| x |s|, b has |w|.
template <class D1, class D2, class Db>
void check_aff(Eigen::Index height, RowRange r, RowRange s, RowRange w, const Eigen::MatrixBase<D1>& W1,
               const Eigen::MatrixBase<D2>& W2, const Eigen::MatrixBase<Db>& b) {
  detail::check_range(r, height, "aff", "r");
  detail::check_range(s, height, "aff", "s");
  detail::check_range(w, height, "aff", "w");
  ICL_CHECK_ARG(W1.rows() == w.size() && W1.cols() == r.size(), "aff: W1: expected ", w.size(), "x", r.size(),
                " (|w| x |r|), got ", W1.rows(), "x", W1.cols());
  ICL_CHECK_ARG(W2.rows() == w.size() && W2.cols() == s.size(), "aff: W2: expected ", w.size(), "x", s.size(),
                " (|w| x |s|), got ", W2.rows(), "x", W2.cols());
  ICL_CHECK_ARG(b.size() == w.size(), "aff: b: expected ", w.size(), " entries (|w|), got ", b.size());
}

/// Checks mov's preconditions: ranges inside [0, height), |src| = |dst|.
inline void check_mov(Eigen::Index height, RowRange src, RowRange dst) {
  detail::check_range(src, height, "mov", "src");
  detail::check_range(dst, height, "mov", "dst");
  ICL_CHECK_ARG(src.size() == dst.size(), "mov: src ", to_string(src), " and dst ", to_string(dst),
                " must have the same number of rows");
}

/// mov: for every column c, rows dst of column c <- rows src of column map.source(c) (old state).
template <class S, int R, int C>
void mov(Eigen::Matrix<S, R, C>& h, const ColumnMap& map, RowRange src, RowRange dst) {
  check_mov(h.rows(), src, dst);
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> old = h.middleRows(src.begin, src.size());
  for (Eigen::Index c = 0; c < h.cols(); ++c) {
    const int s = map.source(static_cast<int>(c));
    ICL_CHECK_ARG(s >= 0 && s <= c, "mov: column map reads column ", s, " for column ", c,
                  " (must be causal)");
    h.col(c).segment(dst.begin, dst.size()) = old.col(s);
  }
}

/// mul: in every column, rows w <- vec(A1 A2), A1 = rows r1 as a row-major a x b matrix, A2 = rows r2
/// as a row-major b x c matrix (paper §2.1; footnote 1 corrected: |w| = a*c).
template <class S, int R, int C>
void mul(Eigen::Matrix<S, R, C>& h, int a, int b, int c, RowRange r1, RowRange r2, RowRange w) {
  check_mul(h.rows(), a, b, c, r1, r2, w);
  detail::RowMajor<S> A1(a, b), A2(b, c), P(a, c);
  for (Eigen::Index col = 0; col < h.cols(); ++col) {
    for (int i = 0; i < a * b; ++i) A1.data()[i] = h(r1.begin + i, col);
    for (int i = 0; i < b * c; ++i) A2.data()[i] = h(r2.begin + i, col);
    P.noalias() = A1 * A2;
    for (int i = 0; i < a * c; ++i) h(w.begin + i, col) = P.data()[i];
  }
}

/// div: in every column, rows w <- rows r / |row c_row| (Lemma 8). w must be disjoint from r and c_row.
template <class S, int R, int C>
void div(Eigen::Matrix<S, R, C>& h, RowRange r, int c_row, RowRange w) {
  check_div(h.rows(), r, c_row, w);
  for (Eigen::Index col = 0; col < h.cols(); ++col) {
    const S denom = std::abs(h(c_row, col));
    for (int i = 0; i < r.size(); ++i) h(w.begin + i, col) = h(r.begin + i, col) / denom;
  }
}

namespace detail {
/// The form in which add_product applies a matrix W: its non-zero entries (row i, column k, value v) in
/// the order add_product visits them, when at most 1/8 of W's entries are non-zero (the chains'
/// identities and diagonals), else `dense` (a plain product). Computed once per matrix by whoever applies
/// it many times (ConstructedTransformer's range check: one scan of every aff matrix per prompt before).
template <class S>
struct SparseForm {
  struct Entry {
    Eigen::Index i, k;
    S v;
  };
  bool dense = false;
  std::vector<Entry> entries;
};

template <class S, class DW>
SparseForm<S> sparse_form(const Eigen::MatrixBase<DW>& W_) {
  using WS = typename DW::Scalar;
  const Eigen::Matrix<WS, Eigen::Dynamic, Eigen::Dynamic>& W = W_.eval();
  SparseForm<S> f;
  const Eigen::Index limit = W.size() / 8, R = W.rows();
  for (Eigen::Index k = 0; k < W.cols(); ++k) {
    const WS* col = W.data() + k * R;
    for (Eigen::Index i0 = 0; i0 < R; i0 += 8) {  // blocks of 8: a vectorisable zero test
      const Eigen::Index i1 = std::min<Eigen::Index>(R, i0 + 8);
      bool any = false;
      for (Eigen::Index i = i0; i < i1; ++i) any |= col[i] != WS(0);
      if (!any) continue;
      for (Eigen::Index i = i0; i < i1; ++i)
        if (col[i] != WS(0)) f.entries.push_back({i, k, static_cast<S>(col[i])});
      if (static_cast<Eigen::Index>(f.entries.size()) > limit) {
        f.dense = true;
        f.entries.clear();
        return f;
      }
    }
  }
  return f;
}

/// Checks that `f` is a form of W (what aff's overload with forms is given): its entries lie inside W and
/// hold W's values there (O(entries): it does not look for non-zeros of W that `f` lacks).
template <class S, class DW>
void check_form(const Eigen::MatrixBase<DW>& W, const SparseForm<S>& f, const char* name) {
  for (const auto& e : f.entries)
    ICL_CHECK_ARG(e.i >= 0 && e.i < W.rows() && e.k >= 0 && e.k < W.cols() &&
                      static_cast<S>(W(e.i, e.k)) == e.v,
                  "aff: the form of ", name, " is not sparse_form(", name, "): its entry (", e.i, ", ", e.k,
                  ") is not an entry of the ", W.rows(), "x", W.cols(), " matrix given");
}

/// out += W·x with W in its form `f` (sparse_form(W)): a mostly-zero W entry by entry, skipping its zeros:
/// the same sums without the products by zero (which add exactly 0 to a finite sum), so the same values up
/// to the order of the sums of a row's non-zeros (bitwise the same when a row has one non-zero).
template <class S, class DOut, class DW, class DX>
void add_product(Eigen::MatrixBase<DOut>& out, const Eigen::MatrixBase<DW>& W, const Eigen::MatrixBase<DX>& x,
                 const SparseForm<S>& f) {
  if (f.dense) {
    out.noalias() += W.template cast<S>() * x;
    return;
  }
  for (Eigen::Index c = 0; c < x.cols(); ++c)  // column by column: contiguous in the column-major state
    for (const auto& e : f.entries) out(e.i, c) += e.v * x(e.k, c);
}
}  // namespace detail

/// aff: in every column, rows w <- W1 h[r] + W2 h[s] + b. Either input range may be empty; in-place use
/// (w overlapping r or s) reads the old state.
template <class S, int R, int C, class D1, class D2, class Db>
void aff(Eigen::Matrix<S, R, C>& h, RowRange r, RowRange s, RowRange w, const Eigen::MatrixBase<D1>& W1,
         const Eigen::MatrixBase<D2>& W2, const Eigen::MatrixBase<Db>& b) {
  aff(h, r, s, w, W1, W2, b, r.empty() ? detail::SparseForm<S>{} : detail::sparse_form<S>(W1),
      s.empty() ? detail::SparseForm<S>{} : detail::sparse_form<S>(W2));
}
/// aff with the forms of W1 and W2 given (detail::sparse_form; the same values as aff above).
template <class S, int R, int C, class D1, class D2, class Db>
void aff(Eigen::Matrix<S, R, C>& h, RowRange r, RowRange s, RowRange w, const Eigen::MatrixBase<D1>& W1,
         const Eigen::MatrixBase<D2>& W2, const Eigen::MatrixBase<Db>& b, const detail::SparseForm<S>& f1,
         const detail::SparseForm<S>& f2) {
  check_aff(h.rows(), r, s, w, W1, W2, b);
  detail::check_form(W1, f1, "W1");
  detail::check_form(W2, f2, "W2");
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> out(w.size(), h.cols());
  out.colwise() = b.template cast<S>();
  if (!r.empty()) detail::add_product<S>(out, W1, h.middleRows(r.begin, r.size()), f1);
  if (!s.empty()) detail::add_product<S>(out, W2, h.middleRows(s.begin, s.size()), f2);
  h.middleRows(w.begin, w.size()) = out;
}

// ---------------------------------------------------------------------------------------------------
// Compile-time row ranges: the same primitives, with the size rules checked by static_assert.

namespace detail {
template <int Height, RowRange Rg>
inline constexpr bool fits_v = Rg.begin >= 0 && Rg.begin <= Rg.end && (Height < 0 || Rg.end <= Height);
}  // namespace detail

/// mul with compile-time sizes and ranges; see the run-time overload.
template <int A, int B, int Cc, RowRange R1, RowRange R2, RowRange W, class S, int R, int C>
void mul(Eigen::Matrix<S, R, C>& h) {
  static_assert(A >= 1 && B >= 1 && Cc >= 1, "icl::construct::mul: the sizes a, b, c must be at least 1");
  static_assert(R1.size() == A * B, "icl::construct::mul: the first operand range r1 must have a*b rows");
  static_assert(R2.size() == B * Cc, "icl::construct::mul: the second operand range r2 must have b*c rows");
  static_assert(W.size() == A * Cc, "icl::construct::mul: the target range w must have a*c rows");
  static_assert(detail::fits_v<R, R1> && detail::fits_v<R, R2> && detail::fits_v<R, W>,
                "icl::construct::mul: every row range must lie inside the width of the hidden state");
  mul(h, A, B, Cc, R1, R2, W);
}

/// div with compile-time ranges; see the run-time overload.
template <RowRange Rr, int CRow, RowRange W, class S, int R, int C>
void div(Eigen::Matrix<S, R, C>& h) {
  static_assert(W.size() == Rr.size(), "icl::construct::div: the target range w must have as many rows as r");
  static_assert(
      !W.overlaps(Rr) && !W.contains(CRow),
      "icl::construct::div: the target range w must be disjoint from the numerator r and the divisor row");
  static_assert(detail::fits_v<R, Rr> && detail::fits_v<R, W> && CRow >= 0 && (R < 0 || CRow < R),
                "icl::construct::div: every row range must lie inside the width of the hidden state");
  div(h, Rr, CRow, W);
}

/// aff with compile-time ranges; see the run-time overload (W1, W2, b are checked at run time).
template <RowRange Rr, RowRange Ss, RowRange W, class S, int R, int C, class D1, class D2, class Db>
void aff(Eigen::Matrix<S, R, C>& h, const Eigen::MatrixBase<D1>& W1, const Eigen::MatrixBase<D2>& W2,
         const Eigen::MatrixBase<Db>& b) {
  static_assert(detail::fits_v<R, Rr> && detail::fits_v<R, Ss> && detail::fits_v<R, W>,
                "icl::construct::aff: every row range must lie inside the width of the hidden state");
  static_assert(D1::RowsAtCompileTime < 0 || D1::RowsAtCompileTime == W.size(),
                "icl::construct::aff: W1 must have |w| rows");
  static_assert(D1::ColsAtCompileTime < 0 || D1::ColsAtCompileTime == Rr.size(),
                "icl::construct::aff: W1 must have |r| columns");
  static_assert(D2::RowsAtCompileTime < 0 || D2::RowsAtCompileTime == W.size(),
                "icl::construct::aff: W2 must have |w| rows");
  static_assert(D2::ColsAtCompileTime < 0 || D2::ColsAtCompileTime == Ss.size(),
                "icl::construct::aff: W2 must have |s| columns");
  aff(h, Rr, Ss, W, W1, W2, b);
}

/// mov with compile-time ranges; see the run-time overload.
template <RowRange Src, RowRange Dst, class S, int R, int C>
void mov(Eigen::Matrix<S, R, C>& h, const ColumnMap& map) {
  static_assert(Src.size() == Dst.size(),
                "icl::construct::mov: the source and target ranges must have the same size");
  static_assert(detail::fits_v<R, Src> && detail::fits_v<R, Dst>,
                "icl::construct::mov: every row range must lie inside the width of the hidden state");
  mov(h, map, Src, Dst);
}

}  // namespace icl::construct
