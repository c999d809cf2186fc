// Placeholder main demo; grows with the library.
#include <icl/icl.hpp>
#include <iostream>
int main() {
  icl::Rng rng(0);
  const auto t = icl::data::sample_task<double, 8>({.n = 40}, rng);
  std::cout << icl::data::encode(t).cols() << "\n";
}
