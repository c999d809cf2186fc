// icl_cell: the one cell runner of the experiment sweeps (docs/sweeps.md). A cell is one trained
// model and its evaluation, described by DIR/config.json; the runner trains it (or resumes it from
// DIR/checkpoint.safetensors, or loads DIR/model.safetensors when training had finished), evaluates
// it and writes DIR/metrics.csv and DIR/status.json, every file atomically.
//
// This header: the settings (every key, its type, default and meaning), the cell's files and the
// templated run for one model shape. The model shapes are compiled in one translation unit per
// input dimension d (shapes_d<d>.cpp), so that a build compiles them in parallel.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "icl/io/atomic_file.hpp"
#include "icl/io/csv.hpp"
#include "icl/io/detail/json.hpp"
#include "icl/metrics.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/probe.hpp"
#include "icl/train/checkpoint.hpp"
#include "icl/train/signals.hpp"
#include "icl/train/trainer.hpp"

namespace cell {

/// A configuration error (unknown key, wrong type, value out of range, a changed run): exit 2, not
/// retried by the executors.
struct ConfigError : icl::InvalidArgument {
  using icl::InvalidArgument::InvalidArgument;
};

enum class Type { integer, real, text, boolean };

struct SettingSpec {
  const char* key;
  Type type;
  const char* def;
  const char* help;
};

// Every setting. Keys of the "run." namespace that change the result are the TrainConfig field
// paths (icl::train::run_identity); the others are the model's shape, the evaluation and the
// bookkeeping (checkpoint/eval/log intervals, which change no result).
inline const std::vector<SettingSpec>& specs() {
  static const std::vector<SettingSpec> s = {
      {"model.d", Type::integer, "8", "input dimension d (compiled: 1, 2, 4, 8, 12, 16, 20)"},
      {"model.layers", Type::integer, "4", "pre-LN blocks L (>= 1)"},
      {"model.hidden", Type::integer, "64", "width H (compiled shapes: see --print-shapes)"},
      {"model.heads", Type::integer, "4", "attention heads M (compiled shapes: see --print-shapes)"},
      {"run.steps", Type::integer, "6000", "optimiser steps"},
      {"run.batch", Type::integer, "64", "prompts per step"},
      {"run.task.n", Type::integer, "40", "examples per prompt (2n-1 <= 79 tokens)"},
      {"run.task.x_std", Type::real, "1", "std of every x coordinate"},
      {"run.task.w_std", Type::real, "1", "std of every w coordinate (tau)"},
      {"run.task.noise_std", Type::real, "0", "label noise std (sigma)"},
      {"run.task.w_mean", Type::real, "0", "mean of every w coordinate (control model: 1 with w_std 0)"},
      {"run.optimizer.lr", Type::real, "0.001", "AdamW base learning rate"},
      {"run.optimizer.beta1", Type::real, "0.9", "AdamW beta1"},
      {"run.optimizer.beta2", Type::real, "0.98", "AdamW beta2 (the paper's code)"},
      {"run.optimizer.eps", Type::real, "1e-09", "AdamW eps"},
      {"run.optimizer.weight_decay", Type::real, "0", "decoupled weight decay"},
      {"run.warmup_steps", Type::integer, "-1", "linear warmup steps (-1: steps / 5)"},
      {"run.clip_norm", Type::real, "1", "gradient-norm clip (0: off)"},
      {"run.eval_batch", Type::integer, "256", "prompts of the held-out evaluation set (eval_loss)"},
      {"run.seed", Type::integer, "0", "training task stream"},
      {"run.eval_seed", Type::integer, "24301", "held-out evaluation set"},
      {"run.init.seed", Type::integer, "-1", "weight initialisation stream (-1: run.seed + 1)"},
      {"run.chunk_sequences", Type::integer, "0",
       "sequences per gradient chunk (0: ceil(batch / 4)); results never depend on the thread count"},
      {"run.checkpoint_every", Type::integer, "500", "checkpoint interval in steps (no effect on results)"},
      {"run.eval_every", Type::integer, "500",
       "held-out evaluation interval in steps (no effect on results)"},
      {"run.log_every", Type::integer, "0", "progress-line interval (0: steps / 20; no effect on results)"},
      {"run.adopt_siblings", Type::boolean, "false",
       "before training, adopt a sibling cell's finished model of the same run identity (no effect on "
       "results: training is deterministic)"},
      {"eval.kind", Type::text, "mspd",
       "none | fig1 (SPD/ILWD per prefix, metrics::evaluate) | mspd (online MSPD against eval.legend) | "
       "probe (probes per layer, target, read-out and n)"},
      {"eval.legend", Type::text, "fig3", "mspd legend: fig3 | fig2 | fig2_wide | ols_ridge"},
      {"eval.contexts", Type::integer, "512", "evaluation contexts"},
      {"eval.probes", Type::integer, "32", "fig1: probe inputs per context"},
      {"eval.seed", Type::integer, "1000", "evaluation task stream"},
      {"probe.ns", Type::text, "1,2,3,4,6,8,12,16", "probe: numbers of exemplars n"},
      {"probe.prompts", Type::integer, "2048", "probe: prompts per n (75% train / 25% held out)"},
      {"probe.steps", Type::integer, "600", "probe: Adam steps"},
      {"probe.batch", Type::integer, "256", "probe: prompts per step"},
      {"probe.lr", Type::real, "0.001", "probe: learning rate"},
      {"probe.width", Type::integer, "64", "probe: H' of the position attention"},
      {"probe.mlp", Type::integer, "64", "probe: hidden units of the MLP read-out"},
      {"probe.standardize_targets", Type::boolean, "false",
       "probe: train on targets standardised per entry (scores stay in target units)"},
      {"probe.seed", Type::integer, "7000", "probe: prompt stream (+ n)"},
  };
  return s;
}

/// The settings of one cell, every value as text (validated against specs()).
class Settings {
 public:
  /// Defaults overridden by the "settings" object of a config.json text.
  static Settings from_config(const std::string& json_text, const std::string& context) {
    Settings st;
    for (const auto& sp : specs()) st.v_[sp.key] = sp.def;
    icl::io::detail::Json doc;
    try {
      doc = icl::io::detail::JsonParser(json_text, context).parse_document();
    } catch (const icl::IoError& e) {
      throw ConfigError(e.what());
    }
    if (!doc.is_object()) throw ConfigError(context + ": expected a JSON object");
    const icl::io::detail::Json* settings = nullptr;
    for (std::size_t i = 0; i < doc.keys.size(); ++i) {
      if (doc.keys[i] == "settings")
        settings = &doc.items[i];
      else if (doc.keys[i] == "sweep" && doc.items[i].is_string())
        st.sweep_ = doc.items[i].text;
      else if (doc.keys[i] == "cell" && doc.items[i].is_string())
        st.cell_ = doc.items[i].text;
    }
    if (!settings || !settings->is_object()) throw ConfigError(context + ": expected a \"settings\" object");
    for (std::size_t i = 0; i < settings->keys.size(); ++i) {
      const std::string& k = settings->keys[i];
      const auto& j = settings->items[i];
      const SettingSpec* sp = find(k);
      if (!sp)
        throw ConfigError(context + ": unknown setting '" + k + "' (icl_cell --print-defaults lists them)");
      std::string text;
      switch (sp->type) {
        case Type::integer:
        case Type::real:
          if (!j.is_number()) throw ConfigError(context + ": setting '" + k + "': expected a number");
          text = j.text;
          break;
        case Type::text:
          if (!j.is_string()) throw ConfigError(context + ": setting '" + k + "': expected a string");
          text = j.text;
          break;
        case Type::boolean:
          if (j.kind != icl::io::detail::Json::Kind::boolean)
            throw ConfigError(context + ": setting '" + k + "': expected true or false");
          text = j.b ? "true" : "false";
          break;
      }
      st.v_[k] = text;
    }
    // type-check every value now, so that a bad one is reported before anything runs
    for (const auto& sp : specs()) {
      if (sp.type == Type::integer) (void)st.integer(sp.key);
      if (sp.type == Type::real) (void)st.real(sp.key);
    }
    return st;
  }

