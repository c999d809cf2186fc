/// @file
/// Core utilities: error policy, matrix products (GEMM kernels), portable RNG, fixed-shape heap
/// storage, the worker pool.
#pragma once
#include "icl/core/error.hpp"
#include "icl/core/gemm.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/core/worker_pool.hpp"
