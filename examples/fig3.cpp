// The paper's Fig. 3a at CPU scale (docs/reproduction.md): depth phases, noiseless, d = 8. One model
// per depth L (same width), each compared with the paper's legend algorithms by MSPD/d over the
// under-determined prefixes 1..d-1 (the online protocol: one causal forward pass per context).
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include "fig_common.hpp"
#include "icl/io/csv.hpp"
#include "icl/metrics.hpp"

namespace {

const char* kUsage = R"(fig3 — the paper's Fig. 3a (depth phases, noiseless, d = 8) at CPU scale

  fig3 [--depths 1,2,4,8,16] [--steps 6000] [--batch 64] [--lr 1e-3] [--threads 2] [--seed 0]
       [--contexts 512] [--out .] [--resume] [--quick]

Per depth L: trains a pre-LN model (H = 64, 4 heads, float, n = 40) with icl::train::Trainer
(<out>/fig3_L<L>_checkpoint.safetensors every 500 steps; --resume continues from it; a depth whose
<out>/fig3_L<L>.safetensors exists is not retrained with --resume), then metrics::evaluate_online
over --contexts fresh tasks. Writes <out>/fig3.csv (layers, predictor, mspd, ci95, mspd_per_dim,
ci95_per_dim, train_seconds, resumed_from_step: the wall seconds of this invocation's training, from
that step; nan and -1 for a model loaded by --resume) and prints MSPD/d per depth against OLS, ridge(0.1), ridge(0.5), kNN(3, weighted and
uniform), SGD(0.03), GD(0.02), SGD(0.01), GD(0.01) (GD: one step of batch gradient descent).

Default = the documented CPU-scale run: 6,000 steps per depth; the cost grows with L (31 layers in
all: ~7.75x a 4-layer run of 6,000 steps, about 40 min on 2 cores with -DICL_EXAMPLES_ARCH=native on
an AVX-512 machine by the issue's 19.5 steps/s at L = 4; ~2x that with the portable build).
--quick: depths 1,2, 20 steps, n = 10, 8 contexts (seconds; the CTest run;
options given explicitly win).
)";

}  // namespace

int main(int argc, char** argv) try {
  fig::Options o(argc, argv, kUsage,
                 {{"depths", "1,2,4,8,16"},
                  {"steps", "6000"},
                  {"batch", "64"},
                  {"lr", "1e-3"},
                  {"threads", "2"},
                  {"seed", "0"},
                  {"contexts", "512"},
                  {"out", "."},
                  {"resume", "false"},
                  {"quick", "false"},
                  {"n", "40"}});
  if (o.flag("quick")) {
    o.preset("depths", "1,2");
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
  std::vector<int> depths;
  {
    std::stringstream ss(o.str("depths"));
    for (std::string t; std::getline(ss, t, ',');) depths.push_back(std::stoi(t));
  }
  const std::vector<mt::PromptPredictor<double>> legend = {
      mt::prompt_predictor<double, D>(rg::Ols{}),
      mt::prompt_predictor<double, D>(rg::Ridge{0.1}),
      mt::prompt_predictor<double, D>(rg::Ridge{0.5}),
      mt::prompt_predictor<double, D>(rg::Knn{3, rg::KnnWeights::inverse_square}, "kNN(3, weighted)"),
      mt::prompt_predictor<double, D>(rg::Knn{3, rg::KnnWeights::uniform}),
      mt::prompt_predictor<double, D>(rg::Sgd{0.03}),
      mt::prompt_predictor<double, D>(rg::Gd{0.02}),
      mt::prompt_predictor<double, D>(rg::Sgd{0.01}),
      mt::prompt_predictor<double, D>(rg::Gd{0.01})};
  icl::io::CsvWriter csv(out + "/fig3.csv", {"layers", "predictor", "mspd", "ci95", "mspd_per_dim",
                                             "ci95_per_dim", "train_seconds", "resumed_from_step"});
  const icl::data::TaskDistribution dist{o.integer("n")};
  for (const int L : depths) {
    fig::Model<D> model(L);
    const std::string stem = out + "/fig3_L" + std::to_string(L);
    // A model loaded by --resume was not trained here: its time is in the log of the run that trained it.
    double secs = std::numeric_limits<double>::quiet_NaN();
    long long resumed_from = -1;  // -1: loaded; 0: trained from scratch; k: resumed at step k
    if (o.flag("resume") && std::filesystem::exists(stem + ".safetensors")) {
      fig::load_weights<D>(stem + ".safetensors", model);
      std::cout << "L = " << L << ": loaded " << stem << ".safetensors\n";
    } else {
      fig::TrainSpec spec;
      spec.layers = L;
      spec.steps = o.int64("steps");
      spec.batch = o.integer("batch");
      spec.lr = o.real("lr");
      spec.threads = o.integer("threads");
      spec.seed = std::stoull(o.str("seed")) + static_cast<std::uint64_t>(L);
      spec.task = dist;
      spec.checkpoint = stem + "_checkpoint.safetensors";
      spec.resume = o.flag("resume");
      spec.log_every = std::max<long long>(1, spec.steps / 20);
      std::cout << "L = " << L << ": training\n";
      const fig::TrainResult tr = fig::train<D>(model, spec, std::cout);
      secs = tr.seconds;
      resumed_from = tr.resumed_from_step;
      fig::save_model<D>(model, stem + ".safetensors");
    }
    std::vector<mt::PromptPredictor<double>> preds = legend;
    preds.push_back(mt::cast_predictor<double>(mt::model_predictor<D>(model, "Transformer")));
    mt::OnlineOptions oo;
    oo.n_contexts = o.integer("contexts");
    icl::Rng rng(std::stoull(o.str("seed")) + 3000);  // the same evaluation tasks for every depth
    const auto res = mt::evaluate_online<double, D>(dist, preds, oo, rng);
    std::cout << "L = " << L << ": MSPD/d (prefixes 1.." << std::min(D, dist.n) - 1
              << ") to the transformer:";
    std::string best;
    double best_v = 1e300;
    for (const auto& p : legend) {
      const auto s = mt::mspd_of(res.table, p.name, "Transformer");
      csv.row(L, p.name, s.mean, s.ci95, s.mean / D, s.ci95 / D, secs, resumed_from);
      std::cout << std::setprecision(3) << "  " << p.name << " " << s.mean / D;
      if (s.mean < best_v) {
        best_v = s.mean;
        best = p.name;
      }
    }
    csv.flush();
    std::cout << "\n  best match at L = " << L << ": " << best << " (MSPD/d " << best_v / D << "); ";
    if (resumed_from < 0)
      std::cout << "model loaded from its file\n";
    else
      std::cout << "trained here in " << secs << " s from step " << resumed_from << "\n";
  }
  std::cout << "wrote " << out << "/fig3.csv\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "fig3: " << e.what() << "\n";
  return 1;
}
