// verify --sweeps: the per-primitive error laws (docs/constructions.md Tables A-D, F). Each primitive is
// a one-op program on a small layout, compiled into one paper block, run against the exact interpreter.
#include <cstdio>
#include <cstring>
#include <vector>

#include "icl/construct.hpp"
#include "verify.hpp"

namespace verify {

namespace {

using namespace icl::construct;
using LD = long double;

Layout test_layout() {
  Layout L;
  L.add("X", 4), L.add("Y", 4), L.add("c", 1), L.add("W", 4), L.add("Z", 3);
  return L;
}

// 16 data rows x 6 columns of N(0,1) entries; the divisor row c has |c| in [cmin, 4 cmin).
Eigen::MatrixXd random_state(std::uint64_t seed, double cmin) {
  icl::Rng rng(seed);
  Eigen::MatrixXd h(16, 6);
  for (int c = 0; c < 6; ++c) {
    for (int r = 0; r < 16; ++r) h(r, c) = rng.normal();
    h(8, c) = (rng.uniform() < 0.5 ? -1 : 1) * cmin * rng.uniform(1, 4);
  }
  return h;
}

// Max abs error of the realised one-op program against the exact op over 5 random states. H = 22: 16
// data rows + the realisation's ONE, RHO1, RHO2, PADP, PADM, ZERO rows; F = 48 >= any op's MLP width.
// With `calibrated`, mul's operand hints are calibrated on the same states (calibrate_hints, as the chain
// builders do); otherwise every hint is 1 (operands up to ~3-4 in magnitude).
template <class S>
double primitive_error(const Program<S>& p, const Constants& k, double cmin = 1, bool calibrated = false) {
  std::vector<Eigen::Matrix<S, -1, -1>> states;
  for (std::uint64_t s = 0; s < 5; ++s) states.push_back(random_state(900 + s, cmin).cast<S>());
  const auto model =
      compile<S, 22, 48>(p, 6, k, calibrated ? calibrate_hints(p, states) : std::vector<OperandHint>{});
  double e = 0;
  for (const auto& h0 : states)
    e = std::max(e, static_cast<double>((model.run(h0) - p.run(h0)).cwiseAbs().maxCoeff()));
  return e;
}

enum class Op { mov, mul, div };
template <class S>
Program<S> one_op(Op op) {
  Program<S> p(test_layout());
  const RowRange X{0, 4}, Y{4, 8}, W{9, 13};
  if (op == Op::mov) p.mov(ColumnMap::relative(2), X, W);
  if (op == Op::mul) p.mul(1, 4, 1, X, Y, RowRange::row(9));  // a dot product of length 4
  if (op == Op::div) p.div(X, 8, W);
  return p;
}

template <class S>
void defaults_row(const char* name) {
  const Constants k = Constants::defaults<S>();
  std::printf("| %s | %g | %g | %d | %g | %.1e | %.1e | %.1e | %.1e |\n", name, k.gamma, k.N, k.K, k.P,
              primitive_error(one_op<S>(Op::mov), k), primitive_error(one_op<S>(Op::mul), k, 1, true),
              primitive_error(one_op<S>(Op::mul), k), primitive_error(one_op<S>(Op::div), k));
}

}  // namespace

void primitive_sweeps() {
  const Constants k0 = Constants::defaults<double>();
  std::printf("\n### Table A: mov (offset 2) vs the attention margin γ (double)\n\n| γ |");
  const double gammas[] = {5, 10, 20, 30, 40, 50};
  for (double g : gammas) std::printf(" %g |", g);
  std::printf("\n|---|---|---|---|---|---|---|\n| max abs error |");
  for (double g : gammas) {
    Constants k = k0;
    k.gamma = g;
    std::printf(" %.1e |", primitive_error(one_op<double>(Op::mov), k));
  }
  std::printf(
      "\n\n### Table B: mul (dot product of length 4, N(0,1) operands) vs N and K (double, P = %g)\n\n",
      k0.P);
  std::printf("| N | K=1 | K=2 | K=3 |\n|---|---|---|---|\n");
  for (double N : {10.0, 30.0, 100.0, 320.0, 1e3, 3.2e3, 1e4, 1e5, 1e6}) {
    std::printf("| %g |", N);
    for (int K = 1; K <= 3; ++K) {
      Constants k = k0;
      k.N = N;
      k.K = K;
      std::printf(" %.1e |", primitive_error(one_op<double>(Op::mul), k));
    }
    std::printf("\n");
  }
  std::printf("\n### Table C: mul vs the LayerNorm pad P (K = %d, N = %g) and div vs M (|c| in [1, 4))\n\n",
              k0.K, k0.N);
  std::printf("| P or M | mul (P) | div (M) |\n|---|---|---|\n");
  for (double P : {1e2, 1e3, 1e4, 1e6, 1e8, 1e10, 1e12}) {
    Constants k = k0;
    k.P = P;
    k.M = P;
    std::printf("| %g | %.1e | %.1e |\n", P, primitive_error(one_op<double>(Op::mul), k),
                primitive_error(one_op<double>(Op::div), k));
  }
  std::printf(
      "\n### Table D: div vs the divisor size |c| (M = %g, double)\n\n| |c| ≥ | max abs error |\n|---|---|\n",
      k0.M);
  for (double c : {1.0, 1e-2, 1e-4, 1e-6})
    std::printf("| %g | %.1e |\n", c, primitive_error(one_op<double>(Op::div), k0, c));

  std::printf("\n### Table F: per-primitive errors of each scalar type at its defaults\n\n");
  std::printf(
      "| scalar | γ | N | K | P = M | mov | mul (calibrated hints) | mul (hints 1) | div |\n"
      "|---|---|---|---|---|---|---|---|---|\n");
  defaults_row<float>("float");
  defaults_row<double>("double");
  defaults_row<LD>("long double");
  std::fflush(stdout);
}

}  // namespace verify
