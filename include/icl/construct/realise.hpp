/// @file
/// Realisation of a Program as the weights of paper decoder blocks, one block per primitive
/// (Lemma 1; docs/constructions.md §4): scale constants, operand-hint calibration, and the weight
/// recipes for mov, aff (attention + residual, MLP off), mul (GeLU trick with Richardson levels over
/// a LayerNorm bypass with a zero-reference row) and div (LayerNorm division).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "icl/construct/program.hpp"
#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::construct {

/// The scale constants of the realisation (docs/constructions.md §4, Table C).
struct Constants {
  double gamma = 50;  ///< attention margin: score gap to every non-selected key (error ~ e^{-γ})
  double N = 500;     ///< GeLU-multiplication scale (error ~ N^{-2K} until rounding ~ ε·N)
  int K = 3;          ///< Richardson levels of the GeLU multiplication, 1 (the paper's formula), 2 or 3
  double P = 1e10;    ///< LayerNorm pad for mul (bypass error ~ P^{-2})
  double M = 1e10;    ///< LayerNorm pad factor for div (error ~ M^{-2} c^{-2})
  double ln_eps = 0;  ///< LayerNorm eps of the realised blocks (the paper: 0)

  /// Defaults chosen per scalar type (measured in docs/constructions.md Table F).
  template <class S>
  static Constants defaults() {
    Constants c;
    if constexpr (sizeof(S) <= 4) {
      // float: the GeLU product is rounding-limited (eps·N·...); the chain scan of docs/constructions.md
      // §2.7 picked K = 3 with a small N (d = 8, n = 10 and 40: 2-5x smaller errors than K = 2, N = 20)
      c.N = 3;
      c.K = 3;
      c.P = 1e6;
      c.M = 1e6;
    } else if constexpr (sizeof(S) > 8) {
      c.N = 600;
      c.K = 3;
      c.P = 1e12;
      c.M = 1e12;
    }
    return c;
  }

  /// Throws InvalidArgument naming the first constant out of its valid range.
  void validate() const {
    auto finite_pos = [](double v, const char* name, double lo) {
      ICL_CHECK_ARG(std::isfinite(v) && v >= lo, "Constants.", name, ": expected a finite value >= ", lo,
                    ", got ", v);
    };
    finite_pos(gamma, "gamma", 1.0);
    finite_pos(N, "N", 1.0);
    finite_pos(P, "P", 1.0);
    finite_pos(M, "M", 1.0);
    ICL_CHECK_ARG(K >= 1 && K <= 3, "Constants.K: expected 1, 2 or 3 Richardson levels, got ", K);
    ICL_CHECK_ARG(std::isfinite(ln_eps) && ln_eps >= 0, "Constants.ln_eps: expected finite >= 0, got ",
                  ln_eps);
  }
};

/// A-priori magnitudes of mul's two operands (|entries| of A1 and A2); 1 when unknown.
struct OperandHint {
  double s1 = 1;  ///< bound on |entries| of the first operand A1 (rows r1); scales the GeLU units (C5)
  double s2 = 1;  ///< bound on |entries| of the second operand A2 (rows r2)
};

/// Calibrates operand hints (docs/constructions.md §4.5): runs the exact program on each initial state
/// and records, for every mul, max |A1| and max |A2| over all columns; ops sharing a non-empty group
/// get the max over the group. Zero maxima become 1. Returns one hint per op (1 for non-mul ops).
template <class S>
std::vector<OperandHint> calibrate_hints(
    const Program<S>& program, const std::vector<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>>& states) {
  const auto& ops = program.ops();
  std::vector<OperandHint> hints(ops.size(), OperandHint{0, 0});
  for (const auto& h0 : states) {
    ICL_CHECK_ARG(h0.rows() == program.height(), "calibrate_hints: a state has ", h0.rows(),
                  " rows, expected ", program.height());
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> h = h0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto& op = ops[i];
      if (op.kind == OpKind::mul) {
        hints[i].s1 = std::max(
            hints[i].s1, static_cast<double>(h.middleRows(op.r.begin, op.r.size()).cwiseAbs().maxCoeff()));
        hints[i].s2 = std::max(
            hints[i].s2, static_cast<double>(h.middleRows(op.s.begin, op.s.size()).cwiseAbs().maxCoeff()));
      }
      Program<S>::apply(op, h);
    }
  }
  std::map<std::string, OperandHint> group_max;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].group.empty()) continue;
    auto& g = group_max[ops[i].group];
    g.s1 = std::max(g.s1, hints[i].s1);
    g.s2 = std::max(g.s2, hints[i].s2);
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!ops[i].group.empty()) hints[i] = group_max[ops[i].group];
    if (!(hints[i].s1 > 0)) hints[i].s1 = 1;
    if (!(hints[i].s2 > 0)) hints[i].s2 = 1;
  }
  return hints;
}

