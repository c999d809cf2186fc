/// @file
/// Lemma-1 primitives, programs, realised transformers (Theorems 1 and 2).
#pragma once
#include "icl/construct/chain_spec.hpp"
#include "icl/construct/chains.hpp"
#include "icl/construct/compiled_program.hpp"
#include "icl/construct/constructed_transformer.hpp"
#include "icl/construct/factories.hpp"
#include "icl/construct/model_file.hpp"
#include "icl/construct/primitives.hpp"
#include "icl/construct/program.hpp"
#include "icl/construct/realise.hpp"
#include "icl/construct/row_range.hpp"
#include "icl/construct/transformer.hpp"
#include "icl/core.hpp"
