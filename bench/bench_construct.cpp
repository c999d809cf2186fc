// Cost of the constructed transformers (double): one realised layer per primitive (at the ridge chain's
// d = 8 width, H = 313, T = 81 tokens; full paper block and narrow form), and each chain for d in {2, 4, 8},
// n in {1, 10, 40}, next to the exact interpreter of the same program and the classical algorithm
// (icl::regress::online_predictions) in the same run; and the cost per context of the d = 8, n = 40 ridge
// transformer through the full paper block (BlockForm::full) and its narrow form (BlockForm::narrow, one
// context and batches of 16); the d = 16, n = 100 ridge transformer per context and its build.
// Results: docs/constructions.md §6.
#include <benchmark/benchmark.h>

#include "icl/construct.hpp"
#include "icl/data/task.hpp"
#include "icl/regress.hpp"

using namespace icl::construct;
using icl::Mat;
using icl::Vec;

namespace {

// The one op of the d = 8 ridge chain (n = 40) whose kind is `kind`, as a one-op program on the same layout.
Program<double> ridge_op(OpKind kind) {
  const auto ch = ridge_chain<double>(8, 40, 0.5);
  Program<double> p(ch.program.layout());
  for (const auto& op : ch.program.ops()) {
    if (op.kind != kind) continue;
    switch (kind) {
      case OpKind::mov:
        p.mov(op.map, op.r, op.w);
        break;
      case OpKind::aff:
        p.aff(op.r, op.s, op.w, op.W1, op.W2, op.bias);
        break;
      case OpKind::mul:
        if (op.a == 8 && op.b == 8) p.mul(op.a, op.b, op.c, op.r, op.s, op.w);  // A⁻¹·x: the widest mul
        break;
      case OpKind::div:
        p.div(op.r, op.c_row, op.w);
        break;
    }
    if (p.size() == 1) break;
  }
  return p;
}

void layer(benchmark::State& st, OpKind kind, BlockForm form) {
  const auto p = ridge_op(kind);
  const auto model = compile<double, 313, 408>(p, 81);
  icl::Rng rng(1);
  Mat<double> h0(p.height(), 81);
  for (Eigen::Index i = 0; i < h0.size(); ++i) h0.data()[i] = rng.normal();
  const Eigen::Matrix<double, 313, Eigen::Dynamic> x = model.realisation().embed(h0);
  for (auto _ : st) benchmark::DoNotOptimize(model.forward(x, form).data());
  st.counters["mlp_width"] = model.resources().mlp_width;
  if (form == BlockForm::narrow) return;
  // FLOPs the paper block performs (it does not know most of its weights are zero): 2 heads x
  // (Q, K, V) H x H maps, scores and mixing 2·T²·H each, W^F (H x 2H), the MLP (F x H twice).
  const double H = 313, T = 81, F = 408;
  const double flops = 2 * 3 * 2 * H * H * T + 2 * 2 * 2 * T * T * H + 2 * H * 2 * H * T + 2 * 2 * F * H * T;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The machine's double GEMM at the shapes of the layer (H x H times H x T, H x 2H times 2H x T): the
// reference the layer's GFLOP/s compare with.
void gemm_reference(benchmark::State& st) {
  const int m = static_cast<int>(st.range(0)), k = static_cast<int>(st.range(1)), n = 81;
  const Mat<double> A = Mat<double>::Random(m, k), B = Mat<double>::Random(k, n);
  Mat<double> C(m, n);
  for (auto _ : st) {
    C.noalias() = A * B;
    benchmark::DoNotOptimize(C.data());
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * k * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(gemm_reference)->Args({313, 313})->Args({313, 626})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(layer, mov, OpKind::mov, BlockForm::full)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, aff, OpKind::aff, BlockForm::full)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, mul, OpKind::mul, BlockForm::full)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, div, OpKind::div, BlockForm::full)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, mov_narrow, OpKind::mov, BlockForm::narrow)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, aff_narrow, OpKind::aff, BlockForm::narrow)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, mul_narrow, OpKind::mul, BlockForm::narrow)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer, div_narrow, OpKind::div, BlockForm::narrow)->Unit(benchmark::kMillisecond);

// A task with a query: the transformer's tokens, and the same examples + query as a design for the
// online protocol of icl::regress (the query's label is never used).
template <int D>
struct Input {
  Eigen::Matrix<double, D + 1, Eigen::Dynamic> tokens;
  Mat<double> X;
  Vec<double> y;
};
template <int D>
Input<D> input_for(int n) {
  icl::Rng rng(2);
  const auto task = icl::data::sample_task<double, D>({n}, rng);
  const Eigen::Matrix<double, D, 1> xq = icl::data::sample_x<double, D>({n}, rng);
  Input<D> in{icl::data::encode(task, xq), Mat<double>(n + 1, D), Vec<double>::Zero(n + 1)};
  in.X.topRows(n) = task.X;
  in.X.row(n) = xq.transpose();
  in.y.head(n) = task.y;
  return in;
}

enum class Mode { transformer, interpreter, classical };

template <class Model, class Algo, int D>
void run_chain(benchmark::State& st, Mode mode, const Model& model, const Algo& algo, const Input<D>& in) {
  for (auto _ : st) {
    if (mode == Mode::transformer) benchmark::DoNotOptimize(model.predict(in.tokens).data());
    if (mode == Mode::interpreter) benchmark::DoNotOptimize(model.predict_exact(in.tokens).data());
    if (mode == Mode::classical)
      benchmark::DoNotOptimize(icl::regress::online_predictions(algo, in.X, in.y).data());
  }
  st.counters["layers"] = model.resources().layers;
  st.counters["H"] = model.resources().residual_width;
}

