/// @file
/// Compile-time shape helpers and heap-backed fixed-shape storage. Eigen refuses fixed-size
/// objects above EIGEN_STACK_ALLOCATION_LIMIT (128 KiB); icl keeps the shape in the type and the
/// coefficients on the heap (one 64-byte-aligned allocation), seen through a fixed-size Map.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <new>
#include <type_traits>

namespace icl {

/// True for the scalar types icl is instantiated with (float, double, long double).
template <class S>
inline constexpr bool is_scalar_v = std::is_floating_point_v<S>;

/// A column vector of R entries (R = Eigen::Dynamic by default: size set at run time).
template <class S, int R = Eigen::Dynamic>
using Vec = Eigen::Matrix<S, R, 1>;
/// An R x C matrix; each size is a compile-time constant or Eigen::Dynamic (the default).
template <class S, int R = Eigen::Dynamic, int C = Eigen::Dynamic>
using Mat = Eigen::Matrix<S, R, C>;
/// A sequence: R features (rows) by a run-time number of tokens (columns).
template <class S, int R>
using Seq = Eigen::Matrix<S, R, Eigen::Dynamic>;

/// Bytes a fixed R x C matrix of S would take.
template <class S, int R, int C>
inline constexpr std::size_t fixed_bytes = sizeof(S) * static_cast<std::size_t>(R) *
                                           static_cast<std::size_t>(C);

/// Whether an R x C matrix of S fits Eigen's fixed-size (stack) limit.
template <class S, int R, int C>
inline constexpr bool fits_on_stack = fixed_bytes<S, R, C> <= EIGEN_STACK_ALLOCATION_LIMIT;

/// A fixed-shape R x C matrix whose coefficients live on the heap (64-byte aligned), of any size.
///
/// Use `map()` (an `Eigen::Map<Eigen::Matrix<S, R, C>, Eigen::Aligned64>`) wherever an Eigen
/// expression is needed. Construction allocates once; copy allocates once; every other operation
/// (assignment from an expression of the same shape, map(), products into preallocated outputs)
/// allocates nothing.
template <class S, int R, int C>
class HeapMatrix {
  static_assert(is_scalar_v<S>, "icl::HeapMatrix: Scalar must be a floating-point type");
  static_assert(R > 0 && C > 0, "icl::HeapMatrix: both dimensions must be positive compile-time sizes");

 public:
  using Scalar = S;               ///< the coefficient type S
  static constexpr int Rows = R;  ///< rows at compile time
  static constexpr int Cols = C;  ///< columns at compile time
  /// R·C, the number of coefficients in the buffer.
  static constexpr std::size_t Size = static_cast<std::size_t>(R) * static_cast<std::size_t>(C);
  /// Writable fixed-shape (R x C, column-major, 64-byte aligned) view of the buffer.
  using MapType = Eigen::Map<Eigen::Matrix<S, R, C>, Eigen::Aligned64>;
  /// Read-only fixed-shape view of the buffer.
  using ConstMapType = Eigen::Map<const Eigen::Matrix<S, R, C>, Eigen::Aligned64>;

  /// Zero-initialised.
  HeapMatrix() : data_(allocate()) { std::fill_n(data_, Size, S(0)); }
  /// Deep copy. A moved-from source is empty (no buffer), and so is its copy.
  HeapMatrix(const HeapMatrix& o) : data_(o.data_ ? allocate() : nullptr) {
    if (data_) std::copy_n(o.data_, Size, data_);
  }
  /// Leaves `o` empty (empty() is true): assign to it before using its coefficients again.
  HeapMatrix(HeapMatrix&& o) noexcept : data_(o.data_) { o.data_ = nullptr; }
  /// Deep copy into the existing buffer (no allocation), or into a new one if this is empty;
  /// copying an empty (moved-from) matrix makes this one empty too.
  HeapMatrix& operator=(const HeapMatrix& o) {
    if (this == &o) return *this;
    if (!o.data_) {
      release();
      return *this;
    }
    if (!data_) data_ = allocate();
    std::copy_n(o.data_, Size, data_);
    return *this;
  }
  /// Swaps the buffers: `o` takes this matrix's old buffer (empty if this was empty).
  HeapMatrix& operator=(HeapMatrix&& o) noexcept {
    std::swap(data_, o.data_);
    return *this;
  }
  /// Allocates and copies an Eigen expression of the same R x C shape (a mismatch fails to
  /// compile for fixed sizes and is an Eigen assertion for run-time sizes).
  template <class Derived>
  explicit HeapMatrix(const Eigen::MatrixBase<Derived>& e) : data_(allocate()) {
    map() = e;
  }
  /// Assigns an expression of the same shape (allocates only if this is empty, i.e. moved-from).
  template <class Derived>
  HeapMatrix& operator=(const Eigen::MatrixBase<Derived>& e) {
    if (!data_) data_ = allocate();
    map() = e;
    return *this;
  }
  ~HeapMatrix() { release(); }

  /// True only for a moved-from matrix, which owns no buffer until it is assigned to.
  bool empty() const noexcept { return data_ == nullptr; }

  /// Writable R x C view of the coefficients (column-major); undefined on an empty matrix.
  MapType map() noexcept { return MapType(data_); }
  /// Read-only R x C view of the coefficients (column-major).
  ConstMapType map() const noexcept { return ConstMapType(data_); }
  /// Pointer to the R·C column-major coefficients, 64-byte aligned; nullptr when empty().
  S* data() noexcept { return data_; }
  /// Read-only pointer to the coefficients; nullptr when empty().
  const S* data() const noexcept { return data_; }
  /// Compile-time row count R.
  static constexpr int rows() noexcept { return R; }
  /// Compile-time column count C.
  static constexpr int cols() noexcept { return C; }

 private:
  static S* allocate() { return static_cast<S*>(::operator new[](Size * sizeof(S), std::align_val_t{64})); }
  void release() noexcept {
    if (data_) ::operator delete[](data_, std::align_val_t{64});
    data_ = nullptr;
  }
  S* data_;
};

}  // namespace icl
