/// @file
/// safetensors read/write: named F32/F64 (and I64; F16/BF16 read) tensors with shapes and string metadata,
/// the format in which PyTorch and JAX users exchange weights. Format (huggingface/safetensors): an 8-byte
/// little-endian header length N, N bytes of JSON
/// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
/// then the raw little-endian, row-major (C-order) data. See docs/io.md.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/io/atomic_file.hpp"
#include "icl/io/detail/crc32.hpp"
#include "icl/io/detail/json.hpp"

namespace icl::io {

static_assert(
    std::endian::native == std::endian::little,
    "icl::io::SafeTensors: only little-endian hosts are supported (safetensors data is little-endian)");

/// Element types icl reads and writes. Parameters are written as F32/F64; I64 holds integer tables
/// (e.g. a constructed model's layer schedule); F16 and BF16 (which PyTorch users often save) are
/// read and converted (docs/io.md).
enum class DType { F32, F64, I64, F16, BF16 };

/// The format's name of a dtype ("F32", "F64", "I64", "F16", "BF16").
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
  }
  return "?";
}
/// Bytes per element of a dtype.
inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::I64:
      return 8;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
  }
  return 0;
}

namespace detail {
/// IEEE 754 binary16 bits -> double (exact: every half is a double); subnormals, Inf and NaN included.
inline double half_to_double(std::uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  double v;
  if (exp == 0)
    v = std::ldexp(static_cast<double>(frac), -24);  // subnormal: frac * 2^-24
  else if (exp == 31)
    v = frac ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else
    v = std::ldexp(static_cast<double>(frac | 0x400), exp - 25);  // (1 + frac/2^10) 2^(exp-15)
  return sign ? -v : v;
}
/// bfloat16 bits -> double (the upper half of a float32; exact).
inline double bf16_to_double(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail
/// The natural dtype for a scalar: float -> F32, double and long double -> F64.
template <class S>
constexpr DType dtype_of() {
  return sizeof(S) == 4 ? DType::F32 : DType::F64;
}

/// A shape as text, e.g. "[2, 3]" (for error messages).
inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Shape and dtype of a stored tensor.
struct TensorInfo {
  DType dtype = DType::F64;         ///< element type in the file
  std::vector<std::int64_t> shape;  ///< row-major dims; {} is a scalar
  /// Number of elements (1 for a scalar). @throws icl::InvalidArgument for a negative dimension or
  /// a count beyond int64 (see checked_numel).
  std::int64_t numel() const { return checked_numel(shape, "TensorInfo::numel"); }

  /// The product of `shape`, checked before each multiplication (a signed overflow is undefined
  /// behaviour, and a huge shape may come from a caller of put_nd). `fn` names the caller in errors.
  static std::int64_t checked_numel(const std::vector<std::int64_t>& shape, const char* fn) {
    for (const auto d : shape)
      ICL_CHECK_ARG(d >= 0, fn, ": shape: negative dimension ", d, " in ", shape_string(shape));
    for (const auto d : shape)
      if (d == 0) return 0;  // a zero dimension anywhere: no elements, whatever the others
    std::int64_t n = 1;
    for (const auto d : shape) {
      ICL_CHECK_ARG(n <= std::numeric_limits<std::int64_t>::max() / d, fn, ": shape: ", shape_string(shape),
                    " has more than 2^63 - 1 elements");
      n *= d;
    }
    return n;
  }
};

/// An in-memory safetensors file: add tensors with put(), read them with get(), save()/load().
///
/// Eigen matrices are stored row-major with shape {rows, cols} (so a PyTorch tensor of shape
/// [rows, cols] has the same entries); expressions whose compile-time column count is 1 are stored
/// 1-D with shape {rows}. Reading converts between F32 and F64 and checks shapes.
/// @throws icl::IoError for malformed files, missing tensors and shape mismatches.
class SafeTensors {
 public:
  /// Largest header accepted by load (the reference implementation's limit is 100 MB).
  static constexpr std::uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;

  /// Metadata key prefix of the per-tensor checksums: "icl.crc32." followed by a tensor's name holds
  /// the CRC-32 of that tensor's bytes as 8 lowercase hex digits. to_bytes writes one for every tensor;
  /// from_bytes verifies them, refuses a tensor whose bytes changed by name, and removes the keys from
  /// `metadata` (a file without them loads as before). docs/io.md, "Checksums".
  static constexpr std::string_view kChecksumPrefix = "icl.crc32.";

  std::map<std::string, std::string> metadata;  ///< the "__metadata__" string map (checksums excluded)

  /// Stores `m` under `name` (replacing any tensor of that name) as `dtype`.
  template <class Derived>
  void put(const std::string& name, const Eigen::DenseBase<Derived>& m, DType dtype) {
    std::vector<std::int64_t> shape;
    if constexpr (Derived::ColsAtCompileTime == 1) {
      shape = {static_cast<std::int64_t>(m.rows())};
    } else {
      shape = {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
    }
    const typename Derived::PlainObject ev(m.derived());  // products and other expressions: evaluate once
    std::vector<double> v(static_cast<std::size_t>(ev.size()));
    std::size_t k = 0;
    for (Eigen::Index r = 0; r < ev.rows(); ++r)
      for (Eigen::Index c = 0; c < ev.cols(); ++c) v[k++] = static_cast<double>(ev(r, c));
    put_raw(name, dtype, std::move(shape), v.data());
  }
  /// Stores `m` with the dtype of its scalar type.
  template <class Derived>
  void put(const std::string& name, const Eigen::DenseBase<Derived>& m) {
    put(name, m, dtype_of<typename Derived::Scalar>());
  }
  /// Stores `m` always as 2-D {rows, cols}, even for a compile-time column vector.
  template <class Derived>
  void put_matrix(const std::string& name, const Eigen::DenseBase<Derived>& m,
                  DType dtype = dtype_of<typename Derived::Scalar>()) {
    put(name, Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, Eigen::Dynamic>(m), dtype);
  }
  /// Stores an N-d tensor given its row-major values (any arithmetic type).
  template <class T>
  void put_nd(const std::string& name, const std::vector<std::int64_t>& shape,
              const std::vector<T>& row_major, DType dtype) {
    std::vector<double> v(row_major.begin(), row_major.end());
    put_raw(name, dtype, shape, v.data(), v.size());
  }
  /// Stores a 0-d F64 scalar.
  void put_scalar(const std::string& name, double value) { put_raw(name, DType::F64, {}, &value); }

  /// Whether a tensor named `name` is stored.
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  /// Names of the stored tensors, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : tensors_) out.push_back(k);
    return out;
  }
  /// Dtype and shape of tensor `name`. @throws icl::IoError if there is none.
  const TensorInfo& info(const std::string& name) const { return entry(name).info; }

  /// Reads a 2-D tensor (or a 1-D one as n x 1) as a matrix of S. rows/cols >= 0 are checked.
  template <class S>
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> get(const std::string& name, Eigen::Index rows = -1,
                                                       Eigen::Index cols = -1) const {
    const Entry& e = entry(name);
    const auto& sh = e.info.shape;
    ICL_CHECK_IO(sh.size() == 1 || sh.size() == 2, "safetensors: tensor '", name, "' has shape ",
                 shape_string(sh), ", expected a matrix (2-D) or vector (1-D)");
    const Eigen::Index R = static_cast<Eigen::Index>(sh[0]);
    const Eigen::Index C = sh.size() == 2 ? static_cast<Eigen::Index>(sh[1]) : 1;
    ICL_CHECK_IO((rows < 0 || rows == R) && (cols < 0 || cols == C), "safetensors: tensor '", name,
                 "' has shape ", shape_string(sh), ", expected ",
                 rows < 0 ? std::string("any") : std::to_string(rows), " x ",
                 cols < 0 ? std::string("any") : std::to_string(cols));
    // No entries: return at once, not after R empty row iterations (a header may say [2^61, 0]).
    if (R == 0 || C == 0) return Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>(R, C);
    const std::vector<double> v = values(e);
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> m(R, C);
    std::size_t k = 0;
    for (Eigen::Index r = 0; r < R; ++r)
      for (Eigen::Index c = 0; c < C; ++c) m(r, c) = static_cast<S>(v[k++]);
    return m;
  }
  /// Reads a 1-D tensor (or an n x 1 / 1 x n matrix) as a vector of S; n >= 0 is checked.
  template <class S>
  Eigen::Matrix<S, Eigen::Dynamic, 1> get_vector(const std::string& name, Eigen::Index n = -1) const {
    const Entry& e = entry(name);
    const auto& sh = e.info.shape;
    const bool vector_like = sh.size() == 1 || (sh.size() == 2 && (sh[0] == 1 || sh[1] == 1));
    ICL_CHECK_IO(vector_like, "safetensors: tensor '", name, "' has shape ", shape_string(sh),
                 ", expected a vector");
    ICL_CHECK_IO(n < 0 || e.info.numel() == n, "safetensors: tensor '", name, "' has shape ",
                 shape_string(sh), ", expected ", n, " entries");
    const std::vector<double> v = values(e);
    Eigen::Matrix<S, Eigen::Dynamic, 1> out(static_cast<Eigen::Index>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) out(static_cast<Eigen::Index>(i)) = static_cast<S>(v[i]);
    return out;
  }
  /// Reads any tensor's values in row-major order (as double), checking the shape if given.
  std::vector<double> get_nd(const std::string& name,
                             const std::vector<std::int64_t>* expected_shape = nullptr) const {
    const Entry& e = entry(name);
    ICL_CHECK_IO(!expected_shape || *expected_shape == e.info.shape, "safetensors: tensor '", name,
                 "' has shape ", shape_string(e.info.shape), ", expected ",
                 expected_shape ? shape_string(*expected_shape) : std::string());
    return values(e);
  }
  /// Reads a tensor with exactly one element (shape [] or [1] ...).
  double get_scalar(const std::string& name) const {
    const Entry& e = entry(name);
    ICL_CHECK_IO(e.info.numel() == 1, "safetensors: tensor '", name, "' has shape ",
                 shape_string(e.info.shape), ", expected a scalar");
    return values(e)[0];
  }

  /// The file contents.
  std::string to_bytes() const {
    // Built with appends only: GCC 12 reports a false -Wrestrict on `const char* + std::string&&`.
    std::string header = "{";
    bool first = true;
    std::map<std::string, std::string> meta = metadata;
    for (const auto& [name, e] : tensors_) {
      ICL_CHECK_ARG(!metadata.count(std::string(kChecksumPrefix) + name), "SafeTensors: metadata key '",
                    kChecksumPrefix, name, "': the prefix '", kChecksumPrefix,
                    "' is reserved for the checksums icl writes");
      meta[std::string(kChecksumPrefix) + name] = checksum_text(e.bytes);
    }
    if (!meta.empty()) {
      header += "\"__metadata__\":{";
      bool f2 = true;
      for (const auto& [k, v] : meta) {
        if (!f2) header += ',';
        header += detail::json_quote(k);
        header += ':';
        header += detail::json_quote(v);
        f2 = false;
      }
      header += '}';
      first = false;
    }
    std::uint64_t offset = 0;
    for (const auto& [name, e] : tensors_) {
      if (!first) header += ',';
      header += detail::json_quote(name);
      header += ":{\"dtype\":\"";
      header += dtype_name(e.info.dtype);
      header += "\",\"shape\":[";
      for (std::size_t i = 0; i < e.info.shape.size(); ++i) {
        if (i) header += ',';
        header += std::to_string(e.info.shape[i]);
      }
      header += "],\"data_offsets\":[";
      header += std::to_string(offset);
      header += ',';
      header += std::to_string(offset + e.bytes.size());
      header += "]}";
      offset += e.bytes.size();
      first = false;
    }
    header += "}";
    while (header.size() % 8 != 0) header += ' ';  // align the data to 8 bytes, as the reference writer does
    std::string out(8, '\0');
    const std::uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    out += header;
    for (const auto& [name, e] : tensors_) out.append(e.bytes.begin(), e.bytes.end());
    return out;
  }

  /// Parses file contents. `context` names the source in error messages.
  static SafeTensors from_bytes(std::string_view bytes, const std::string& context = "safetensors") {
    ICL_CHECK_IO(bytes.size() >= 8, context, ": truncated: ", bytes.size(),
                 " bytes, a safetensors file has at least an 8-byte header length");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    ICL_CHECK_IO(n <= kMaxHeaderBytes, context, ": header length ", n, " exceeds the limit of ",
                 kMaxHeaderBytes, " bytes (corrupt or not a safetensors file)");
    ICL_CHECK_IO(n <= bytes.size() - 8, context, ": truncated: header length ", n, " but only ",
                 bytes.size() - 8, " bytes follow");
    const std::string_view header = bytes.substr(8, n);
    const std::string_view data = bytes.substr(8 + n);
    const detail::Json root = detail::JsonParser(header, context).parse_document();
    ICL_CHECK_IO(root.is_object(), context, ": corrupt header: the JSON header is not an object");

    SafeTensors st;
    struct Span {
      std::uint64_t begin, end;
      std::string name;
    };
    std::vector<Span> spans;
    for (std::size_t m = 0; m < root.keys.size(); ++m) {
      const std::string& name = root.keys[m];
      const detail::Json& v = root.items[m];
      if (name == "__metadata__") {
        ICL_CHECK_IO(v.is_object(), context, ": corrupt header: __metadata__ is not an object");
        for (std::size_t i = 0; i < v.keys.size(); ++i) {
          const std::string& k = v.keys[i];
          const detail::Json& s = v.items[i];
          ICL_CHECK_IO(s.is_string(), context, ": corrupt header: __metadata__ value of '", k,
                       "' is not a string");
          st.metadata[k] = s.text;
        }
        continue;
      }
      ICL_CHECK_IO(v.is_object(), context, ": corrupt header: entry '", name, "' is not an object");
      const detail::Json* dtype = nullptr;
      const detail::Json* shape = nullptr;
      const detail::Json* offs = nullptr;
      for (std::size_t i = 0; i < v.keys.size(); ++i) {
        const std::string& k = v.keys[i];
        const detail::Json& f = v.items[i];
        if (k == "dtype")
          dtype = &f;
        else if (k == "shape")
          shape = &f;
        else if (k == "data_offsets")
          offs = &f;
        else
          icl::detail::raise<IoError>(context, ": corrupt header: tensor '", name, "' has unknown field '", k,
                                      "'");
      }
      ICL_CHECK_IO(dtype && shape && offs, context, ": corrupt header: tensor '", name,
                   "' lacks dtype, shape or data_offsets");
      ICL_CHECK_IO(dtype->is_string(), context, ": corrupt header: dtype of '", name, "' is not a string");
      Entry e;
      if (dtype->text == "F32")
        e.info.dtype = DType::F32;
      else if (dtype->text == "F64")
        e.info.dtype = DType::F64;
      else if (dtype->text == "I64")
        e.info.dtype = DType::I64;
      else if (dtype->text == "F16")
        e.info.dtype = DType::F16;
      else if (dtype->text == "BF16")
        e.info.dtype = DType::BF16;
      else
        icl::detail::raise<IoError>(context, ": tensor '", name, "' has dtype ", dtype->text,
                                    "; icl reads only F32, F64, F16, BF16 and I64");
      ICL_CHECK_IO(shape->is_array(), context, ": corrupt header: shape of '", name, "' is not an array");
      std::uint64_t numel = 1;
      for (const auto& d : shape->items) {
        const std::uint64_t dim = parse_uint(d, context, name, "shape");
        // Every dimension is bounded, not only the running product: after a zero dimension the
        // product stays 0, and a dimension >= 2^63 would be stored as a negative int64.
        constexpr std::uint64_t kMaxBytes = std::numeric_limits<std::uint64_t>::max() / 8;
        ICL_CHECK_IO(dim <= kMaxBytes && (dim == 0 || numel <= kMaxBytes / dim), context,
                     ": corrupt header: shape of '", name, "' overflows");
        numel *= dim;
        e.info.shape.push_back(static_cast<std::int64_t>(dim));
      }
      ICL_CHECK_IO(offs->is_array() && offs->items.size() == 2, context,
                   ": corrupt header: data_offsets of '", name, "' is not a pair");
      const std::uint64_t b = parse_uint(offs->items[0], context, name, "data_offsets");
      const std::uint64_t en = parse_uint(offs->items[1], context, name, "data_offsets");
      ICL_CHECK_IO(b <= en && en <= data.size(), context, ": truncated or corrupt: tensor '", name,
                   "' has data_offsets [", b, ", ", en, "] but the data section has ", data.size(), " bytes");
      ICL_CHECK_IO(en - b == numel * dtype_size(e.info.dtype), context, ": corrupt: tensor '", name,
                   "' has shape ", shape_string(e.info.shape), " ", dtype->text, " (",
                   numel * dtype_size(e.info.dtype), " bytes) but data_offsets span ", en - b, " bytes");
      e.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(b),
                     data.begin() + static_cast<std::ptrdiff_t>(en));
      spans.push_back({b, en, name});
      st.tensors_.emplace(name, std::move(e));
    }
    // The format requires the tensors to tile the data section exactly: no overlap, no holes
    // (docs/io.md, "Data layout"). As the reference reader, order the byte ranges by (begin, end)
    // and require every begin to equal the previous end. A zero-length tensor [x, x) is then
    // accepted exactly where x is a boundary between tensors (or 0, or the end of the data), and
    // refused inside another tensor's range, whatever the order of the keys; ties are broken by
    // name so that even the error message does not depend on the key order.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      if (a.begin != b.begin) return a.begin < b.begin;
      if (a.end != b.end) return a.end < b.end;
      return a.name < b.name;
    });
    std::uint64_t at = 0;
    for (const auto& s : spans) {
      ICL_CHECK_IO(s.begin == at, context, ": corrupt: tensor '", s.name, "' starts at byte ", s.begin,
                   " of the data section, expected ", at, " (overlapping or non-contiguous tensors)");
      at = s.end;
    }
    ICL_CHECK_IO(at == data.size(), context, ": corrupt: ", data.size() - at,
                 " trailing bytes after the last tensor's data");
    st.verify_checksums(context);
    return st;
  }

  /// Writes the file atomically (io::write_file_atomic: a temporary file in the same folder, synced,
  /// renamed over `path`): a crash during the write leaves the previous file intact.
  /// @throws icl::IoError if it cannot be written.
  void save(const std::string& path) const { write_file_atomic(path, to_bytes()); }

  /// Reads and validates a file. @throws icl::IoError naming the problem.
  static SafeTensors load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    ICL_CHECK_IO(f.good(), "safetensors: cannot open '", path, "' for reading");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ICL_CHECK_IO(!f.bad(), "safetensors: reading '", path, "' failed");
    return from_bytes(bytes, "safetensors '" + path + "'");
  }

 private:
  struct Entry {
    TensorInfo info;
    std::vector<unsigned char> bytes;  // little-endian, row-major
  };

  static std::string checksum_text(const std::vector<unsigned char>& bytes) {
    const std::uint32_t c = detail::crc32(bytes.data(), bytes.size());
    static const char* hex = "0123456789abcdef";
    std::string s(8, '0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = hex[(c >> (28 - 4 * i)) & 0xFu];
    return s;
  }

  // The checksums (if the file has any) must cover every tensor, name only tensors of the file and
  // match the bytes; they are then removed from `metadata`. The tensors tile the data section, so
  // per-tensor checksums cover every data byte and name the tensor that changed.
  void verify_checksums(const std::string& context) {
    std::size_t count = 0;
    for (auto it = metadata.lower_bound(std::string(kChecksumPrefix));
         it != metadata.end() && it->first.compare(0, kChecksumPrefix.size(), kChecksumPrefix) == 0; ++it) {
      const std::string name = it->first.substr(kChecksumPrefix.size());
      const auto t = tensors_.find(name);
      ICL_CHECK_IO(t != tensors_.end(), context, ": metadata '", it->first, "' is the checksum of a tensor '",
                   name, "' that the file does not have");
      const std::string got = checksum_text(t->second.bytes);
      ICL_CHECK_IO(it->second == got, context, ": tensor '", name, "': checksum mismatch (crc32 ", got,
                   " of the data, ", it->second,
                   " stored when the file was written): the tensor's bytes changed after writing");
      ++count;
    }
    if (count == 0) return;  // a file without checksums (written before them, or by another tool)
    for (const auto& [name, e] : tensors_)
      ICL_CHECK_IO(metadata.count(std::string(kChecksumPrefix) + name), context, ": tensor '", name,
                   "' has no checksum ('", kChecksumPrefix, name,
                   "') while others have: the file was changed after icl wrote it");
    for (auto it = metadata.lower_bound(std::string(kChecksumPrefix));
         it != metadata.end() && it->first.compare(0, kChecksumPrefix.size(), kChecksumPrefix) == 0;)
      it = metadata.erase(it);
  }

  static std::uint64_t parse_uint(const detail::Json& j, const std::string& context, const std::string& name,
                                  const char* field) {
    // digits only, no leading zero ("007", which the reference reader refuses), at most 19 digits
    bool ok = j.is_number() && !j.text.empty() && j.text.size() <= 19 && (j.text[0] != '0' || j.text == "0");
    for (const char c : j.text) ok = ok && c >= '0' && c <= '9';
    if (!ok)
      icl::detail::raise<IoError>(context, ": corrupt header: ", field, " of '", name,
                                  "' must hold non-negative integers, got '", j.text, "'");
    return std::stoull(j.text);
  }

  const Entry& entry(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) icl::detail::raise<IoError>("safetensors: no tensor named '", name, "'");
    return it->second;
  }

  static std::vector<double> values(const Entry& e) {
    const std::size_t n = static_cast<std::size_t>(e.info.numel());
    std::vector<double> v(n);
    if (e.info.dtype == DType::F32) {
      for (std::size_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, e.bytes.data() + 4 * i, 4);
        v[i] = f;
      }
    } else if (e.info.dtype == DType::I64) {
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t k;
        std::memcpy(&k, e.bytes.data() + 8 * i, 8);
        ICL_CHECK_IO(k >= -(std::int64_t{1} << 53) && k <= (std::int64_t{1} << 53), "safetensors: I64 value ",
                     k, " is beyond 2^53 and cannot be read exactly");
        v[i] = static_cast<double>(k);
      }
    } else if (e.info.dtype == DType::F16 || e.info.dtype == DType::BF16) {
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, e.bytes.data() + 2 * i, 2);
        v[i] = e.info.dtype == DType::F16 ? detail::half_to_double(b) : detail::bf16_to_double(b);
      }
    } else if (n > 0) {  // an empty vector's data() may be null: memcpy on null is undefined even for 0 bytes
      std::memcpy(v.data(), e.bytes.data(), 8 * n);
    }
    return v;
  }

  void put_raw(const std::string& name, DType dtype, std::vector<std::int64_t> shape, const double* v,
               std::size_t count = static_cast<std::size_t>(-1)) {
    ICL_CHECK_ARG(!name.empty() && name != "__metadata__",
                  "SafeTensors::put: name: expected a non-empty name other than "
                  "__metadata__, got '",
                  name, "'");
    Entry e;
    e.info.dtype = dtype;
    e.info.shape = std::move(shape);
    const std::size_t n =
        static_cast<std::size_t>(TensorInfo::checked_numel(e.info.shape, "SafeTensors::put"));
    ICL_CHECK_ARG(count == static_cast<std::size_t>(-1) || count == n,
                  "SafeTensors::put_nd: values: expected ", n, " values for shape ",
                  shape_string(e.info.shape), ", got ", count);
    ICL_CHECK_ARG(dtype == DType::F32 || dtype == DType::F64 || dtype == DType::I64,
                  "SafeTensors::put: dtype: icl writes F32, F64 and I64, got ", dtype_name(dtype));
    e.bytes.resize(n * dtype_size(dtype));
    for (std::size_t i = 0; i < n; ++i) {
      if (dtype == DType::I64) {
        ICL_CHECK_ARG(v[i] == std::trunc(v[i]) && std::abs(v[i]) <= 9007199254740992.0, "SafeTensors::put: '",
                      name, "': I64 values must be integers of magnitude <= 2^53, got ", v[i]);
        const auto k = static_cast<std::int64_t>(v[i]);
        std::memcpy(e.bytes.data() + 8 * i, &k, 8);
      } else if (dtype == DType::F32) {
        const float f = static_cast<float>(v[i]);
        std::memcpy(e.bytes.data() + 4 * i, &f, 4);
      } else {
        std::memcpy(e.bytes.data() + 8 * i, &v[i], 8);
      }
    }
    tensors_[name] = std::move(e);
  }

  std::map<std::string, Entry> tensors_;
};

}  // namespace icl::io
