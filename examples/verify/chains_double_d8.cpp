// verify: the chains in double for d = 8 (a translation unit of its own: see verify.hpp).
#include "chains.hpp"

template verify::Cell verify::run_chain<double, 8>(verify::ChainId, const verify::Settings&);
