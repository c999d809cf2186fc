// The constructed model type shared by the loader fuzz target and the seed corpus generator:
// gd_transformer<float, 1>'s type, ConstructedTransformer<float, 1, 15, 9>, which is also
// Theorem1Transformer<float, 1> (H = 10+5D = 11+4D, F = 9D at D = 1), so one target loads two chain
// kinds. Float halves the file: n = 1 (8 layers, 8 distinct blocks) is about 70 KB, within the fuzz
// run's -max_len of 128 KB for this target (.ci/fuzz.sh).
#pragma once

#include <cstring>
#include <optional>

#include "icl/construct/transformer.hpp"
#include "icl/data/task.hpp"

namespace icl_fuzz {

using ConstructModel = icl::construct::GdTransformer<float, 1>;
static_assert(std::is_same_v<ConstructModel, icl::construct::Theorem1Transformer<float, 1>>,
              "the fuzzed type should load both chain kinds");

/// A fixed in-distribution prompt of 2 examples and a query (5 tokens), cut to the model's length.
inline ConstructModel::Tokens construct_prompt() {
  icl::Rng rng(9);
  const auto task = icl::data::sample_task<float, 1>({2}, rng);
  return icl::data::encode(task, icl::data::sample_x<float, 1>({2}, rng));
}

}  // namespace icl_fuzz
