/// @file
/// Program: a sequence of Lemma-1 primitives over a named row layout, its exact interpreter, the
/// printer that renders it as the paper's appendix tables, and its resource accounting.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "icl/construct/primitives.hpp"
#include "icl/construct/row_range.hpp"
#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::construct {

/// Named, contiguous row blocks of a hidden state, allocated top to bottom.
class Layout {
 public:
  /// One named block of rows.
  struct Block {
    std::string name;  ///< the name given to add() (printed in tables, looked up by operator[])
    RowRange rows;     ///< the rows the block occupies
  };

  /// Appends a block of `size` rows named `name` and returns its range.
  RowRange add(std::string name, int size) {
    ICL_CHECK_ARG(size >= 0, "Layout::add: size of '", name, "': expected >= 0, got ", size);
    const RowRange r{height_, height_ + size};
    blocks_.push_back({std::move(name), r});
    height_ += size;
    return r;
  }
  /// The range of the block called `name`; throws InvalidArgument if there is none.
  RowRange operator[](const std::string& name) const {
    for (const auto& b : blocks_)
      if (b.name == name) return b.rows;
    icl::detail::raise<InvalidArgument>("Layout: no block named '", name, "'");
  }
  /// Total number of rows allocated so far (the hidden-state height H).
  int height() const { return height_; }
  /// The blocks in the order they were added (top to bottom).
  const std::vector<Block>& blocks() const { return blocks_; }

  /// "NAME" if r is exactly a block, "NAME[i:j]" if inside one, else "(begin, end)".
  std::string describe(RowRange r) const {
    if (r.empty()) return "()";
    for (const auto& b : blocks_) {
      if (b.rows == r) return b.name;
      if (r.begin >= b.rows.begin && r.end <= b.rows.end) {
        std::ostringstream os;
        os << b.name << '[' << r.begin - b.rows.begin << ':' << r.end - b.rows.begin << ']';
        return os.str();
      }
    }
    return to_string(r);
  }

 private:
  std::vector<Block> blocks_;
  int height_ = 0;
};

/// The four Lemma-1 primitives (docs/constructions.md §1): move rows between columns, multiply row-major
/// blocks, divide by a row's absolute value, affine map of rows.
enum class OpKind { mov, mul, div, aff };

/// The primitive's name: "mov", "mul", "div" or "aff".
inline const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::mov:
      return "mov";
    case OpKind::mul:
      return "mul";
    case OpKind::div:
      return "div";
    case OpKind::aff:
      return "aff";
  }
  return "?";
}

/// One primitive with its arguments. Field use by kind:
/// mov: map, src = r, dst = w; mul: a, b, c, r1 = r, r2 = s, w; div: r, c_row, w; aff: r, s, w, W1, W2, bias.
template <class S>
struct Op {
  OpKind kind = OpKind::aff;  ///< which primitive
  /// mul only: rows of the first factor A1 (a x b); the product A1 A2 is a x c.
  int a = 0, b = 0, c = 0;
  /// @var b
  /// mul only: columns of A1 = rows of A2 (the summed dimension).
  /// @var c
  /// mul only: columns of the second factor A2 (b x c) and of the product.

  /// First input rows: mov src, mul r1 (A1, a*b rows), div numerator, aff r (multiplied by W1).
  RowRange r, s, w;
  /// @var s
  /// Second input rows: mul r2 (A2, b*c rows), aff s (multiplied by W2); unused by mov and div.
  /// @var w
  /// Rows written: mov dst, mul w (a*c rows), div w (|r| rows), aff w.

  int c_row = -1;  ///< div only: the divisor row (rows w <- rows r / |row c_row|); -1 otherwise
  ColumnMap map;   ///< mov only: which column each column reads
  /// aff only: W1 (|w| x |r|), applied to rows r (rows w <- W1 h[r] + W2 h[s] + bias).
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> W1, W2;
  /// @var W2
  /// aff only: W2 (|w| x |s|), applied to rows s.

  /// aff only: the bias b, |w| entries.
  Eigen::Matrix<S, Eigen::Dynamic, 1> bias;
  std::string meaning;  ///< what the written rows hold afterwards (printed)
  std::string group;    ///< ops repeated across blocks share a group (for operand hints); may be empty

  /// The rows this op writes.
  RowRange written() const { return w; }
};

/// Resources of a program (exact level) or of its realisation (transformer level).
struct Resources {
  int layers = 0;          ///< decoder layers (one per primitive unless fused)
  int residual_width = 0;  ///< rows of the hidden state (H_d exact, H_T realised)
  int mlp_width = 0;       ///< max MLP hidden units over the layers (0 at the exact level)
  int heads = 2;           ///< attention heads per layer (the construction uses 2)
};

/// A sequence of primitives over a named layout (docs/constructions.md §2). Each builder validates its
/// ranges against the layout immediately (InvalidArgument), so an ill-formed program cannot be built.
template <class S>
class Program {
 public:
  using Matrix = Mat<S>;  ///< hidden state (H x T) or weights: icl::Mat<S>
  using Vector = Vec<S>;  ///< aff bias: icl::Vec<S>

  /// An empty program over `layout`; the layout's height is the state height H of every op.
  explicit Program(Layout layout) : layout_(std::move(layout)) {}

