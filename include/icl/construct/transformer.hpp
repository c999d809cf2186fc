/// @file
/// Constructed transformers, all of them: the compiled program and its workspace
/// (construct/compiled_program.hpp), the chain spec (construct/chain_spec.hpp), ConstructedTransformer
/// (construct/constructed_transformer.hpp), its file format (construct/model_file.hpp) and the factories
/// gd_transformer, ridge_transformer, theorem1_transformer, theorem2_transformer
/// (construct/factories.hpp). Each of those headers can be included alone.
#pragma once

#include "icl/construct/chain_spec.hpp"
#include "icl/construct/compiled_program.hpp"
#include "icl/construct/constructed_transformer.hpp"
#include "icl/construct/factories.hpp"
#include "icl/construct/model_file.hpp"
