/// @file
/// CSV writer for result tables (RFC 4180 quoting; numbers printed to round-trip precision).
#pragma once

#include <Eigen/Core>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "icl/core/error.hpp"

namespace icl::io {

/// Writes a header line at construction, then one line per row() call.
///
/// Numbers are written in the shortest form that reads back to the same double; strings are
/// quoted when they contain a comma, quote or line break.
/// @throws icl::IoError if the file cannot be opened or written;
///         icl::InvalidArgument if a row's width differs from the header's.
class CsvWriter {
 public:
  /// Opens `path` (truncating it) and writes the header row.
  CsvWriter(const std::string& path, std::vector<std::string> header)
      : path_(path), cols_(header.size()), out_(path, std::ios::trunc) {
    ICL_CHECK_IO(out_.good(), "CsvWriter: cannot open '", path, "' for writing");
    ICL_CHECK_ARG(!header.empty(), "CsvWriter: header: expected at least one column");
    write_fields(header);
  }

  /// Appends one row; the number of fields must equal the header's.
  template <class... Fields>
  void row(const Fields&... fields) {
    ICL_CHECK_ARG(sizeof...(Fields) == cols_, "CsvWriter::row: expected ", cols_,
                  " fields (the header's width), got ", sizeof...(Fields));
    std::vector<std::string> f;
    f.reserve(cols_);
    (f.push_back(format(fields)), ...);
    write_fields(f);
  }

  /// Appends one row given as strings (already formatted).
  void row_strings(const std::vector<std::string>& fields) {
    ICL_CHECK_ARG(fields.size() == cols_, "CsvWriter::row_strings: expected ", cols_, " fields, got ",
                  fields.size());
    write_fields(fields);
  }

  /// Flushes; @throws icl::IoError if any write failed.
  void flush() {
    out_.flush();
    ICL_CHECK_IO(out_.good(), "CsvWriter: writing '", path_, "' failed");
  }
  ~CsvWriter() { out_.flush(); }

  /// A field's text: numbers in the shortest form that reads back to the same double (float and long
  /// double via double), integers in decimal, strings unchanged (quoting happens when the row is written).
  static std::string format(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }
  /// Same as format(double).
  static std::string format(float v) { return format(static_cast<double>(v)); }
  /// Same as format(double).
  static std::string format(long double v) { return format(static_cast<double>(v)); }
  /// Same as format(double).
  template <class I, std::enable_if_t<std::is_integral_v<I>, int> = 0>
  static std::string format(I v) {
    return std::to_string(v);
  }
  /// The string itself.
  static std::string format(std::string_view s) { return std::string(s); }
  /// The string itself.
  static std::string format(const std::string& s) { return s; }
  /// The string itself.
  static std::string format(const char* s) { return s; }

 private:
  static std::string quote(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string q = "\"";
    for (const char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  void write_fields(const std::vector<std::string>& f) {
    for (std::size_t i = 0; i < f.size(); ++i) out_ << (i ? "," : "") << quote(f[i]);
    out_ << '\n';
    ICL_CHECK_IO(out_.good(), "CsvWriter: writing '", path_, "' failed");
  }

  std::string path_;
  std::size_t cols_;
  std::ofstream out_;
};

/// Writes a matrix as CSV with the given column names (one row per matrix row).
template <class Derived>
void write_csv(const std::string& path, const std::vector<std::string>& header,
               const Eigen::DenseBase<Derived>& m) {
  ICL_CHECK_ARG(static_cast<Eigen::Index>(header.size()) == m.cols(), "write_csv: header: expected ",
                m.cols(), " names (the matrix's columns), got ", header.size());
  CsvWriter w(path, header);
  const typename Derived::PlainObject ev(m.derived());
  for (Eigen::Index r = 0; r < ev.rows(); ++r) {
    std::vector<std::string> f;
    for (Eigen::Index c = 0; c < ev.cols(); ++c)
      f.push_back(CsvWriter::format(static_cast<double>(ev(r, c))));
    w.row_strings(f);
  }
  w.flush();
}

}  // namespace icl::io
