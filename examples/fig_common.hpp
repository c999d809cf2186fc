// Shared by the figure programs (fig1, fig2, fig3, fig4_probe; docs/reproduction.md): option
// parsing, the trained model type, training with checkpoints/resume, model files with their
// architecture in the metadata.
#pragma once

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "icl/io/safetensors.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/checkpoint.hpp"
#include "icl/train/trainer.hpp"

namespace fig {

/// The paper-style small learner of every figure: pre-LN blocks, H = 64, 4 heads, MLP 256, prompts of
/// up to 40 examples (79 tokens), float; depth is a run-time choice.
constexpr int kH = 64, kM = 4, kF = 4 * kH, kTMax = 79;
template <int D>
using Model = icl::nn::PreLNTransformer<float, D, kH, kM, kF, kTMax>;

/// "--key value" options and "--flag" switches; every key must be known (listed in `keys` with its
/// default value; flags have the default "false"). --help prints `usage` and exits.
class Options {
 public:
  Options(int argc, char** argv, const std::string& usage, std::map<std::string, std::string> defaults)
      : v_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      if (k == "--help" || k == "-h") {
        std::cout << usage;
        std::exit(0);
      }
      if (k.rfind("--", 0) != 0 || !v_.count(k.substr(2)))
        throw icl::InvalidArgument("unknown option '" + k + "' (see --help)");
      const std::string key = k.substr(2);
      given_.insert(key);
      if (v_[key] == "false" || v_[key] == "true") {
        v_[key] = "true";
      } else {
        if (i + 1 >= argc) throw icl::InvalidArgument("option " + k + " needs a value");
        v_[key] = argv[++i];
      }
    }
  }
  std::string str(const std::string& k) const { return v_.at(k); }
  int integer(const std::string& k) const { return std::stoi(v_.at(k)); }
  long long int64(const std::string& k) const { return std::stoll(v_.at(k)); }
  double real(const std::string& k) const { return std::stod(v_.at(k)); }
  bool flag(const std::string& k) const { return v_.at(k) == "true"; }
  /// A different default (e.g. for --quick): applies unless the option was given on the command line.
  void preset(const std::string& k, const std::string& v) {
    if (!given_.count(k)) v_.at(k) = v;
  }

 private:
  std::map<std::string, std::string> v_;
  std::set<std::string> given_;
};

/// What to train.
struct TrainSpec {
  int layers = 4;
  long long steps = 12000;
  int batch = 64;
  double lr = 1e-3;  // the paper's 1e-4 is for 500k steps; short runs need more (docs/train.md)
  int threads = 2;
  std::uint64_t seed = 0;
  icl::data::TaskDistribution task{40};
  std::string checkpoint;  // Trainer checkpoint (weights + Adam state + step), written every 500 steps
  bool resume = false;     // continue from `checkpoint` when the file exists
  long long log_every = 100;
};

/// What one train() call did: the final evaluation loss, the step it started from (0, or the
/// checkpoint's step when it resumed) and the wall seconds it spent (covering only the steps after
/// resumed_from_step: an interrupted run's earlier time is in its log, not here).
struct TrainResult {
  double eval_loss = 0;
  long long resumed_from_step = 0;
  double seconds = 0;
};

/// Trains `model` (weights initialised here, uniform scaling) with icl::train::Trainer; resumes from
/// spec.checkpoint when asked and present.
template <int D>
TrainResult train(Model<D>& model, const TrainSpec& spec, std::ostream& log) {
  const auto t0 = std::chrono::steady_clock::now();
  TrainResult r;
  icl::Rng init_rng(spec.seed + 1);
  icl::nn::init_uniform_scaling(model.parameters(), init_rng);
  icl::train::TrainConfig cfg;
  cfg.steps = spec.steps;
  cfg.batch = spec.batch;
  cfg.task = spec.task;
  cfg.optimizer.lr = spec.lr;
  cfg.clip_norm = 1.0;
  cfg.eval_every = std::max<long long>(1, std::min<long long>(500, spec.steps));
  cfg.eval_batch = 256;
  cfg.log_every = spec.log_every;
  cfg.seed = spec.seed;
  cfg.checkpoint_path = spec.checkpoint;
  cfg.checkpoint_every = cfg.eval_every;
  cfg.batch_options.threads = spec.threads;
  if (spec.threads > 1) cfg.batch_options.chunk_sequences = (spec.batch + 3) / 4;  // thread-count independent
  icl::train::Trainer<Model<D>> trainer(model, cfg, &log);
  if (spec.resume && !spec.checkpoint.empty() && std::filesystem::exists(spec.checkpoint)) {
    trainer.load_checkpoint(spec.checkpoint);
    log << "resumed " << spec.checkpoint << " at step " << trainer.step() << "\n";
    r.resumed_from_step = trainer.step();
  }
  trainer.run();
  r.eval_loss = trainer.history().back().eval_loss;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

/// The model's weights with its architecture as metadata: icl::train::save_model, the
/// self-describing model file of docs/io.md (format_version 1; python/icl_torch.py runs it).
template <int D>
void save_model(Model<D>& model, const std::string& path) {
  icl::train::save_model(model, path);
}

/// The depth stored in a save_model() file's metadata (`fallback` when it has none).
inline int stored_layers(const std::string& path, int fallback) {
  const icl::io::SafeTensors st = icl::io::SafeTensors::load(path);
  return st.metadata.count("layers") ? std::stoi(st.metadata.at("layers")) : fallback;
}

/// Loads a save_model() file (or a Trainer checkpoint) into `model`: icl::train::load_model, which
/// refuses a file of another architecture naming the metadata key that differs.
template <int D>
void load_weights(const std::string& path, Model<D>& model) {
  icl::train::load_model(model, path);
}

inline void ensure_dir(const std::string& dir) { std::filesystem::create_directories(dir); }

}  // namespace fig
