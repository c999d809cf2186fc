// A compile-time row range must lie inside a fixed-height hidden state.
#include "icl/construct/primitives.hpp"
int main() {
  Eigen::Matrix<double, 4, Eigen::Dynamic> h = Eigen::Matrix<double, 4, Eigen::Dynamic>::Zero(4, 2);
  using icl::construct::RowRange;
  icl::construct::mul<2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 5}>(h);
}
