/// @file
/// SPD, ILWD, MSPD, implicit weights, evaluation.
#pragma once
#include "icl/core.hpp"
