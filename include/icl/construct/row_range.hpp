/// @file
/// RowRange (half-open, 0-based rows of a hidden state) and ColumnMap (which column each column reads).
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"

namespace icl::construct {

/// Half-open, 0-based row range [begin, end) of a hidden state (rows = units, columns = timesteps).
/// A structural type, so it can be a template argument (compile-time-checked primitives).
struct RowRange {
  int begin = 0;  ///< first row
  int end = 0;    ///< one past the last row

  /// Number of rows, end - begin.
  constexpr int size() const { return end - begin; }
  /// Whether the range has no rows (end == begin).
  constexpr bool empty() const { return end == begin; }
  /// Whether `row` lies in [begin, end).
  constexpr bool contains(int row) const { return row >= begin && row < end; }
  /// Whether both ranges are non-empty and share at least one row.
  constexpr bool overlaps(RowRange o) const {
    return !empty() && !o.empty() && begin < o.end && o.begin < end;
  }
  /// Whether the range is well formed (0 <= begin <= end) and fits a state of `height` rows.
  constexpr bool valid_for(int height) const { return begin >= 0 && begin <= end && end <= height; }
  /// The single row `r`.
  static constexpr RowRange row(int r) { return {r, r + 1}; }
  /// Equal iff begin and end are equal (so two empty ranges at different rows differ).
  friend constexpr bool operator==(RowRange, RowRange) = default;
};

/// Text "(begin, end)" as in the paper's tables.
inline std::string to_string(RowRange r) {
  std::ostringstream os;
  os << '(' << r.begin << ", " << r.end << ')';
  return os.str();
}

/// Which source column every column of a mov reads (causal: source(c) <= c).
///
/// * relative offset o, clamped: source(c) = max(c - o, 0); this is what the softmax position kernel
///   realises (docs/constructions.md Eq. (C1)), so the exact and realised models share the boundary.
/// * table: explicit (target -> source) pairs, every other column reads itself. The paper's
///   mov(H; s, t, ...) "write column t only" is table {t <- s}; it equals "write only column t" iff the
///   source and target rows coincide (true for the paper's chains).
class ColumnMap {
 public:
  /// How the map is stored: a clamped relative offset (relative()) or an explicit table (table()).
  enum class Kind { offset, table };

  /// source(c) = max(c - o, 0), o >= 0.
  static ColumnMap relative(int o) {
    ICL_CHECK_ARG(o >= 0, "ColumnMap::relative: o: expected >= 0 (causal), got ", o);
    ColumnMap m;
    m.kind_ = Kind::offset;
    m.offset_ = o;
    return m;
  }
  /// Explicit (target, source) pairs with source <= target; other columns read themselves.
  static ColumnMap table(std::vector<std::pair<int, int>> target_source) {
    ColumnMap m;
    m.kind_ = Kind::table;
    for (const auto& [t, s] : target_source) {
      ICL_CHECK_ARG(s >= 0 && t >= 0, "ColumnMap::table: columns must be >= 0, got target ", t, " source ",
                    s);
      ICL_CHECK_ARG(s <= t, "ColumnMap::table: target column ", t, " reads source column ", s,
                    " from the future (causal maps need source <= target)");
    }
    m.table_ = std::move(target_source);
    return m;
  }

  /// Whether this is an offset map or a table map.
  Kind kind() const { return kind_; }
  /// The offset o of an offset map (0 for a table map).
  int offset() const { return offset_; }
  /// The (target, source) column pairs of a table map, in the order given (empty for an offset map).
  const std::vector<std::pair<int, int>>& entries() const { return table_; }

  /// The column that column c reads.
  int source(int c) const {
    if (kind_ == Kind::offset) return std::max(c - offset_, 0);
    for (const auto& [t, s] : table_)
      if (t == c) return s;
    return c;
  }

  /// "o=2" or "{1<-0}" for printing.
  std::string describe() const {
    std::ostringstream os;
    if (kind_ == Kind::offset) {
      os << "o=" << offset_;
      return os.str();
    }
    os << '{';
    for (std::size_t i = 0; i < table_.size(); ++i)
      os << (i ? ", " : "") << table_[i].first << "<-" << table_[i].second;
    os << '}';
    return os.str();
  }

  /// Equal iff kind, offset and the table entries (in order) are equal.
  friend bool operator==(const ColumnMap&, const ColumnMap&) = default;

 private:
  Kind kind_ = Kind::offset;
  int offset_ = 0;
  std::vector<std::pair<int, int>> table_;
};

}  // namespace icl::construct
