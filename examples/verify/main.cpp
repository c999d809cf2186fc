// verify: the paper's constructions (Akyürek et al. 2023, Lemma 1, Theorems 1-2) as real transformers.
//
// Builds every chain for d = 8 (Theorem 1 and Theorem 2 for one example; one-pass SGD and online ridge,
// in the moment form and in the w-form, for n examples) as a stack of paper decoder blocks, runs it on
// random tasks in float, double and long double, and prints one table: chain, layers, residual width, MLP
// width, heads, the max abs error against the classical algorithm (icl::regress in long double, on the same
// inputs), and build + evaluation time.
//
//   verify [--n N] [--draws K] [--primitives] [--sweeps]
//     --n N         examples of the SGD / ridge chains (default 10; 1..200)
//     --draws K     random tasks per cell (default 2; 1..100)
//     --primitives  also print the per-primitive error-law tables of docs/constructions.md (seconds)
//     --sweeps      the primitive tables and the chain-error tables vs d, n and the scalar type
//                   (about 15 minutes: long double ridge at n = 40 dominates)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "verify.hpp"

namespace {

using verify::Cell;
using verify::ChainId;
using verify::Settings;

constexpr ChainId kChains[] = {ChainId::thm1, ChainId::thm2, ChainId::sgd, ChainId::ridge, ChainId::ridge_w};

int parse_int(const char* flag, const char* text, int lo, int hi) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "verify: %s: expected an integer in [%d, %d], got '%s'\n", flag, lo, hi, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

std::string label(ChainId c, const Settings& s) {
  std::string name = verify::chain_name(c);
  if (c == ChainId::sgd || c == ChainId::ridge || c == ChainId::ridge_w) name += " n=" + std::to_string(s.n);
  return name;
}

void main_table(const Settings& s) {
  std::printf(
      "Constructed transformers for d = 8: Theorem 1 (one GD step from a random w0, lr %g, λ %g), "
      "Theorem 2 (ridge, λ %g), one-pass SGD (lr %g, λ %g) and online ridge (λ %g), %d tasks each\n",
      s.alpha1, s.lambda1, s.lambda_ridge, s.lr, s.lambda_sgd, s.lambda_ridge, s.draws);
  std::printf(
      "error: max |prediction − classical algorithm (icl::regress, long double)| over all x-tokens "
      "and the query; |p|: largest prediction; times: double\n\n");
  std::printf(
      "| chain | layers | residual | MLP width | heads | err float | err double | err long double "
      "| max |p| | build s | eval s |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const ChainId c : kChains) {
    const Cell f = verify::run_chain<float, 8>(c, s);
    const Cell d = verify::run_chain<double, 8>(c, s);
    const Cell l = verify::run_chain<long double, 8>(c, s);
    std::printf("| %s | %d | %d | %d | %d | %.1e | %.1e | %.1e | %.2g | %.3f | %.3f |\n", label(c, s).c_str(),
                d.res.layers, d.res.residual_width, d.res.mlp_width, d.res.heads, f.err, d.err, l.err,
                d.max_abs_pred, d.build_s, d.eval_s);
    std::fflush(stdout);
  }
}

template <int D>
Cell chain_in_double(ChainId c, const Settings& s) {
  return verify::run_chain<double, D>(c, s);
}

void chain_sweeps(Settings s) {
  std::printf("\n### Table E: the n = 1 paper chains, realised (double, max over %d tasks)\n\n", s.draws);
  std::printf("| d | Thm 1 | Thm 2 |\n|---|---|---|\n");
  std::printf("| 2 | %.1e | %.1e |\n", chain_in_double<2>(ChainId::thm1, s).err,
              chain_in_double<2>(ChainId::thm2, s).err);
  std::printf("| 4 | %.1e | %.1e |\n", chain_in_double<4>(ChainId::thm1, s).err,
              chain_in_double<4>(ChainId::thm2, s).err);
  std::printf("| 8 | %.1e | %.1e |\n", chain_in_double<8>(ChainId::thm1, s).err,
              chain_in_double<8>(ChainId::thm2, s).err);
  std::fflush(stdout);

  const int ns[] = {1, 5, 10, 20, 40};
  std::printf(
      "\n### Table G: multi-example chains, realised (double, max over all n+1 predictions of %d tasks)\n\n",
      s.draws);
  std::printf("| chain | n=1 | 5 | 10 | 20 | 40 | max |p| at n=40 |\n|---|---|---|---|---|---|---|\n");
  for (const ChainId c : {ChainId::sgd, ChainId::ridge, ChainId::ridge_w})
    for (const int d : {2, 4, 8}) {
      std::printf("| %s d=%d |", verify::chain_name(c), d);
      double pmax = 0;
      for (const int n : ns) {
        s.n = n;
        const Cell r = d == 2   ? chain_in_double<2>(c, s)
                       : d == 4 ? chain_in_double<4>(c, s)
                                : chain_in_double<8>(c, s);
        std::printf(" %.1e |", r.err);
        std::fflush(stdout);
        pmax = r.max_abs_pred;
      }
      std::printf(" %.2g |\n", pmax);
    }

  std::printf("\n### Table H: d = 8 chains vs n in float, double and long double (max over %d tasks)\n\n",
              s.draws);
  std::printf("| chain | scalar | n=1 | 5 | 10 | 20 | 40 |\n|---|---|---|---|---|---|---|\n");
  for (const ChainId c : {ChainId::sgd, ChainId::ridge, ChainId::ridge_w})
    for (int t = 0; t < 3; ++t) {
      std::printf("| %s | %s |", verify::chain_name(c), t == 0 ? "float" : t == 1 ? "double" : "long double");
      for (const int n : ns) {
        s.n = n;
        const Cell r = t == 0   ? verify::run_chain<float, 8>(c, s)
                       : t == 1 ? verify::run_chain<double, 8>(c, s)
                                : verify::run_chain<long double, 8>(c, s);
        std::printf(" %.1e |", r.err);
        std::fflush(stdout);
      }
      std::printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bool sweeps = false, primitives = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--n") && has_value) {
      s.n = parse_int("--n", argv[++i], 1, 200);
    } else if (!std::strcmp(argv[i], "--draws") && has_value) {
      s.draws = parse_int("--draws", argv[++i], 1, 100);
    } else if (!std::strcmp(argv[i], "--sweeps")) {
      sweeps = primitives = true;
    } else if (!std::strcmp(argv[i], "--primitives")) {
      primitives = true;
    } else {
      std::fprintf(stderr,
                   "verify: unknown or incomplete argument '%s'\nusage: verify [--n N] [--draws K] "
                   "[--primitives] [--sweeps]\n",
                   argv[i]);
      return 2;
    }
  }
  try {
    main_table(s);
    if (primitives) verify::primitive_sweeps();
    if (sweeps) chain_sweeps(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verify: %s\n", e.what());
    return 1;
  }
  return 0;
}
