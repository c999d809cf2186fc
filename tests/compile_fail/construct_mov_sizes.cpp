// mov's source and target ranges must have the same size.
#include "icl/construct/primitives.hpp"
int main() {
  Eigen::Matrix<double, 8, Eigen::Dynamic> h = Eigen::Matrix<double, 8, Eigen::Dynamic>::Zero(8, 2);
  using icl::construct::RowRange;
  icl::construct::mov<RowRange{0, 2}, RowRange{2, 5}>(h, icl::construct::ColumnMap::relative(1));
}
