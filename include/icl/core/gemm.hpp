/// @file
/// Matrix products of the nn layers: C = alpha op(A) op(B) + beta C over column-major float and
/// double matrices, with icl's own packed, register-blocked FMA kernels for AVX-512 and AVX2
/// (docs/performance.md "GEMM kernels", Eqs. (G1)-(G3)) and Eigen's product as the fallback for
/// every other target and scalar.
///
/// Which kernel runs is a process-wide setting, icl::gemm::backend(). Its default is chosen at
/// compile time from the target the including code is compiled for: Backend::avx512 where
/// `__AVX512F__` is defined, Backend::avx2 where `__AVX2__` and `__FMA__` are, Backend::eigen
/// otherwise, so that a portable build (no `-march`) computes exactly what Eigen computes and its
/// printed numbers do not depend on the CPU. set_backend() changes it at run time, e.g. to
/// best_supported() in a portable build on a machine known to have AVX-512, or to Backend::eigen to
/// compare; the kernels are compiled in every x86-64 build with GCC or Clang (through function
/// target attributes) and are only run where the CPU has the instruction set (supported()).
#pragma once

#include <Eigen/Core>
#include <atomic>
#include <cstddef>
#include <new>
#include <string>
#include <type_traits>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/// 1: icl's kernels are compiled (x86-64 with GCC or Clang); 0: only Eigen's product.
#define ICL_GEMM_X86 1
#include <immintrin.h>
#else
/// 1: icl's kernels are compiled (x86-64 with GCC or Clang); 0: only Eigen's product.
#define ICL_GEMM_X86 0
#endif

