/// @file
/// The row-sparse evaluation of one realised layer (what BlockForm::narrow runs): the paper block's
/// function (Eqs. 3-7, docs/constructions.md §2) computed in place on a row-major state, touching only
/// the rows the layer reads and writes. docs/constructions.md §6.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "icl/construct/realise.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/activation.hpp"

namespace icl::construct::detail {

/// A realised state stored row-major (H x N): every row of the state is contiguous, so an op on a few
/// rows moves only those rows, and every row operation is a vector operation over the N columns.
template <class S>
using RowState = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// GeLU_erf(v) = v/2·(1 + erf(v/√2)) (paper Eq. 6, nn::Activation::gelu_erf) of n doubles, in place,
/// vectorised by blocks of 8 with erf(t), t = v/√2, from
///  * |t| < 1/8 in the whole block: the Taylor series erf(t) = (2/√π) Σ_{k<9} (−1)^k t^{2k+1}/(k!(2k+1))
///    (5 terms for |t| < 1/64; Horner in t²; the first omitted term is below 2^-70 relative, so the
///    error is the rounding of
///    Horner's rule, ≈ 1 ulp: every term is at most 1/192 of the one before). The realised mul units
///    live here (|u| ≤ range_margin/N, §2.5);
///  * |t| < 0.84375 in the whole block: the C library's rational approximation t + t·R(t²)/S(t²) (fdlibm
///    s_erf.c, the code of glibc 2.36; error < 1 ulp);
///  * otherwise std::erf for that block.
/// So the values agree with nn::activation_forward's (std::erf) to about an ulp: a change of rounding.
inline void gelu_double_inplace(double* v, Eigen::Index n) {
  constexpr double pp0 = 1.28379167095512558561e-01, pp1 = -3.25042107247001499370e-01,
                   pp2 = -2.84817495755985104766e-02, pp3 = -5.77027029648944159157e-03,
                   pp4 = -2.37630166566501626084e-05, qq1 = 3.97917223959155352819e-01,
                   qq2 = 6.50222499887672944485e-02, qq3 = 5.08130628187576562776e-03,
                   qq4 = 1.32494738004321644526e-04, qq5 = -3.96022827877536812320e-06;
  // (2/√π)(−1)^k/(k!(2k+1)), k = 0..8
  constexpr double c0 = 1.1283791670955125739, c1 = -0.37612638903183752464, c2 = 0.11283791670955125739,
                   c3 = -0.026866170645131251760, c4 = 0.0052239776254421878422,
                   c5 = -8.5483270234508528327e-4, c6 = 1.2055332981789664251e-4,
                   c7 = -1.4925650358406250977e-5, c8 = 1.6462114365889247401e-6;
  constexpr double r2 = 0.70710678118654752440;  // 1/√2
  using A = Eigen::Array<double, Eigen::Dynamic, 1>;
  Eigen::Map<A> all(v, n);
  if (n > 0 && all.abs().maxCoeff() * r2 < 0.015625) {  // every argument in the 5-term range: one pass
    for (Eigen::Index k = 0; k < n; ++k) {  // t and z once per value (an Eigen expression of t, z
      const double t = v[k] * r2, z = t * t;  // recomputed them at every use: 16 % of ridge d = 16)
      v[k] = 0.5 * v[k] * (1.0 + t * (c0 + z * (c1 + z * (c2 + z * (c3 + z * c4)))));
    }
    return;
  }
  constexpr Eigen::Index P = 8;
  const Eigen::Index nb = n / P * P;
  for (Eigen::Index i = 0; i < nb; i += P) {
    double* x = v + i;
    double m = 0;
    for (Eigen::Index k = 0; k < P; ++k) m = std::max(m, std::abs(x[k] * r2));
    if (m < 0.015625) {  // z < 2^-12: 5 terms (the first omitted one is below 2^-70 relative)
      for (Eigen::Index k = 0; k < P; ++k) {
        const double t = x[k] * r2, z = t * t;
        const double e = t * (c0 + z * (c1 + z * (c2 + z * (c3 + z * c4))));
        x[k] = 0.5 * x[k] * (1.0 + e);
      }
    } else if (m < 0.125) {
      for (Eigen::Index k = 0; k < P; ++k) {
        const double t = x[k] * r2, z = t * t;
        const double e =
            t * (c0 + z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * (c6 + z * (c7 + z * c8))))))));
        x[k] = 0.5 * x[k] * (1.0 + e);
      }
    } else if (m < 0.84375) {
      for (Eigen::Index k = 0; k < P; ++k) {
        const double t = x[k] * r2, z = t * t, z2 = z * z, z4 = z2 * z2;
        const double r = (pp0 + z * pp1) + z2 * (pp2 + z * pp3) + z4 * pp4;
        const double s = (1.0 + z * qq1) + z2 * (qq2 + z * qq3) + z4 * (qq4 + z * qq5);
        x[k] = 0.5 * x[k] * (1.0 + (t + t * (r / s)));
      }
    } else {
      for (Eigen::Index k = 0; k < P; ++k) x[k] = 0.5 * x[k] * (1.0 + std::erf(x[k] * r2));
    }
  }
  for (Eigen::Index k = nb; k < n; ++k) v[k] = 0.5 * v[k] * (1.0 + std::erf(v[k] * r2));
}

