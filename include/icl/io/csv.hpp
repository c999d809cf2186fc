/// @file
/// CSV writer for result tables (RFC 4180 quoting; numbers printed to round-trip precision).
#pragma once

#include <unistd.h>

#include <Eigen/Core>
#include <charconv>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/io/atomic_file.hpp"

namespace icl::io {

/// A CSV file built row by row: a header line at construction, then one line per row() call.
/// The text is kept in memory and written with io::write_file_atomic on every flush() (and by the
/// destructor if rows were added since): the file on disk is always complete, holding the rows of
/// the last flush, and a crash never truncates it or an earlier version (docs/io.md).
///
/// Numbers are written in the shortest form that reads back to the same double; strings are
/// quoted when they contain a comma, quote or line break.
/// @throws icl::IoError if the folder does not exist or is not writable (at construction) or a
///         write fails (flush);
///         icl::InvalidArgument if a row's width differs from the header's.
class CsvWriter {
 public:
  /// Starts the table with its header row; nothing is written to `path` before the first flush().
  CsvWriter(const std::string& path, std::vector<std::string> header) : path_(path), cols_(header.size()) {
    ICL_CHECK_ARG(!header.empty(), "CsvWriter: header: expected at least one column");
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    ICL_CHECK_IO(!path.empty() && std::filesystem::is_directory(dir, ec) &&
                     ::access(dir.c_str(), W_OK) == 0 && !std::filesystem::is_directory(path, ec),
                 "CsvWriter: cannot open '", path, "' for writing (its folder is missing or not writable)");
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

  /// Writes the whole table atomically; @throws icl::IoError if the write fails.
  void flush() {
    write_file_atomic(path_, text_);
    dirty_ = false;
  }
  /// Flushes rows added since the last flush(); a failure here is not reported (call flush()).
  ~CsvWriter() {
    if (!dirty_) return;
    try {
      write_file_atomic(path_, text_);
    } catch (...) {  // a destructor must not throw
    }
  }
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  /// The text of the table so far (header and rows).
  const std::string& text() const { return text_; }

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
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (i) text_ += ',';
      text_ += quote(f[i]);
    }
    text_ += '\n';
    dirty_ = true;
  }

  std::string path_;
  std::size_t cols_;
  std::string text_;
  bool dirty_ = false;
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
