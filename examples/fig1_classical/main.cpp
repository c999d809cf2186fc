// The classical half of the paper's Fig. 1 (d = 8, noiseless): SPD/d and ILWD/d of Ridge(0.1),
// GD(0.02), SGD(0.03), kNN(3, uniform) and Averaging against OLS per number of examples.
// Prints the table and writes all per-prefix statistics (mean, 95% CI, ÷d) as CSV (fig1.hpp: the
// predictors, the evaluation and the table).
//
// usage: fig1_classical [contexts=256] [examples=16] [probes=32] [csv=fig1_classical.csv] [seed=0]
#include <cstdlib>
#include <iostream>
#include <string>

#include "fig1.hpp"
#include "icl/metrics.hpp"

int main(int argc, char** argv) {
  fig1::Options opt;
  std::string csv = "fig1_classical.csv";
  if (argc > 1) opt.n_contexts = std::atoi(argv[1]);
  if (argc > 2) opt.n_examples = std::atoi(argv[2]);
  if (argc > 3) opt.n_probes = std::atoi(argv[3]);
  if (argc > 4) csv = argv[4];
  if (argc > 5) opt.seed = std::strtoull(argv[5], nullptr, 10);
  try {
    const icl::metrics::EvalResult res = fig1::classical(opt);
    fig1::print_table(std::cout, res);
    icl::metrics::write_csv(res, csv);
    std::cout << "contexts: " << opt.n_contexts << ", probes: " << opt.n_probes << "; wrote " << csv << "\n";
  } catch (const std::exception& e) {
    std::cerr << "fig1_classical: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
