// The small model and training configuration shared by the checkpoint fuzz target and the seed
// corpus generator: a 1-block pre-LN transformer, D = 2, H = 4, 1 head, MLP width 8, n = 3
// examples (2n-1 = 5 tokens). Small, so that a checkpoint (8-14 KB, mostly JSON header) stays within the fuzz
// runs' -max_len of 16 KB and one input costs well under a millisecond.
#pragma once

#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/trainer.hpp"

namespace icl_fuzz {

constexpr int kD = 2, kN = 3, kTMax = 2 * kN - 1;
using Model = icl::nn::PreLNTransformer<float, kD, 4, 1, 8, kTMax>;
using Trainer = icl::train::Trainer<Model>;

inline Model make_model(int layers, std::uint64_t seed) {
  Model m(layers);
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  return m;
}

inline icl::train::TrainConfig config() {
  icl::train::TrainConfig c;
  c.steps = 8;
  c.batch = 2;
  c.task.n = kN;
  c.optimizer.lr = 1e-2;
  c.warmup_steps = 2;
  c.eval_every = 0;
  c.eval_batch = 1;
  c.log_every = 0;
  c.seed = 1;
  return c;
}

}  // namespace icl_fuzz