  long long integer(const std::string& k) const {
    const std::string& t = v_.at(k);
    std::size_t pos = 0;
    long long x = 0;
    try {
      x = std::stoll(t, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != t.size() || t.empty()) throw ConfigError("setting '" + k + "': expected an integer, got " + t);
    return x;
  }
  double real(const std::string& k) const {
    const std::string& t = v_.at(k);
    std::size_t pos = 0;
    double x = 0;
    try {
      x = std::stod(t, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != t.size() || t.empty() || !std::isfinite(x))
      throw ConfigError("setting '" + k + "': expected a finite number, got " + t);
    return x;
  }
  bool boolean(const std::string& k) const {
    const std::string& t = v_.at(k);
    if (t != "true" && t != "false")
      throw ConfigError("setting '" + k + "': expected true or false, got " + t);
    return t == "true";
  }
  const std::string& text(const std::string& k) const { return v_.at(k); }
  const std::string& sweep() const { return sweep_; }
  const std::string& cell() const { return cell_; }
  const std::map<std::string, std::string>& all() const { return v_; }

  static const SettingSpec* find(const std::string& k) {
    for (const auto& sp : specs())
      if (k == sp.key) return &sp;
    return nullptr;
  }

 private:
  std::map<std::string, std::string> v_;
  std::string sweep_, cell_;
};

/// A range check on a setting: ConfigError naming it and the expectation.
inline void require(bool ok, const std::string& key, const std::string& expectation, const std::string& got) {
  if (!ok) throw ConfigError("setting '" + key + "': expected " + expectation + ", got " + got);
}

/// The cell's folder and its files (docs/sweeps.md §2).
struct Files {
  std::filesystem::path dir;
  std::string config() const { return (dir / "config.json").string(); }
  std::string checkpoint() const { return (dir / "checkpoint.safetensors").string(); }
  std::string model() const { return (dir / "model.safetensors").string(); }
  std::string metrics() const { return (dir / "metrics.csv").string(); }
  std::string status() const { return (dir / "status.json").string(); }
  /// eval.kind = probe: every probe's attention over the positions (the Fig. 4 heatmaps).
  std::string probe_attention() const { return (dir / "probe_attention.csv").string(); }
};

inline std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return icl::io::CsvWriter::format(v);
}

/// status.json (written atomically): state running | interrupted | done | failed.
struct Status {
  std::string state = "running";
  long long step = 0, steps = 0;
  double loss = std::nan(""), steps_per_s = std::nan("");
  std::string error;
  void write(const Files& f) const {
    std::ostringstream o;
    o << "{\"state\":\"" << state << "\",\"step\":" << step << ",\"steps\":" << steps
      << ",\"loss\":" << json_number(loss) << ",\"steps_per_s\":" << json_number(steps_per_s)
      << ",\"error\":" << icl::io::detail::json_quote(error) << ",\"updated\":"
      << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
             .count()
      << "}\n";
    icl::io::write_file_atomic(f.status(), o.str());
  }
};

/// Thrown when a stop signal arrived and the cell's state is safely on disk: exit 75. It carries the
/// cell's progress at the stop (the step its checkpoint or model file holds), which main() writes to
/// status.json with state "interrupted".
struct Interrupted {
  Status status;
};

/// The tidy metrics table of a cell: metric, a, b, layer, prefix, value, ci95.
class Metrics {
 public:
  void add(const std::string& metric, const std::string& a, const std::string& b, const std::string& layer,
           const std::string& prefix, double value, double ci95) {
    rows_.push_back({metric, a, b, layer, prefix, icl::io::CsvWriter::format(value),
                     std::isnan(ci95) ? std::string() : icl::io::CsvWriter::format(ci95)});
  }
  void add_eval(const icl::metrics::EvalResult& r) {
    for (const auto& row : r.rows)
      add(row.metric, row.a, row.b, "", row.examples < 0 ? "" : std::to_string(row.examples), row.stat.mean,
          row.stat.ci95);
  }
  void write(const Files& f) const {
    icl::io::CsvWriter w(f.metrics(), {"metric", "a", "b", "layer", "prefix", "value", "ci95"});
    for (const auto& r : rows_) w.row_strings(r);
    w.flush();
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

/// Looks in the cell's sibling folders (<root>/cells/*) for a finished model.safetensors whose run
/// identity and architecture are this cell's (icl::train::load_model checks both) and copies the first
/// one found, in folder-name order, atomically to this cell's model file. Training is deterministic
/// in the identity (any thread count gives the same bits), so the copy is the model this cell would
/// train: cells that differ only in their evaluation (the Fig. 4 probe ablations) train once.
/// Returns the adopted file, or "" if no sibling has one.
template <class ModelT>
std::string adopt_sibling_model(int layers, const Files& f,
                                const std::map<std::string, std::string>& identity) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::absolute(f.dir).parent_path();
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec))
    if (e.is_directory() && fs::absolute(e.path()) != fs::absolute(f.dir)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    const fs::path cand = dir / "model.safetensors";
    if (!fs::exists(cand)) continue;
    try {
      ModelT trial(layers);
      icl::train::load_model(trial, cand.string(), identity);
    } catch (const std::exception&) {
      continue;  // another run, another shape, or not a model file: not this cell's model
    }
    std::ifstream in(cand, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) continue;
    icl::io::write_file_atomic(f.model(), bytes);
    return cand.string();
  }
  return "";
}

/// The training configuration of a cell (every "run." setting), validated.
inline icl::train::TrainConfig train_config(const Settings& s, int threads, const Files& f) {
  icl::train::TrainConfig cfg;
  cfg.steps = s.integer("run.steps");
  cfg.batch = static_cast<int>(s.integer("run.batch"));
  cfg.task.n = static_cast<int>(s.integer("run.task.n"));
  cfg.task.x_std = s.real("run.task.x_std");
  cfg.task.w_std = s.real("run.task.w_std");
  cfg.task.noise_std = s.real("run.task.noise_std");
  cfg.task.w_mean = s.real("run.task.w_mean");
  cfg.optimizer = icl::train::paper_adam();
  cfg.optimizer.lr = s.real("run.optimizer.lr");
  cfg.optimizer.beta1 = s.real("run.optimizer.beta1");
  cfg.optimizer.beta2 = s.real("run.optimizer.beta2");
  cfg.optimizer.eps = s.real("run.optimizer.eps");
  cfg.optimizer.weight_decay = s.real("run.optimizer.weight_decay");
  cfg.warmup_steps = s.integer("run.warmup_steps");
  cfg.clip_norm = s.real("run.clip_norm");
  cfg.eval_batch = static_cast<int>(s.integer("run.eval_batch"));
  require(s.integer("run.seed") >= 0, "run.seed", ">= 0", s.text("run.seed"));
  require(s.integer("run.eval_seed") >= 0, "run.eval_seed", ">= 0", s.text("run.eval_seed"));
  cfg.seed = static_cast<std::uint64_t>(s.integer("run.seed"));
  cfg.eval_seed = static_cast<std::uint64_t>(s.integer("run.eval_seed"));
  const long long chunk = s.integer("run.chunk_sequences");
  require(chunk >= 0, "run.chunk_sequences", ">= 0", s.text("run.chunk_sequences"));
  // The chunking is fixed by the settings, never by the thread count: the same bits on 1, 2, 3 threads.
  cfg.batch_options.chunk_sequences = chunk > 0 ? static_cast<int>(chunk) : (cfg.batch + 3) / 4;
  cfg.batch_options.threads = threads;
  const long long init_seed = s.integer("run.init.seed");
  require(init_seed >= -1, "run.init.seed", "-1 or >= 0", s.text("run.init.seed"));
  cfg.identity["init.scheme"] = "uniform_scaling";
  cfg.identity["init.seed"] =
      std::to_string(init_seed < 0 ? cfg.seed + 1 : static_cast<std::uint64_t>(init_seed));
  cfg.checkpoint_every = s.integer("run.checkpoint_every");
  cfg.eval_every = s.integer("run.eval_every");
  const long long log_every = s.integer("run.log_every");
  require(log_every >= 0, "run.log_every", ">= 0", s.text("run.log_every"));
  cfg.log_every = log_every > 0 ? log_every : std::max<long long>(1, cfg.steps / 20);
  cfg.checkpoint_path = f.checkpoint();
  try {
    cfg.validate();
  } catch (const icl::InvalidArgument& e) {
    throw ConfigError(e.what());
  }
  return cfg;
}

/// The null predictor: 0 at every x-token (the prior mean of w, Ridge(infinity)). Fig. 3's legend
/// carries it as a control (docs/reproduction.md): a model that has learned little predicts small
/// values, and is then close to every algorithm whose predictions are small (one GD step with a
/// small rate) without doing what that algorithm does; a phase match counts only when the model is
/// closer to the algorithm than to this predictor.
template <int D>
icl::metrics::PromptPredictor<double> zero_predictor() {
  icl::metrics::PromptPredictor<double> p;
  p.name = "Zero";
  p.dim = D;
  p.predict = [](const icl::Mat<double>& tokens, int T) -> icl::Mat<double> {
    return icl::Mat<double>::Zero((T + 1) / 2, tokens.cols() / T);
  };
  return p;
}

/// The paper-style legends of the online MSPD evaluation (Figs. 2 and 3, App. H).
template <int D>
std::vector<icl::metrics::PromptPredictor<double>> legend(const std::string& name) {
  namespace mt = icl::metrics;
  namespace rg = icl::regress;
  std::vector<mt::PromptPredictor<double>> l;
  if (name == "fig3") {
    l = {mt::prompt_predictor<double, D>(rg::Ols{}),
         mt::prompt_predictor<double, D>(rg::Ridge{0.1}),
         mt::prompt_predictor<double, D>(rg::Ridge{0.5}),
         mt::prompt_predictor<double, D>(rg::Knn{3, rg::KnnWeights::inverse_square}, "kNN(3, weighted)"),
         mt::prompt_predictor<double, D>(rg::Knn{3, rg::KnnWeights::uniform}),
         mt::prompt_predictor<double, D>(rg::Sgd{0.03}),
         mt::prompt_predictor<double, D>(rg::Gd{0.02}),
         mt::prompt_predictor<double, D>(rg::Sgd{0.01}),
         mt::prompt_predictor<double, D>(rg::Gd{0.01}),
         zero_predictor<D>()};  // the control, last: the paper's nine keep their order
  } else if (name == "ols_ridge") {
    l = {mt::prompt_predictor<double, D>(rg::Ols{}), mt::prompt_predictor<double, D>(rg::Ridge{0.1})};
  } else if (name == "fig2" || name == "fig2_wide") {
    const bool wide = name == "fig2_wide";
    const std::vector<std::pair<double, const char*>> lam =
        wide ? std::vector<std::pair<double, const char*>>{{1.0 / 36, "Ridge(1/36)"},
                                                           {1.0 / 16, "Ridge(1/16)"},
                                                           {1.0 / 9, "Ridge(1/9)"},
                                                           {1.0 / 4, "Ridge(1/4)"},
                                                           {4.0 / 9, "Ridge(4/9)"},
                                                           {0.7, "Ridge(0.7)"},
                                                           {1.0, "Ridge(1)"}}
             : std::vector<std::pair<double, const char*>>{{1.0 / 16, "Ridge(1/16)"},
                                                           {1.0 / 9, "Ridge(1/9)"},
                                                           {1.0 / 4, "Ridge(1/4)"},
                                                           {4.0 / 9, "Ridge(4/9)"}};
    l.push_back(mt::prompt_predictor<double, D>(rg::Ols{}, "Lstsq"));
    for (const auto& [v, n] : lam) l.push_back(mt::prompt_predictor<double, D>(rg::Ridge{v}, n));
  } else {
    throw ConfigError("setting 'eval.legend': expected fig3 | fig2 | fig2_wide | ols_ridge, got " + name);
  }
  return l;
}

inline std::vector<int> parse_ns(const std::string& s, int t_max) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) {
    std::size_t pos = 0;
    int n = -1;
    try {
      n = std::stoi(t, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    require(pos == t.size() && n >= 1 && 2 * n <= t_max, "probe.ns",
            "a comma-separated list of n with 1 <= n <= " + std::to_string(t_max / 2), s);
    v.push_back(n);
  }
  require(!v.empty(), "probe.ns", "at least one n", s);
  return v;
}

/// The model type of a cell: pre-LN blocks, MLP 4H, prompts of up to 40 examples (79 tokens), float.
constexpr int kTMax = 79;
template <int D, int H, int M>
using Model = icl::nn::PreLNTransformer<float, D, H, M, 4 * H, kTMax>;

/// Trains (or resumes, or loads) and evaluates the cell for one compiled shape.
template <int D, int H, int M>
void run(const Settings& s, const Files& f, int threads, bool check_only) {
  namespace mt = icl::metrics;
  namespace pb = icl::probe;
  const long long L = s.integer("model.layers");
  require(L >= 1 && L <= 64, "model.layers", "1 <= L <= 64", s.text("model.layers"));
  icl::train::TrainConfig cfg = train_config(s, threads, f);
  require(2 * cfg.task.n - 1 <= kTMax, "run.task.n", "2n - 1 <= 79 tokens (n <= 40)", s.text("run.task.n"));
  const std::string kind = s.text("eval.kind");
  require(kind == "none" || kind == "fig1" || kind == "mspd" || kind == "probe", "eval.kind",
          "none | fig1 | mspd | probe", kind);
  const int contexts = static_cast<int>(s.integer("eval.contexts"));
  require(contexts >= 2, "eval.contexts", ">= 2", s.text("eval.contexts"));
  require(s.integer("eval.seed") >= 0, "eval.seed", ">= 0", s.text("eval.seed"));
  if (kind == "mspd") (void)legend<D>(s.text("eval.legend"));
  std::vector<int> ns;
  if (kind == "probe") {
    ns = parse_ns(s.text("probe.ns"), kTMax);
    for (const char* k : {"probe.prompts", "probe.steps", "probe.batch", "probe.width", "probe.mlp"})
      require(s.integer(k) >= 1, k, ">= 1", s.text(k));
    require(s.integer("probe.prompts") >= 4, "probe.prompts", ">= 4 (75% train / 25% held out)",
            s.text("probe.prompts"));
    require(s.real("probe.lr") > 0, "probe.lr", "> 0", s.text("probe.lr"));
    require(s.integer("probe.seed") >= 0, "probe.seed", ">= 0", s.text("probe.seed"));
  }
  if (kind == "fig1") require(s.integer("eval.probes") >= 1, "eval.probes", ">= 1", s.text("eval.probes"));
  if (check_only) return;

  Model<D, H, M> model(static_cast<int>(L));
  icl::Rng init_rng(std::stoull(cfg.identity.at("init.seed")));
  icl::nn::init_uniform_scaling(model.parameters(), init_rng);
  icl::train::Trainer<Model<D, H, M>> trainer(model, cfg, &std::cout);
  const auto identity = trainer.run_identity();
  Status st;
  st.steps = cfg.steps;
  const auto refuse = [](const icl::InvalidArgument& e) -> ConfigError {
    return ConfigError(std::string("refusing to continue: ") + e.what() +
                       " (the cell's files belong to another run; remove them to start over)");
  };
  std::string adopted;
  // a sibling's finished model is adopted even over this cell's own checkpoint (a cell interrupted
  // while its sibling trained): resuming would train the same bits again
  if (!std::filesystem::exists(f.model()) && s.boolean("run.adopt_siblings"))
    adopted = adopt_sibling_model<Model<D, H, M>>(static_cast<int>(L), f, identity);
  if (!adopted.empty()) {
    std::cout << "adopted " << adopted << " (a sibling cell of the same run finished training)" << std::endl;
    std::error_code ec;
    if (std::filesystem::remove(f.checkpoint(), ec))
      std::cout << "removed " << f.checkpoint() << " (superseded by the adopted model)" << std::endl;
  }
  if (std::filesystem::exists(f.model())) {
    // training finished in an earlier attempt (or in a sibling cell): the model file must be this run's
    try {
      icl::train::load_model(model, f.model(), identity);
    } catch (const icl::InvalidArgument& e) {
      throw refuse(e);
    }
    if (adopted.empty()) std::cout << "loaded " << f.model() << " (training finished earlier)" << std::endl;
    st.step = cfg.steps;
  } else {
    if (std::filesystem::exists(f.checkpoint())) {
      try {
        trainer.load_checkpoint(f.checkpoint());
      } catch (const icl::InvalidArgument& e) {
        throw refuse(e);
      }
      std::cout << "resumed " << f.checkpoint() << " at step " << trainer.step() << std::endl;
    }
    st.step = trainer.step();
    st.write(f);
    trainer.set_on_progress([&](const icl::train::Progress& p) {
      st.step = p.step;
      st.loss = p.loss;
      st.steps_per_s = p.steps_per_s;
      st.write(f);
    });
    trainer.run();
    st.step = trainer.step();  // where the checkpoint of an interrupted run stands
    if (trainer.interrupted()) throw Interrupted{st};
    icl::train::save_model(model, f.model(), identity);
  }
  if (icl::train::stop_requested()) throw Interrupted{st};  // the model file is saved: resume evaluates

  st.state = "evaluating";
  st.write(f);
  Metrics m;
  // held-out loss of the trained model (the paper's model selection; Eq. 8 on the fixed eval set)
  const icl::train::EvalRecord rec = trainer.evaluate();
  m.add("eval_loss", "Transformer", "", "", "", rec.eval_loss, std::nan(""));
  for (Eigen::Index i = 0; i < rec.per_prefix.size(); ++i)
    m.add("eval_loss_prefix", "Transformer", "", "", std::to_string(i), rec.per_prefix(i), std::nan(""));
  st.loss = rec.eval_loss;
  icl::Rng rng(static_cast<std::uint64_t>(s.integer("eval.seed")));
  const icl::data::TaskDistribution& dist = cfg.task;
  if (kind == "fig1") {
    namespace rg = icl::regress;
    std::vector<mt::Predictor<double>> preds = {
        mt::predictor<double>(rg::Ols{}),
        mt::predictor<double>(rg::Ridge{0.1}),
        mt::predictor<double>(rg::Sgd{0.03}),
        mt::predictor<double>(rg::Gd{0.02}),
        mt::predictor<double>(rg::Knn{3, rg::KnnWeights::uniform}),
        mt::predictor<double>(rg::Knn{3, rg::KnnWeights::inverse_square}, "kNN(3, weighted)"),
        mt::predictor<double>(rg::Averaging{}),
        mt::as_predictor(mt::cast_predictor<double>(mt::model_predictor<D>(model, "Transformer")))};
    mt::EvalOptions eo;
    eo.n_contexts = contexts;
    eo.n_probes = static_cast<int>(s.integer("eval.probes"));
    m.add_eval(mt::evaluate<double, D>(dist, preds, eo, rng));
  } else if (kind == "mspd") {
    auto preds = legend<D>(s.text("eval.legend"));
    preds.push_back(mt::cast_predictor<double>(mt::model_predictor<D>(model, "Transformer")));
    mt::OnlineOptions oo;
    oo.n_contexts = contexts;
    // The MSPD region is 1 <= i < min(d, n) (Eq. (M4)); at d = 1 it is empty, so there the mspd rows
    // are the one prefix i = 0 (no example: every legend predictor says 0) and App. H's comparison
    // (sweeps/fig8.toml) reads the per-prefix spd rows instead.
    oo.mspd_first = std::min(1, std::min(D, static_cast<int>(dist.n)) - 1);
    m.add_eval(mt::evaluate_online<double, D>(dist, preds, oo, rng).table);
  } else if (kind == "probe") {
    icl::io::CsvWriter att(f.probe_attention(), {"target", "readout", "layer", "n", "position", "weight"});
    for (const int n : ns) {
      if (icl::train::stop_requested()) throw Interrupted{st};
      icl::Rng prng(static_cast<std::uint64_t>(s.integer("probe.seed")) + static_cast<std::uint64_t>(n));
      const auto set =
          pb::sample_probe_set<float, D>({n}, n, static_cast<int>(s.integer("probe.prompts")), prng);
      typename Model<D, H, M>::Cache cache;
      model.forward(set.tokens, set.tokens_per_prompt(), cache);
      for (const pb::Target target : {pb::Target::xty, pb::Target::w_ols}) {
        const Eigen::MatrixXf V = set.targets(target);
        for (const pb::Readout readout : {pb::Readout::linear, pb::Readout::mlp}) {
          for (int l = 0; l <= model.layers(); ++l) {
            pb::ProbeShape shape;
            shape.readout = readout;
            shape.width = static_cast<int>(s.integer("probe.width"));
            shape.mlp_hidden = static_cast<int>(s.integer("probe.mlp"));
            pb::FitOptions fo;
            fo.steps = static_cast<int>(s.integer("probe.steps"));
            fo.batch = static_cast<int>(s.integer("probe.batch"));
            fo.lr = s.real("probe.lr");
            fo.seed = static_cast<std::uint64_t>(l);
            fo.standardize_targets = s.boolean("probe.standardize_targets");
            const Eigen::MatrixXf Hs = cache.hidden_state(l);
            const auto fit = pb::fit_probe<float>(Hs, set.tokens_per_prompt(), V, shape, fo);
            const std::string t = pb::to_string(target), r = pb::to_string(readout);
            const std::string ls = std::to_string(l), nstr = std::to_string(n);
            m.add("probe_mse", t, r, ls, nstr, fit.score.mse, std::nan(""));
            m.add("probe_r2", t, r, ls, nstr, fit.score.r2, std::nan(""));
            m.add("probe_train_mse", t, r, ls, nstr, fit.score.train_mse, std::nan(""));
            const auto alpha = fit.probe.attention();
            for (Eigen::Index pos = 0; pos < alpha.size(); ++pos)
              att.row(t, r, l, n, static_cast<long long>(pos), static_cast<double>(alpha(pos)));
          }
        }
      }
    }
    att.flush();
  }
  m.write(f);
  st.state = "done";
  st.write(f);
}

/// A compiled model shape.
struct Shape {
  int d, hidden, heads;
};

/// Runs the cell with a compiled shape of dimension D; false if (H, M) is not compiled for D.
/// Defined in shapes_d<D>.cpp.
bool run_d1(const Settings&, const Files&, int, bool);
bool run_d2(const Settings&, const Files&, int, bool);
bool run_d4(const Settings&, const Files&, int, bool);
bool run_d8(const Settings&, const Files&, int, bool);
bool run_d12(const Settings&, const Files&, int, bool);
bool run_d16(const Settings&, const Files&, int, bool);
bool run_d20(const Settings&, const Files&, int, bool);
/// Every compiled shape (shapes_d<D>.cpp).
std::vector<Shape> shapes_d1();
std::vector<Shape> shapes_d2();
std::vector<Shape> shapes_d4();
std::vector<Shape> shapes_d8();
std::vector<Shape> shapes_d12();
std::vector<Shape> shapes_d16();
std::vector<Shape> shapes_d20();

/// One compiled (H, M) shape.
template <int H, int M>
struct HM {};

/// The (H, M) shapes compiled for dimension D (shapes_d<D>.cpp: ShapeList<D, HM<64, 4>, ...>).
template <int D, class... Shapes>
struct ShapeList;
template <int D, int... H, int... M>
struct ShapeList<D, HM<H, M>...> {
  // (maybe_unused: with no shape, ICL_CELL_NO_SHAPES, the fold is empty and is false)
  static bool run(const Settings& s, [[maybe_unused]] const Files& f, [[maybe_unused]] int threads,
                  [[maybe_unused]] bool check) {
    [[maybe_unused]] const long long h = s.integer("model.hidden"), m = s.integer("model.heads");
    return ((h == H && m == M ? (cell::run<D, H, M>(s, f, threads, check), true) : false) || ...);
  }
  static std::vector<Shape> list() { return {Shape{D, H, M}...}; }
};

}  // namespace cell
