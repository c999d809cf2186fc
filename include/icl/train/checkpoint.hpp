/// @file
/// Checkpoints as safetensors: model parameters under their own names (so a checkpoint is also a
/// weights file, docs/nn.md), optimiser state under "optim.", training state under "train."
/// (step, RNG state). Restoring checks every name and shape. Layout: docs/train.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn/param.hpp"

namespace icl::train {

/// Stores every parameter as a {rows, cols} tensor (vectors as {rows}) in the dtype of S (F32
/// for float, F64 for double; long double is rounded to F64, safetensors having no wider type).
template <class S>
void save_parameters(io::SafeTensors& st, const std::vector<nn::ParamView<S>>& ps,
                     const std::string& prefix = "") {
  for (const auto& p : ps) {
    if (p.cols == 1)
      st.put(prefix + p.name, Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(p.value, p.rows),
             io::dtype_of<S>());
    else
      st.put(prefix + p.name, p.value_map(), io::dtype_of<S>());
  }
}

/// Reads and checks every parameter of `ps` from `st` without writing anything (the values, in
/// the order of `ps`). Every parameter must be present with its exact shape, and (with `strict`)
/// every tensor of `st` outside the "optim." and "train." namespaces must be a parameter of `ps`;
/// otherwise IoError names the tensor and both shapes. A parameter with NaN or Inf values is refused
/// too (IoError naming it).
template <class S>
std::vector<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> read_parameters(
    const io::SafeTensors& st, const std::vector<nn::ParamView<S>>& ps, bool strict = true,
    const std::string& prefix = "") {
  std::vector<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> vals;
  vals.reserve(ps.size());
  for (const auto& p : ps) {
    const std::string name = prefix + p.name;
    ICL_CHECK_IO(st.has(name), "checkpoint: parameter '", name, "' (", p.rows, " x ", p.cols,
                 ") is missing: the checkpoint was written for another model");
    const auto& sh = st.info(name).shape;
    const bool ok = (sh.size() == 2 && sh[0] == p.rows && sh[1] == p.cols) ||
                    (sh.size() == 1 && p.cols == 1 && sh[0] == p.rows);
    ICL_CHECK_IO(ok, "checkpoint: parameter '", name, "' has shape ", io::shape_string(sh),
                 " in the checkpoint, but the model's is [", p.rows, ", ", p.cols,
                 "]: the checkpoint was written for another model shape");
    vals.push_back(st.get<S>(name, p.rows, p.cols));
    ICL_CHECK_IO(vals.back().allFinite(), "checkpoint: parameter '", name,
                 "' has NaN or Inf values: the checkpoint is corrupt or from a diverged run");
  }
  if (strict) {
    for (const auto& n : st.names()) {
      if (n.rfind("optim.", 0) == 0 || n.rfind("train.", 0) == 0) continue;
      bool known = false;
      for (const auto& p : ps) known = known || (prefix + p.name) == n;
      ICL_CHECK_IO(known, "checkpoint: tensor '", n,
                   "' is not a parameter of this model: the checkpoint was written for another model shape");
    }
  }
  return vals;
}

/// Loads every parameter of `ps` from `st` with the checks of read_parameters. Nothing is written
/// unless everything checks.
template <class S>
void load_parameters(const io::SafeTensors& st, const std::vector<nn::ParamView<S>>& ps, bool strict = true,
                     const std::string& prefix = "") {
  const auto vals = read_parameters(st, ps, strict, prefix);
  for (std::size_t i = 0; i < ps.size(); ++i) ps[i].value_map() = vals[i];
}

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

/// Checks a model file's architecture metadata against `expected` (a model's architecture()): every
/// key must be present with the same value, except "scalar" (parameters convert between F32 and
/// F64). @throws IoError naming the first differing key with both values; a file without
/// "format_version" is reported as written before the model-file format 1 (icl 0.x) or not a model.
inline void check_architecture(const io::SafeTensors& st, const std::map<std::string, std::string>& expected,
                               const std::string& context) {
  const auto ver = st.metadata.find("format_version");
  ICL_CHECK_IO(ver != st.metadata.end(), context,
               ": no 'format_version' metadata: the file was written before model-file format 1 (icl 0.x) "
               "or is not an icl model file; re-save it with this version");
  // the architecture keys first (in this order), so that the message names the coarsest difference
  std::vector<std::string> keys = {"model", "d",   "layers",     "hidden",
                                   "heads", "mlp", "max_tokens", "final_norm"};
  for (const auto& [key, want] : expected)
    if (std::find(keys.begin(), keys.end(), key) == keys.end() && key != "scalar") keys.push_back(key);
  for (const auto& key : keys) {
    const auto e = expected.find(key);
    if (e == expected.end()) continue;
    const std::string& want = e->second;
    const auto it = st.metadata.find(key);
    ICL_CHECK_IO(it != st.metadata.end(), context, ": metadata '", key, "' is missing (the model has ", key,
                 " = ", want, ")");
    ICL_CHECK_IO(it->second == want, context, ": the file is for another model: ", key, " = ", it->second,
                 " in the file, ", want, " in the model type");
  }
}

/// Checks a file's run identity (the "run." metadata keys: Trainer::run_identity(), docs/train.md
/// "Run identity") against `expected`: every "run." key of either must be in both with the same
/// value. @throws icl::InvalidArgument naming every field that differs, with both values ("run.steps
/// = 20 in the checkpoint, 6000 in this run; ..."), or saying that the file has no run identity at
/// all (written before run identities, icl 0.1, or not by a training run).
inline void check_run(const io::SafeTensors& st, const std::map<std::string, std::string>& expected,
                      const std::string& context) {
  const auto is_run = [](const std::string& k) { return k.rfind("run.", 0) == 0; };
  bool any = false;
  for (const auto& [k, v] : st.metadata) any = any || is_run(k);
  ICL_CHECK_ARG(any, context,
                ": the file has no run identity (no 'run.' metadata): it was written before run identities "
                "(icl 0.1) or not by a training run, so it cannot be checked against this run");
  std::string diff;
  int count = 0;
  const auto add = [&](const std::string& k, const std::string& theirs, const std::string& mine) {
    diff += (count++ ? "; " : "") + k + " = " + theirs + " in the " + context + ", " + mine + " in this run";
  };
  for (const auto& [k, want] : expected) {
    if (!is_run(k)) continue;
    const auto it = st.metadata.find(k);
    if (it == st.metadata.end())
      add(k, "(missing)", want);
    else if (it->second != want)
      add(k, it->second, want);
  }
  for (const auto& [k, have] : st.metadata)
    if (is_run(k) && !expected.count(k)) add(k, have, "(not set)");
  ICL_CHECK_ARG(count == 0, context, " belongs to another run: ", count,
                count == 1 ? " field differs: " : " fields differ: ", diff);
}

/// Writes a trained model (icl::nn::Transformer) as a self-describing weights file: the parameters
/// under their docs/nn.md names in the dtype of its scalar (long double as F64, metadata
/// "scalar" = "long double"), the architecture as metadata (Transformer::architecture(), docs/io.md)
/// and "format" = "icl.model". @throws IoError if the file cannot be written.
template <class Model>
io::SafeTensors model_to_safetensors(const Model& model) {
  io::SafeTensors st;
  // parameters() hands out mutable views; nothing is written through them here.
  save_parameters(st, const_cast<Model&>(model).parameters());
  st.metadata = model.architecture();
  st.metadata["format"] = "icl.model";
  st.metadata["stored_dtype"] = io::dtype_name(io::dtype_of<typename Model::Scalar>());
  return st;
}
template <class Model>
/// Writes model_to_safetensors(model) to `path` (atomically). @throws icl::IoError if it cannot be
/// written.
void save_model(const Model& model, const std::string& path) {
  model_to_safetensors(model).save(path);
}
/// Writes model_to_safetensors(model) with the run's identity (Trainer::run_identity(), the "run."
/// keys) as metadata, so that a later load can check the file against the run it is meant to be
/// (load_model with an identity). @throws icl::IoError if it cannot be written.
template <class Model>
void save_model(const Model& model, const std::string& path,
                const std::map<std::string, std::string>& identity) {
  io::SafeTensors st = model_to_safetensors(model);
  for (const auto& [k, v] : identity)
    if (k.rfind("run.", 0) == 0) st.metadata[k] = v;
  st.save(path);
}

/// Loads a model file (save_model) or a training checkpoint into `model`: checks the architecture
/// metadata (check_architecture) and then every parameter name and shape (load_parameters).
/// @throws IoError naming the mismatch; the model is unchanged unless everything checks.
template <class Model>
void load_model(Model& model, const io::SafeTensors& st, const std::string& context = "model file") {
  check_architecture(st, model.architecture(), context);
  load_parameters(st, model.parameters());
}
template <class Model>
/// Reads `path` and loads it into `model` (see the overload above).
void load_model(Model& model, const std::string& path) {
  load_model(model, io::SafeTensors::load(path), "model file '" + path + "'");
}
/// Reads `path`, checks that it was written by the run `identity` (check_run: every "run." key
/// equal) and loads it into `model`. @throws icl::InvalidArgument naming the fields of another run;
/// IoError as load_model. The model is unchanged unless everything checks.
template <class Model>
void load_model(Model& model, const std::string& path, const std::map<std::string, std::string>& identity) {
  const io::SafeTensors st = io::SafeTensors::load(path);
  check_run(st, identity, "model file '" + path + "'");
  load_model(model, st, "model file '" + path + "'");
}

}  // namespace icl::train
