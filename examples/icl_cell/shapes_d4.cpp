// The model shapes icl_cell compiles for d = 4 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD4 = ShapeList<4, HM<64, 4>>;
bool run_d4(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD4::run(s, f, threads, check);
}
std::vector<Shape> shapes_d4() { return ShapesD4::list(); }
}  // namespace cell
