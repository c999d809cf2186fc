// The paper's Fig. 4 at CPU scale (docs/reproduction.md, docs/probe.md): probing a trained d = 4
// model, layer by layer, for XᵀY and the min-norm w_OLS after n exemplars, with a linear and an MLP
// probe (position attention, icl::probe), against the control model trained with the fixed w = 1.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "fig_common.hpp"
#include "icl/io/csv.hpp"
#include "icl/probe.hpp"

namespace {

const char* kUsage = R"(fig4_probe — the paper's Fig. 4 (probing, d = 4) at CPU scale

  fig4_probe [--layers 8] [--steps 6000] [--batch 64] [--lr 1e-3] [--threads 2] [--seed 0]
             [--ns 1,2,3,4,6,8,12,16] [--prompts 2048] [--probe-steps 600] [--probe-batch 256]
             [--probe-lr 1e-3] [--width 64] [--mlp 64] [--out .] [--resume] [--quick]

Trains two pre-LN models (L = --layers, H = 64, 4 heads, float, n = 40): "main" on w ~ N(0, I) and
"control" on the fixed w = 1 (TaskDistribution::w_mean = 1, w_std = 0), with checkpoints
<out>/fig4_<model>_checkpoint.safetensors every 500 steps (--resume continues; a model whose
<out>/fig4_<model>.safetensors exists is not retrained with --resume). Then, for both models, every n
in --ns, every layer 0..L (0 = the embedding), the targets XᵀY and w_OLS after n exemplars and both
read-outs: one probe each (icl::probe::fit_probe: --prompts prompts of n exemplars drawn with Gaussian w,
75% train / 25% held out, --probe-steps Adam steps of --probe-batch prompts, H' = --width, MLP units
--mlp, standardised hidden rows). Writes <out>/fig4_per_n.csv (model, target, readout, layer, n, mse,
r2, train_mse) and <out>/fig4.csv (the mean over n of mse and 1 - R² per model, target, read-out, layer).

Default = the documented CPU-scale run: 2 models x 6,000 steps at L = 8, d = 4 (about 20 min on 2 cores
with -DICL_EXAMPLES_ARCH=native on an AVX-512 machine, by the issue's 19.5 steps/s at L = 4, d = 8) and
2 x 9 x 8 x 2 x 2 = 576 probes (~10 min).
--quick: L = 2, 20 steps, n = 10, ns 1,2,4, 64 prompts, 20 probe steps (seconds; the CTest run;
options given explicitly win).
)";

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) v.push_back(std::stoi(t));
  return v;
}

}  // namespace

