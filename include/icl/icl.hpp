/// @file
/// Umbrella header of icl: everything, one include. Each area also has its own header
/// (icl/core.hpp, icl/io.hpp, icl/data.hpp, icl/regress.hpp, icl/metrics.hpp, icl/nn.hpp,
/// icl/train.hpp, icl/construct.hpp, icl/probe.hpp).
#pragma once
#include "icl/construct.hpp"
#include "icl/core.hpp"
#include "icl/data.hpp"
#include "icl/io.hpp"
#include "icl/metrics.hpp"
#include "icl/nn.hpp"
#include "icl/probe.hpp"
#include "icl/regress.hpp"
#include "icl/train.hpp"
