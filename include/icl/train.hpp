/// @file
/// Optimisers, schedules, the ICL training loop.
#pragma once
#include "icl/core.hpp"
