/// @file
/// Reference regressors and the online protocol.
#pragma once
#include "icl/core.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/fit.hpp"
#include "icl/regress/knn.hpp"
#include "icl/regress/online.hpp"
