/// @file
/// Optimisers, schedules, the ICL training loop.
#pragma once
#include "icl/core.hpp"
#include "icl/train/adam.hpp"
#include "icl/train/checkpoint.hpp"
#include "icl/train/clip.hpp"
#include "icl/train/optimizer_state.hpp"
#include "icl/train/schedule.hpp"
#include "icl/train/trainer.hpp"
