// The model shapes icl_cell compiles for d = 2 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD2 = ShapeList<2, HM<64, 4>>;
bool run_d2(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD2::run(s, f, threads, check);
}
std::vector<Shape> shapes_d2() { return ShapesD2::list(); }
}  // namespace cell