namespace icl::gemm {

/// Whether an operand enters the product as stored or transposed.
enum class Trans {
  none,      ///< op(X) = X
  transpose  ///< op(X) = Xᵀ
};

/// The implementation a product runs on.
enum class Backend {
  eigen,   ///< Eigen's general matrix product (every scalar, every target)
  avx2,    ///< icl's kernels for AVX2 + FMA: float 16 x 6, double 8 x 6 register tiles
  avx512,  ///< icl's kernels for AVX-512F: float 32 x 12, double 16 x 12 register tiles
};

/// "eigen", "avx2" or "avx512".
inline const char* name(Backend b) {
  switch (b) {
    case Backend::avx2:
      return "avx2";
    case Backend::avx512:
      return "avx512";
    default:
      return "eigen";
  }
}

/// Whether this build and this CPU can run `b` (Backend::eigen always can; the kernels need an
/// x86-64 build with GCC or Clang and the instruction set on the CPU, with its registers enabled
/// by the operating system, which `__builtin_cpu_supports` checks).
inline bool supported(Backend b) {
#if ICL_GEMM_X86
  switch (b) {
    case Backend::avx512:
      return __builtin_cpu_supports("avx512f");
    case Backend::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
#else
  return b == Backend::eigen;
#endif
}

/// The fastest backend this build can run on this CPU (avx512, then avx2, then eigen).
inline Backend best_supported() {
  if (supported(Backend::avx512)) return Backend::avx512;
  if (supported(Backend::avx2)) return Backend::avx2;
  return Backend::eigen;
}

/// The default backend, fixed at compile time by the target of the including code (see the file
/// comment).
constexpr Backend compiled_default() {
#if ICL_GEMM_X86 && defined(__AVX512F__)
  return Backend::avx512;
#elif ICL_GEMM_X86 && defined(__AVX2__) && defined(__FMA__)
  return Backend::avx2;
#else
  return Backend::eigen;
#endif
}

namespace detail {
inline std::atomic<Backend>& backend_state() {
  static std::atomic<Backend> state{compiled_default()};
  return state;
}
}  // namespace detail

/// The backend every product of this process runs on now (compiled_default() until set_backend()).
inline Backend backend() { return detail::backend_state().load(std::memory_order_relaxed); }

/// Makes `b` the backend of every later product in the process (all threads).
/// @throws icl::InvalidArgument if this build or CPU cannot run it (supported()).
inline void set_backend(Backend b) {
  ICL_CHECK_ARG(supported(b), "icl::gemm::set_backend: backend ", name(b),
                " is not supported by this build or CPU (supported() is false)");
  detail::backend_state().store(b, std::memory_order_relaxed);
}

/// Sets a backend for the lifetime of the object and restores the previous one afterwards.
class ScopedBackend {
 public:
  /// Switches to `b` (throws as set_backend() does).
  explicit ScopedBackend(Backend b) : previous_(backend()) { set_backend(b); }
  ~ScopedBackend() { detail::backend_state().store(previous_, std::memory_order_relaxed); }
  ScopedBackend(const ScopedBackend&) = delete;
  ScopedBackend& operator=(const ScopedBackend&) = delete;

 private:
  Backend previous_;
};

#if ICL_GEMM_X86
namespace detail {
#define ICL_GEMM_INLINE inline __attribute__((always_inline))

namespace avx512 {
#define ICL_GEMM_T __attribute__((target("avx512f")))
// Register tiles (Eq. G2): 2 vectors x 12 broadcasts = 24 of the 32 zmm registers hold C's tile.
// Cache blocks (Eq. G3), for a core with >= 32 KiB L1d, >= 1 MiB L2 and a shared L3: a KC x NR
// micro-panel of B (18 KiB float, 24 KiB double) stays in L1, the MC x KC block of A (384 KiB) in
// L2, the KC x NC block of B (4.5 / 6 MiB) in L3.
struct F32 {
  using S = float;
  using V = __m512;
  static constexpr int W = 16, MR = 32, NR = 12;
  static constexpr long KC = 384, MC = 256, NC = 3072;
  ICL_GEMM_T ICL_GEMM_INLINE static V zero() { return _mm512_setzero_ps(); }
  ICL_GEMM_T ICL_GEMM_INLINE static V load(const S* p) { return _mm512_loadu_ps(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V broadcast(const S* p) { return _mm512_set1_ps(*p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  ICL_GEMM_T ICL_GEMM_INLINE static V add(V a, V b) { return _mm512_add_ps(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static void store(S* p, V v) { _mm512_storeu_ps(p, v); }
  ICL_GEMM_T ICL_GEMM_INLINE static void prefetch(const S* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
};
struct F64 {
  using S = double;
  using V = __m512d;
  static constexpr int W = 8, MR = 16, NR = 12;
  static constexpr long KC = 256, MC = 192, NC = 3072;
  ICL_GEMM_T ICL_GEMM_INLINE static V zero() { return _mm512_setzero_pd(); }
  ICL_GEMM_T ICL_GEMM_INLINE static V load(const S* p) { return _mm512_loadu_pd(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V broadcast(const S* p) { return _mm512_set1_pd(*p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  ICL_GEMM_T ICL_GEMM_INLINE static V add(V a, V b) { return _mm512_add_pd(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static void store(S* p, V v) { _mm512_storeu_pd(p, v); }
  ICL_GEMM_T ICL_GEMM_INLINE static void prefetch(const S* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
};
}  // namespace avx512
#define ICL_GEMM_NS avx512
#define ICL_GEMM_TARGET ICL_GEMM_T
#include "icl/core/detail/gemm_driver.inl"
#undef ICL_GEMM_TARGET
#undef ICL_GEMM_NS
#undef ICL_GEMM_T

namespace avx2 {
#define ICL_GEMM_T __attribute__((target("avx2,fma")))
// Register tiles (Eq. G2): 2 vectors x 6 broadcasts = 12 of the 16 ymm registers hold C's tile.
// Cache blocks (Eq. G3) as for AVX-512: a KC x NR micro-panel of B (9 / 12 KiB) in L1, the
// MC x KC block of A (384 KiB) in L2, the KC x NC block of B in L3.
struct F32 {
  using S = float;
  using V = __m256;
  static constexpr int W = 8, MR = 16, NR = 6;
  static constexpr long KC = 384, MC = 256, NC = 3072;
  ICL_GEMM_T ICL_GEMM_INLINE static V zero() { return _mm256_setzero_ps(); }
  ICL_GEMM_T ICL_GEMM_INLINE static V load(const S* p) { return _mm256_loadu_ps(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V broadcast(const S* p) { return _mm256_broadcast_ss(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  ICL_GEMM_T ICL_GEMM_INLINE static V add(V a, V b) { return _mm256_add_ps(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static void store(S* p, V v) { _mm256_storeu_ps(p, v); }
  ICL_GEMM_T ICL_GEMM_INLINE static void prefetch(const S* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
};
struct F64 {
  using S = double;
  using V = __m256d;
  static constexpr int W = 4, MR = 8, NR = 6;
  static constexpr long KC = 256, MC = 192, NC = 3072;
  ICL_GEMM_T ICL_GEMM_INLINE static V zero() { return _mm256_setzero_pd(); }
  ICL_GEMM_T ICL_GEMM_INLINE static V load(const S* p) { return _mm256_loadu_pd(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V broadcast(const S* p) { return _mm256_broadcast_sd(p); }
  ICL_GEMM_T ICL_GEMM_INLINE static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  ICL_GEMM_T ICL_GEMM_INLINE static V add(V a, V b) { return _mm256_add_pd(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  ICL_GEMM_T ICL_GEMM_INLINE static void store(S* p, V v) { _mm256_storeu_pd(p, v); }
  ICL_GEMM_T ICL_GEMM_INLINE static void prefetch(const S* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
};
}  // namespace avx2
#define ICL_GEMM_NS avx2
#define ICL_GEMM_TARGET ICL_GEMM_T
#include "icl/core/detail/gemm_driver.inl"
#undef ICL_GEMM_TARGET
#undef ICL_GEMM_NS
#undef ICL_GEMM_T
#undef ICL_GEMM_INLINE
}  // namespace detail
#endif  // ICL_GEMM_X86

namespace detail {
template <class S>
using Strided = Eigen::Map<const Mat<S>, 0, Eigen::OuterStride<>>;
template <class S>
using StridedOut = Eigen::Map<Mat<S>, 0, Eigen::OuterStride<>>;

/// Eigen's product, the reference and the fallback: C = alpha op(A) op(B) + (overwrite ? 0 : C).
template <class S>
void eigen_gemm(bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, S alpha, const S* a,
                Eigen::Index lda, const S* b, Eigen::Index ldb, bool overwrite, S* c, Eigen::Index ldc) {
  const Strided<S> A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  const Strided<S> B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  StridedOut<S> C(c, m, n, Eigen::OuterStride<>(ldc));
  auto run = [&](const auto& opa, const auto& opb) {
    if (overwrite) {
      if (alpha == S(1))
        C.noalias() = opa * opb;
      else
        C.noalias() = alpha * (opa * opb);
    } else {
      if (alpha == S(1))
        C.noalias() += opa * opb;
      else
        C.noalias() += alpha * (opa * opb);
    }
  };
  if (!ta && !tb) run(A, B);
  if (!ta && tb) run(A, B.transpose());
  if (ta && !tb) run(A.transpose(), B);
  if (ta && tb) run(A.transpose(), B.transpose());
}

template <class S>
void check_operands(const char* who, Trans ta, Trans tb, Eigen::Index ar, Eigen::Index ac, Eigen::Index br,
                    Eigen::Index bc, Eigen::Index cr, Eigen::Index cc) {
  const Eigen::Index m = ta == Trans::none ? ar : ac, ka = ta == Trans::none ? ac : ar;
  const Eigen::Index kb = tb == Trans::none ? br : bc, n = tb == Trans::none ? bc : br;
  ICL_CHECK_ARG(ka == kb, who, ": op(A) is ", m, " x ", ka, " and op(B) is ", kb, " x ", n,
                ": the inner dimensions must agree");
  ICL_CHECK_ARG(cr == m && cc == n, who, ": C: expected ", m, " x ", n, " (op(A) op(B)), got ", cr, " x ",
                cc);
}
}  // namespace detail

/// C = alpha op(A) op(B) + beta C on raw column-major storage (BLAS's sgemm/dgemm convention):
/// op(A) is m x k, op(B) is k x n, C is m x n; lda, ldb, ldc are the distances between columns
/// of the stored A, B and C. beta = 0 overwrites C without reading it (C may hold NaN).
/// The scalar S is float or double for the kernels; long double (and any other backend) runs
/// Eigen's product. C must not overlap A or B.
/// @throws icl::InvalidArgument on a negative size or a leading dimension smaller than the rows
///         of the stored matrix.
template <class S>
void gemm(Trans ta, Trans tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, S alpha, const S* a,
          Eigen::Index lda, const S* b, Eigen::Index ldb, S beta, S* c, Eigen::Index ldc) {
  ICL_CHECK_ARG(m >= 0 && n >= 0 && k >= 0, "icl::gemm::gemm: sizes must be >= 0, got m = ", m, ", n = ", n,
                ", k = ", k);
  const bool at = ta == Trans::transpose, bt = tb == Trans::transpose;
  const Eigen::Index a_rows = at ? k : m, b_rows = bt ? n : k;
  ICL_CHECK_ARG(lda >= (a_rows > 1 ? a_rows : 1), "icl::gemm::gemm: lda: expected >= ", a_rows,
                " (rows of the stored A), got ", lda);
  ICL_CHECK_ARG(ldb >= (b_rows > 1 ? b_rows : 1), "icl::gemm::gemm: ldb: expected >= ", b_rows,
                " (rows of the stored B), got ", ldb);
  ICL_CHECK_ARG(ldc >= (m > 1 ? m : 1), "icl::gemm::gemm: ldc: expected >= ", m, " (rows of C), got ", ldc);
  if (m == 0 || n == 0) return;
  bool overwrite = beta == S(0);
  if (!overwrite && beta != S(1)) {
    detail::StridedOut<S>(c, m, n, Eigen::OuterStride<>(ldc)) *= beta;
  }
  if (k == 0) {
    if (overwrite) detail::StridedOut<S>(c, m, n, Eigen::OuterStride<>(ldc)).setZero();
    return;
  }
#if ICL_GEMM_X86
  if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>) {
    using T512 = std::conditional_t<std::is_same_v<S, float>, detail::avx512::F32, detail::avx512::F64>;
    using T256 = std::conditional_t<std::is_same_v<S, float>, detail::avx2::F32, detail::avx2::F64>;
    switch (backend()) {
      case Backend::avx512:
        detail::avx512::gemm<T512>(at, bt, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc);
        return;
      case Backend::avx2:
        detail::avx2::gemm<T256>(at, bt, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc);
        return;
      default:
        break;
    }
  }
#endif
  detail::eigen_gemm<S>(at, bt, m, n, k, alpha, a, lda, b, ldb, overwrite, c, ldc);
}

/// C = alpha op(A) op(B) (`accumulate` false) or C += alpha op(A) op(B) (`accumulate` true) for
/// Eigen column-major operands with unit inner stride (matrices, Maps, Refs, column blocks).
/// @throws icl::InvalidArgument if the shapes do not agree (naming both).
template <class S>
void multiply(const Eigen::Ref<const Mat<S>>& A, Trans ta, const Eigen::Ref<const Mat<S>>& B, Trans tb,
              Eigen::Ref<Mat<S>> C, bool accumulate = false, S alpha = S(1)) {
  detail::check_operands<S>("icl::gemm::multiply", ta, tb, A.rows(), A.cols(), B.rows(), B.cols(), C.rows(),
                            C.cols());
  const Eigen::Index k = ta == Trans::none ? A.cols() : A.rows();
  gemm<S>(ta, tb, C.rows(), C.cols(), k, alpha, A.data(), A.outerStride() > 0 ? A.outerStride() : 1, B.data(),
          B.outerStride() > 0 ? B.outerStride() : 1, accumulate ? S(1) : S(0), C.data(),
          C.outerStride() > 0 ? C.outerStride() : 1);
}

}  // namespace icl::gemm
