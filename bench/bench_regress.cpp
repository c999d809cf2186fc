// Google Benchmark of online_predictions for every regressor (d ∈ {8, 16, 32}, n ∈ {40, 200},
// double) next to the naive refit-every-prefix baseline (refit_predictions) in the same run.
// Results: docs/regress.md §6.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "icl/core/rng.hpp"
#include "icl/regress.hpp"

namespace {

namespace rg = icl::regress;

struct Data {
  Eigen::MatrixXd X;
  Eigen::VectorXd y;
};

Data make_data(int n, int d) {
  icl::Rng rng(static_cast<std::uint64_t>(1000 * d + n));
  Data data{Eigen::MatrixXd(n, d), Eigen::VectorXd(n)};
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) data.X(i, j) = rng.normal();
  Eigen::VectorXd w(d);
  for (int j = 0; j < d; ++j) w(j) = rng.normal();
  data.y = data.X * w;
  return data;
}

template <class A>
void run(benchmark::State& state, const A& algo, bool naive) {
  const int d = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1));
  const Data data = make_data(n, d);
  for (auto _ : state) {
    Eigen::VectorXd p =
        naive ? rg::refit_predictions(algo, data.X, data.y) : rg::online_predictions(algo, data.X, data.y);
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);  // predictions per second
}

void sizes(benchmark::internal::Benchmark* b) {
  for (const int d : {8, 16, 32})
    for (const int n : {40, 200}) b->Args({d, n});
  b->ArgNames({"d", "n"});
}

#define ICL_BENCH_ALGO(Name, expr)                                    \
  void BM_online_##Name(benchmark::State& s) { run(s, expr, false); } \
  void BM_refit_##Name(benchmark::State& s) { run(s, expr, true); }   \
  BENCHMARK(BM_online_##Name)->Apply(sizes);                          \
  BENCHMARK(BM_refit_##Name)->Apply(sizes);

ICL_BENCH_ALGO(Ols, rg::Ols{})
ICL_BENCH_ALGO(Ridge, rg::Ridge{0.1})
ICL_BENCH_ALGO(Gd1, rg::Gd{0.02})
ICL_BENCH_ALGO(Gd4, (rg::Gd{0.01, 4, 0}))
ICL_BENCH_ALGO(Sgd, rg::Sgd{0.03})
ICL_BENCH_ALGO(Knn, rg::Knn{3})
ICL_BENCH_ALGO(Averaging, rg::Averaging{})

}  // namespace
