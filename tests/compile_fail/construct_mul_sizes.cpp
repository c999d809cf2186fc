// mul's target range must have a*c rows (footnote 1, corrected): 2x1 times 1x1 needs 2 rows, not 3.
#include "icl/construct/primitives.hpp"
int main() {
  Eigen::Matrix<double, 8, Eigen::Dynamic> h = Eigen::Matrix<double, 8, Eigen::Dynamic>::Zero(8, 2);
  using icl::construct::RowRange;
  icl::construct::mul<2, 1, 1, RowRange{0, 2}, RowRange{2, 3}, RowRange{3, 6}>(h);
}
