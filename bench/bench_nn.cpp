// Benchmarks of the transformer layers (float, one thread) next to the machine's reference: the
// single-thread float GEMMs at the layer shapes (icl's kernels and Eigen's product). Every benchmark reports
// a FLOP-rate counter "FLOPS" (benchmark::Counter::kIsIterationInvariantRate); the FLOP conventions are in
// docs/performance.md. bench/torch_nn.py times PyTorch on the same shapes and prints the ratios.
//
// Shapes: T = 79 tokens (n = 40: 2n - 1), batch 64, so N = 79 * 64 = 5056 token columns.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "icl/core/gemm.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/attention.hpp"
#include "icl/nn/feed_forward.hpp"
#include "icl/nn/layer_norm.hpp"
#include "icl/nn/linear.hpp"
#include "icl/nn/pre_ln_block.hpp"
#include "icl/nn/softmax.hpp"

namespace {

constexpr int kT = 79;
constexpr int kBatch = 64;
constexpr int kN = kT * kBatch;

// ICL_BENCH_GEMM_BACKEND=eigen|avx2|avx512 runs every layer (and "gemm") on that backend instead of
// this build's compile-time default: the before/after of docs/performance.md "GEMM kernels".
const int kBackendSet = [] {
  if (const char* b = std::getenv("ICL_BENCH_GEMM_BACKEND")) {
    const std::string v = b;
    icl::gemm::set_backend(v == "eigen"  ? icl::gemm::Backend::eigen
                           : v == "avx2" ? icl::gemm::Backend::avx2
                                         : icl::gemm::Backend::avx512);
  }
  return 0;
}();

// ---------------------------------------------------------------- references: GEMMs
// C (m x n) = op(A) op(B) with op(A) m x k and op(B) k x n, 2 m n k FLOPs. Args: m, k, n.
// "gemm": icl::gemm::multiply on the backend the layers use (icl::gemm::backend(): the compile-time
// default of this build, named in the label), op = none, none (the forward W X);
// "gemm_tn": Aᵀ B (the input gradient Wᵀ dY); "gemm_nt": A Bᵀ (the weight gradient dY Xᵀ);
// "gemm_eigen": Eigen's product C = A B, the reference of the earlier tables.
void gemm_icl(benchmark::State& state, icl::gemm::Trans ta, icl::gemm::Trans tb) {
  using icl::gemm::Trans;
  const Eigen::Index m = state.range(0), k = state.range(1), n = state.range(2);
  const Eigen::MatrixXf a = ta == Trans::none ? Eigen::MatrixXf::Random(m, k) : Eigen::MatrixXf::Random(k, m);
  const Eigen::MatrixXf b = tb == Trans::none ? Eigen::MatrixXf::Random(k, n) : Eigen::MatrixXf::Random(n, k);
  Eigen::MatrixXf c(m, n);
  for (auto _ : state) {
    icl::gemm::multiply<float>(a, ta, b, tb, c);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(icl::gemm::name(icl::gemm::backend()));
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(m * n * k), benchmark::Counter::kIsIterationInvariantRate);
}
void gemm(benchmark::State& state) { gemm_icl(state, icl::gemm::Trans::none, icl::gemm::Trans::none); }
void gemm_tn(benchmark::State& state) {
  gemm_icl(state, icl::gemm::Trans::transpose, icl::gemm::Trans::none);
}
void gemm_nt(benchmark::State& state) {
  gemm_icl(state, icl::gemm::Trans::none, icl::gemm::Trans::transpose);
}

void gemm_eigen(benchmark::State& state) {
  Eigen::setNbThreads(1);
  const Eigen::Index m = state.range(0), k = state.range(1), n = state.range(2);
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(m, k), b = Eigen::MatrixXf::Random(k, n);
  Eigen::MatrixXf c(m, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(m * n * k), benchmark::Counter::kIsIterationInvariantRate);
}
// The linear layers of a block at H in {64, 128, 256, 512} over N tokens: H x H (attention
// projections), 4H x H and H x 4H (feed-forward), plus a square reference.
#define ICL_BENCH_GEMM_SHAPES(fn) \
  BENCHMARK(fn)                   \
      ->ArgNames({"m", "k", "n"}) \
      ->Args({64, 64, kN})        \
      ->Args({256, 64, kN})       \
      ->Args({64, 256, kN})       \
      ->Args({128, 128, kN})      \
      ->Args({512, 128, kN})      \
      ->Args({128, 512, kN})      \
      ->Args({256, 256, kN})      \
      ->Args({1024, 256, kN})     \
      ->Args({256, 1024, kN})     \
      ->Args({512, 512, kN})      \
      ->Args({2048, 512, kN})     \
      ->Args({512, 2048, kN})     \
      ->Args({1024, 1024, 1024})  \
      ->Unit(benchmark::kMillisecond)
ICL_BENCH_GEMM_SHAPES(gemm);
ICL_BENCH_GEMM_SHAPES(gemm_eigen);
// the backward's products at the block's shapes: Wᵀ dY (m = H, k = 4H or H) and dY Xᵀ (k = N)
BENCHMARK(gemm_tn)
    ->ArgNames({"m", "k", "n"})
    ->Args({64, 256, kN})
    ->Args({128, 512, kN})
    ->Args({256, 1024, kN})
    ->Args({512, 2048, kN})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(gemm_nt)
    ->ArgNames({"m", "k", "n"})
    ->Args({256, kN, 64})
    ->Args({512, kN, 128})
    ->Args({1024, kN, 256})
    ->Args({2048, kN, 512})
    ->Unit(benchmark::kMillisecond);

// ---------------------------------------------------------------- the core's FMA peak
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
// One core's float FMA peak for the widest vectors this build targets (the denominator of "% of
// peak" in docs/performance.md): 12 independent FMA chains per loop trip (more than latency x FMA
// ports on any x86 core so far), 2 x lanes FLOPs each, written in asm so that the compiler can
// neither merge nor drop the chains. frequency x FLOPs per cycle, measured rather than assumed.
void fma_peak(benchmark::State& state) {
  constexpr long kTrips = 1 << 22;
#if defined(__AVX512F__)
  constexpr double kLanes = 16;
#define ICL_R(i) "vfmadd231ps %%zmm0, %%zmm0, %%zmm" #i "\n"
  state.SetLabel("zmm (AVX-512)");
#else
  constexpr double kLanes = 8;
#define ICL_R(i) "vfmadd231ps %%ymm0, %%ymm0, %%ymm" #i "\n"
  state.SetLabel("ymm (AVX2 + FMA)");
#endif
  for (auto _ : state) {
    long n = kTrips;
    asm volatile("vxorps %%xmm0, %%xmm0, %%xmm0\n"
                 "1:\n" ICL_R(1) ICL_R(2) ICL_R(3) ICL_R(4) ICL_R(5) ICL_R(6) ICL_R(7) ICL_R(8) ICL_R(9) ICL_R(10)
                     ICL_R(11) ICL_R(12) "dec %0\n"
                 "jnz 1b\n"
                 : "+r"(n)
                 :
                 : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                   "xmm12", "cc");
  }
#undef ICL_R
  state.counters["FLOPS"] =
      benchmark::Counter(12.0 * 2 * kLanes * double(kTrips), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(fma_peak)->Unit(benchmark::kMillisecond);
#endif

// ---------------------------------------------------------------- layers
// Forward FLOPs per call on the whole batch (keep equal to bench/torch_nn.py); forward+backward
// counts 3x (input gradient + weight gradient each cost one forward). Elementwise layers get
// nominal per-element counts; only their times are meaningful.
constexpr int kHeads = 4;
constexpr double kFlopsLayerNorm = 8, kFlopsGelu = 8, kFlopsSoftmax = 5;

double attn_score_flops(int H) { return 4.0 * kBatch * kT * kT * H; }  // QKᵀ and AV, full T x T
double layer_flops(const std::string& layer, int H) {
  const double N = kN, F = 4.0 * H;
  if (layer == "linear") return 2 * N * H * H;
  if (layer == "layernorm") return kFlopsLayerNorm * N * H;
  if (layer == "gelu") return kFlopsGelu * N * F;
  if (layer == "softmax") return kFlopsSoftmax * kBatch * kHeads * double(kT) * kT;
  if (layer == "attention") return 8 * N * H * H + attn_score_flops(H);
  if (layer == "feedforward") return 4 * N * H * F;
  return 8 * N * H * H + attn_score_flops(H) + 4 * N * H * F;  // block
}

template <class Params>
void fill(const Params& ps) {  // U(±1/sqrt(fan_in)) like the models' initialisation
  for (const auto& p : ps) {
    const float a = 1.0f / std::sqrt(static_cast<float>(p.cols > 1 ? p.cols : p.rows));
    p.value_map() = a * Eigen::MatrixXf::Random(p.rows, p.cols);
  }
}

void set_counter(benchmark::State& state, const std::string& layer, int H, bool bwd) {
  state.counters["FLOPS"] = benchmark::Counter((bwd ? 3 : 1) * layer_flops(layer, H),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// One untimed call (first touch of the outputs and caches is not what a training step pays: a
// benchmark that runs a single iteration would otherwise time it), then the timed loop.
template <class Step>
void time_steps(benchmark::State& state, const Step& step, const float* out) {
  step();
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
}

using icl::Seq;

template <int H>
void bm_linear(benchmark::State& state, bool bwd) {
  icl::nn::Linear<float, H, H> l;
  fill(l.parameters());
  const Seq<float, H> x = Seq<float, H>::Random(H, kN);
  Seq<float, H> y(H, kN), dx(H, kN);
  const auto step = [&] {
    l.forward(x, y);
    if (bwd) l.backward(x, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "linear", H, bwd);
}

template <int H>
void bm_layernorm(benchmark::State& state, bool bwd) {
  icl::nn::LayerNorm<float, H> l;
  fill(l.parameters());
  typename icl::nn::LayerNorm<float, H>::Cache c;
  const Seq<float, H> x = Seq<float, H>::Random(H, kN);
  Seq<float, H> y(H, kN), dx(H, kN);
  const auto step = [&] {
    l.forward(x, c, y);
    if (bwd) l.backward(c, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "layernorm", H, bwd);
}

template <int H>
void bm_gelu(benchmark::State& state, bool bwd) {
  const Seq<float, 4 * H> x = Seq<float, 4 * H>::Random(4 * H, kN);
  Seq<float, 4 * H> y(4 * H, kN), dx(4 * H, kN);
  const auto step = [&] {
    icl::nn::activation_forward(icl::nn::Activation::gelu_erf, x, y);
    if (bwd) icl::nn::activation_backward(icl::nn::Activation::gelu_erf, x, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "gelu", H, bwd);
}

void bm_softmax(benchmark::State& state, bool bwd) {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(kT, kBatch * kHeads * kT);
  Eigen::MatrixXf a(kT, kBatch * kHeads * kT), da(kT, kT);
  const auto step = [&] {
    for (int k = 0; k < kBatch * kHeads; ++k) {
      icl::nn::softmax_columns(z.middleCols(k * kT, kT), a.middleCols(k * kT, kT), /*causal=*/true);
      if (bwd)
        icl::nn::softmax_columns_backward(a.middleCols(k * kT, kT), z.middleCols(k * kT, kT), da,
                                          /*causal=*/true);
    }
  };
  time_steps(state, step, a.data());
  set_counter(state, "softmax", 0, bwd);
}

// The form attention uses: all 256 score matrices in one padded buffer (causal_softmax_blocks).
void bm_softmax_blocks(benchmark::State& state, bool bwd) {
  const Eigen::Index Tp = icl::nn::causal_padded_rows(kT);
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(Tp, kBatch * kHeads * kT);
  Eigen::MatrixXf a(Tp, kBatch * kHeads * kT), dx(Tp, kT);
  const Eigen::MatrixXf dy = Eigen::MatrixXf::Random(Tp, kT);
  const auto step = [&] {
    a = z;
    icl::nn::causal_softmax_blocks<float>(a, kT);
    if (bwd)
      for (int k = 0; k < kBatch * kHeads; ++k)
        icl::nn::causal_softmax_blocks_backward<float>(a.middleCols(k * kT, kT), dy, dx);
  };
  time_steps(state, step, a.data());
  set_counter(state, "softmax", 0, bwd);
}

template <int H>
void bm_attention(benchmark::State& state, bool bwd) {
  using A = icl::nn::MultiHeadAttention<float, H, kHeads>;
  A l;
  fill(l.parameters());
  typename A::Cache c;
  const Seq<float, H> x = Seq<float, H>::Random(H, kN);
  Seq<float, H> y(H, kN), dx(H, kN);
  const auto step = [&] {
    l.forward(x, kT, c, y);
    if (bwd) l.backward(x, c, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "attention", H, bwd);
}

template <int H>
void bm_feedforward(benchmark::State& state, bool bwd) {
  using L = icl::nn::FeedForward<float, H, 4 * H>;
  L l;
  fill(l.parameters());
  typename L::Cache c;
  const Seq<float, H> x = Seq<float, H>::Random(H, kN);
  Seq<float, H> y(H, kN), dx(H, kN);
  const auto step = [&] {
    l.forward(x, c, y);
    if (bwd) l.backward(x, c, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "feedforward", H, bwd);
}

template <int H>
void bm_block(benchmark::State& state, bool bwd) {
  using L = icl::nn::PreLNBlock<float, H, kHeads, 4 * H>;
  L l;
  fill(l.parameters());
  typename L::Cache c;
  const Seq<float, H> x = Seq<float, H>::Random(H, kN);
  Seq<float, H> y(H, kN), dx(H, kN);
  const auto step = [&] {
    l.forward(x, kT, c, y);
    if (bwd) l.backward(x, c, y, dx);
  };
  time_steps(state, step, y.data());
  set_counter(state, "block", H, bwd);
}

template <int H>
void register_width() {
  const std::string h = "/H:" + std::to_string(H);
  const auto reg = [&](const std::string& layer, void (*fn)(benchmark::State&, bool)) {
    for (const bool bwd : {false, true})
      benchmark::RegisterBenchmark((layer + (bwd ? "/fwdbwd" : "/fwd") + h).c_str(), fn, bwd)
          ->Unit(benchmark::kMillisecond);
  };
  reg("linear", bm_linear<H>);
  reg("layernorm", bm_layernorm<H>);
  reg("gelu", bm_gelu<H>);
  if (H == 64) {  // T x T scores: independent of H
    reg("softmax", bm_softmax);
    reg("softmax_blocks", bm_softmax_blocks);
  }
  reg("attention", bm_attention<H>);
  reg("feedforward", bm_feedforward<H>);
  reg("block", bm_block<H>);
}

const int kRegistered =
    (register_width<64>(), register_width<128>(), register_width<256>(), register_width<512>(), 0);

}  // namespace
