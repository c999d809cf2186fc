// Trains the paper's small in-context learner (d = 8, n = 40, L = 4, H = 64, M = 4, pre-LN
// blocks, float) on fresh linear-regression tasks, with a progress line, periodic evaluation,
// a safetensors checkpoint and the learning curve as CSV.
//
//   train [--steps 2000] [--batch 64] [--lr 1e-3] [--n 40] [--threads 1] [--seed 0]
//         [--eval-every 100] [--eval-batch 256] [--log-every 10] [--out .] [--resume FILE]
//
// Writes <out>/train_checkpoint.safetensors, <out>/learning_curve.csv (step, train_loss,
// eval_loss), <out>/prefix_loss.csv (prefix, eval_loss at the end) and <out>/spd_vs_ols.csv (SPD
// against online least squares per prefix). See docs/train.md.
#include <cstdlib>
#include <iostream>
#include <string>

#include "icl/io/csv.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/regress/online.hpp"
#include "icl/train/signals.hpp"
#include "icl/train/trainer.hpp"

namespace {

constexpr int kD = 8, kMaxN = 40, kH = 64, kM = 4, kF = 4 * kH, kTMax = 2 * kMaxN - 1;
using Model = icl::nn::PreLNTransformer<float, kD, kH, kM, kF, kTMax>;

struct Args {
  icl::train::TrainConfig cfg;
  int layers = 4;
  std::string out = ".";
  std::string resume;
};

Args parse(int argc, char** argv) {
  Args a;
  a.cfg.steps = 2000;
  a.cfg.batch = 64;
  a.cfg.task.n = kMaxN;
  a.cfg.optimizer.lr = 1e-3;  // the paper's 1e-4 is for 500k steps; a short run needs more
  a.cfg.eval_every = 100;
  a.cfg.eval_batch = 256;
  a.cfg.log_every = 10;
  a.cfg.clip_norm = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw icl::InvalidArgument("train: option " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--steps")
      a.cfg.steps = std::stoll(v);
    else if (k == "--batch")
      a.cfg.batch = std::stoi(v);
    else if (k == "--lr")
      a.cfg.optimizer.lr = std::stod(v);
    else if (k == "--n")
      a.cfg.task.n = std::stoi(v);
    else if (k == "--threads")
      a.cfg.batch_options.threads = std::stoi(v);
    else if (k == "--seed")
      a.cfg.seed = std::stoull(v);
    else if (k == "--eval-every")
      a.cfg.eval_every = std::stoll(v);
    else if (k == "--eval-batch")
      a.cfg.eval_batch = std::stoi(v);
    else if (k == "--log-every")
      a.cfg.log_every = std::stoll(v);
    else if (k == "--layers")
      a.layers = std::stoi(v);
    else if (k == "--out")
      a.out = v;
    else if (k == "--resume")
      a.resume = v;
    else
      throw icl::InvalidArgument("train: unknown option " + k);
  }
  // the batch is always cut into 4 chunks, whatever --threads says: the result does not depend on the
  // thread count (with one chunk for one thread, 1 and 2 threads would sum the gradient in other orders)
  a.cfg.batch_options.chunk_sequences = (a.cfg.batch + 3) / 4;
  a.cfg.checkpoint_path = a.out + "/train_checkpoint.safetensors";
  a.cfg.checkpoint_every = a.cfg.eval_every;
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  Model model(a.layers);
  icl::Rng init_rng(a.cfg.seed + 1);
  icl::nn::init_uniform_scaling(model.parameters(), init_rng);
  std::cout << "model: d = " << kD << ", n = " << a.cfg.task.n << ", L = " << a.layers << ", H = " << kH
            << ", M = " << kM << ", F = " << kF << ", " << icl::nn::parameter_count(model.parameters())
            << " parameters; " << a.cfg.steps << " steps of batch " << a.cfg.batch << ", lr "
            << a.cfg.optimizer.lr << " (warmup " << a.cfg.steps / 5 << " steps, cosine to 0), "
            << a.cfg.batch_options.threads << " thread(s)\n";
  icl::train::StopSignals stop;  // SIGTERM / SIGINT / SIGUSR1: checkpoint at the next step, exit 75
  icl::train::Trainer<Model> trainer(model, a.cfg, &std::cout);
  if (!a.resume.empty()) {
    trainer.load_checkpoint(a.resume);
    std::cout << "resumed from " << a.resume << " at step " << trainer.step() << "\n";
  }
  icl::io::CsvWriter curve(a.out + "/learning_curve.csv", {"step", "train_loss", "eval_loss"});
  trainer.run([&](const icl::train::EvalRecord& r) {
    curve.row(r.step, r.train_loss, r.eval_loss);
    curve.flush();
  });
  if (trainer.interrupted()) {
    std::cout << "stopped by a signal at step " << trainer.step() << "; resume with --resume "
              << a.cfg.checkpoint_path << "\n";
    return icl::train::kExitInterrupted;
  }
  const icl::train::EvalRecord last = trainer.history().back();
  icl::io::CsvWriter prefix(a.out + "/prefix_loss.csv", {"prefix", "eval_loss"});
  std::cout << "final evaluation (" << a.cfg.eval_batch << " fixed prompts), squared error per prefix "
            << "(prefix i = prediction for x_{i+1} from i examples):\n";
  for (Eigen::Index i = 0; i < last.per_prefix.size(); ++i) {
    prefix.row(i, last.per_prefix(i));
    if (i < 10 || i % 5 == 0 || i + 1 == last.per_prefix.size())
      std::cout << "  prefix " << i << ": " << last.per_prefix(i) << "\n";
  }
  // SPD against least squares per prefix (paper Eq. 15; docs/metrics.md): the trained model and
  // online min-norm OLS predict x_{i+1} from the same i examples of 64 fresh tasks.
  {
    icl::Rng spd_rng(a.cfg.seed + 7);
    const int n = a.cfg.task.n, tasks = 64;
    Eigen::VectorXd spd = Eigen::VectorXd::Zero(n);
    for (int t = 0; t < tasks; ++t) {
      const auto task = icl::data::sample_task<float, kD>(a.cfg.task, spd_rng);
      const icl::data::Tokens<float, kD> tokens = icl::data::encode(task);
      // The model sees 2n-1 tokens, as in training (the last y is never an input).
      const Eigen::VectorXf p = model.predict(tokens.leftCols(2 * n - 1));
      const Eigen::MatrixXd X = task.X.cast<double>();
      const Eigen::VectorXd y = task.y.cast<double>();
      const Eigen::VectorXd q = icl::regress::online_predictions(icl::regress::Ols{}, X, y);
      spd += (p.cast<double>() - q).array().square().matrix();
    }
    spd /= tasks;
    icl::io::CsvWriter spd_csv(a.out + "/spd_vs_ols.csv", {"prefix", "spd", "spd_over_d"});
    std::cout << "SPD against least squares (" << tasks << " fresh tasks), per prefix, and SPD/d:\n";
    for (int i = 0; i < n; ++i) {
      spd_csv.row(i, spd(i), spd(i) / kD);
      if (i < 10 || i % 5 == 0 || i + 1 == n)
        std::cout << "  prefix " << i << ": " << spd(i) << "  (/d: " << spd(i) / kD << ")\n";
    }
    spd_csv.flush();
  }
  std::cout << "wrote " << a.cfg.checkpoint_path << ", " << a.out << "/learning_curve.csv, " << a.out
            << "/prefix_loss.csv, " << a.out << "/spd_vs_ols.csv\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "train: " << e.what() << "\n";
  return 1;
}
