// The model shapes icl_cell compiles for d = 12 (one translation unit per d: built in parallel).
// Add a shape here to make it available to sweeps (each costs about 20 s of compile time).
#include "cell.hpp"

namespace cell {
using ShapesD12 = ShapeList<12, HM<64, 4>>;
bool run_d12(const Settings& s, const Files& f, int threads, bool check) {
  return ShapesD12::run(s, f, threads, check);
}
std::vector<Shape> shapes_d12() { return ShapesD12::list(); }
}  // namespace cell
