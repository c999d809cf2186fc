// The training loop on a tiny pre-LN model: loss decreases deterministically, resume from a
// checkpoint is bit-identical (any thread count), bad checkpoints and NaN/Inf stop with clear
// messages.
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>
#include <type_traits>

#include "icl/data/task.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/trainer.hpp"

namespace {

constexpr int kD = 2, kN = 4, kTMax = 2 * kN - 1;
using Tiny = icl::nn::PreLNTransformer<float, kD, 8, 2, 16, kTMax>;

template <class Model>
Model make_model(int L, std::uint64_t seed) {
  Model m(L);
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  return m;
}

icl::train::TrainConfig tiny_config(std::int64_t steps) {
  icl::train::TrainConfig c;
  c.steps = steps;
  c.batch = 16;
  c.task.n = kN;
  c.optimizer.lr = 1e-2;
  c.warmup_steps = std::min<std::int64_t>(10, steps);
  c.eval_every = 50;
  c.eval_batch = 64;
  c.log_every = 0;
  c.seed = 7;
  c.clip_norm = 10.0;
  return c;
}

// A Trainer owns a BatchLoss and its worker threads: it moves, it is never copied silently.
static_assert(!std::is_copy_constructible_v<icl::train::Trainer<Tiny>>);
static_assert(std::is_move_constructible_v<icl::train::Trainer<Tiny>>);

template <class Model>
std::vector<Eigen::MatrixXf> values(Model& m) {
  std::vector<Eigen::MatrixXf> out;
  for (const auto& p : m.parameters()) out.push_back(p.value_map());
  return out;
}

}  // namespace

TEST_CASE("Trainer: a tiny model's loss decreases, identically for a seed", "[train][trainer]") {
  Tiny a = make_model<Tiny>(1, 1), b = make_model<Tiny>(1, 1);
  icl::train::Trainer<Tiny> ta(a, tiny_config(200)), tb(b, tiny_config(200));
  const auto ha = ta.run();
  const auto hb = tb.run();
  REQUIRE(ha.size() == 5);  // steps 0, 50, 100, 150, 200
  for (std::size_t i = 0; i < ha.size(); ++i) {
    CHECK(ha[i].step == static_cast<std::int64_t>(50 * i));
    CHECK(ha[i].eval_loss == hb[i].eval_loss);  // deterministic: bit-equal
  }
  // The untrained model's outputs are O(1) and uncorrelated with y (loss ≈ 3.5 for this seed,
  // E[y²] = D = 2). In 200 steps the model learns to predict about 0 (loss ≈ E[y²] ≈ 2.2 on this
  // evaluation set, measured 2.32); learning from the context takes thousands of steps (see
  // docs/train.md; the next case checks that). The bound 0.75 leaves room for rounding changes but
  // fails without training.
  INFO("initial eval loss " << ha.front().eval_loss << ", final " << ha.back().eval_loss);
  CHECK(ha.back().eval_loss < 0.75 * ha.front().eval_loss);
  // the first prefix (no examples) cannot beat E[y²]: its loss stays above 1.5 (E[y²] = 2)
  CHECK(ha.back().per_prefix(0) > 1.5);
}

TEST_CASE("Trainer: a tiny model learns in context (below the best predictor that ignores the context)",
          "[train][trainer]") {
  // Without the context the best prediction of y = wᵀx (w ~ N(0, I)) is 0: for any m(x_q) that ignores
  // the examples, E[(m − y)²] = E[m²] + E[y²] >= E[y²] = D (E[y | x_q] = 0). So a model whose loss at the
  // later prefixes lies clearly below the zero predictor's, on the same prompts, uses the examples.
  // Paired on 2000 fresh prompts, a context-free model's loss ratio to the zero predictor is
  // 1 + E[m²]/E[y²] ± 0.006·|m| (std of the mean of 2my over 2000 prompts, |y| ~ 1.4): the 200-step model
  // (which predicts about 0) measured 1.004-1.008, and a 2-layer run at lr 3e-2 that collapsed to a
  // constant 1.000. The bound 0.9 is > 15 of those standard deviations below 1; this run measured
  // 0.74-0.77 at prefixes 1-3 (OLS, the Bayes predictor here: 0.46, 0, 0). Prefix 0 has no context:
  // the model cannot beat 0 there (measured 0.999), which the test checks as well.
  Tiny m = make_model<Tiny>(1, 1);
  auto cfg = tiny_config(4000);
  cfg.optimizer.lr = 3e-2;
  cfg.eval_every = 0;
  icl::train::Trainer<Tiny> t(m, cfg);
  for (int s = 0; s < 4000; ++s) t.train_step();
  icl::Rng rng(12345);
  double model[kN] = {}, zero[kN] = {};
  for (int i = 0; i < 2000; ++i) {
    const auto task = icl::data::sample_task<float, kD>({kN}, rng);
    const Eigen::VectorXf p = m.predict(icl::data::encode(task));
    for (int k = 0; k < kN; ++k) {
      model[k] += std::pow(static_cast<double>(p(k) - task.y(k)), 2);
      zero[k] += std::pow(static_cast<double>(task.y(k)), 2);
    }
  }
  for (int k = 0; k < kN; ++k) {
    INFO("prefix " << k << ": model loss / zero-predictor loss = " << model[k] / zero[k]);
    if (k == 0)
      CHECK(model[k] / zero[k] > 0.97);  // no examples: nothing to learn from (3σ below 1 at most)
    else
      CHECK(model[k] / zero[k] < 0.9);
  }
}