  /// mov with column map `map`: rows dst of column c <- rows src of column map.source(c).
  Program& mov(const ColumnMap& map, RowRange src, RowRange dst, std::string meaning = {},
               std::string group = {}) {
    check_mov(height(), src, dst);
    Op<S> op;
    op.kind = OpKind::mov;
    op.map = map;
    op.r = src;
    op.w = dst;
    return push(std::move(op), std::move(meaning), std::move(group));
  }
  /// mul(a, b, c, r1, r2, w): rows w <- vec(A1 A2) (row-major blocks).
  Program& mul(int a, int b, int c, RowRange r1, RowRange r2, RowRange w, std::string meaning = {},
               std::string group = {}) {
    check_mul(height(), a, b, c, r1, r2, w);
    Op<S> op;
    op.kind = OpKind::mul;
    op.a = a;
    op.b = b;
    op.c = c;
    op.r = r1;
    op.s = r2;
    op.w = w;
    return push(std::move(op), std::move(meaning), std::move(group));
  }
  /// div(r, c_row, w): rows w <- rows r / |row c_row|.
  Program& div(RowRange r, int c_row, RowRange w, std::string meaning = {}, std::string group = {}) {
    check_div(height(), r, c_row, w);
    Op<S> op;
    op.kind = OpKind::div;
    op.r = r;
    op.c_row = c_row;
    op.w = w;
    return push(std::move(op), std::move(meaning), std::move(group));
  }
  /// aff(r, s, w, W1, W2, b): rows w <- W1 h[r] + W2 h[s] + b. Empty W1/W2/b (size 0) mean "absent"/zero.
  Program& aff(RowRange r, RowRange s, RowRange w, Matrix W1, Matrix W2, Vector b, std::string meaning = {},
               std::string group = {}) {
    if (W1.size() == 0) W1 = Matrix::Zero(w.size(), r.size());
    if (W2.size() == 0) W2 = Matrix::Zero(w.size(), s.size());
    if (b.size() == 0) b = Vector::Zero(w.size());
    check_aff(height(), r, s, w, W1, W2, b);
    Op<S> op;
    op.kind = OpKind::aff;
    op.r = r;
    op.s = s;
    op.w = w;
    op.W1 = std::move(W1);
    op.W2 = std::move(W2);
    op.bias = std::move(b);
    return push(std::move(op), std::move(meaning), std::move(group));
  }

  /// The row layout the program was built over.
  const Layout& layout() const { return layout_; }
  /// The ops in execution order.
  const std::vector<Op<S>>& ops() const { return ops_; }
  /// Rows of the hidden state, H_d (the layout height).
  int height() const { return layout_.height(); }
  /// Number of ops (= layers at the exact level).
  std::size_t size() const { return ops_.size(); }

  /// Applies one op to h (exact semantics).
  template <int R, int C>
  static void apply(const Op<S>& op, Eigen::Matrix<S, R, C>& h) {
    switch (op.kind) {
      case OpKind::mov:
        construct::mov(h, op.map, op.r, op.w);
        break;
      case OpKind::mul:
        construct::mul(h, op.a, op.b, op.c, op.r, op.s, op.w);
        break;
      case OpKind::div:
        construct::div(h, op.r, op.c_row, op.w);
        break;
      case OpKind::aff:
        construct::aff(h, op.r, op.s, op.w, op.W1, op.W2, op.bias);
        break;
    }
  }

  /// Embeds a token matrix (rows 0..k-1 of the state, k <= height) into a zero H x T state.
  template <class Derived>
  Matrix embed(const Eigen::MatrixBase<Derived>& tokens) const {
    ICL_CHECK_ARG(tokens.rows() <= height(), "Program::embed: tokens have ", tokens.rows(),
                  " rows, more than the program's ", height());
    Matrix h = Matrix::Zero(height(), tokens.cols());
    h.topRows(tokens.rows()) = tokens.template cast<S>();
    return h;
  }

  /// The exact interpreter: runs every op in order on a copy of h0 (H x T).
  Matrix run(const Matrix& h0) const {
    ICL_CHECK_ARG(h0.rows() == height(), "Program::run: h0 has ", h0.rows(), " rows, expected ", height());
    Matrix h = h0;
    for (const auto& op : ops_) apply(op, h);
    return h;
  }

  /// Exact-level resources: one layer per op, the layout height, 2 heads, no MLP width.
  Resources resources() const { return {static_cast<int>(ops_.size()), height(), 0, 2}; }

  /// One op in the paper's notation, e.g. "mul(d=4: 4,1,1, x, R, G)" -> "mul(4,1,1, x, R)".
  std::string describe(const Op<S>& op) const {
    std::ostringstream os;
    const auto& L = layout_;
    switch (op.kind) {
      case OpKind::mov:
        os << "mov " << op.map.describe() << ", " << L.describe(op.r);
        break;
      case OpKind::mul:
        os << "mul(" << op.a << "," << op.b << "," << op.c << ", " << L.describe(op.r) << ", "
           << L.describe(op.s) << ")";
        break;
      case OpKind::div:
        os << "div(" << L.describe(op.r) << ", c_row=" << op.c_row << ")";
        break;
      case OpKind::aff:
        os << "aff(" << L.describe(op.r) << ", " << L.describe(op.s) << (op.bias.isZero() ? "" : ", b")
           << ")";
        break;
    }
    return os.str();
  }

  /// The program as a Markdown table like the paper's appendix: #, op, rows written, meaning.
  std::string table() const {
    std::ostringstream os;
    os << "| # | op | rows written | meaning |\n|---|---|---|---|\n";
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const auto& op = ops_[i];
      os << "| " << i + 1 << " | " << describe(op) << " | " << to_string(op.w) << " "
         << layout_.describe(op.w) << " | " << op.meaning << " |\n";
    }
    return os.str();
  }

 private:
  Program& push(Op<S> op, std::string meaning, std::string group) {
    op.meaning = std::move(meaning);
    op.group = std::move(group);
    ops_.push_back(std::move(op));
    return *this;
  }

  Layout layout_;
  std::vector<Op<S>> ops_;
};

}  // namespace icl::construct
