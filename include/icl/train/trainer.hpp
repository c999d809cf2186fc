/// @file
/// The ICL training loop (paper §6.2): fresh tasks every step, Eq. 8 loss over every prefix,
/// AdamW with linear warmup + cosine decay, optional gradient clipping, periodic evaluation on a
/// fixed evaluation set (loss per prefix), a progress line, checkpoints that resume
/// bit-identically (float and double; long double state is stored as F64, see Trainer::restore),
/// and a stop with a message naming the step and tensor on NaN/Inf.
/// See docs/train.md.
#pragma once

#include <Eigen/Core>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/io/model_file.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn/batch_loss.hpp"
#include "icl/nn/loss.hpp"
#include "icl/nn/param.hpp"
#include "icl/train/adam.hpp"
#include "icl/train/checkpoint.hpp"
#include "icl/train/clip.hpp"
#include "icl/train/optimizer_state.hpp"
#include "icl/train/schedule.hpp"
#include "icl/train/signals.hpp"

namespace icl::train {

/// The paper code's optimiser settings (optax.adamw, digest §6.2): lr 1e-4, β = (0.9, 0.98),
/// eps 1e-9, no weight decay.
inline AdamConfig paper_adam() {
  AdamConfig c;
  c.lr = 1e-4;
  c.beta1 = 0.9;
  c.beta2 = 0.98;
  c.eps = 1e-9;
  c.weight_decay = 0;
  return c;
}

/// Everything that defines a training run.
struct TrainConfig {
  std::int64_t steps = 1000;            ///< optimiser steps in total (T of the schedule)
  int batch = 64;                       ///< prompts per step
  data::TaskDistribution task{40};      ///< n examples per prompt, x/w/noise scales
  AdamConfig optimizer = paper_adam();  ///< AdamW (decoupled decay, as optax.adamw)
  std::int64_t warmup_steps = -1;       ///< linear warmup; -1 = steps / 5 (the paper)
  double clip_norm = 0;                 ///< clip the total gradient 2-norm to this; 0 = off
  std::int64_t eval_every = 100;        ///< evaluate every this many steps (0: only at the end)
  int eval_batch = 256;                 ///< prompts in the fixed evaluation set
  std::uint64_t seed = 0;               ///< the training task stream
  std::uint64_t eval_seed = 0x5eed;     ///< the evaluation set (fixed for the whole run)
  std::int64_t log_every = 100;         ///< progress line every this many steps (0: none)
  std::int64_t checkpoint_every = 0;    ///< checkpoint every this many steps (0: only at the end)
  std::string checkpoint_path;          ///< where checkpoints go ("" = no checkpoints)
  nn::BatchOptions batch_options;       ///< threads over the batch (result independent of threads)
  /// Settings outside this struct that also define the run (the weight initialisation's scheme and
  /// seed, the experiment's name, ...): stored in checkpoints as "run.\<key\>" next to run_identity()'s
  /// fields and compared on resume like them. Keys: non-empty, letters, digits, '.', '_' and '-'.
  std::map<std::string, std::string> identity;