template <int D>
void sgd(benchmark::State& st, Mode mode) {
  const int n = static_cast<int>(st.range(0));
  run_chain(st, mode, gd_transformer<double, D>(n, 0.05, 0.1), icl::regress::Sgd{0.05, 0.1}, input_for<D>(n));
}

template <int D>
void ridge(benchmark::State& st, Mode mode) {
  const int n = static_cast<int>(st.range(0));
  run_chain(st, mode, ridge_transformer<double, D>(n, 0.5), icl::regress::Ridge{0.5}, input_for<D>(n));
}

// BENCHMARK_CAPTURE names a variable after its function: wrap each fn<D> in a plain function first.
#define ICL_CHAIN_BENCH(fn, D)                                   \
  void fn##_d##D(benchmark::State& st, Mode m) { fn<D>(st, m); } \
  BENCHMARK_CAPTURE(fn##_d##D, transformer, Mode::transformer)   \
      ->Arg(1)                                                   \
      ->Arg(10)                                                  \
      ->Arg(40)                                                  \
      ->Unit(benchmark::kMillisecond);                           \
  BENCHMARK_CAPTURE(fn##_d##D, interpreter, Mode::interpreter)   \
      ->Arg(1)                                                   \
      ->Arg(10)                                                  \
      ->Arg(40)                                                  \
      ->Unit(benchmark::kMillisecond);                           \
  BENCHMARK_CAPTURE(fn##_d##D, classical, Mode::classical)       \
      ->Arg(1)                                                   \
      ->Arg(10)                                                  \
      ->Arg(40)                                                  \
      ->Unit(benchmark::kMicrosecond);

// One model, shared by the per-context pair (building and calibrating it takes seconds).
const RidgeTransformer<double, 8>& ridge_d8_n40() {
  static const auto model = ridge_transformer<double, 8>(40, 0.5);
  return model;
}

// Per-context cost of the ridge transformer (d = 8, n = 40, T = 81, double; the default form: the w-form,
// 484 layers, since issue 20; the moment form's 365 layers before, as in docs/constructions.md §6's
// earlier tables): `form` over one context per predict, or B contexts per predict_batch. Counter s_per_context: seconds per context (time / B).
void ridge_context(benchmark::State& st, BlockForm form) {
  const int B = static_cast<int>(st.range(0));
  const auto& model = ridge_d8_n40();
  constexpr int T = 81;
  icl::Rng rng(3);
  Eigen::Matrix<double, 9, Eigen::Dynamic> prompts(9, B * T);
  for (int b = 0; b < B; ++b) {
    const auto task = icl::data::sample_task<double, 8>({40}, rng);
    const Eigen::Matrix<double, 8, 1> xq = icl::data::sample_x<double, 8>({40}, rng);
    prompts.middleCols(b * T, T) = icl::data::encode(task, xq);
  }
  for (auto _ : st) {
    if (B == 1)
      benchmark::DoNotOptimize(model.predict(prompts, form).data());
    else
      benchmark::DoNotOptimize(model.predict_batch(prompts, T, form).data());
  }
  st.counters["contexts"] = B;
  st.counters["s_per_context"] =
      benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
// The paper-relevant size (issue 20): ridge d = 16, n = 100 (H = 1129, T = 201) in the default w-form
// (1204 layers) and the recipe's moment form (905 layers), one context per predict (the default path:
// range check + narrow forward), or only the narrow forward (predict_unchecked).
const RidgeTransformer<double, 16>& ridge_d16_n100(RidgeForm form) {
  static const auto w = ridge_transformer<double, 16>(100, 0.5);
  static const auto moment = [] {
    TransformerOptions o;
    o.ridge_form = RidgeForm::moment;
    return ridge_transformer<double, 16>(100, 0.5, o);
  }();
  return form == RidgeForm::w ? w : moment;
}
void ridge16_context(benchmark::State& st, RidgeForm form, bool checked) {
  const auto& model = ridge_d16_n100(form);
  icl::Rng rng(3);
  const auto task = icl::data::sample_task<double, 16>({100}, rng);
  const Eigen::Matrix<double, 16, 1> xq = icl::data::sample_x<double, 16>({100}, rng);
  const auto tokens = icl::data::encode(task, xq);
  for (auto _ : st) {
    if (checked)
      benchmark::DoNotOptimize(model.predict(tokens).data());
    else
      benchmark::DoNotOptimize(model.predict_unchecked(tokens).data());
  }
  st.counters["layers"] = model.layers();
}
BENCHMARK_CAPTURE(ridge16_context, predict, RidgeForm::w, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ridge16_context, unchecked, RidgeForm::w, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ridge16_context, moment_predict, RidgeForm::moment, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ridge16_context, moment_unchecked, RidgeForm::moment, false)->Unit(benchmark::kMillisecond);
void ridge16_build(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(ridge_transformer<double, 16>(100, 0.5).layers());
}
BENCHMARK(ridge16_build)->Unit(benchmark::kMillisecond)->Iterations(1);

BENCHMARK_CAPTURE(ridge_context, full, BlockForm::full)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ridge_context, narrow, BlockForm::narrow)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond);

ICL_CHAIN_BENCH(sgd, 2)
ICL_CHAIN_BENCH(sgd, 4)
ICL_CHAIN_BENCH(sgd, 8)
ICL_CHAIN_BENCH(ridge, 2)
ICL_CHAIN_BENCH(ridge, 4)
ICL_CHAIN_BENCH(ridge, 8)

}  // namespace