/// GeLU_erf of n values in place: double through gelu_double_inplace, float and long double through
/// nn::activation_forward.
template <class S>
void gelu_inplace(S* v, Eigen::Index n) {
  if constexpr (std::is_same_v<S, double>) {
    gelu_double_inplace(v, n);
  } else {
    Eigen::Map<Eigen::Matrix<S, Eigen::Dynamic, 1>> m(v, n);
    nn::activation_forward(nn::Activation::gelu_erf, m, m);
  }
}

/// A sparse matrix by rows (CSR) whose row i writes target row `target[i]`; column indices name the
/// rows of the input it combines.
template <class S>
struct SparseRows {
  std::vector<int> target;  ///< the row each sparse row writes (its meaning depends on the use)
  std::vector<int> start;   ///< entries of row i: [start[i], start[i+1])
  std::vector<int> index;   ///< input row of each entry
  std::vector<S> value;     ///< coefficient of each entry
  int rows() const { return static_cast<int>(target.size()); }
  void add_row(int tgt) {
    if (start.empty()) start.push_back(0);
    target.push_back(tgt);
    start.push_back(static_cast<int>(index.size()));
  }
  void add(int idx, S v) {
    index.push_back(idx);
    value.push_back(v);
    start.back() = static_cast<int>(index.size());
  }
};

/// One realised layer (BlockWeights) evaluated row-sparse, in place: h ← block(h) for B = N/T sequences
/// of T columns side by side, the function of nn::PaperBlock::forward (and of nn::NarrowPaperBlock):
///
///   x = h + Σ_j (F_j h) A_j + b^F,   h' = x + W2 σ(W1 LN(x) + b1) + b2   (N1 of narrow_paper_block.hpp)
///
/// with the sums in other orders, the attention weights below the smallest normal number skipped (N2),
/// and only these rows touched: the 2 query/key rows per head from the position rows; F_j h on the rows
/// where F_j is non-zero, from the rows it reads; x on the rows where F_j or b^F is non-zero (every
/// other row of x equals h exactly, so it stays in place); LN(x) on the rows W1 reads (its mean and
/// variance over all H rows); the units whose W2 column is non-zero; h' on the rows of W2 or b2. The
/// attention weights of the position kernel (C1) are non-negligible only near the diagonals
/// c' = c − o: (F_j h)A_j is evaluated by diagonals δ = c − c' (R1),
///
///   (R1)  ((F_j h) A_j)[i, c] = Σ_δ A_j(c − δ, c)·(F_j h)[i, c − δ]   over the δ with a normal weight,
///
/// a vector operation over c per (row, δ), and only the scores within e^{log min − 1} of a column's
/// maximum are exponentiated (the others give weights below the smallest normal number, skipped by (N2),
/// and change the normalising sum, which is at least 1, by less than T·min). LayerNorm's column sums
/// over all H rows are kept by groups of kSumRows rows in the workspace across the layers of a pass,
///
///   (R2)  Σ_i x[i, c] = Σ_g Σ_{i in group g} x[i, c]   (and the same for x²),
///
/// and a layer sums again only the groups that hold a row written since (a chain's layer writes ≈ 10 of
/// the 71 groups at d = 16), instead of streaming the whole state (1.8 MB at d = 16, n = 100) per layer.
/// The attention weights of one head over one sequence, by diagonal (R1), with the query/key rows they
/// were computed from (RowBlock memoises them).
template <class S>
struct AttnWeights {
  int T = 0;                ///< sequence length
  std::vector<S> key;       ///< the query rows and key rows, 4 x T
  std::vector<int> deltas;  ///< the diagonals δ that hold a weight
  std::vector<S> weights;   ///< row i: A(c − deltas[i], c) at column c (0 where none)
};