  /// Throws icl::InvalidArgument naming the first field out of range (as TrainConfig.field).
  void validate() const {
    ICL_CHECK_ARG(steps >= 1, "TrainConfig.steps: expected >= 1, got ", steps);
    ICL_CHECK_ARG(batch >= 1, "TrainConfig.batch: expected >= 1, got ", batch);
    ICL_CHECK_ARG(task.n >= 1, "TrainConfig.task.n: expected >= 1, got ", task.n);
    data::validate(task);
    ICL_CHECK_ARG(warmup_steps >= -1 && warmup_steps <= steps,
                  "TrainConfig.warmup_steps: expected -1 or in [0, ", steps, "], got ", warmup_steps);
    ICL_CHECK_ARG(clip_norm >= 0 && std::isfinite(clip_norm),
                  "TrainConfig.clip_norm: expected finite >= 0, got ", clip_norm);
    ICL_CHECK_ARG(eval_every >= 0, "TrainConfig.eval_every: expected >= 0, got ", eval_every);
    ICL_CHECK_ARG(eval_batch >= 1, "TrainConfig.eval_batch: expected >= 1, got ", eval_batch);
    ICL_CHECK_ARG(log_every >= 0, "TrainConfig.log_every: expected >= 0, got ", log_every);
    ICL_CHECK_ARG(checkpoint_every >= 0, "TrainConfig.checkpoint_every: expected >= 0, got ",
                  checkpoint_every);
    ICL_CHECK_ARG(batch_options.chunk_sequences >= 0,
                  "TrainConfig.batch_options.chunk_sequences: expected >= 0, got ",
                  batch_options.chunk_sequences);
    for (const auto& [k, v] : identity) {
      bool ok = !k.empty();
      for (const char c : k)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-');
      ICL_CHECK_ARG(ok, "TrainConfig.identity: key '", k,
                    "': expected a non-empty name of letters, digits, '.', '_' and '-'");
    }
  }
};

/// Version of the run-identity keys below; stored as run.identity_version.
inline constexpr int kRunIdentityVersion = 1;

/// The run's identity (docs/train.md "Run identity", docs/sweeps.md): every setting of `cfg` that
/// changes the result of training (the weights, the optimiser state and the evaluation losses), as
/// metadata keys named after the TrainConfig field path with the prefix "run." (run.steps,
/// run.task.noise_std, run.optimizer.lr, ...) and the value's text (numbers in the shortest form
/// that reads back to the same double), plus cfg.identity as run.\<key\>. Derived values are stored
/// resolved: run.warmup_steps is the warmup actually used (steps / 5 for -1) and
/// run.batch_options.chunk_sequences the chunk actually used (batch for 0). Not part of it, since
/// they do not change the result: eval_every, log_every, checkpoint_every, checkpoint_path and
/// batch_options.threads.
inline std::map<std::string, std::string> run_identity(const TrainConfig& cfg) {
  const auto num = [](double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  };
  const auto integer = [](std::int64_t v) { return std::to_string(v); };
  std::map<std::string, std::string> id;
  for (const auto& [k, v] : cfg.identity) id["run." + k] = v;
  id["run.identity_version"] = integer(kRunIdentityVersion);
  id["run.steps"] = integer(cfg.steps);
  id["run.batch"] = integer(cfg.batch);
  id["run.task.n"] = integer(cfg.task.n);
  id["run.task.x_std"] = num(cfg.task.x_std);
  id["run.task.w_std"] = num(cfg.task.w_std);
  id["run.task.noise_std"] = num(cfg.task.noise_std);
  id["run.task.w_mean"] = num(cfg.task.w_mean);
  id["run.optimizer.lr"] = num(cfg.optimizer.lr);
  id["run.optimizer.beta1"] = num(cfg.optimizer.beta1);
  id["run.optimizer.beta2"] = num(cfg.optimizer.beta2);
  id["run.optimizer.eps"] = num(cfg.optimizer.eps);
  id["run.optimizer.weight_decay"] = num(cfg.optimizer.weight_decay);
  id["run.optimizer.amsgrad"] = cfg.optimizer.amsgrad ? "true" : "false";
  id["run.warmup_steps"] = integer(cfg.warmup_steps < 0 ? cfg.steps / 5 : cfg.warmup_steps);
  id["run.clip_norm"] = num(cfg.clip_norm);
  id["run.eval_batch"] = integer(cfg.eval_batch);
  id["run.seed"] = std::to_string(cfg.seed);
  id["run.eval_seed"] = std::to_string(cfg.eval_seed);
  id["run.batch_options.chunk_sequences"] =
      integer(cfg.batch_options.chunk_sequences > 0 ? std::min(cfg.batch_options.chunk_sequences, cfg.batch)
                                                    : cfg.batch);
  return id;
}

/// One evaluation: the step it was taken at, the mean training loss since the previous record,
/// and the Eq. 8 loss on the evaluation set, overall and per prefix (entry i: the squared error of
/// the prediction for x_{i+1} made from i examples, averaged over the evaluation prompts).
struct EvalRecord {
  std::int64_t step = 0;       ///< optimiser steps taken when the record was made
  double train_loss = 0;       ///< mean training loss since the previous record
  double eval_loss = 0;        ///< Eq. 8 loss on the evaluation set
  Eigen::VectorXd per_prefix;  ///< entry i: squared error of the prediction made from i examples
};

/// What a progress line reports (Trainer::set_on_progress).
struct Progress {
  std::int64_t step = 0;   ///< optimiser steps taken
  std::int64_t total = 0;  ///< TrainConfig::steps
  double loss = 0;         ///< mean training loss since the previous progress line
  double lr = 0;           ///< learning rate of the last step
  double steps_per_s = 0;  ///< since the previous progress line
  double eta_s = 0;        ///< seconds to go at this call's average rate
};

/// Trains a Transformer (icl::nn) in place.
///
/// @tparam Model icl::nn::Transformer<Block, D, TMax> (anything with Scalar, InputDim, MaxLen,
///               Cache, forward(tokens, T, cache), backward, parameters(), zero_grad()).
///
/// Movable, not copyable: it owns an nn::BatchLoss, whose worker threads (cfg.batch_options.threads
/// - 1 of them, started by the first step) are reused by every step and joined by the destructor.
template <class Model, DecayMode Mode = DecayMode::decoupled>
class Trainer {
 public:
  /// Scalar of the model.
  using S = typename Model::Scalar;
  /// Task dimension of the model.
  static constexpr int D = Model::InputDim;
  /// The optimiser type (AdamW with DecayMode::decoupled).
  using Optimizer = BasicAdam<S, Mode>;

