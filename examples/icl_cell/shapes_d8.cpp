// The model shapes icl_cell compiles for d = 8 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD8 = ShapeList<8, HM<64, 4>>;
bool run_d8(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD8::run(s, f, threads, check);
}
std::vector<Shape> shapes_d8() { return ShapesD8::list(); }
}  // namespace cell
