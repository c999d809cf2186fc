/// @file
/// Lemma-1 primitives, programs, realised transformers (Theorems 1 and 2).
#pragma once
#include "icl/core.hpp"