template <class S>
class RowBlock {
  using AttnWeights = detail::AttnWeights<S>;

 public:
  /// Buffers shared by the layers of a stack; they only grow, so a warm workspace allocates nothing.
  struct Workspace {
    std::vector<S> qk;       ///< queries and keys, 8 x N: Q_1 (2 rows), Q_2, K_1, K_2
    std::vector<S> g;        ///< F_j h on F_j's non-zero rows, stacked over the heads, x N
    std::vector<S> p;        ///< (F_j h) A_j, same rows
    std::vector<S> x;        ///< h + a on the rows it changes, x N
    std::vector<S> z;        ///< LN(x) on the rows W1 reads, x N
    std::vector<S> pre;      ///< W1 z + b1, then σ of it, on the active units, x N
    std::vector<S> acc;      ///< one output row, N
    std::vector<S> stats;    ///< mean and 1/std of LN per column, 2 x N
    std::vector<S> diag;     ///< attention weights by diagonal (R1), T x T: row δ, column c
    std::vector<S> scratch;  ///< scores of one query and their exponentials
    std::vector<char> used;  ///< which diagonals hold weights
    std::vector<int> keys;   ///< the keys of one query that get a weight
    std::vector<detail::AttnWeights<S>> memo;  ///< attention weights by their query/key rows (the last 8)
    std::size_t next_memo = 0;                 ///< the memo entry to replace next
    /// LayerNorm's column sums Σx and Σx² by groups of kSumRows state rows (2 x groups x N), kept across
    /// the layers of one pass over one state (R2): a layer recomputes only the groups whose rows were
    /// written since they were summed (`dirty`).
    std::vector<S> gsum;
    std::vector<char> dirty;
    const S* sums_of = nullptr;  ///< the state `gsum` describes (nullptr: none)
    Eigen::Index sums_n = 0;     ///< its columns
    int sums_h = 0;              ///< its rows
    /// Forget the group sums: call it whenever the state is written by anything but RowBlock::forward
    /// with this workspace (a new chunk copied in, a state edited by hand). CompiledProgram does.
    void new_state() { sums_of = nullptr; }
  };

