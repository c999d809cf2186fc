// Benchmarks of the transformer layers (float, one thread) next to the machine's reference: the
// single-thread Eigen float GEMM at the layer shapes. Every benchmark reports a FLOP-rate counter
// "FLOPS" (benchmark::Counter::kIsIterationInvariantRate); the FLOP conventions are in
// docs/performance.md. bench/torch_nn.py times PyTorch on the same shapes and prints the ratios.
//
// Shapes: T = 79 tokens (n = 40: 2n - 1), batch 64, so N = 79 * 64 = 5056 token columns.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdint>

namespace {

constexpr int kT = 79;
constexpr int kBatch = 64;
constexpr int kN = kT * kBatch;

// ---------------------------------------------------------------- reference: Eigen float GEMM
// C (m x n) = A (m x k) * B (k x n), 2 m n k FLOPs. Args: m, k, n.
void BM_gemm(benchmark::State& state) {
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
BENCHMARK(BM_gemm)
    ->ArgNames({"m", "k", "n"})
    ->Args({64, 64, kN})
    ->Args({256, 64, kN})
    ->Args({64, 256, kN})
    ->Args({128, 128, kN})
    ->Args({512, 128, kN})
    ->Args({128, 512, kN})
    ->Args({256, 256, kN})
    ->Args({1024, 256, kN})
    ->Args({256, 1024, kN})
    ->Args({512, 512, kN})
    ->Args({2048, 512, kN})
    ->Args({512, 2048, kN})
    ->Args({1024, 1024, 1024})
    ->Unit(benchmark::kMillisecond);

}  // namespace
