// The model shapes icl_cell compiles for d = 20 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD20 = ShapeList<20, HM<64, 4>>;
bool run_d20(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD20::run(s, f, threads, check);
}
std::vector<Shape> shapes_d20() { return ShapesD20::list(); }
}  // namespace cell