  RowBlock() = default;
  /// The row-sparse form of `w` (H = w.wf.rows() rows) with LayerNorm eps `ln_eps`.
  RowBlock(const BlockWeights<S>& w, double ln_eps) : H_(static_cast<int>(w.wf.rows())), eps_(S(ln_eps)) {
    for (int j = 0; j < 2; ++j) {
      for (int r = 0; r < 2; ++r) add_dense_row(qk_, w.wq[j].row(r), 2 * j + r);
      for (int r = 0; r < 2; ++r) add_dense_row(qk_, w.wk[j].row(r), 4 + 2 * j + r);
    }
    std::vector<int> slot0(H_, -1), slot1(H_, -1);
    for (int j = 0; j < 2; ++j) {
      const auto fj = w.wf.middleCols(Eigen::Index(j) * H_, H_);
      head_begin_[j] = f_.rows();
      for (int i = 0; i < H_; ++i) {
        if (fj.row(i).isZero(0)) continue;
        (j == 0 ? slot0 : slot1)[static_cast<std::size_t>(i)] = f_.rows();
        add_dense_row(f_, fj.row(i), i);
      }
      head_end_[j] = f_.rows();
    }
    for (int i = 0; i < H_; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (slot0[k] < 0 && slot1[k] < 0 && w.bf(i) == S(0)) continue;
      xrows_.push_back({i, slot0[k], slot1[k], w.bf(i)});
    }
    // MLP: the active units (W2 column non-zero), W1 on the rows it reads, W2 by output row
    std::vector<int> units;
    for (Eigen::Index u = 0; u < w.w2.cols(); ++u)
      if (!w.w2.col(u).isZero(0)) units.push_back(static_cast<int>(u));
    std::vector<int> zslot(H_, -1);
    for (std::size_t k = 0; k < units.size(); ++k) {
      const int u = units[k];
      w1_.add_row(u);
      b1_.push_back(w.b1(u));
      for (int i = 0; i < H_; ++i) {
        const S v = w.w1(u, i);
        if (v == S(0)) continue;
        if (zslot[static_cast<std::size_t>(i)] < 0) {
          zslot[static_cast<std::size_t>(i)] = static_cast<int>(zrows_.size());
          zrows_.push_back(i);
        }
        w1_.add(zslot[static_cast<std::size_t>(i)], v);
      }
    }
    for (int i = 0; i < H_; ++i) {
      bool any = false;
      for (std::size_t k = 0; k < units.size(); ++k) any = any || w.w2(i, units[k]) != S(0);
      if (!any && w.b2(i) == S(0)) continue;
      w2_.add_row(i);
      b2_.push_back(w.b2(i));
      for (std::size_t k = 0; k < units.size(); ++k)
        if (const S v = w.w2(i, units[k]); v != S(0)) w2_.add(static_cast<int>(k), v);
    }
    // the row groups of the LayerNorm sums (R2) that the x rows and the MLP's output rows write
    for (const XRow& xr : xrows_) x_groups_.push_back(xr.row / kSumRows);
    for (int t : w2_.target) out_groups_.push_back(t / kSumRows);
    for (auto* v : {&x_groups_, &out_groups_}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
  }

  /// Rows per group of the cached LayerNorm sums (R2).
  static constexpr int kSumRows = 16;

  /// Rows of the state written by this layer (x rows and MLP output rows, possibly overlapping).
  int rows_written() const { return static_cast<int>(xrows_.size()) + w2_.rows(); }
  /// Active MLP units.
  int active_units() const { return w1_.rows(); }

  /// h ← block(h) in place; h is H x N row-major, N = B·T.
  void forward(S* h, Eigen::Index N, int T, Workspace& w) const {
    using A = Eigen::Array<S, Eigen::Dynamic, 1>;
    using CMap = Eigen::Map<const A>;
    using MapA = Eigen::Map<A>;
    const auto row = [&](S* base, Eigen::Index r) { return MapA(base + r * N, N); };
    const auto crow = [&](const S* base, Eigen::Index r) { return CMap(base + r * N, N); };
    const Eigen::Index G = f_.rows(), X = static_cast<Eigen::Index>(xrows_.size());
    grow(w.qk, 8 * N);
    grow(w.g, G * N);
    grow(w.p, G * N);
    grow(w.x, X * N);
    grow(w.acc, N);
    // queries/keys and F_j h: every read of h before anything is written
    sparse_rows(qk_, h, w.qk.data(), N, /*by_target=*/true);
    sparse_rows(f_, h, w.g.data(), N, /*by_target=*/false);
    // attention per head and sequence: (F_j h) A_j by diagonals (R1)
    for (int j = 0; j < 2; ++j) {
      if (head_end_[j] == head_begin_[j]) continue;
      for (Eigen::Index r = head_begin_[j]; r < head_end_[j]; ++r) row(w.p.data(), r).setZero();
      for (Eigen::Index b = 0; b < N / T; ++b) attend(j, b * T, T, N, w);
    }
    // x = h + a on the rows a (or b^F) touches, in the narrow form's order ((p_1 + p_2) + b^F) + h
    for (Eigen::Index k = 0; k < X; ++k) {
      const XRow& xr = xrows_[static_cast<std::size_t>(k)];
      auto xk = row(w.x.data(), k);
      if (xr.slot0 >= 0 && xr.slot1 >= 0)
        xk = crow(w.p.data(), xr.slot0) + crow(w.p.data(), xr.slot1);
      else if (xr.slot0 >= 0)
        xk = crow(w.p.data(), xr.slot0);
      else if (xr.slot1 >= 0)
        xk = crow(w.p.data(), xr.slot1);
      else
        xk.setZero();
      xk = (xk + xr.bf) + crow(h, xr.row);
    }
    for (Eigen::Index k = 0; k < X; ++k)
      row(h, xrows_[static_cast<std::size_t>(k)].row) = crow(w.x.data(), k);
    const bool sums_kept = sums_valid(h, N, w);  // (R2): the group sums describe this state
    if (sums_kept)
      for (int g : x_groups_) w.dirty[static_cast<std::size_t>(g)] = 1;
    // MLP (Eq. 5) on the active units: h' = x + W2 σ(W1 LN(x) + b1) + b2
    const Eigen::Index U = w1_.rows(), Z = static_cast<Eigen::Index>(zrows_.size());
    if (U > 0) {
      grow(w.z, Z * N);
      grow(w.pre, U * N);
      grow(w.stats, 2 * N);
      MapA mean(w.stats.data(), N), rstd(w.stats.data() + N, N);
      // LayerNorm statistics over all H rows (Eq. 7): one pass for Σx and Σx² (by row groups kept across
      // the layers, (R2): only the groups written since are summed again); where the mean is small
      // against the root mean square (μ² ≤ E[x²]/16: the LN pads of every mul and div layer make it
      // ≈ 0) the variance E[x²] − μ² is then within ≈ ε·16/15 relative, the rounding of the two-pass
      // form; otherwise (any column) the two-pass Σ(x − μ)² as nn::LayerNorm computes it
      column_sums(h, N, sums_kept, w, mean.data(), rstd.data());
      mean /= S(H_);
      rstd /= S(H_);
      if ((mean.square() <= rstd / S(16)).all()) {
        rstd -= mean.square();
      } else {
        rstd.setZero();
        for (int i = 0; i < H_; ++i) rstd += (crow(h, i) - mean).square();
        rstd /= S(H_);
      }
      using std::sqrt;
      rstd = S(1) / (rstd + eps_).sqrt();
      for (Eigen::Index k = 0; k < Z; ++k)
        row(w.z.data(), k) = (crow(h, zrows_[static_cast<std::size_t>(k)]) - mean) * rstd;
      for (Eigen::Index u = 0; u < U; ++u) {
        auto pu = row(w.pre.data(), u);
        combine(w1_, static_cast<int>(u), w.z.data(), N, pu);
        pu += b1_[static_cast<std::size_t>(u)];
      }
      gelu_inplace(w.pre.data(), U * N);
    }
    for (int k = 0; k < w2_.rows(); ++k) {
      auto acc = MapA(w.acc.data(), N);
      if (w2_.start[static_cast<std::size_t>(k)] == w2_.start[static_cast<std::size_t>(k) + 1])
        acc.setZero();
      else
        combine(w2_, k, w.pre.data(), N, acc);
      auto hk = row(h, w2_.target[static_cast<std::size_t>(k)]);
      hk = (acc + b2_[static_cast<std::size_t>(k)]) + hk;
    }
    if (sums_valid(h, N, w))
      for (int g : out_groups_) w.dirty[static_cast<std::size_t>(g)] = 1;
  }

 private:
  struct XRow {
    int row;    // state row
    int slot0;  // its row of F_1 h (head 1) in g/p, or -1
    int slot1;  // its row of F_2 h (head 2), or -1
    S bf;       // b^F
  };

  // sum[c] = Σ_i h[i, c], sq[c] = Σ_i h[i, c]² over all H rows (R2): as Σ_g of the sums of groups of
  // kSumRows rows, each group's sums kept in the workspace across the layers of one pass and recomputed
  // only when a row of the group was written since (`kept`: w's group sums describe h; else all are
  // recomputed and w now describes h). The value is the same whichever groups are recomputed, so it does
  // not depend on the layers before, the chunking or the workspace: only the order of the sums differs
  // from a plain Σ_i (rounding).
  bool sums_valid(const S* h, Eigen::Index N, const Workspace& w) const {
    return w.sums_of == h && w.sums_n == N && w.sums_h == H_;
  }
  void column_sums(const S* h, Eigen::Index N, bool kept, Workspace& w, S* sum, S* sq) const {
    using A = Eigen::Array<S, Eigen::Dynamic, 1>;
    const Eigen::Index G = (H_ + kSumRows - 1) / kSumRows;
    if (!kept) {
      grow(w.gsum, 2 * G * N);
      if (static_cast<Eigen::Index>(w.dirty.size()) < G) w.dirty.resize(static_cast<std::size_t>(G));
      std::fill(w.dirty.begin(), w.dirty.begin() + G, char(1));
      w.sums_of = h;
      w.sums_n = N;
      w.sums_h = H_;
    }
    for (Eigen::Index g = 0; g < G; ++g) {
      if (!w.dirty[static_cast<std::size_t>(g)]) continue;
      w.dirty[static_cast<std::size_t>(g)] = 0;
      Eigen::Map<A> gs(w.gsum.data() + 2 * g * N, N), gq(w.gsum.data() + (2 * g + 1) * N, N);
      const Eigen::Index r0 = g * kSumRows, r1 = std::min<Eigen::Index>(H_, r0 + kSumRows);
      const Eigen::Map<const A> first(h + r0 * N, N);
      gs = first;
      gq = first.square();
      for (Eigen::Index i = r0 + 1; i < r1; ++i) {
        const Eigen::Map<const A> r(h + i * N, N);
        gs += r;
        gq += r.square();
      }
    }
    Eigen::Map<A> s(sum, N), q(sq, N);
    s = Eigen::Map<const A>(w.gsum.data(), N);
    q = Eigen::Map<const A>(w.gsum.data() + N, N);
    for (Eigen::Index g = 1; g < G; ++g) {
      s += Eigen::Map<const A>(w.gsum.data() + 2 * g * N, N);
      q += Eigen::Map<const A>(w.gsum.data() + (2 * g + 1) * N, N);
    }
  }

  template <class RowExpr>
  static void add_dense_row(SparseRows<S>& m, const RowExpr& r, int target) {
    m.add_row(target);
    for (Eigen::Index i = 0; i < r.size(); ++i)
      if (r(i) != S(0)) m.add(static_cast<int>(i), r(i));
  }
  static void grow(std::vector<S>& v, Eigen::Index n) {
    if (static_cast<Eigen::Index>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  }
  // out = Σ_e value[e]·in_row(index[e]) for sparse row k (at least one entry)
  template <class Out>
  static void combine(const SparseRows<S>& m, int k, const S* in, Eigen::Index N, Out& out) {
    using CMap = Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>>;
    const int e0 = m.start[static_cast<std::size_t>(k)], e1 = m.start[static_cast<std::size_t>(k) + 1];
    if (e0 == e1) {
      out.setZero();
      return;
    }
    out = m.value[static_cast<std::size_t>(e0)] *
          CMap(in + Eigen::Index(m.index[static_cast<std::size_t>(e0)]) * N, N);
    for (int e = e0 + 1; e < e1; ++e)
      out += m.value[static_cast<std::size_t>(e)] *
             CMap(in + Eigen::Index(m.index[static_cast<std::size_t>(e)]) * N, N);
  }
  // out rows (target[k] if by_target, else k) = the sparse rows applied to the state rows of h
  static void sparse_rows(const SparseRows<S>& m, const S* h, S* out, Eigen::Index N, bool by_target) {
    for (int k = 0; k < m.rows(); ++k) {
      Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>> o(
          out + Eigen::Index(by_target ? m.target[static_cast<std::size_t>(k)] : k) * N, N);
      combine(m, k, h, N, o);
    }
  }

  // head j, one sequence at columns c0..c0+T-1: p[rows of head j] += (F_j h) A_j by diagonals (R1)
  void attend(int j, Eigen::Index c0, int T, Eigen::Index N, Workspace& w) const {
    const S* q[4] = {
        w.qk.data() + Eigen::Index(2 * j) * N + c0, w.qk.data() + Eigen::Index(2 * j + 1) * N + c0,
        w.qk.data() + Eigen::Index(4 + 2 * j) * N + c0, w.qk.data() + Eigen::Index(5 + 2 * j) * N + c0};
    const AttnWeights& a = attention_weights(q, T, w);
    using A = Eigen::Array<S, Eigen::Dynamic, 1>;
    for (std::size_t i = 0; i < a.deltas.size(); ++i) {
      const int d = a.deltas[i];
      const Eigen::Map<const A> wd(a.weights.data() + i * static_cast<std::size_t>(T) + d, T - d);
      for (Eigen::Index r = head_begin_[j]; r < head_end_[j]; ++r) {
        Eigen::Map<A> pr(w.p.data() + r * N + c0 + d, T - d);
        pr += wd * Eigen::Map<const A>(w.g.data() + r * N + c0, T - d);
      }
    }
  }

  // The causal softmax weights of one head and sequence from its query and key rows q[0..1], q[2..3]
  // (T values each), by diagonal. They depend on nothing else, so they are memoised in the workspace by
  // those rows (compared exactly): the constructions' scores read only the position rows, so the layers
  // of a chain share a few weight patterns (one per offset o).
  const AttnWeights& attention_weights(const S* const q[4], int T, Workspace& w) const {
    const auto same = [&](const AttnWeights& e) {
      if (e.T != T) return false;
      for (int r = 0; r < 4; ++r)
        if (!std::equal(q[r], q[r] + T, e.key.data() + std::size_t(r) * std::size_t(T))) return false;
      return true;
    };
    for (const AttnWeights& e : w.memo)
      if (same(e)) return e;
    constexpr std::size_t kMemo = 8;
    if (w.memo.size() < kMemo) w.memo.emplace_back();
    AttnWeights& e = w.memo[w.memo.size() < kMemo ? w.memo.size() - 1 : (w.next_memo++ % kMemo)];
    e.T = T;
    e.key.resize(4 * static_cast<std::size_t>(T));
    for (int r = 0; r < 4; ++r) std::copy(q[r], q[r] + T, e.key.data() + std::size_t(r) * std::size_t(T));
    const S *q0 = q[0], *q1 = q[1], *k0 = q[2], *k1 = q[3];
    const std::size_t TT = static_cast<std::size_t>(T) * static_cast<std::size_t>(T);
    if (w.diag.size() < TT) w.diag.assign(TT, S(0));
    if (w.used.size() < static_cast<std::size_t>(T)) w.used.assign(static_cast<std::size_t>(T), 0);
    grow(w.scratch, 2 * T);
    if (w.keys.size() < static_cast<std::size_t>(T)) w.keys.resize(static_cast<std::size_t>(T));
    int* const keys = w.keys.data();
    S* const vals = w.scratch.data() + T;
    using std::exp;
    using std::log;
    const S cut = log(std::numeric_limits<S>::min()) - S(1);  // e^{score - max} below this: weight < min
    using A = Eigen::Array<S, Eigen::Dynamic, 1>;
    for (int c = 0; c < T; ++c) {
      Eigen::Map<A> s(w.scratch.data(), c + 1);
      s = Eigen::Map<const A>(k0, c + 1) * q0[c] + Eigen::Map<const A>(k1, c + 1) * q1[c];
      const S m = s.maxCoeff();
      // the keys whose weight can reach the smallest normal number: score − max >= cut; found by
      // blocks of 8 (a vectorisable test), since all but a few keys of the position kernel fail it
      int nk = 0;
      for (int k0b = 0; k0b <= c; k0b += 8) {
        const int k1b = std::min(c + 1, k0b + 8);
        bool hit = false;
        for (int k = k0b; k < k1b; ++k) hit |= (s(k) - m >= cut);
        if (!hit) continue;
        for (int k = k0b; k < k1b; ++k)
          if (s(k) - m >= cut) keys[nk++] = k;
      }
      S sum = 0;
      for (int i = 0; i < nk; ++i) sum += (vals[i] = exp(s(keys[i]) - m));
      for (int i = 0; i < nk; ++i) {
        const S a = vals[i] / sum;
        using std::abs;
        if (!(abs(a) >= std::numeric_limits<S>::min())) continue;  // (N2)
        const int dd = c - keys[i];
        w.diag[static_cast<std::size_t>(dd) * static_cast<std::size_t>(T) + static_cast<std::size_t>(c)] = a;
        w.used[static_cast<std::size_t>(dd)] = 1;
      }
    }
    e.deltas.clear();
    std::size_t nd = 0;
    for (int d = 0; d < T; ++d) nd += w.used[static_cast<std::size_t>(d)] ? 1 : 0;
    e.weights.resize(nd * static_cast<std::size_t>(T));
    for (int d = 0; d < T; ++d) {
      if (!w.used[static_cast<std::size_t>(d)]) continue;
      S* dg = w.diag.data() + static_cast<std::size_t>(d) * static_cast<std::size_t>(T);
      std::copy(dg, dg + T, e.weights.data() + e.deltas.size() * static_cast<std::size_t>(T));
      e.deltas.push_back(d);
      std::fill(dg, dg + T, S(0));
      w.used[static_cast<std::size_t>(d)] = 0;
    }
    return e;
  }

  int H_ = 0;
  S eps_ = 0;
  SparseRows<S> qk_;  // targets 0..7: Q_1 (2 rows), Q_2, K_1, K_2
  SparseRows<S> f_;   // rows of F_1 then F_2 that are non-zero (target: the state row)
  Eigen::Index head_begin_[2] = {0, 0}, head_end_[2] = {0, 0};
  std::vector<XRow> xrows_;  // rows of x that differ from h
  SparseRows<S> w1_;         // active units, indices into zrows_
  std::vector<S> b1_;
  std::vector<int> zrows_;  // state rows W1 reads
  SparseRows<S> w2_;        // output rows (W2 or b2 non-zero), indices into the active units
  std::vector<S> b2_;
  std::vector<int> x_groups_, out_groups_;  // row groups (R2) of the x rows and of the output rows
};

}  // namespace icl::construct::detail
