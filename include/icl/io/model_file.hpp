/// @file
/// The model-file format (docs/io.md "Model files", format_version 1), one home for trained and constructed
/// models alike: the version, the common keys (format, format_version, scalar, stored_dtype), the
/// architecture keys that outside tools read (model, d, layers, hidden, heads, mlp, max_tokens, final_norm,
/// block.*), their checks (check_format_version, check_architecture), the run identity (the "run." keys,
/// check_run), parameters stored under their names with shape checks (save_parameters, read_parameters,
/// load_parameters), checked metadata readers (MetadataReader), and the save and load of a trained model
/// (model_to_safetensors, save_model, load_model: any model with parameters() and architecture()).
/// Constructed models add their own keys in construct/model_file.hpp, built on these.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstdint>
#include <map>
#include <ranges>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/io/safetensors.hpp"

namespace icl::io {

/// Version of the model-file layout written by icl (docs/io.md "Model files"): the metadata key
/// "format_version" of every model file and checkpoint (also reachable as icl::nn::kModelFormatVersion).
inline constexpr int kModelFormatVersion = 1;

namespace detail {
/// Shortest decimal text that reads back to the same double (metadata values).
inline std::string number_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
/// "float", "double" or "long double".
template <class S>
constexpr const char* scalar_name() {
  if constexpr (std::is_same_v<S, float>)
    return "float";
  else if constexpr (std::is_same_v<S, double>)
    return "double";
  else
    return "long double";
}
}  // namespace detail

/// What a model file says about the blocks (the "block." keys, docs/io.md): enough to run them from the
/// file alone.
struct BlockKeys {
  int head_width = 0;                   ///< query/key/value width per head (block.head_width)
  bool qkv_bias = false;                ///< the query/key/value maps have biases (block.qkv_bias)
  std::string scores = "softmax";       ///< "softmax" or "linear" (block.scores)
  double score_scale = 1;               ///< factor on qᵀk (block.score_scale)
  bool norm_affine = false;             ///< LayerNorm gain and bias present (block.norm_affine)
  double norm_eps = 0;                  ///< LayerNorm eps (block.norm_eps)
  std::string activation = "gelu_erf";  ///< "gelu_erf", "gelu_tanh" or "relu" (block.activation)
};

/// The architecture keys of a model file (docs/io.md "Model files"), the same for trained and
/// constructed models; outside tools (python/icl_torch.py) rely on them.
struct ModelArchitecture {
  std::string model;        ///< "pre_ln", "paper" or "constructed"
  std::string scalar;       ///< "float", "double" or "long double" (detail::scalar_name)
  int d = 0;                ///< task dimension (tokens have d+1 rows)
  int layers = 0;           ///< blocks (constructed: length of the schedule)
  int hidden = 0;           ///< residual width H
  int heads = 0;            ///< attention heads per block
  int mlp = 0;              ///< MLP width F
  int max_tokens = 0;       ///< longest prompt (rows of the position embedding / position rows)
  bool final_norm = false;  ///< LayerNorm before the read-out
  BlockKeys block;          ///< the "block." keys
};

/// The metadata of `a`: format_version, model, scalar, d, layers, hidden, heads, mlp, max_tokens,
/// final_norm (true | false) and block.head_width, block.qkv_bias, block.scores, block.score_scale,
/// block.norm_affine, block.norm_eps, block.activation. Numbers are written by detail::number_text.
inline std::map<std::string, std::string> architecture_metadata(const ModelArchitecture& a) {
  auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  return {{"format_version", std::to_string(kModelFormatVersion)},
          {"model", a.model},
          {"scalar", a.scalar},
          {"d", std::to_string(a.d)},
          {"layers", std::to_string(a.layers)},
          {"hidden", std::to_string(a.hidden)},
          {"heads", std::to_string(a.heads)},
          {"mlp", std::to_string(a.mlp)},
          {"max_tokens", std::to_string(a.max_tokens)},
          {"final_norm", flag(a.final_norm)},
          {"block.head_width", std::to_string(a.block.head_width)},
          {"block.qkv_bias", flag(a.block.qkv_bias)},
          {"block.scores", a.block.scores},
          {"block.score_scale", detail::number_text(a.block.score_scale)},
          {"block.norm_affine", flag(a.block.norm_affine)},
          {"block.norm_eps", detail::number_text(a.block.norm_eps)},
          {"block.activation", a.block.activation}};
}

/// Sets the keys every model file has: `format` ("icl.model", "icl.train.checkpoint", "icl.construct",
/// "icl.constructed"), format_version, scalar (of S) and stored_dtype (the dtype S is stored in: F32 for
/// float, F64 for double and long double).
template <class S>
void set_format(SafeTensors& st, const std::string& format) {
  st.metadata["format"] = format;
  st.metadata["format_version"] = std::to_string(kModelFormatVersion);
  st.metadata["scalar"] = detail::scalar_name<S>();
  st.metadata["stored_dtype"] = dtype_name(dtype_of<S>());
}

/// @throws IoError (prefixed by `context`) unless the file's "format_version" is kModelFormatVersion; a
/// file without it is reported as written before model-file format 1 (icl 0.x) or not a model file.
inline void check_format_version(const SafeTensors& st, const std::string& context) {
  const auto ver = st.metadata.find("format_version");
  ICL_CHECK_IO(ver != st.metadata.end(), context,
               ": no 'format_version' metadata: the file was written before model-file format 1 (icl 0.x) "
               "or is not an icl model file; re-save it with this version");
  ICL_CHECK_IO(ver->second == std::to_string(kModelFormatVersion), context,
               ": format_version = ", ver->second, ", this icl reads version ", kModelFormatVersion);
}

/// Checks a model file's architecture metadata against `expected` (a model's architecture()): the
/// format version (check_format_version), then every key must be present with the same value, except
/// "scalar" (parameters convert between F32 and F64). @throws IoError naming the first differing key
/// with both values ("the file is for another model: heads = 2 in the file, 4 in the model type").
inline void check_architecture(const SafeTensors& st, const std::map<std::string, std::string>& expected,
                               const std::string& context) {
  check_format_version(st, context);
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
inline void check_run(const SafeTensors& st, const std::map<std::string, std::string>& expected,
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

/// Reads metadata values of a file with checks: every error is an IoError prefixed by `context` that
/// names the key (missing, not an integer in range, not a number).
class MetadataReader {
 public:
  /// Reads `st`'s metadata (held by reference: `st` must outlive the reader).
  MetadataReader(const SafeTensors& st, std::string context)
      : md_(st.metadata), context_(std::move(context)) {}
  /// Whether the key is present.
  bool has(const std::string& key) const { return md_.count(key) != 0; }
  /// The value of `key`. @throws IoError if it is missing.
  const std::string& text(const std::string& key) const {
    const auto it = md_.find(key);
    ICL_CHECK_IO(it != md_.end(), context_, ": metadata '", key, "' is missing");
    return it->second;
  }
  /// The value of `key` as an integer in [-1, 2^30]. @throws IoError if it is missing or not one.
  int integer(const std::string& key) const {
    const std::string& v = text(key);
    long long out = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
    ICL_CHECK_IO(r.ec == std::errc() && r.ptr == v.data() + v.size() && out >= -1 && out <= (1LL << 30),
                 context_, ": metadata '", key, "' = '", v, "' is not an integer in range");
    return static_cast<int>(out);
  }
  /// The value of `key` as a double (as detail::number_text writes it). @throws IoError if it is missing
  /// or not a number.
  double real(const std::string& key) const {
    const std::string& v = text(key);
    double out = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
    ICL_CHECK_IO(r.ec == std::errc() && r.ptr == v.data() + v.size(), context_, ": metadata '", key, "' = '",
                 v, "' is not a number");
    return out;
  }
  /// The context of the messages.
  const std::string& context() const { return context_; }

 private:
  const std::map<std::string, std::string>& md_;
  std::string context_;
};

/// A named parameter view as models hand them out (icl::nn::ParamView): name, rows, cols, a pointer to
/// the values (column-major) and value_map().
template <class P>
concept ParameterView = requires(const P& p) {
  { p.name } -> std::convertible_to<std::string>;
  { p.rows } -> std::convertible_to<Eigen::Index>;
  { p.cols } -> std::convertible_to<Eigen::Index>;
  *p.value;
  p.value_map();
};

/// The scalar type of a parameter view.
template <ParameterView P>
using ParameterScalar = std::remove_cv_t<std::remove_pointer_t<decltype(std::declval<const P&>().value)>>;

/// Stores every parameter as a {rows, cols} tensor (vectors as {rows}) under prefix + its name, in the
/// dtype of its scalar (F32 for float, F64 for double; long double is rounded to F64, safetensors having no
/// wider type).
template <ParameterView P>
void save_parameters(SafeTensors& st, const std::vector<P>& ps, const std::string& prefix = "") {
  using S = ParameterScalar<P>;
  for (const auto& p : ps) {
    if (p.cols == 1)
      st.put(prefix + p.name, Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(p.value, p.rows),
             dtype_of<S>());
    else
      st.put(prefix + p.name, p.value_map(), dtype_of<S>());
  }
}

/// Reads and checks every parameter of `ps` from `st` without writing anything (the values, in the order
/// of `ps`). Every parameter must be present with its exact shape, and (with `strict`) every tensor of
/// `st` outside the "optim." and "train." namespaces must be a parameter of `ps`; otherwise IoError names
/// the tensor and both shapes. A parameter with NaN or Inf values is refused too (IoError naming it).
template <ParameterView P>
std::vector<Eigen::Matrix<ParameterScalar<P>, Eigen::Dynamic, Eigen::Dynamic>> read_parameters(
    const SafeTensors& st, const std::vector<P>& ps, bool strict = true, const std::string& prefix = "") {
  using S = ParameterScalar<P>;
  std::vector<Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>> vals;
  vals.reserve(ps.size());
  for (const auto& p : ps) {
    const std::string name = prefix + p.name;
    ICL_CHECK_IO(st.has(name), "checkpoint: parameter '", name, "' (", p.rows, " x ", p.cols,
                 ") is missing: the checkpoint was written for another model");
    const auto& sh = st.info(name).shape;
    const bool ok = (sh.size() == 2 && sh[0] == p.rows && sh[1] == p.cols) ||
                    (sh.size() == 1 && p.cols == 1 && sh[0] == p.rows);
    ICL_CHECK_IO(ok, "checkpoint: parameter '", name, "' has shape ", shape_string(sh),
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

/// Loads every parameter of `ps` from `st` with the checks of read_parameters. Nothing is written unless
/// everything checks.
template <ParameterView P>
void load_parameters(const SafeTensors& st, const std::vector<P>& ps, bool strict = true,
                     const std::string& prefix = "") {
  const auto vals = read_parameters(st, ps, strict, prefix);
  for (std::size_t i = 0; i < ps.size(); ++i) ps[i].value_map() = vals[i];
}

/// A model that can be stored as a model file: parameters() (named views), architecture() (its
/// model-file metadata, e.g. icl::nn::Transformer::architecture()) and a Scalar type.
template <class M>
concept SavableModel = requires(M& m, const M& cm) {
  typename M::Scalar;
  { m.parameters() } -> std::ranges::range;
  { cm.architecture() } -> std::convertible_to<std::map<std::string, std::string>>;
};

/// A trained model (icl::nn::Transformer) as a self-describing weights file: the parameters under their
/// docs/nn.md names in the dtype of its scalar (long double as F64, metadata "scalar" = "long double"), the
/// architecture as metadata (Model::architecture(), docs/io.md) and "format" = "icl.model".
template <SavableModel Model>
SafeTensors model_to_safetensors(const Model& model) {
  SafeTensors st;
  // parameters() hands out mutable views; nothing is written through them here.
  save_parameters(st, const_cast<Model&>(model).parameters());
  st.metadata = model.architecture();
  set_format<typename Model::Scalar>(st, "icl.model");
  return st;
}
/// Writes model_to_safetensors(model) to `path` (atomically). @throws icl::IoError if it cannot be
/// written.
template <SavableModel Model>
void save_model(const Model& model, const std::string& path) {
  model_to_safetensors(model).save(path);
}
/// Writes model_to_safetensors(model) with the run's identity (Trainer::run_identity(), the "run."
/// keys) as metadata, so that a later load can check the file against the run it is meant to be
/// (load_model with an identity). @throws icl::IoError if it cannot be written.
template <SavableModel Model>
void save_model(const Model& model, const std::string& path,
                const std::map<std::string, std::string>& identity) {
  SafeTensors st = model_to_safetensors(model);
  for (const auto& [k, v] : identity)
    if (k.rfind("run.", 0) == 0) st.metadata[k] = v;
  st.save(path);
}

/// Loads a model file (save_model) or a training checkpoint into `model`: checks the architecture
/// metadata (check_architecture) and then every parameter name and shape (load_parameters).
/// @throws IoError naming the mismatch; the model is unchanged unless everything checks.
template <SavableModel Model>
void load_model(Model& model, const SafeTensors& st, const std::string& context = "model file") {
  check_architecture(st, model.architecture(), context);
  load_parameters(st, model.parameters());
}
/// Reads `path` and loads it into `model` (see the overload above).
template <SavableModel Model>
void load_model(Model& model, const std::string& path) {
  load_model(model, SafeTensors::load(path), "model file '" + path + "'");
}
/// Reads `path`, checks that it was written by the run `identity` (check_run: every "run." key
/// equal) and loads it into `model`. @throws icl::InvalidArgument naming the fields of another run;
/// IoError as load_model. The model is unchanged unless everything checks.
template <SavableModel Model>
void load_model(Model& model, const std::string& path, const std::map<std::string, std::string>& identity) {
  const SafeTensors st = SafeTensors::load(path);
  check_run(st, identity, "model file '" + path + "'");
  load_model(model, st, "model file '" + path + "'");
}

}  // namespace icl::io
