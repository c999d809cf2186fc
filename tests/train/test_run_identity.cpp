// A run's identity in its files (resume and load refuse another run, naming the fields), stopping on
// a signal at a step boundary with a checkpoint, and atomic writes (docs/train.md "Run identity",
// "Stopping and resuming"; docs/sweeps.md).
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "icl/io/atomic_file.hpp"
#include "icl/io/csv.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/signals.hpp"
#include "icl/train/trainer.hpp"
#include "support/throws.hpp"

namespace {

constexpr int kD = 2, kN = 4;
using Tiny = icl::nn::PreLNTransformer<float, kD, 8, 2, 16, 2 * kN - 1>;

Tiny make_model(int L, std::uint64_t seed) {
  Tiny m(L);
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  return m;
}

icl::train::TrainConfig config(std::int64_t steps) {
  icl::train::TrainConfig c;
  c.steps = steps;
  c.batch = 8;
  c.task.n = kN;
  c.optimizer.lr = 1e-2;
  c.eval_every = 0;
  c.eval_batch = 16;
  c.log_every = 0;
  c.seed = 3;
  c.batch_options.chunk_sequences = 2;
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::filesystem::path temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("icl_test_run_identity_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace

TEST_CASE("run identity: every result-changing TrainConfig field is a run.* key", "[train][identity]") {
  auto c = config(20);
  c.identity["init.seed"] = "4";
  const auto id = icl::train::run_identity(c);
  for (const char* k : {"run.steps",
                        "run.batch",
                        "run.task.n",
                        "run.task.x_std",
                        "run.task.w_std",
                        "run.task.noise_std",
                        "run.task.w_mean",
                        "run.optimizer.lr",
                        "run.optimizer.beta1",
                        "run.optimizer.beta2",
                        "run.optimizer.eps",
                        "run.optimizer.weight_decay",
                        "run.optimizer.amsgrad",
                        "run.warmup_steps",
                        "run.clip_norm",
                        "run.eval_batch",
                        "run.seed",
                        "run.eval_seed",
                        "run.batch_options.chunk_sequences",
                        "run.identity_version",
                        "run.init.seed"}) {
    INFO(k);
    CHECK(id.count(k) == 1);
  }
  CHECK(id.at("run.warmup_steps") == "4");  // -1 is stored resolved: steps / 5
  CHECK(id.at("run.optimizer.lr") == "0.01");
  // what does not change the result is not part of it: the thread count, intervals, paths
  auto c2 = c;
  c2.batch_options.threads = 3;
  c2.log_every = 7;
  c2.eval_every = 5;
  c2.checkpoint_every = 9;
  c2.checkpoint_path = "elsewhere";
  CHECK(icl::train::run_identity(c2) == id);
  // chunking does change the result (the order of the gradient sums), so it is part of it
  auto c3 = c;
  c3.batch_options.chunk_sequences = 4;
  CHECK(icl::train::run_identity(c3).at("run.batch_options.chunk_sequences") == "4");
  auto c4 = c;
  c4.batch_options.chunk_sequences = 0;  // the whole batch
  CHECK(icl::train::run_identity(c4).at("run.batch_options.chunk_sequences") == "8");
  auto bad = c;
  bad.identity["bad key"] = "1";
  CHECK_THROWS_MATCHES(bad.validate(), icl::InvalidArgument,
                       icl::test::MessageContains("TrainConfig.identity"));
}

TEST_CASE("run identity: resuming another run is refused, naming every field that differs",
          "[train][identity]") {
  Tiny a = make_model(1, 1);
  icl::train::Trainer<Tiny> ta(a, config(20));
  for (int t = 0; t < 3; ++t) ta.train_step();
  const icl::io::SafeTensors st = ta.checkpoint();
  CHECK(st.metadata.at("run.steps") == "20");
  CHECK(st.metadata.at("run.optimizer.decay") == "decoupled");

  SECTION("another learning rate") {
    auto c = config(20);
    c.optimizer.lr = 1e-3;
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, c);
    CHECK_THROWS_MATCHES(
        tb.restore(st), icl::InvalidArgument,
        icl::test::MessageContains("run.optimizer.lr = 0.01 in the checkpoint, 0.001 in this run"));
  }
  SECTION("another length (the schedule would change half way) and another noise: both named") {
    auto c = config(40);
    c.task.noise_std = 0.5;
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, c);
    try {
      tb.restore(st);
      FAIL("restore accepted another run");
    } catch (const icl::InvalidArgument& e) {
      const std::string m = e.what();
      CHECK(m.find("fields differ") != std::string::npos);
      CHECK(m.find("run.steps = 20 in the checkpoint, 40 in this run") != std::string::npos);
      CHECK(m.find("run.task.noise_std = 0 in the checkpoint, 0.5 in this run") != std::string::npos);
      CHECK(m.find("run.warmup_steps = 4 in the checkpoint, 8 in this run") != std::string::npos);
    }
  }
  SECTION("another initialisation seed given as an identity setting") {
    auto c = config(20);
    c.identity["init.seed"] = "5";
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, c);
    CHECK_THROWS_MATCHES(
        tb.restore(st), icl::InvalidArgument,
        icl::test::MessageContains("run.init.seed = (missing) in the checkpoint, 5 in this run"));
  }
  SECTION("another thread count is the same run") {
    auto c = config(20);
    c.batch_options.threads = 2;
    Tiny b = make_model(1, 9);
    icl::train::Trainer<Tiny> tb(b, c);
    tb.restore(st);
    CHECK(tb.step() == 3);
  }
  SECTION("a checkpoint without identity (written before icl 0.2) is refused") {
    auto old = st;
    for (auto it = old.metadata.begin(); it != old.metadata.end();)
      it = it->first.rfind("run.", 0) == 0 ? old.metadata.erase(it) : std::next(it);
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, config(20));
    CHECK_THROWS_MATCHES(tb.restore(old), icl::InvalidArgument,
                         icl::test::MessageContains("no run identity"));
  }
  SECTION("train.step and optim.step disagree") {
    auto bad = st;
    bad.put_scalar("train.step", 2);
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, config(20));
    CHECK_THROWS_MATCHES(tb.restore(bad), icl::IoError, icl::test::MessageContains("optim.step = 3"));
  }
  SECTION("a non-finite RNG spare") {
    auto bad = st;
    bad.put_scalar("train.rng.spare", std::nan(""));
    Tiny b = make_model(1, 1);
    icl::train::Trainer<Tiny> tb(b, config(20));
    CHECK_THROWS_MATCHES(tb.restore(bad), icl::IoError, icl::test::MessageContains("train.rng.spare"));
  }
}

