/// @file
/// SPD, ILWD, MSPD, implicit weights, evaluation (any predictor: regressors, trained and
/// constructed transformers through metrics/models.hpp).
#pragma once
#include "icl/core.hpp"
#include "icl/metrics/evaluate.hpp"
#include "icl/metrics/implicit_weights.hpp"
#include "icl/metrics/models.hpp"
#include "icl/metrics/spd.hpp"
#include "icl/metrics/stat.hpp"
