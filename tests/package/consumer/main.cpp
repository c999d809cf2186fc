// A consumer of the installed (or build-tree) package: find_package(icl) + icl::icl.
#include <icl/icl.hpp>

#include <iostream>

int main() {
  icl::Rng rng(7);
  const icl::data::TaskDistribution dist{.n = 5};
  const auto task = icl::data::sample_task<double, 3>(dist, rng);
  const auto tokens = icl::data::encode(task);
  if (tokens.rows() != 4 || tokens.cols() != 10) return 1;
  std::cout << "consumer ok: " << tokens.rows() << "x" << tokens.cols() << "\n";
  return 0;
}
