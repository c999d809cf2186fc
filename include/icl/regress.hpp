/// @file
/// Reference regressors and the online protocol.
#pragma once
#include "icl/core.hpp"
