// Quickstart: samples an ICL regression task and shows its token encoding (docs/data.md).

#include <icl/icl.hpp>
#include <iomanip>
#include <iostream>

int main() {
  icl::Rng rng(42);
  const icl::data::TaskDistribution dist{.n = 3, .x_std = 1, .w_std = 1, .noise_std = 0};
  const auto task = icl::data::sample_task<double, 2>(dist, rng);
  const auto tokens = icl::data::encode(task, icl::data::sample_x<double, 2>(dist, rng));
  std::cout << "icl quickstart: one task in d = 2 with n = 3 examples and a query\n"
            << "w = " << task.w.transpose() << "\n"
            << "tokens (rows: y slot, x1, x2; columns: x~1 y~1 x~2 y~2 x~3 y~3 x~q):\n"
            << std::fixed << std::setprecision(3) << tokens << "\n";
  return 0;
}
