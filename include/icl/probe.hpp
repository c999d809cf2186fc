/// @file
/// Probes on hidden states (docs/probe.md): targets after n exemplars (XᵀY, w_OLS, ridge w, true w),
/// the position-attention probe with a linear or MLP read-out, its training and held-out scores.
#pragma once
#include "icl/core.hpp"
#include "icl/probe/probe.hpp"
#include "icl/probe/targets.hpp"
