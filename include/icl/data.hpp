/// @file
/// Data: task distributions, sampling, token encoding.
#pragma once
#include "icl/core.hpp"
#include "icl/data/task.hpp"
