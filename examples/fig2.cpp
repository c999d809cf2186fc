// The paper's Fig. 2 at CPU scale (docs/reproduction.md): noisy regression, d = 8. One model per
// (σ, τ) of the paper's grid; the dimension-normalised MSPD of (Ridge(λ), model) for λ ∈ {0 (least
// squares), 1/16, 1/9, 1/4, 4/9} against σ²/τ² (online protocol, under-determined prefixes 1..d-1).
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <limits>
#include <string>

#include "fig_common.hpp"
#include "icl/io/csv.hpp"
#include "icl/metrics.hpp"

namespace {

const char* kUsage = R"(fig2 — the paper's Fig. 2 (noisy, d = 8, n = 40) at CPU scale

  fig2 [--steps 6000] [--layers 4] [--batch 64] [--lr 1e-3] [--threads 2] [--seed 0]
       [--contexts 1024] [--out .] [--resume] [--quick]

For each (σ, τ) ∈ {(0, 1), (0.25, 1), (0.5, 1.5), (0.5, 1), (0.5, 0.75)} (σ²/τ² = 0, 1/16, 1/9, 1/4,
4/9): trains a pre-LN model (L = --layers, H = 64, 4 heads, float) on y = wᵀx + σε, w ~ N(0, τ²I)
(<out>/fig2_<k>_checkpoint.safetensors every 500 steps, --resume continues; a grid point whose
<out>/fig2_<k>.safetensors exists is not retrained with --resume), then metrics::evaluate_online over
--contexts tasks of the same distribution. Writes <out>/fig2.csv (sigma, tau, ratio, lambda,
predictor, mspd, ci95, mspd_per_dim, ci95_per_dim, train_seconds, resumed_from_step: the wall seconds
of this invocation's training, from that step; nan and -1 for a model loaded by --resume) and prints
the table of MSPD/d with each column's minimum marked.

Default = the documented CPU-scale run: 5 models x 6,000 steps at L = 4 (about 25 min on 2 cores with
-DICL_EXAMPLES_ARCH=native on an AVX-512 machine by the issue's 19.5 steps/s; ~2x with the portable
build) plus ~1 min of evaluation.
--quick: 20 steps, n = 10, 8 contexts (seconds; the CTest run;
options given explicitly win).
)";

}  // namespace

