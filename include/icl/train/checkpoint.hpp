/// @file
/// Checkpoints as safetensors: model parameters under their own names (so a checkpoint is also a
/// weights file, docs/nn.md), optimiser state under "optim.", training state under "train."
/// (step, RNG state). Restoring checks every name and shape. Layout: docs/train.md. The model-file
/// functions (save_parameters, load_parameters, read_parameters, check_architecture, check_run,
/// model_to_safetensors, save_model, load_model) are io/model_file.hpp's, named here too.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/io/model_file.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn/param.hpp"

namespace icl::train {

// The model-file format lives in io/model_file.hpp; its functions keep their names here, where the
// checkpoints and the trainer use them (docs/train.md, docs/io.md "Model files").
using io::check_architecture;
using io::check_run;
using io::load_model;
using io::load_parameters;
using io::model_to_safetensors;
using io::read_parameters;
using io::save_model;
using io::save_parameters;

/// Stores an Rng state exactly: the four 64-bit words as eight 32-bit halves (exact in F64),
/// the cached normal spare and its flag.
inline void save_rng(io::SafeTensors& st, const Rng& rng, const std::string& name) {
  const Rng::State s = rng.state();
  std::vector<double> halves;
  for (const std::uint64_t w : s.s) {
    halves.push_back(static_cast<double>(w & 0xffffffffu));
    halves.push_back(static_cast<double>(w >> 32));
  }
  st.put_nd(name + ".words", {8}, halves, io::DType::F64);
  st.put_scalar(name + ".spare", s.spare);
  st.put_scalar(name + ".has_spare", s.has_spare ? 1.0 : 0.0);
}

/// Restores an Rng state written by save_rng. @throws icl::IoError if the words are not 32-bit halves.
inline void load_rng(const io::SafeTensors& st, Rng& rng, const std::string& name) {
  const Eigen::VectorXd h = st.get_vector<double>(name + ".words", 8);
  Rng::State s;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      const double v = h(2 * i + j);
      ICL_CHECK_IO(v >= 0 && v < 4294967296.0 && v == static_cast<double>(static_cast<std::uint64_t>(v)),
                   "checkpoint: '", name, ".words' must hold 32-bit unsigned integers, got ", v);
    }
    s.s[static_cast<std::size_t>(i)] =
        static_cast<std::uint64_t>(h(2 * i)) | (static_cast<std::uint64_t>(h(2 * i + 1)) << 32);
  }
  s.spare = st.get_scalar(name + ".spare");
  ICL_CHECK_IO(std::isfinite(s.spare), "checkpoint: '", name, ".spare' must be finite, got ", s.spare);
  const double has = st.get_scalar(name + ".has_spare");
  ICL_CHECK_IO(has == 0.0 || has == 1.0, "checkpoint: '", name, ".has_spare' must be 0 or 1, got ", has);
  s.has_spare = has != 0.0;
  rng.set_state(s);
}

}  // namespace icl::train
