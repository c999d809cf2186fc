// verify: the chains in double for d = 2 (a translation unit of its own: see verify.hpp).
#include "chains.hpp"

template verify::Cell verify::run_chain<double, 2>(verify::ChainId, const verify::Settings&);
