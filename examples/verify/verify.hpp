// verify: shared declarations of the example's translation units (one per scalar type and d, so that
// the dozen transformer types it instantiates compile in parallel; see main.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "icl/construct/program.hpp"

namespace verify {

/// The chains of docs/constructions.md §3 and the w-form ridge of §4.4.
enum class ChainId { thm1, thm2, sgd, ridge, ridge_w };
inline const char* chain_name(ChainId c) {
  switch (c) {
    case ChainId::thm1:
      return "Thm 1 (GD step)";
    case ChainId::thm2:
      return "Thm 2 (ridge step)";
    case ChainId::sgd:
      return "SGD";
    case ChainId::ridge:
      return "ridge (S-M)";
    case ChainId::ridge_w:
      return "ridge (w-form)";
  }
  return "?";
}

/// Parameters of one measurement. Theorem 1 runs one GD step from a fixed random w0 with (alpha1,
/// lambda1); Theorems 1 and 2 always use one example.
struct Settings {
  int n = 10;     ///< examples of the SGD / ridge chains
  int draws = 2;  ///< random tasks (each with a query) per measurement
  double lr = 0.05, lambda_sgd = 0.1, lambda_ridge = 0.5, alpha1 = 0.05, lambda1 = 0.3;
  std::uint64_t seed = 12;
};

/// One measurement: the max abs error of every prediction of the realised transformer (all x-tokens
/// and the query) against the classical algorithm computed in long double from the same (rounded to S)
/// inputs; the largest |prediction|; the build time and the evaluation time per task.
struct Cell {
  double err = 0, max_abs_pred = 0, build_s = 0, eval_s = 0;
  icl::construct::Resources res;
};

/// Builds `chain` for dimension D in scalar S and measures it (chains.hpp; instantiated in
/// chains_<S>_d<D>.cpp).
template <class S, int D>
Cell run_chain(ChainId chain, const Settings& s);

extern template Cell run_chain<float, 8>(ChainId, const Settings&);
extern template Cell run_chain<double, 8>(ChainId, const Settings&);
extern template Cell run_chain<long double, 8>(ChainId, const Settings&);
extern template Cell run_chain<double, 2>(ChainId, const Settings&);
extern template Cell run_chain<double, 4>(ChainId, const Settings&);

/// The per-primitive error-law tables (mov vs γ, mul vs N and K, mul vs P, div vs M and |c|, every
/// scalar type at its defaults): sweeps.cpp.
void primitive_sweeps();

}  // namespace verify
