// The model shapes icl_cell compiles for d = 16 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD16 = ShapeList<16, HM<64, 4>>;
bool run_d16(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD16::run(s, f, threads, check);
}
std::vector<Shape> shapes_d16() { return ShapesD16::list(); }
}  // namespace cell
