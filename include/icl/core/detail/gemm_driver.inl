// The packed GEMM driver and micro-kernel of icl/core/gemm.hpp, instantiated once per instruction
// set. This file has no include guard on purpose: gemm.hpp includes it once per ISA, each time with
// ICL_GEMM_NS (the namespace to define it in) and ICL_GEMM_TARGET (the function attribute that
// enables the ISA, e.g. __attribute__((target("avx512f")))) defined, and the traits structs
// `F32` and `F64` of that ISA already declared in namespace ICL_GEMM_NS. Not for direct use.
//
// Structure (docs/performance.md "GEMM kernels", Eq. (G1)-(G3)), after the BLIS/GotoBLAS
// decomposition: C += alpha op(A) op(B) is cut into NC-wide column blocks of C (jc), KC-deep
// slices of the inner dimension (pc) and MC-tall row blocks (ic). op(B)'s KC x NC block is
// packed once per (jc, pc) into NR-wide row-major micro-panels (it then stays in L3, each
// micro-panel in L1 while it is used); op(A)'s MC x KC block into MR-tall column-major
// micro-panels (it stays in L2). The micro-kernel computes one MR x NR tile of C in registers,
// NR broadcasts of B times MR / W vector loads of A per step of the inner dimension, and adds the
// tile to C once. Packing pads with zeros, so the micro-kernel never branches on the shape; edge
// tiles go through a small buffer.

