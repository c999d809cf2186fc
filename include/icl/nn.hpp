/// @file
/// Layers with hand-written backward passes, blocks, models, loss.
#pragma once
#include "icl/core.hpp"
#include "icl/nn/param.hpp"