/// Rows of the realised residual stream: the program's data rows, then the extra rows of §4.2.
struct RealisedLayout {
  int data_rows = 0;              ///< H_d: rows 0..H_d-1 are the program's rows
  int one = 0;                    ///< ONE = 1
  int rho1 = 0;                   ///< RHO1 = c / Ts
  int rho2 = 0;                   ///< RHO2 = (c / Ts)²
  int tau0 = 0;                   ///< TAU_k = t_k(c) / Ts, one row per table column map
  int pad_p = 0;                  ///< LayerNorm pad +P (mul) or +M·c (div)
  int pad_m = 0;                  ///< LayerNorm pad −P or −M·c
  int zero = 0;                   ///< always 0 at the LN input: the zero reference of the bypass
  int scr0 = 0;                   ///< scratch copies of in-place mul operands
  int n_scr = 0;                  ///< number of scratch rows
  int height = 0;                 ///< H_T
  int max_columns = 0;            ///< Ts: the longest sequence the position rows are scaled for
  std::vector<ColumnMap> tables;  ///< the table maps, in TAU row order
};

/// Weights of one paper block (2 heads, full-width identity values). The query/key projections have
/// 2 rows (position features); the paper block pads them to H x H with zero rows.
template <class S>
struct BlockWeights {
  using Matrix = Mat<S>;  ///< weight matrix: icl::Mat<S>
  using Vector = Vec<S>;  ///< bias vector: icl::Vec<S>
  /// Query projections, 2 x H each: [0] head 1 (reads column max(c - o, 0) or a table map's source,
  /// Eq. (C1); the self head o = 0 when the op is not a mov), [1] head 2, always the self head.
  Matrix wq[2], wk[2];  ///< key projections, 2 x H each: rows (RHO1, RHO2) for both heads
  Matrix wf;            ///< H x 2H = [F_r | F_s]
  Vector bf;            ///< H
  Matrix w1;            ///< F_l x H (F_l = this layer's MLP width, may be 0)
  Vector b1;            ///< F_l
  Matrix w2;            ///< H x F_l
  Vector b2;            ///< H

  /// Exact equality of every matrix, shapes included (used to share the blocks of identical ops).
  bool operator==(const BlockWeights& o) const {
    auto same = [](const auto& a, const auto& b) {
      return a.rows() == b.rows() && a.cols() == b.cols() && a == b;
    };
    return same(wq[0], o.wq[0]) && same(wq[1], o.wq[1]) && same(wk[0], o.wk[0]) && same(wk[1], o.wk[1]) &&
           same(wf, o.wf) && same(bf, o.bf) && same(w1, o.w1) && same(b1, o.b1) && same(w2, o.w2) &&
           same(b2, o.b2);
  }
};

/// A realised program: distinct blocks and the layer schedule (layer l runs blocks[schedule[l]]).
/// Repeated ops (the n blocks of a chain) share identical weights, stored once.
template <class S>
struct Realisation {
  RealisedLayout layout;                ///< rows of the realised state (H_T = layout.height)
  std::vector<BlockWeights<S>> blocks;  ///< the distinct blocks
  std::vector<int> schedule;            ///< layer l runs blocks[schedule[l]]; one layer per op
  int mlp_width = 0;                    ///< max MLP width over the layers
  Constants constants;                  ///< the scale constants the weights were built with
  /// The operand hints the mul blocks were built with, one per op (1 for non-mul ops and when none
  /// were given): the magnitudes the realisation is calibrated for (docs/constructions.md §2.8).
  std::vector<OperandHint> hints;

  /// Resources of the realised model (docs/constructions.md §5).
  Resources resources() const { return {static_cast<int>(schedule.size()), layout.height, mlp_width, 2}; }