TEST_CASE("Trainer: resuming from a checkpoint continues bit-identically", "[train][trainer]") {
  for (const int threads : {1, 2}) {
    INFO("threads " << threads);
    auto cfg = tiny_config(20);
    cfg.batch_options.threads = threads;
    cfg.batch_options.chunk_sequences = 4;
    Tiny a = make_model<Tiny>(2, 3);
    icl::train::Trainer<Tiny> ta(a, cfg);
    for (int t = 0; t < 10; ++t) ta.train_step();
    const std::string bytes = ta.checkpoint().to_bytes();
    for (int t = 10; t < 20; ++t) ta.train_step();

    Tiny b = make_model<Tiny>(2, 99);  // other weights: all must come from the checkpoint
    auto cfg1 = cfg;
    cfg1.batch_options.threads = 1;  // the thread count does not change the result
    icl::train::Trainer<Tiny> tb(b, cfg1);
    tb.restore(icl::io::SafeTensors::from_bytes(bytes));
    CHECK(tb.step() == 10);
    for (int t = 10; t < 20; ++t) tb.train_step();
    const auto va = values(a), vb = values(b);
    REQUIRE(va.size() == vb.size());
    for (std::size_t i = 0; i < va.size(); ++i) CHECK(va[i] == vb[i]);
    CHECK(tb.optimizer().step_count() == 20);
  }
}

TEST_CASE("Trainer: a checkpoint of another model shape is refused with the tensor's name",
          "[train][trainer]") {
  Tiny a = make_model<Tiny>(2, 3);
  icl::train::Trainer<Tiny> ta(a, tiny_config(5));
  const auto st = ta.checkpoint();
  SECTION("a tensor of another shape (as from a wider model)") {
    auto other = st;
    other.put("read_in.weight", Eigen::MatrixXf::Zero(12, kD + 1));
    Tiny s = make_model<Tiny>(2, 3);
    icl::train::Trainer<Tiny> ts(s, tiny_config(5));
    const auto before = values(s);
    CHECK_THROWS_WITH(ts.restore(other), Catch::Contains("'read_in.weight' has shape [12, 3]") &&
                                             Catch::Contains("another model shape"));
    const auto after = values(s);
    for (std::size_t i = 0; i < before.size(); ++i) CHECK(before[i] == after[i]);  // nothing was written
  }
  SECTION("fewer layers") {
    Tiny s = make_model<Tiny>(1, 3);
    icl::train::Trainer<Tiny> ts(s, tiny_config(5));
    CHECK_THROWS_WITH(ts.restore(st), Catch::Contains("layers = 2 in the file, 1 in the model type"));
  }
  SECTION("more layers") {
    Tiny s = make_model<Tiny>(3, 3);
    icl::train::Trainer<Tiny> ts(s, tiny_config(5));
    CHECK_THROWS_WITH(ts.restore(st), Catch::Contains("layers = 2 in the file, 3 in the model type"));
  }
  SECTION("not a checkpoint at all") {
    CHECK_THROWS_AS(ta.load_checkpoint("/nonexistent/icl_checkpoint.safetensors"), icl::IoError);
  }
}

