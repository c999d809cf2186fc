# Target architecture of icl's own programs (benchmarks and examples), never of the library target
# (an -march on icl::icl would leak into every consumer).
#
#   ICL_BENCH_ARCH     -march for the Google Benchmark programs. Default "native": a benchmark
#                      measures the machine it runs on, and SSE2-only Eigen kernels are about half
#                      as fast (docs/performance.md).
#   ICL_EXAMPLES_ARCH  -march for the examples and experiment programs. Default "" (the compiler's
#                      default, baseline x86-64 on Debian): portable binaries whose printed numbers
#                      do not depend on the CPU. "native" makes training and experiments about 2x
#                      faster on an AVX2/AVX-512 machine (docs/performance.md, "Build flags").
#
# Either may name any -march value (native, x86-64, x86-64-v3, x86-64-v4, ...). CI compiles the
# benchmarks and the verify example for x86-64 and x86-64-v4 with warnings as errors, so that the
# build passes on every CPU and not only on the one CI happens to run on (.ci/run, stage 2).
set(ICL_BENCH_ARCH "native" CACHE STRING
    "-march for icl's benchmark programs ('' = compiler default)")
set(ICL_EXAMPLES_ARCH "" CACHE STRING
    "-march for icl's examples and experiment programs ('' = compiler default; native = faster)")

include(CheckCXXSourceCompiles)

# GCC 12 false positive, suppressed only where it fires: with AVX-512 enabled, GCC < 13 reports
# -Wmaybe-uninitialized inside its own avx512fintrin.h (`__m512d __Y = __Y;`, the idiom the
# intrinsics use for an undefined register), inlined from Eigen 3.4's AVX-512 GEMM packing
# (Eigen/src/Core/arch/AVX512/PacketMath.h, ptranspose via gemm_pack_lhs): hundreds of errors
# under -Werror in any program that multiplies matrices (GCC bug 105593, fixed in GCC 13). A
# pragma around the Eigen include does not reach a warning emitted after inlining, so the warning
# is switched off only for GCC < 13 and only where AVX-512 is enabled: for every icl program when
# the global flags enable it (e.g. CMAKE_CXX_FLAGS=-march=native on an AVX-512 machine), else for
# the targets whose ICL_*_ARCH enables it. The same GCC versions also report -Warray-bounds inside
# avx512fintrin.h (_mm512_loadu_ps) for Eigen's 16-float packet loop when a fixed 4-vector is
# assigned to a dynamic-size block (the loop runs zero times; GCC cannot prove it): first seen in
# examples/fig4_probe.cpp (probe/targets.hpp; its probes are now icl_cell's) under
# -march=x86-64-v4, so that warning goes too.
# Depending on what gets inlined, the same self-initialised register is reported as definitely
# uninitialised (-Wuninitialized, "'__Y' is used uninitialized", inside _mm512_max_ps via Eigen's
# pmax in the ReLU branch of the activation at F = 512: first seen in bench/bench_nn.cpp and
# bench/bench_train.cpp), so that one is switched off with them.
# In the default build the unit tests are compiled without -march, so these warnings stay errors
# for icl's own code there.

# _icl_enables_avx512(<out> <flags>): whether CMAKE_CXX_FLAGS plus <flags> enable AVX-512
# (try_compile applies CMAKE_CXX_FLAGS itself); cached per flag combination.
function(_icl_enables_avx512 out flags)
  string(MAKE_C_IDENTIFIER "ICL_HAS_AVX512_${CMAKE_CXX_FLAGS}_${flags}" var)
  set(CMAKE_REQUIRED_FLAGS "${flags}")
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles("
    #ifndef __AVX512F__
    #error no AVX-512
    #endif
    int main() { return 0; }" ${var})
  set(${out} ${${var}} PARENT_SCOPE)
endfunction()

set(_icl_gcc_avx512_bug OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  set(_icl_gcc_avx512_bug ON)
  _icl_enables_avx512(_icl_global_avx512 "")
  if(_icl_global_avx512)
    target_compile_options(icl_dev_flags INTERFACE -Wno-maybe-uninitialized -Wno-uninitialized
                                                   -Wno-array-bounds)
  endif()
endif()

# icl_target_arch(<target> <march>): compile <target> for -march=<march> (nothing if empty).
function(icl_target_arch target march)
  if(march STREQUAL "" OR NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    return()
  endif()
  target_compile_options(${target} PRIVATE -march=${march})
  if(_icl_gcc_avx512_bug)
    _icl_enables_avx512(has "-march=${march}")
    if(has)
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized -Wno-array-bounds)
    endif()
  endif()
endfunction()
