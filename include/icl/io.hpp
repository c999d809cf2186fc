/// @file
/// I/O: safetensors read/write, CSV tables.
#pragma once
#include "icl/core.hpp"