TEST_CASE("Trainer: a failed restore modifies nothing", "[train][trainer]") {
  // restore used to write the weights before checking the optimiser state and the RNG, so a
  // checkpoint refused for its optimiser settings still replaced the model's weights.
  Tiny a = make_model<Tiny>(2, 3);
  icl::train::Trainer<Tiny> ta(a, tiny_config(20));
  for (int t = 0; t < 4; ++t) ta.train_step();
  const icl::io::SafeTensors good = ta.checkpoint();  // step 4, other weights than s below

  Tiny s = make_model<Tiny>(2, 11);
  icl::train::Trainer<Tiny> ts(s, tiny_config(20));
  for (int t = 0; t < 2; ++t) ts.train_step();
  // The checkpoint of ts holds everything restore may touch (weights, moments, optimiser step and
  // lr, step, RNG state), exactly for float: equal bytes = nothing modified.
  const std::string before = ts.checkpoint().to_bytes();
  // a copy of `good` without tensor `drop`
  const auto without = [&](const std::string& drop) {
    icl::io::SafeTensors out;
    out.metadata = good.metadata;
    for (const auto& n : good.names())
      if (n != drop) out.put_nd(n, good.info(n).shape, good.get_nd(n), good.info(n).dtype);
    return out;
  };
  SECTION("another optimiser setting") {
    auto bad = good;
    bad.put_scalar("optim.beta1", 0.5);
    CHECK_THROWS_WITH(ts.restore(bad), Catch::Contains("beta1"));
  }
  SECTION("a missing optimiser moment") {
    CHECK_THROWS_WITH(ts.restore(without("optim.read_out.weight.exp_avg_sq")),
                      Catch::Contains("optim.read_out.weight.exp_avg_sq"));
  }
  SECTION("a missing learning rate") {
    CHECK_THROWS_WITH(ts.restore(without("optim.lr")), Catch::Contains("optim.lr"));
  }
  SECTION("an RNG word out of range") {
    auto bad = good;
    std::vector<double> words = bad.get_nd("train.rng.words");
    words[5] = 4294967296.0;  // 2^32: not a 32-bit half
    bad.put_nd("train.rng.words", {8}, words, icl::io::DType::F64);
    CHECK_THROWS_WITH(ts.restore(bad), Catch::Contains("train.rng.words"));
  }
  SECTION("a missing RNG state") {
    CHECK_THROWS_WITH(ts.restore(without("train.rng.spare")), Catch::Contains("train.rng.spare"));
  }
  SECTION("a fractional step") {
    auto bad = good;
    bad.put_scalar("train.step", 2.5);
    CHECK_THROWS_WITH(ts.restore(bad), Catch::Contains("train.step"));
  }
  SECTION("a parameter of another shape") {
    auto bad = good;
    bad.put("read_out.weight", Eigen::MatrixXf::Zero(2, 8));
    CHECK_THROWS_WITH(ts.restore(bad), Catch::Contains("'read_out.weight' has shape [2, 8]"));
  }
  const bool unchanged = ts.checkpoint().to_bytes() == before;  // (a bool: Catch would print the bytes)
  CHECK(unchanged);
  // and the intact checkpoint still restores completely
  ts.restore(good);
  CHECK(ts.step() == 4);
  const bool restored = ts.checkpoint().to_bytes() == good.to_bytes();
  CHECK(restored);
}

TEST_CASE("Trainer: NaN/Inf stops training with the step and the tensor", "[train][trainer]") {
  Tiny a = make_model<Tiny>(1, 3);
  icl::train::Trainer<Tiny> ta(a, tiny_config(20));
  for (int t = 0; t < 3; ++t) ta.train_step();
  for (const auto& p : a.parameters())
    if (p.name == "read_out.weight") p.value[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(ta.train_step(), Catch::Contains("step 3") && Catch::Contains("loss = nan") &&
                                         Catch::Contains("parameter 'read_out.weight'"));
  CHECK(ta.step() == 3);  // the failed step is not counted

  Tiny b = make_model<Tiny>(1, 3);
  auto cfg = tiny_config(20);
  cfg.optimizer.lr = 1e300;  // the first update overflows float
  cfg.warmup_steps = 0;
  icl::train::Trainer<Tiny> tb(b, cfg);
  CHECK_THROWS_WITH(tb.train_step(), Catch::Contains("step 0") && Catch::Contains("became NaN/Inf"));
}

TEST_CASE("Trainer: configuration errors and the progress line", "[train][trainer]") {
  Tiny a = make_model<Tiny>(1, 3);
  auto cfg = tiny_config(10);
  cfg.task.n = kN + 1;  // 2n-1 = 9 tokens > TMax = 7
  CHECK_THROWS_WITH(icl::train::Trainer<Tiny>(a, cfg), Catch::Contains("maximum length is 7"));
  cfg = tiny_config(10);
  cfg.batch = 0;
  CHECK_THROWS_WITH(icl::train::Trainer<Tiny>(a, cfg), Catch::Contains("TrainConfig.batch"));

  const std::string line = icl::train::Trainer<Tiny>::progress_line(120, 1000, 0.95321, 6e-5, 35.2, 125);
  CHECK(line == "step 120/1000 | loss 0.95321 | lr 6.00e-05 | 35.2 steps/s | ETA 2m05s");

  std::ostringstream log;
  cfg = tiny_config(4);
  cfg.log_every = 2;
  cfg.eval_every = 0;
  icl::train::Trainer<Tiny> t(a, cfg, &log);
  t.run();
  const std::string s = log.str();
  CHECK(s.find("step 2/4 | loss ") != std::string::npos);
  CHECK(s.find("step 4/4 | loss ") != std::string::npos);
  CHECK(s.find("steps/s | ETA ") != std::string::npos);
  CHECK(s.find("eval  step 4: loss ") != std::string::npos);
}