  /// Checks the configuration (a prompt of 2n-1 tokens must fit the model: 2n-1 <= TMax),
  /// builds the optimiser over model.parameters() and samples the evaluation set. The model's
  /// weights are used as they are (initialise them first, e.g. nn::init_uniform_scaling).
  /// Progress lines go to `log` (nullptr: silent).
  Trainer(Model& model, const TrainConfig& cfg, std::ostream* log = nullptr)
      : model_(model),
        cfg_((cfg.validate(), cfg)),
        params_(model.parameters()),
        opt_(params_, cfg.optimizer),
        schedule_{cfg.warmup_steps < 0 ? cfg.steps / 5 : cfg.warmup_steps, cfg.steps, 0.5},
        rng_(cfg.seed),
        loss_(cfg.batch_options),
        log_(log) {
    ICL_CHECK_ARG(2 * cfg.task.n - 1 <= Model::MaxLen, "Trainer: TrainConfig.task.n = ", cfg.task.n,
                  " needs 2n-1 = ", 2 * cfg.task.n - 1, " tokens, but the model's maximum length is ",
                  Model::MaxLen);
    schedule_.validate();
    Rng eval_rng(cfg.eval_seed);
    sample_batch(eval_rng, cfg.eval_batch, eval_inputs_, eval_targets_);
  }

  /// One optimiser step on a fresh batch; returns its loss (before the update).
  /// @throws NumericalError naming the step and the first non-finite tensor when the loss, a
  ///         gradient or (after the update) a parameter is NaN or Inf.
  double train_step() {
    sample_batch(rng_, cfg_.batch, inputs_, targets_);
    const double loss = static_cast<double>(loss_(model_, inputs_, targets_, T()));
    const std::string bad_grad = first_nonfinite(params_, true);
    if (!std::isfinite(loss) || !bad_grad.empty()) {
      const std::string bad_value = first_nonfinite(params_, false);
      detail::raise<NumericalError>(
          "Trainer: training stopped at step ", step_, ": loss = ", loss,
          bad_grad.empty() ? std::string("") : "; gradient of '" + bad_grad + "' has NaN/Inf",
          bad_value.empty() ? std::string("") : "; parameter '" + bad_value + "' has NaN/Inf");
    }
    if (cfg_.clip_norm > 0) last_grad_norm_ = clip_grad_norm(params_, cfg_.clip_norm);
    opt_.set_lr(cfg_.optimizer.lr * schedule_.factor(step_));
    opt_.step();
    const std::string bad = first_nonfinite(params_, false);
    if (!bad.empty())
      detail::raise<NumericalError>("Trainer: training stopped at step ", step_, ": parameter '", bad,
                                    "' became NaN/Inf in the update (lr = ", opt_.lr(), ")");
    ++step_;
    window_loss_ += loss;
    ++window_steps_;
    return loss;
  }