  /// The realised input: data rows from `data` (H_d x T, or fewer rows: zero-padded), position rows, zeros.
  template <class Derived>
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> embed(const Eigen::MatrixBase<Derived>& data) const {
    const auto& L = layout;
    const Eigen::Index T = data.cols();
    ICL_CHECK_ARG(data.rows() <= L.data_rows, "Realisation::embed: input has ", data.rows(),
                  " rows, more than the program's ", L.data_rows);
    ICL_CHECK_ARG(T >= 1 && T <= L.max_columns, "Realisation::embed: ", T,
                  " columns; this model was built for 1 to ", L.max_columns, " columns");
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> h =
        Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>::Zero(L.height, T);
    h.topRows(data.rows()) = data.template cast<S>();
    const S Ts = static_cast<S>(L.max_columns);
    for (Eigen::Index c = 0; c < T; ++c) {
      const S rc = static_cast<S>(c) / Ts;
      h(L.one, c) = 1;
      h(L.rho1, c) = rc;
      h(L.rho2, c) = rc * rc;
      for (std::size_t k = 0; k < L.tables.size(); ++k)
        h(L.tau0 + static_cast<int>(k), c) = static_cast<S>(L.tables[k].source(static_cast<int>(c))) / Ts;
    }
    return h;
  }
};

namespace detail {

/// Richardson weights ω_l for levels N_l = N·2^l (docs/constructions.md Eq. (C6)).
inline std::vector<double> richardson_weights(int K) {
  if (K == 1) return {1.0};
  if (K == 2) return {-1.0 / 3, 4.0 / 3};
  return {1.0 / 45, -20.0 / 45, 64.0 / 45};
}

template <class S>
class BlockBuilder {
 public:
  using Matrix = Mat<S>;
  using Vector = Vec<S>;

  BlockBuilder(const RealisedLayout& L, const Constants& k) : L_(L), k_(k), H_(L.height) {
    const double Ts = L.max_columns, beta = k.gamma * Ts * Ts;
    beta_ = beta;
    Fr_.setZero(H_, H_);
    Fs_.setZero(H_, H_);
    bf_.setZero(H_);
    b2_.setZero(H_);
    for (int j = 0; j < 2; ++j) {
      wk_[j].setZero(2, H_);
      wk_[j](0, L.rho1) = 1;
      wk_[j](1, L.rho2) = 1;
    }
    wq_[0] = offset_query(0);
    wq_[1] = offset_query(0);  // head 2 is always the self head
    // erase the scratch rows every layer (leftovers of the previous layer)
    for (int r : {L.pad_p, L.pad_m, L.zero}) Fs_(r, r) = -1;
    for (int r = L.scr0; r < L.scr0 + L.n_scr; ++r) Fs_(r, r) = -1;
  }

  /// Head-1 query for a relative offset o: 2β·RHO1 − (2βo/Ts)·ONE; −β·ONE (Eq. (C1)).
  Matrix offset_query(int o) const {
    Matrix q = Matrix::Zero(2, H_);
    const double Ts = L_.max_columns;
    q(0, L_.rho1) = static_cast<S>(2 * beta_);
    q(0, L_.one) = static_cast<S>(-2 * beta_ * o / Ts);
    q(1, L_.one) = static_cast<S>(-beta_);
    return q;
  }
  /// Head-1 query for table map k: 2β·TAU_k; −β·ONE.
  Matrix table_query(int k) const {
    Matrix q = Matrix::Zero(2, H_);
    q(0, L_.tau0 + k) = static_cast<S>(2 * beta_);
    q(1, L_.one) = static_cast<S>(-beta_);
    return q;
  }

  void mov(const Op<S>& op) {
    if (op.map.kind() == ColumnMap::Kind::offset) {
      wq_[0] = offset_query(op.map.offset());
    } else {
      int k = 0;
      while (!(L_.tables[k] == op.map)) ++k;
      wq_[0] = table_query(k);
    }
    for (int i = 0; i < op.w.size(); ++i) {
      Fr_(op.w.begin + i, op.r.begin + i) += 1;
      Fs_(op.w.begin + i, op.w.begin + i) -= 1;
    }
  }

  void aff(const Op<S>& op) {
    for (int i = 0; i < op.w.size(); ++i) {
      const int wi = op.w.begin + i;
      for (int k = 0; k < op.r.size(); ++k) Fs_(wi, op.r.begin + k) += op.W1(i, k);
      for (int k = 0; k < op.s.size(); ++k) Fs_(wi, op.s.begin + k) += op.W2(i, k);
      Fs_(wi, wi) -= 1;
      bf_(wi) += op.bias(i);
    }
  }

