// The model shapes icl_cell compiles for d = 12 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 1 min of compile time; the
// list is compiled with -DICL_CELL_SHAPES=paper, examples/CMakeLists.txt).
#include "cell.hpp"

namespace cell {
#if defined(ICL_CELL_NO_SHAPES)  // d not in -DICL_CELL_DIMS: no model for this d in this build
using ShapesD12 = ShapeList<12>;
#elif defined(ICL_CELL_MINIMAL_SHAPES)  // -DICL_CELL_SHAPES=minimal, the default: the tests' shape
using ShapesD12 = ShapeList<12, HM<64, 4> >;
#else
using ShapesD12 = ShapeList<12, HM<16, 4>, HM<32, 4>, HM<64, 1>, HM<64, 4> >;
#endif
bool run_d12(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD12::run(s, f, threads, check);
}
std::vector<Shape> shapes_d12() { return ShapesD12::list(); }
}  // namespace cell