  /// Eq. 8 loss on the fixed evaluation set, overall and per prefix (no gradients, model unchanged).
  EvalRecord evaluate() {
    const int n = cfg_.task.n, Tn = T();
    const Eigen::Index B = eval_targets_.cols();
    Eigen::VectorXd sq = Eigen::VectorXd::Zero(n);
    for (Eigen::Index b0 = 0; b0 < B; b0 += cfg_.batch) {  // in chunks of a training batch
      const Eigen::Index nb = std::min<Eigen::Index>(cfg_.batch, B - b0);
      model_.forward(eval_inputs_.middleCols(b0 * Tn, nb * Tn), Tn, eval_cache_);
      for (Eigen::Index b = 0; b < nb; ++b)
        for (int i = 0; i < n; ++i) {
          const double e = static_cast<double>(eval_cache_.out(0, b * Tn + 2 * i)) -
                           static_cast<double>(eval_targets_(i, b0 + b));
          sq(i) += e * e;
        }
    }
    EvalRecord r;
    r.step = step_;
    r.per_prefix = sq / static_cast<double>(B);
    r.eval_loss = r.per_prefix.mean();
    r.train_loss = window_steps_ ? window_loss_ / static_cast<double>(window_steps_) : std::nan("");
    return r;
  }

  /// Trains until cfg.steps, evaluating every cfg.eval_every steps (and at the start and the
  /// end), printing progress lines and writing checkpoints. `on_eval` sees every record. Returns
  /// the records of this call (also appended to history()).
  ///
  /// Stops early, with interrupted() true, when a signal arrives while a StopSignals object lives
  /// (train/signals.hpp): at the next step boundary it writes the checkpoint (when
  /// cfg.checkpoint_path is set) and returns; run() again, or restore() in a new process, continues
  /// bit-identically.
  std::vector<EvalRecord> run(const std::function<void(const EvalRecord&)>& on_eval = {}) {
    interrupted_ = false;
    using Clock = std::chrono::steady_clock;
    std::vector<EvalRecord> out;
    const auto record = [&] {
      EvalRecord r = evaluate();
      window_loss_ = 0;
      window_steps_ = 0;
      if (log_)
        *log_ << "eval  step " << r.step << ": loss " << fmt(r.eval_loss) << " (train " << fmt(r.train_loss)
              << "; prefix 0: " << fmt(r.per_prefix(0)) << ", prefix " << r.per_prefix.size() - 1 << ": "
              << fmt(r.per_prefix(r.per_prefix.size() - 1)) << ")\n";
      if (on_eval) on_eval(r);
      history_.push_back(r);
      out.push_back(r);
    };
    if (step_ == 0 || history_.empty()) record();
    const std::int64_t first = step_;
    const auto t0 = Clock::now();
    auto t_last = t0;
    std::int64_t s_last = step_;
    double log_loss = 0;
    std::int64_t log_n = 0;
    while (step_ < cfg_.steps) {
      if (const int sig = stop_requested()) {
        if (!cfg_.checkpoint_path.empty()) save_checkpoint(cfg_.checkpoint_path);
        interrupted_ = true;
        if (log_)
          *log_ << "interrupted by signal " << sig << " at step " << step_ << "/" << cfg_.steps
                << (cfg_.checkpoint_path.empty() ? std::string(" (no checkpoint path: nothing saved)")
                                                 : "; checkpoint written to " + cfg_.checkpoint_path)
                << std::endl;
        return out;
      }
      log_loss += train_step();
      ++log_n;
      if (cfg_.log_every > 0 && (step_ % cfg_.log_every == 0 || step_ == cfg_.steps) &&
          (log_ || on_progress_)) {
        const auto now = Clock::now();
        const double dt = std::chrono::duration<double>(now - t_last).count();
        const double rate = dt > 0 ? static_cast<double>(step_ - s_last) / dt : 0.0;
        const double total = std::chrono::duration<double>(now - t0).count();
        const double avg = total > 0 ? static_cast<double>(step_ - first) / total : 0.0;
        const double eta = avg > 0 ? static_cast<double>(cfg_.steps - step_) / avg : 0.0;
        const Progress p{step_, cfg_.steps, log_loss / static_cast<double>(log_n), opt_.lr(), rate, eta};
        if (log_) *log_ << progress_line(p.step, p.total, p.loss, p.lr, p.steps_per_s, p.eta_s) << std::endl;
        if (on_progress_) on_progress_(p);
        t_last = now;
        s_last = step_;
        log_loss = 0;
        log_n = 0;
      }
      if ((cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || step_ == cfg_.steps) record();
      if (!cfg_.checkpoint_path.empty() &&
          ((cfg_.checkpoint_every > 0 && step_ % cfg_.checkpoint_every == 0) || step_ == cfg_.steps))
        save_checkpoint(cfg_.checkpoint_path);
    }
    return out;
  }

  /// Parameters, optimiser state, step and RNG state (docs/train.md "Checkpoint layout").
  io::SafeTensors checkpoint() const {
    io::SafeTensors st;
    save_parameters(st, params_);
    save_state(st, opt_, "optim.");
    st.put_scalar("train.step", static_cast<double>(step_));
    st.put_scalar("train.total_steps", static_cast<double>(cfg_.steps));
    st.put_scalar("train.n", cfg_.task.n);
    save_rng(st, rng_, "train.rng");
    for (const auto& [k, v] : model_.architecture()) st.metadata[k] = v;  // docs/io.md "Trained models"
    for (const auto& [k, v] : run_identity()) st.metadata[k] = v;         // docs/train.md "Run identity"
    io::set_format<S>(st, "icl.train.checkpoint");  // format, format_version, scalar, stored_dtype
    st.metadata["parameters"] = std::to_string(nn::parameter_count(params_));
    return st;
  }
  /// Writes checkpoint() to `path`. @throws icl::IoError if it cannot be written.
  void save_checkpoint(const std::string& path) const { checkpoint().save(path); }

  /// Restores a checkpoint of this model shape; training then continues bit-identically for
  /// S = float or double. A checkpoint holds F32 or F64 tensors only (safetensors has no wider
  /// type), so for S = long double parameters and optimiser moments are rounded to double on
  /// save: a long double run resumes from the rounded state, close to but not bit-identical
  /// with the uninterrupted run.
  /// All-or-nothing: everything (every parameter, optimiser state and settings, step, RNG) is
  /// read and checked before anything is written, so on a throw the model, the optimiser, the
  /// step and the RNG are unchanged.
  /// @throws IoError naming the tensor when the checkpoint belongs to another model shape or a
  ///         tensor is missing or malformed; InvalidArgument naming every differing field when the
  ///         checkpoint belongs to another run (run_identity(): steps, learning rate, schedule, task,
  ///         seed, ...; check_run) or the optimiser settings differ.
  void restore(const io::SafeTensors& st) {
    check_architecture(st, model_.architecture(), "checkpoint");
    check_run(st, run_identity(), "checkpoint");
    // parameters first, so that another model shape is reported by the parameter's name
    const auto values = read_parameters(st, params_);
    Optimizer opt = opt_;  // staged copies: committed only when everything has checked
    load_state(st, opt, "optim.");
    const double step = st.get_scalar("train.step");
    ICL_CHECK_IO(step >= 0 && step <= static_cast<double>(cfg_.steps) && step == std::floor(step),
                 "checkpoint: train.step = ", step, " is not an integer in [0, ", cfg_.steps,
                 "] of this run");
    ICL_CHECK_IO(static_cast<double>(opt.step_count()) == step, "checkpoint: train.step = ", step,
                 " but the optimiser state says optim.step = ", opt.step_count(),
                 " (every training step is one optimiser step): the checkpoint is corrupt");
    Rng rng = rng_;
    load_rng(st, rng, "train.rng");
    for (std::size_t i = 0; i < params_.size(); ++i)
      params_[i].value_map() = values[i];  // nothing throws now
    opt_ = std::move(opt);
    rng_ = rng;
    step_ = static_cast<std::int64_t>(step);
    window_loss_ = 0;
    window_steps_ = 0;
  }
  /// Reads `path` and restore()s it.
  void load_checkpoint(const std::string& path) { restore(io::SafeTensors::load(path)); }

  /// Optimiser steps taken so far.
  std::int64_t step() const { return step_; }
  /// Called at every progress line (every cfg.log_every steps and at the last step) by run(), with
  /// or without a log stream (e.g. to write a status file).
  void set_on_progress(std::function<void(const Progress&)> f) { on_progress_ = std::move(f); }
  /// Whether the last run() stopped on a signal before cfg.steps (see run()).
  bool interrupted() const { return interrupted_; }
  /// The run's identity: icl::train::run_identity(config()) and the optimiser's decay mode
  /// (run.optimizer.decay = decoupled | l2). Stored in checkpoints; restore() compares it.
  std::map<std::string, std::string> run_identity() const {
    auto id = train::run_identity(cfg_);
    id["run.optimizer.decay"] = Mode == DecayMode::decoupled ? "decoupled" : "l2";
    return id;
  }
  /// The (validated) configuration.
  const TrainConfig& config() const { return cfg_; }
  /// The optimiser (moments, step count, current lr).
  const Optimizer& optimizer() const { return opt_; }
  /// The learning-rate schedule.
  const WarmupCosine& schedule() const { return schedule_; }
  /// Every evaluation so far, in step order.
  const std::vector<EvalRecord>& history() const { return history_; }
  /// Total gradient 2-norm of the last step (before clipping).
  double last_grad_norm() const { return last_grad_norm_; }
  /// The evaluation set: inputs ((D+1) x (B·(2n-1))) and targets (n x B).
  const Mat<S>& eval_inputs() const { return eval_inputs_; }
  /// Targets of the evaluation set (n x B).
  const Mat<S>& eval_targets() const { return eval_targets_; }
  /// Tokens per training sequence, 2n - 1.
  int T() const { return 2 * cfg_.task.n - 1; }

  /// "step 120/1000 | loss 0.9532 | lr 6.00e-05 | 35.2 steps/s | ETA 25s"
  static std::string progress_line(std::int64_t step, std::int64_t total, double loss, double lr, double rate,
                                   double eta_s) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "step %lld/%lld | loss %.5g | lr %.2e | %.3g steps/s | ETA %s",
                  static_cast<long long>(step), static_cast<long long>(total), loss, lr, rate,
                  duration(eta_s).c_str());
    return buf;
  }

