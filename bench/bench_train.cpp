// One whole training step of the `train` example's model family (issue 11, target 3), exactly as
// the library's training loop takes it: icl::train::Trainer::train_step() samples 64 fresh tasks
// (Gaussian x and w, icl::data::sample_task) and encodes them, runs the forward pass, the Eq. 8
// loss and the backward pass (icl::nn::BatchLoss, on 1 or 2 threads), checks loss and gradients for
// NaN/Inf, clips the gradient norm to 1, sets the learning rate of the schedule, takes an AdamW step
// and checks the parameters. Nothing a real step does is left out; only the first step (which
// sizes every buffer and starts the worker threads) is taken before timing.
//
// Model: d = 8, n = 40 (T = 79 tokens), L in {4, 8}, H in {64, 128}, 4 heads, MLP 4H, pre-LN blocks,
// float, batch 64, with the settings of examples/train.cpp (lr 1e-3, clip 1.0, and with several
// threads the batch cut into 4 chunks of 16 sequences). Real time throughout (UseRealTime): the
// "steps/s" counter is steps per wall-clock second. bench/compare_train.sh runs this next to the
// same step in PyTorch (bench/torch_train.py) and prints the table of docs/performance.md.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "icl/core/rng.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/trainer.hpp"

namespace {

constexpr int kD = 8, kN = 40, kHeads = 4, kTMax = 2 * kN - 1, kBatch = 64;

template <int H>
using Model = icl::nn::PreLNTransformer<float, kD, H, kHeads, 4 * H, kTMax>;

// examples/train.cpp's configuration. Evaluation, logging and checkpoints are not part of a step
// (Trainer::run does them between steps); the schedule has no warmup, so the learning rate is the
// full one (it only scales the update: the cost of a step does not depend on it).
icl::train::TrainConfig config(int threads) {
  icl::train::TrainConfig cfg;
  cfg.steps = std::int64_t{1} << 40;
  cfg.warmup_steps = 0;
  cfg.batch = kBatch;
  cfg.task.n = kN;
  cfg.optimizer.lr = 1e-3;
  cfg.clip_norm = 1.0;
  cfg.eval_every = 0;
  cfg.eval_batch = 1;
  cfg.log_every = 0;
  cfg.batch_options.threads = threads;
  if (threads > 1) cfg.batch_options.chunk_sequences = (kBatch + 3) / 4;  // as examples/train.cpp
  return cfg;
}

// Args: L (blocks), threads.
template <int H>
void train_step(benchmark::State& state) {
  const int layers = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
  Model<H> model(layers);
  icl::Rng init_rng(1);
  icl::nn::init_uniform_scaling(model.parameters(), init_rng);
  icl::train::Trainer<Model<H>> trainer(model, config(threads));
  trainer.train_step();  // sizes every buffer and starts the workers
  for (auto _ : state) benchmark::DoNotOptimize(trainer.train_step());
  state.counters["steps/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["params"] = static_cast<double>(icl::nn::parameter_count(model.parameters()));
}

BENCHMARK_TEMPLATE(train_step, 64)
    ->ArgNames({"L", "threads"})
    ->ArgsProduct({{4, 8}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(train_step, 128)
    ->ArgNames({"L", "threads"})
    ->ArgsProduct({{4, 8}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