  void mul(const Op<S>& op, const OperandHint& hint) {
    const double P = k_.P, s0 = P * std::sqrt(2.0 / H_);
    bf_(L_.pad_p) += static_cast<S>(P);
    bf_(L_.pad_m) -= static_cast<S>(P);
    b2_(L_.pad_p) -= static_cast<S>(P);
    b2_(L_.pad_m) += static_cast<S>(P);
    for (int i = 0; i < op.w.size(); ++i) Fs_(op.w.begin + i, op.w.begin + i) -= 1;
    // in-place operands: copy into scratch rows, read the copies (§4.5)
    std::map<int, int> read_row;
    int next_scr = L_.scr0;
    auto reader = [&](int row) {
      if (!op.w.contains(row)) return row;
      auto it = read_row.find(row);
      if (it != read_row.end()) return it->second;
      ICL_CHECK_ARG(next_scr < L_.scr0 + L_.n_scr, "realise: not enough scratch rows for an in-place mul");
      const int s = next_scr++;
      Fs_(s, row) += 1;
      read_row[row] = s;
      return s;
    };
    const auto omega = richardson_weights(k_.K);
    for (int l = 0; l < k_.K; ++l) {
      const double Nl = k_.N * std::ldexp(1.0, l);
      const double cp = 1 / (Nl * hint.s1), cq = 1 / (Nl * hint.s2);
      const double kappa = std::sqrt(std::numbers::pi / 2) * Nl * Nl * hint.s1 * hint.s2 * omega[l];
      for (int i = 0; i < op.a; ++i)
        for (int j = 0; j < op.c; ++j) {
          const int we = op.w.begin + i * op.c + j;
          for (int kk = 0; kk < op.b; ++kk) {
            const int p = reader(op.r.begin + i * op.b + kk), q = reader(op.s.begin + kk * op.c + j);
            add_w2(we, unit({{p, cp}, {q, cq}}, s0), kappa);
            add_w2(we, unit({{p, cp}}, s0), -kappa);
            add_w2(we, unit({{q, cq}}, s0), -kappa);
          }
        }
    }
  }

  void div(const Op<S>& op) {
    const double M = k_.M, sM = M * std::sqrt(2.0 / H_);
    Fs_(L_.pad_p, op.c_row) += static_cast<S>(M);
    Fs_(L_.pad_m, op.c_row) -= static_cast<S>(M);
    for (int i = 0; i < op.w.size(); ++i) {
      const int wi = op.w.begin + i, yi = op.r.begin + i;
      Fs_(wi, wi) -= 1;
      // GeLU(v) − GeLU(−v) = v exactly (§4.4)
      add_w2(wi, unit({{yi, 1.0}}, sM), 1.0);
      add_w2(wi, unit({{yi, -1.0}}, sM), -1.0);
    }
  }

  BlockWeights<S> finish() const {
    BlockWeights<S> b;
    b.wq[0] = wq_[0];
    b.wq[1] = wq_[1];
    b.wk[0] = wk_[0];
    b.wk[1] = wk_[1];
    b.wf.resize(H_, 2 * H_);
    b.wf << Fr_, Fs_;
    b.bf = bf_;
    const int F = static_cast<int>(units_.size());
    b.w1.setZero(F, H_);
    b.b1.setZero(F);
    b.w2.setZero(H_, F);
    for (int u = 0; u < F; ++u)
      for (const auto& [row, coef] : units_[u]) {
        b.w1(u, row) += static_cast<S>(coef);
        b.w1(u, L_.zero) -= static_cast<S>(coef);
      }
    for (const auto& [key, v] : w2_) b.w2(key.first, key.second) = static_cast<S>(v);
    b.b2 = b2_;
    return b;
  }

 private:
  using Unit = std::vector<std::pair<int, double>>;  // (row, coefficient incl. the LN rescale)

  // A unit reading Σ coef·scale·(ℓ_row − ℓ_ZERO); identical units are shared. Terms on the same row merge.
  int unit(std::vector<std::pair<int, double>> terms, double scale) {
    Unit u;
    for (const auto& term : terms) {
      const int row = term.first;
      const double c = term.second;
      auto it = std::find_if(u.begin(), u.end(), [row](const auto& t) { return t.first == row; });
      if (it != u.end())
        it->second += c * scale;
      else
        u.push_back({row, c * scale});
    }
    std::sort(u.begin(), u.end());
    auto it = unit_index_.find(u);
    if (it != unit_index_.end()) return it->second;
    const int idx = static_cast<int>(units_.size());
    units_.push_back(u);
    unit_index_[u] = idx;
    return idx;
  }
  void add_w2(int row, int u, double v) { w2_[{row, u}] += v; }