TEST_CASE("run identity: a model file is checked against the run it is meant to be", "[train][identity]") {
  const auto dir = temp_dir("model");
  const std::string path = (dir / "m.safetensors").string();
  Tiny a = make_model(1, 1);
  icl::train::Trainer<Tiny> ta(a, config(4));
  ta.run();
  icl::train::save_model(a, path, ta.run_identity());
  Tiny b = make_model(1, 2);
  icl::train::load_model(b, path, ta.run_identity());  // the same run: loads
  CHECK(b.parameters()[0].value_map() == a.parameters()[0].value_map());
  auto other = config(4);
  other.seed = 4;
  Tiny c = make_model(1, 2);
  icl::train::Trainer<Tiny> tc(c, other);
  CHECK_THROWS_MATCHES(icl::train::load_model(c, path, tc.run_identity()), icl::InvalidArgument,
                       icl::test::MessageContains("run.seed = 3 in the model file"));
  // a model file without identity loads with the plain overload, and is refused by the checked one
  icl::train::save_model(a, path);
  icl::train::load_model(c, path);
  CHECK_THROWS_MATCHES(icl::train::load_model(c, path, ta.run_identity()), icl::InvalidArgument,
                       icl::test::MessageContains("no run identity"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("signals: a stop signal checkpoints at the next step boundary; the resumed run is bit-identical",
          "[train][signals]") {
  const auto dir = temp_dir("signals");
  auto cfg = config(12);
  cfg.log_every = 1;
  cfg.checkpoint_path = (dir / "ck.safetensors").string();

  Tiny ref = make_model(1, 1);  // uninterrupted
  {
    auto c = cfg;
    c.checkpoint_path.clear();
    icl::train::Trainer<Tiny> t(ref, c);
    t.run();
    CHECK_FALSE(t.interrupted());
  }
  for (const int sig : {SIGUSR1, SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    std::filesystem::remove(cfg.checkpoint_path);
    Tiny a = make_model(1, 1);
    {
      icl::train::StopSignals guard;
      icl::train::Trainer<Tiny> t(a, cfg);
      t.set_on_progress([&](const icl::train::Progress& p) {
        if (p.step == 5) std::raise(sig);  // arrives inside step 5's bookkeeping
      });
      t.run();
      CHECK(t.interrupted());
      CHECK(t.step() == 5);  // stopped at the next boundary, before step 6
      CHECK(icl::train::stop_requested() == sig);
    }
    CHECK(icl::train::stop_requested() == 0);  // the guard's end clears the flag: later runs are not stopped
    Tiny b = make_model(1, 77);                // the checkpoint carries every weight
    icl::train::Trainer<Tiny> t2(b, cfg);
    t2.load_checkpoint(cfg.checkpoint_path);
    CHECK(t2.step() == 5);
    t2.run();  // without a guard: runs to the end
    CHECK_FALSE(t2.interrupted());
    const auto pr = ref.parameters(), pb = b.parameters();
    for (std::size_t i = 0; i < pr.size(); ++i) CHECK(pr[i].value_map() == pb[i].value_map());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("atomic writes: the old file survives a failed write; CSVs are complete at every flush",
          "[io][atomic]") {
  const auto dir = temp_dir("atomic");
  const std::string p = (dir / "f.bin").string();
  icl::io::write_file_atomic(p, "old contents");
  icl::io::write_file_atomic(p, "new");
  CHECK(slurp(p) == "new");
  // a write that cannot finish (the temporary's folder vanished) throws and leaves no debris
  CHECK_THROWS_MATCHES(icl::io::write_file_atomic((dir / "missing" / "x").string(), "x"), icl::IoError,
                       icl::test::MessageContains("cannot open"));
  // rename onto a folder fails: the folder and the old file are untouched, the temporary removed
  std::filesystem::create_directories(dir / "adir" / "inner");
  CHECK_THROWS_MATCHES(icl::io::write_file_atomic((dir / "adir").string(), "x"), icl::IoError,
                       icl::test::MessageContains("rename"));
  CHECK(std::filesystem::is_directory(dir / "adir" / "inner"));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 1);  // f.bin only

  // CsvWriter: nothing replaces the old file before the first flush; each flush writes the whole table
  const std::string c = (dir / "t.csv").string();
  icl::io::write_file_atomic(c, "previous,run\n");
  {
    icl::io::CsvWriter w(c, {"a", "b"});
    w.row(1, 2);
    CHECK(slurp(c) == "previous,run\n");
    w.flush();
    CHECK(slurp(c) == "a,b\n1,2\n");
    w.row(3, 4);
  }  // the destructor flushes the last row
  CHECK(slurp(c) == "a,b\n1,2\n3,4\n");
  std::filesystem::remove_all(dir);
}