namespace ICL_GEMM_NS {

/// Packs rows [i0, i0 + mc) x columns [p0, p0 + kc) of op(A) into MR-tall micro-panels:
/// dst[panel][p][i] (panel-major, then p, then i), zero-padded to a multiple of MR rows.
template <class T>
ICL_GEMM_TARGET void pack_a(bool trans, const typename T::S* a, long lda, long i0, long mc, long p0, long kc,
                            typename T::S* dst) {
  using S = typename T::S;
  constexpr int MR = T::MR;
  for (long ir = 0; ir < mc; ir += MR) {
    const long rows = mc - ir < MR ? mc - ir : MR;
    if (!trans) {
      // op(A)(i, p) = a[i + p lda]: each p is a contiguous run of `rows` values
      const S* src = a + (i0 + ir) + p0 * lda;
      if (rows == MR) {
        for (long p = 0; p < kc; ++p, src += lda, dst += MR)
          for (int i = 0; i < MR; ++i) dst[i] = src[i];
      } else {
        for (long p = 0; p < kc; ++p, src += lda, dst += MR) {
          int i = 0;
          for (; i < rows; ++i) dst[i] = src[i];
          for (; i < MR; ++i) dst[i] = S(0);
        }
      }
    } else {
      // op(A)(i, p) = a[p + i lda]: each row i is a contiguous run over p
      for (int i = 0; i < MR; ++i) {
        if (i < rows) {
          const S* src = a + p0 + (i0 + ir + i) * lda;
          for (long p = 0; p < kc; ++p) dst[p * MR + i] = src[p];
        } else {
          for (long p = 0; p < kc; ++p) dst[p * MR + i] = S(0);
        }
      }
      dst += MR * kc;
    }
  }
}

/// Packs `kc` rows x NR columns of a column-major float B (column stride ldb) into dst[p][j], by
/// 8 x 8 and 4 x 8 in-register transposes (8 rows at a time; the last kc % 8 rows and NR % 4 columns
/// one by one). The scalar loop reads NR strided values per row and was 12 % of the block's time at
/// H = 64, where the products have few rows to reuse each packed value for.
template <int NR>
ICL_GEMM_TARGET void pack_b_f32_cols(const float* src, long ldb, long kc, float* dst) {
  long p = 0;
  for (; p + 8 <= kc; p += 8) {
    int j = 0;
    for (; j + 8 <= NR; j += 8) {
      const float* s0 = src + j * ldb + p;
      const __m256 r0 = _mm256_loadu_ps(s0), r1 = _mm256_loadu_ps(s0 + ldb),
                   r2 = _mm256_loadu_ps(s0 + 2 * ldb), r3 = _mm256_loadu_ps(s0 + 3 * ldb),
                   r4 = _mm256_loadu_ps(s0 + 4 * ldb), r5 = _mm256_loadu_ps(s0 + 5 * ldb),
                   r6 = _mm256_loadu_ps(s0 + 6 * ldb), r7 = _mm256_loadu_ps(s0 + 7 * ldb);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
      const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      float* d = dst + p * NR + j;
      _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + NR, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; j + 4 <= NR; j += 4) {
      const float* s0 = src + j * ldb + p;
      const __m256 r0 = _mm256_loadu_ps(s0), r1 = _mm256_loadu_ps(s0 + ldb),
                   r2 = _mm256_loadu_ps(s0 + 2 * ldb), r3 = _mm256_loadu_ps(s0 + 3 * ldb);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      float* d = dst + p * NR + j;
      _mm_storeu_ps(d, _mm256_castps256_ps128(u0));
      _mm_storeu_ps(d + NR, _mm256_castps256_ps128(u1));
      _mm_storeu_ps(d + 2 * NR, _mm256_castps256_ps128(u2));
      _mm_storeu_ps(d + 3 * NR, _mm256_castps256_ps128(u3));
      _mm_storeu_ps(d + 4 * NR, _mm256_extractf128_ps(u0, 1));
      _mm_storeu_ps(d + 5 * NR, _mm256_extractf128_ps(u1, 1));
      _mm_storeu_ps(d + 6 * NR, _mm256_extractf128_ps(u2, 1));
      _mm_storeu_ps(d + 7 * NR, _mm256_extractf128_ps(u3, 1));
    }
    for (; j < NR; ++j)
      for (int i = 0; i < 8; ++i) dst[(p + i) * NR + j] = src[j * ldb + p + i];
  }
  for (; p < kc; ++p)
    for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[j * ldb + p];
}

/// Packs rows [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into NR-wide micro-panels:
/// dst[panel][p][j], zero-padded to a multiple of NR columns.
template <class T>
ICL_GEMM_TARGET void pack_b(bool trans, const typename T::S* b, long ldb, long p0, long kc, long j0, long nc,
                            typename T::S* dst) {
  using S = typename T::S;
  constexpr int NR = T::NR;
  for (long jr = 0; jr < nc; jr += NR) {
    const long cols = nc - jr < NR ? nc - jr : NR;
    if (!trans) {
      // op(B)(p, j) = b[p + j ldb]: each column j is a contiguous run over p; p outermost, so that
      // dst is written in order while `cols` read streams advance together
      const S* src = b + p0 + (j0 + jr) * ldb;
      if (cols == NR && std::is_same_v<S, float>) {
        if constexpr (std::is_same_v<S, float>) pack_b_f32_cols<NR>(src, ldb, kc, dst);
        dst += NR * kc;
      } else if (cols == NR) {
        for (long p = 0; p < kc; ++p, dst += NR)
#pragma GCC unroll 32
          for (int j = 0; j < NR; ++j) dst[j] = src[p + j * ldb];
      } else {
        for (long p = 0; p < kc; ++p, dst += NR) {
          int j = 0;
          for (; j < cols; ++j) dst[j] = src[p + j * ldb];
          for (; j < NR; ++j) dst[j] = S(0);
        }
      }
    } else {
      // op(B)(p, j) = b[j + p ldb]: each p is a contiguous run of `cols` values
      const S* src = b + (j0 + jr) + p0 * ldb;
      for (long p = 0; p < kc; ++p, src += ldb, dst += NR) {
        int j = 0;
        for (; j < cols; ++j) dst[j] = src[j];
        for (; j < NR; ++j) dst[j] = S(0);
      }
    }
  }
}

/// One MR x NR tile: c[i + j ldc] = (overwrite ? 0 : c[i + j ldc]) + alpha sum_p a[p][i] b[p][j]
/// over the packed micro-panels a (kc x MR) and b (kc x NR).
template <class T>
ICL_GEMM_TARGET void micro_kernel(long kc, const typename T::S* __restrict a,
                                  const typename T::S* __restrict b, typename T::S* c, long ldc,
                                  typename T::S alpha, bool overwrite) {
  using V = typename T::V;
  constexpr int W = T::W, MV = T::MR / T::W, NR = T::NR;
  V acc[NR][MV];
  // every loop below has a compile-time trip count and is unrolled, so that acc lives in NR * MV
  // registers for the whole k loop (GCC otherwise keeps a copy of the array on the stack)
#pragma GCC unroll 32
  for (int j = 0; j < NR; ++j)
#pragma GCC unroll 8
    for (int i = 0; i < MV; ++i) acc[j][i] = T::zero();
#pragma GCC unroll 32
  for (int j = 0; j < NR; ++j) T::prefetch(c + j * ldc);
  for (long p = 0; p < kc; ++p) {
    V av[MV];
#pragma GCC unroll 8
    for (int i = 0; i < MV; ++i) av[i] = T::load(a + i * W);
#pragma GCC unroll 32
    for (int j = 0; j < NR; ++j) {
      const V bj = T::broadcast(b + j);
#pragma GCC unroll 8
      for (int i = 0; i < MV; ++i) acc[j][i] = T::fmadd(av[i], bj, acc[j][i]);
    }
    a += T::MR;
    b += NR;
  }
  if (alpha != typename T::S(1)) {
    const V va = T::broadcast(&alpha);
#pragma GCC unroll 32
    for (int j = 0; j < NR; ++j)
#pragma GCC unroll 8
      for (int i = 0; i < MV; ++i) acc[j][i] = T::mul(acc[j][i], va);
  }
  if (overwrite) {
#pragma GCC unroll 32
    for (int j = 0; j < NR; ++j)
#pragma GCC unroll 8
      for (int i = 0; i < MV; ++i) T::store(c + j * ldc + i * W, acc[j][i]);
  } else {
#pragma GCC unroll 32
    for (int j = 0; j < NR; ++j)
#pragma GCC unroll 8
      for (int i = 0; i < MV; ++i)
        T::store(c + j * ldc + i * W, T::add(T::load(c + j * ldc + i * W), acc[j][i]));
  }
}

/// Thread-local, 64-byte-aligned scratch of at least `n` scalars (grows, never shrinks).
template <class S>
S* scratch(int which, std::size_t n) {
  struct Buf {
    S* p = nullptr;
    std::size_t n = 0;
    ~Buf() { ::operator delete[](p, std::align_val_t(64)); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[which];
  if (b.n < n) {
    ::operator delete[](b.p, std::align_val_t(64));
    b.p = nullptr;
    b.n = 0;
    b.p = static_cast<S*>(::operator new[](n * sizeof(S), std::align_val_t(64)));
    b.n = n;
  }
  return b.p;
}

/// C = alpha op(A) op(B) + (overwrite ? 0 : C), all column-major; m, n, k > 0 (checked by the caller).
template <class T>
ICL_GEMM_TARGET void gemm(bool ta, bool tb, long m, long n, long k, typename T::S alpha,
                          const typename T::S* a, long lda, const typename T::S* b, long ldb, bool overwrite,
                          typename T::S* c, long ldc) {
  using S = typename T::S;
  constexpr int MR = T::MR, NR = T::NR;
  constexpr long KC = T::KC, MC = T::MC, NC = T::NC;
  static_assert(MC % MR == 0 && NC % NR == 0, "icl::gemm: MC and NC must be multiples of the register block");
  const long kc_max = k < KC ? k : KC;
  const long mc_max = m < MC ? m : MC, nc_max = n < NC ? n : NC;
  S* ap = scratch<S>(0, static_cast<std::size_t>(((mc_max + MR - 1) / MR) * MR * kc_max));
  S* bp = scratch<S>(1, static_cast<std::size_t>(((nc_max + NR - 1) / NR) * NR * kc_max));
  alignas(64) S tile[MR * NR];
  for (long jc = 0; jc < n; jc += NC) {
    const long nc = n - jc < NC ? n - jc : NC;
    for (long pc = 0; pc < k; pc += KC) {
      const long kc = k - pc < KC ? k - pc : KC;
      const bool ow = overwrite && pc == 0;  // the first slice of the inner dimension writes C
      pack_b<T>(tb, b, ldb, pc, kc, jc, nc, bp);
      for (long ic = 0; ic < m; ic += MC) {
        const long mc = m - ic < MC ? m - ic : MC;
        pack_a<T>(ta, a, lda, ic, mc, pc, kc, ap);
        for (long jr = 0; jr < nc; jr += NR) {
          const long cols = nc - jr < NR ? nc - jr : NR;
          const S* bpanel = bp + jr * kc;
          for (long ir = 0; ir < mc; ir += MR) {
            const long rows = mc - ir < MR ? mc - ir : MR;
            const S* apanel = ap + ir * kc;
            S* cp = c + (ic + ir) + (jc + jr) * ldc;
            if (rows == MR && cols == NR) {
              micro_kernel<T>(kc, apanel, bpanel, cp, ldc, alpha, ow);
            } else {
              micro_kernel<T>(kc, apanel, bpanel, tile, MR, alpha, true);
              for (long j = 0; j < cols; ++j)
                for (long i = 0; i < rows; ++i)
                  cp[i + j * ldc] = ow ? tile[i + j * MR] : cp[i + j * ldc] + tile[i + j * MR];
            }
          }
        }
      }
    }
  }
}

}  // namespace ICL_GEMM_NS