  const RealisedLayout& L_;
  const Constants& k_;
  int H_;
  double beta_ = 0;
  Matrix wq_[2], wk_[2], Fr_, Fs_;
  Vector bf_, b2_;
  std::vector<Unit> units_;
  std::map<Unit, int> unit_index_;
  std::map<std::pair<int, int>, double> w2_;
};

template <class S>
bool same_op(const Op<S>& a, const Op<S>& b) {
  auto same = [](const auto& x, const auto& y) {
    return x.rows() == y.rows() && x.cols() == y.cols() && x == y;
  };
  return a.kind == b.kind && a.a == b.a && a.b == b.b && a.c == b.c && a.r == b.r && a.s == b.s &&
         a.w == b.w && a.c_row == b.c_row && a.map == b.map && same(a.W1, b.W1) && same(a.W2, b.W2) &&
         same(a.bias, b.bias);
}

}  // namespace detail

/// The realised layout of `program` for sequences of up to `max_columns` columns (§4.2).
template <class S>
RealisedLayout realised_layout(const Program<S>& program, int max_columns) {
  ICL_CHECK_ARG(max_columns >= 1, "realised_layout: max_columns: expected >= 1, got ", max_columns);
  RealisedLayout L;
  L.max_columns = max_columns;
  L.data_rows = program.height();
  int n_scr = 0;
  for (const auto& op : program.ops()) {
    if (op.kind == OpKind::mov && op.map.kind() == ColumnMap::Kind::table &&
        std::find(L.tables.begin(), L.tables.end(), op.map) == L.tables.end())
      L.tables.push_back(op.map);
    if (op.kind == OpKind::mul) {
      int in_place = 0;
      for (int r = op.w.begin; r < op.w.end; ++r) in_place += op.r.contains(r) || op.s.contains(r);
      n_scr = std::max(n_scr, in_place);
    }
  }
  int h = L.data_rows;
  L.one = h++;
  L.rho1 = h++;
  L.rho2 = h++;
  L.tau0 = h;
  h += static_cast<int>(L.tables.size());
  L.pad_p = h++;
  L.pad_m = h++;
  L.zero = h++;
  L.scr0 = h;
  L.n_scr = n_scr;
  h += n_scr;
  L.height = h;
  return L;
}

/// Realises every op of `program` as one paper block (Lemma 1) for sequences of up to `max_columns`
/// columns. `hints` has one entry per op (or is empty: all 1). Identical ops share one block.
template <class S>
Realisation<S> realise(const Program<S>& program, int max_columns,
                       const Constants& constants = Constants::defaults<S>(),
                       const std::vector<OperandHint>& hints = {}) {
  constants.validate();
  ICL_CHECK_ARG(hints.empty() || hints.size() == program.size(), "realise: hints: expected ", program.size(),
                " entries (one per op) or none, got ", hints.size());
  for (const auto& h : hints)
    ICL_CHECK_ARG(std::isfinite(h.s1) && std::isfinite(h.s2) && h.s1 > 0 && h.s2 > 0,
                  "realise: hints: expected finite positive operand magnitudes, got ", h.s1, ", ", h.s2);
  Realisation<S> R;
  R.constants = constants;
  R.layout = realised_layout(program, max_columns);
  R.hints = hints.empty() ? std::vector<OperandHint>(program.size()) : hints;
  const auto& ops = program.ops();
  std::vector<std::size_t> first_of_block;  // op index that defined each distinct block
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const OperandHint hint = hints.empty() ? OperandHint{} : hints[i];
    int found = -1;
    for (std::size_t b = 0; b < first_of_block.size() && found < 0; ++b) {
      const std::size_t j = first_of_block[b];
      const OperandHint hj = hints.empty() ? OperandHint{} : hints[j];
      if (detail::same_op(ops[i], ops[j]) && hj.s1 == hint.s1 && hj.s2 == hint.s2)
        found = static_cast<int>(b);
    }
    if (found < 0) {
      detail::BlockBuilder<S> bb(R.layout, constants);
      switch (ops[i].kind) {
        case OpKind::mov:
          bb.mov(ops[i]);
          break;
        case OpKind::aff:
          bb.aff(ops[i]);
          break;
        case OpKind::mul:
          bb.mul(ops[i], hint);
          break;
        case OpKind::div:
          bb.div(ops[i]);
          break;
      }
      R.blocks.push_back(bb.finish());
      R.mlp_width = std::max(R.mlp_width, static_cast<int>(R.blocks.back().w1.rows()));
      found = static_cast<int>(R.blocks.size()) - 1;
      first_of_block.push_back(i);
    }
    R.schedule.push_back(found);
  }
  return R;
}

}  // namespace icl::construct
