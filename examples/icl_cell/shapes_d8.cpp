// The model shapes icl_cell compiles for d = 8 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 1 min of compile time; the
// list is compiled with -DICL_CELL_SHAPES=paper, examples/CMakeLists.txt).
#include "cell.hpp"

namespace cell {
#if defined(ICL_CELL_NO_SHAPES)  // d not in -DICL_CELL_DIMS: no model for this d in this build
using ShapesD8 = ShapeList<8>;
#elif defined(ICL_CELL_MINIMAL_SHAPES)  // -DICL_CELL_SHAPES=minimal, the default: the tests' shape
using ShapesD8 = ShapeList<8, HM<64, 4> >;
#else
using ShapesD8 = ShapeList<8, HM<16, 4>, HM<32, 4>, HM<64, 1>, HM<64, 4>, HM<128, 4>, HM<256, 4> >;
#endif
bool run_d8(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD8::run(s, f, threads, check);
}
std::vector<Shape> shapes_d8() { return ShapesD8::list(); }
}  // namespace cell