 private:
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.5g", v);
    return buf;
  }
  static std::string duration(double s) {
    const long long t = static_cast<long long>(std::llround(std::max(0.0, s)));
    char buf[40];
    if (t >= 3600)
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
      std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    else
      std::snprintf(buf, sizeof buf, "%llds", t);
    return buf;
  }

  // B fresh tasks from rng, encoded and split into model inputs and targets (Eq. 8).
  void sample_batch(Rng& rng, int B, Mat<S>& inputs, Mat<S>& targets) {
    const int n = cfg_.task.n;
    prompts_.resize(D + 1, static_cast<Eigen::Index>(B) * 2 * n);
    for (int b = 0; b < B; ++b)
      prompts_.middleCols(static_cast<Eigen::Index>(b) * 2 * n, 2 * n) =
          data::encode(data::sample_task<S, D>(cfg_.task, rng));
    nn::split_prompts(prompts_, n, inputs, targets);
  }

  Model& model_;
  TrainConfig cfg_;
  std::vector<nn::ParamView<S>> params_;
  Optimizer opt_;
  WarmupCosine schedule_;
  Rng rng_;
  nn::BatchLoss<Model> loss_;
  std::ostream* log_;
  std::int64_t step_ = 0;
  double window_loss_ = 0;
  std::int64_t window_steps_ = 0;
  double last_grad_norm_ = 0;
  bool interrupted_ = false;
  std::function<void(const Progress&)> on_progress_;
  Mat<S> prompts_, inputs_, targets_, eval_inputs_, eval_targets_;
  typename Model::Cache eval_cache_;
  std::vector<EvalRecord> history_;
};

}  // namespace icl::train
