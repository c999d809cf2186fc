/// @file
/// I/O: safetensors read/write, CSV tables.
#pragma once
#include "icl/core.hpp"
#include "icl/io/csv.hpp"
#include "icl/io/safetensors.hpp"
