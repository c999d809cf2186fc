// div's target must be disjoint from its inputs: writing over the divisor row is rejected.
#include "icl/construct/primitives.hpp"
int main() {
  Eigen::Matrix<double, 8, Eigen::Dynamic> h = Eigen::Matrix<double, 8, Eigen::Dynamic>::Zero(8, 2);
  using icl::construct::RowRange;
  icl::construct::div<RowRange{0, 2}, 2, RowRange{2, 4}>(h);
}
