// The model shapes icl_cell compiles for d = 1 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD1 = ShapeList<1, HM<64, 4>>;
bool run_d1(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD1::run(s, f, threads, check);
}
std::vector<Shape> shapes_d1() { return ShapesD1::list(); }
}  // namespace cell
