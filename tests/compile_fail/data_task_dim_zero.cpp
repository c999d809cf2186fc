// Must not compile: a task in zero dimensions.
#include "icl/data/task.hpp"
int main() {
  icl::data::Task<double, 0> t;
  return t.n();
}