int main(int argc, char** argv) try {
  fig::Options o(argc, argv, kUsage,
                 {{"layers", "8"},
                  {"steps", "6000"},
                  {"batch", "64"},
                  {"lr", "1e-3"},
                  {"threads", "2"},
                  {"seed", "0"},
                  {"ns", "1,2,3,4,6,8,12,16"},
                  {"prompts", "2048"},
                  {"probe-steps", "600"},
                  {"probe-batch", "256"},
                  {"probe-lr", "1e-3"},
                  {"width", "64"},
                  {"mlp", "64"},
                  {"out", "."},
                  {"resume", "false"},
                  {"quick", "false"},
                  {"n", "40"}});
  if (o.flag("quick")) {
    o.preset("layers", "2");
    o.preset("steps", "20");
    o.preset("batch", "8");
    o.preset("n", "10");
    o.preset("ns", "1,2,4");
    o.preset("prompts", "64");
    o.preset("probe-steps", "20");
    o.preset("probe-batch", "16");
    o.preset("width", "8");
    o.preset("mlp", "8");
  }
  constexpr int D = 4;
  namespace pb = icl::probe;
  const std::string out = o.str("out");
  fig::ensure_dir(out);
  const int L = o.integer("layers");
  const std::vector<int> ns = parse_list(o.str("ns"));
  for (const int n : ns)
    if (n < 1 || 2 * n > fig::kTMax)
      throw icl::InvalidArgument("--ns: n = " + std::to_string(n) +
                                 " needs 2n tokens, expected 1 <= n <= " + std::to_string(fig::kTMax / 2));
  icl::io::CsvWriter per_n(out + "/fig4_per_n.csv",
                           {"model", "target", "readout", "layer", "n", "mse", "r2", "train_mse"});
  // (model, target, readout, layer) -> sums over n of mse and 1 - R²
  std::map<std::tuple<std::string, std::string, std::string, int>, std::pair<double, double>> sums;
  const auto t_start = std::chrono::steady_clock::now();
  for (const std::string which : {"main", "control"}) {
    fig::Model<D> model(L);
    const std::string stem = out + "/fig4_" + which;
    icl::data::TaskDistribution train_dist{o.integer("n")};
    if (which == "control") {
      train_dist.w_mean = 1;
      train_dist.w_std = 0;
    }
    if (o.flag("resume") && std::filesystem::exists(stem + ".safetensors")) {
      fig::load_weights<D>(stem + ".safetensors", model);
    } else {
      fig::TrainSpec spec;
      spec.layers = L;
      spec.steps = o.int64("steps");
      spec.batch = o.integer("batch");
      spec.lr = o.real("lr");
      spec.threads = o.integer("threads");
      spec.seed = std::stoull(o.str("seed")) + (which == "main" ? 400 : 500);
      spec.task = train_dist;
      spec.checkpoint = stem + "_checkpoint.safetensors";
      spec.resume = o.flag("resume");
      spec.log_every = std::max<long long>(1, spec.steps / 20);
      std::cout << which << " model: training\n";
      fig::train<D>(model, spec, std::cout);
      fig::save_model<D>(model, stem + ".safetensors");
    }
    for (const int n : ns) {
      icl::Rng rng(std::stoull(o.str("seed")) + 7000 +
                   static_cast<std::uint64_t>(n));  // same prompts for both
      const auto set = pb::sample_probe_set<float, D>({n}, n, o.integer("prompts"), rng);
      typename fig::Model<D>::Cache cache;
      model.forward(set.tokens, set.tokens_per_prompt(), cache);
      for (const pb::Target target : {pb::Target::xty, pb::Target::w_ols}) {
        const Eigen::MatrixXf V = set.targets(target);
        for (const pb::Readout readout : {pb::Readout::linear, pb::Readout::mlp}) {
          std::cout << which << " n = " << n << " " << pb::to_string(target) << " " << pb::to_string(readout)
                    << ": 1 - R² per layer";
          for (int l = 0; l <= L; ++l) {
            pb::ProbeShape shape;
            shape.readout = readout;
            shape.width = o.integer("width");
            shape.mlp_hidden = o.integer("mlp");
            pb::FitOptions fo;
            fo.steps = o.integer("probe-steps");
            fo.batch = o.integer("probe-batch");
            fo.lr = o.real("probe-lr");
            fo.seed = static_cast<std::uint64_t>(l);
            const Eigen::MatrixXf H = cache.hidden_state(l);
            const auto fit = pb::fit_probe<float>(H, set.tokens_per_prompt(), V, shape, fo);
            per_n.row(which, pb::to_string(target), pb::to_string(readout), l, n, fit.score.mse, fit.score.r2,
                      fit.score.train_mse);
            auto& s = sums[{which, pb::to_string(target), pb::to_string(readout), l}];
            s.first += fit.score.mse / static_cast<double>(ns.size());
            s.second += (1 - fit.score.r2) / static_cast<double>(ns.size());
            std::cout << " " << std::setprecision(3) << 1 - fit.score.r2;
          }
          std::cout << "\n";
          per_n.flush();
        }
      }
    }
  }
  icl::io::CsvWriter csv(out + "/fig4.csv", {"model", "target", "readout", "layer", "mse", "one_minus_r2"});
  for (const auto& [k, v] : sums)
    csv.row(std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), v.first, v.second);
  csv.flush();
  // the paper's claims, read off the means over n (main model)
  const auto err = [&](const std::string& m, const std::string& t, const std::string& r, int l) {
    return sums.at({m, t, r, l}).second;
  };
  int mlp_wins = 0, cells = 0;
  for (const char* t : {"xty", "w_ols"})
    for (int l = 0; l <= L; ++l, ++cells)
      mlp_wins += err("main", t, "mlp", l) < err("main", t, "linear", l) ? 1 : 0;
  std::cout << "MLP probe better than linear at " << mlp_wins << " of " << cells
            << " (target, layer) cells\n";
  for (const char* t : {"xty", "w_ols"}) {
    int first = -1;
    for (int l = 0; l <= L && first < 0; ++l)
      if (err("main", t, "mlp", l) < 0.1) first = l;
    std::cout << t << ": 1 - R² (MLP) at layer 0 " << err("main", t, "mlp", 0) << ", at layer " << L << " "
              << err("main", t, "mlp", L) << "; control at layer " << L << " " << err("control", t, "mlp", L)
              << "; first layer with 1 - R² < 0.1: " << first << "\n";
  }
  std::cout << "wall time "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()
            << " s; wrote " << out << "/fig4.csv, " << out << "/fig4_per_n.csv\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "fig4_probe: " << e.what() << "\n";
  return 1;
}