int main(int argc, char** argv) try {
  fig::Options o(argc, argv, kUsage,
                 {{"steps", "6000"},
                  {"layers", "4"},
                  {"batch", "64"},
                  {"lr", "1e-3"},
                  {"threads", "2"},
                  {"seed", "0"},
                  {"contexts", "1024"},
                  {"out", "."},
                  {"resume", "false"},
                  {"quick", "false"},
                  {"n", "40"}});
  if (o.flag("quick")) {
    o.preset("steps", "20");
    o.preset("n", "10");
    o.preset("contexts", "8");
    o.preset("batch", "8");
  }
  constexpr int D = 8;
  namespace mt = icl::metrics;
  namespace rg = icl::regress;
  const std::string out = o.str("out");
  fig::ensure_dir(out);
  const double grid[5][2] = {{0, 1}, {0.25, 1}, {0.5, 1.5}, {0.5, 1}, {0.5, 0.75}};
  const double lambdas[5] = {0, 1.0 / 16, 1.0 / 9, 1.0 / 4, 4.0 / 9};
  const char* lnames[5] = {"Lstsq", "Ridge(1/16)", "Ridge(1/9)", "Ridge(1/4)", "Ridge(4/9)"};
  std::vector<mt::PromptPredictor<double>> legend = {mt::prompt_predictor<double, D>(rg::Ols{}, lnames[0])};
  for (int k = 1; k < 5; ++k)
    legend.push_back(mt::prompt_predictor<double, D>(rg::Ridge{lambdas[k]}, lnames[k]));
  icl::io::CsvWriter csv(out + "/fig2.csv",
                         {"sigma", "tau", "ratio", "lambda", "predictor", "mspd", "ci95", "mspd_per_dim",
                          "ci95_per_dim", "train_seconds", "resumed_from_step"});
  double table[5][5];
  for (int g = 0; g < 5; ++g) {
    const double sigma = grid[g][0], tau = grid[g][1];
    const icl::data::TaskDistribution dist{o.integer("n"), 1.0, tau, sigma};
    fig::Model<D> model(o.integer("layers"));
    const std::string stem = out + "/fig2_" + std::to_string(g);
    // A model loaded by --resume was not trained here: its time is in the log of the run that trained it.
    double secs = std::numeric_limits<double>::quiet_NaN();
    long long resumed_from = -1;  // -1: loaded; 0: trained from scratch; k: resumed at step k
    if (o.flag("resume") && std::filesystem::exists(stem + ".safetensors")) {
      fig::load_weights<D>(stem + ".safetensors", model);
    } else {
      fig::TrainSpec spec;
      spec.layers = o.integer("layers");
      spec.steps = o.int64("steps");
      spec.batch = o.integer("batch");
      spec.lr = o.real("lr");
      spec.threads = o.integer("threads");
      spec.seed = std::stoull(o.str("seed")) + 100 + static_cast<std::uint64_t>(g);
      spec.task = dist;
      spec.checkpoint = stem + "_checkpoint.safetensors";
      spec.resume = o.flag("resume");
      spec.log_every = std::max<long long>(1, spec.steps / 20);
      std::cout << "sigma = " << sigma << ", tau = " << tau << ": training\n";
      const fig::TrainResult tr = fig::train<D>(model, spec, std::cout);
      secs = tr.seconds;
      resumed_from = tr.resumed_from_step;
      fig::save_model<D>(model, stem + ".safetensors");
    }
    std::vector<mt::PromptPredictor<double>> preds = legend;
    preds.push_back(mt::cast_predictor<double>(mt::model_predictor<D>(model, "Transformer")));
    mt::OnlineOptions oo;
    oo.n_contexts = o.integer("contexts");
    icl::Rng rng(std::stoull(o.str("seed")) + 2000 + static_cast<std::uint64_t>(g));
    const auto res = mt::evaluate_online<double, D>(dist, preds, oo, rng);
    for (int k = 0; k < 5; ++k) {
      const auto s = mt::mspd_of(res.table, lnames[k], "Transformer");
      table[k][g] = s.mean / D;
      csv.row(sigma, tau, sigma * sigma / (tau * tau), lambdas[k], lnames[k], s.mean, s.ci95, s.mean / D,
              s.ci95 / D, secs, resumed_from);
    }
    csv.flush();
  }
  std::cout << "MSPD/d of (algorithm, transformer), prefixes 1.." << std::min(D, o.integer("n")) - 1
            << "; * = column minimum\n"
            << std::setw(14) << "sigma^2/tau^2";
  for (const char* r : {"0", "1/16", "1/9", "1/4", "4/9"}) std::cout << std::setw(12) << r;
  std::cout << "\n";
  int on_diagonal = 0;
  for (int k = 0; k < 5; ++k) {
    std::cout << std::setw(14) << lnames[k];
    for (int g = 0; g < 5; ++g) {
      int arg = 0;
      for (int j = 1; j < 5; ++j)
        if (table[j][g] < table[arg][g]) arg = j;
      std::cout << std::setw(11) << std::setprecision(3) << table[k][g] << (arg == k ? "*" : " ");
      if (k == 0 && arg == g) ++on_diagonal;
    }
    std::cout << "\n";
  }
  std::cout << "column minimum on the Bayes-optimal lambda = sigma^2/tau^2 in " << on_diagonal
            << " of 5 columns (paper: 5 of 5); wrote " << out << "/fig2.csv\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "fig2: " << e.what() << "\n";
  return 1;
}
