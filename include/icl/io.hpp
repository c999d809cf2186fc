/// @file
/// I/O: safetensors read/write, the model-file format, CSV tables.
#pragma once
#include "icl/core.hpp"
#include "icl/io/csv.hpp"
#include "icl/io/model_file.hpp"
#include "icl/io/safetensors.hpp"
