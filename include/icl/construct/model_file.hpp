/// @file
/// The file format of constructed models (docs/io.md "Constructed models", format_version 1) on the common
/// model-file format of io/model_file.hpp: CompiledProgram::to_safetensors (the distinct paper blocks, the
/// I64 schedule, layout, constants, table maps, operand hints) and ConstructedTransformer's
/// to_safetensors / from_safetensors (plus the architecture keys, block semantics, chain, read-out and
/// embedding recipe; the loader's checks against the model type and the file's own sizes).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "icl/construct/chain_spec.hpp"
#include "icl/construct/chains.hpp"
#include "icl/construct/detail/block_adapter.hpp"
#include "icl/construct/program.hpp"
#include "icl/construct/realise.hpp"
#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/io/model_file.hpp"
#include "icl/io/safetensors.hpp"

namespace icl::construct {

template <class S, int D, int H, int F>
class ConstructedTransformer;

namespace detail {

/// CompiledProgram<S, H, F>::to_safetensors: the distinct blocks under "blocks.<b>." with the paper block's
/// parameter names (docs/nn.md), "schedule", "operand_hints", the table maps "embed.table.<t>", and the
/// layout and constants as metadata.
template <class S, int H, int F>
io::SafeTensors program_to_safetensors(const Realisation<S>& real,
                                       const std::vector<Block<S, H, F>>& blocks) {
  io::SafeTensors st;
  for (std::size_t b = 0; b < blocks.size(); ++b)
    for (const auto& p : blocks[b].parameters("blocks." + std::to_string(b) + ".")) {
      if (p.cols == 1)
        st.put(p.name, Vec<S>(p.value_map()));
      else
        st.put(p.name, p.value_map());
    }
  st.put_nd("schedule", {static_cast<std::int64_t>(real.schedule.size())}, real.schedule, io::DType::I64);
  if (!real.hints.empty()) {  // the calibrated range (docs/constructions.md §2.8): (s1, s2) per op
    Eigen::MatrixXd hints(static_cast<Eigen::Index>(real.hints.size()), 2);
    for (std::size_t i = 0; i < real.hints.size(); ++i)
      hints.row(static_cast<Eigen::Index>(i)) << real.hints[i].s1, real.hints[i].s2;
    st.put("operand_hints", hints, io::DType::F64);
  }
  const auto& L = real.layout;
  const auto& k = real.constants;
  auto num = [](double v) { return io::detail::number_text(v); };
  st.metadata = {{"realised_mlp_width", std::to_string(real.mlp_width)},
                 {"height", std::to_string(L.height)},
                 {"row_scr0", std::to_string(L.scr0)},
                 {"n_scr", std::to_string(L.n_scr)},
                 {"n_tables", std::to_string(L.tables.size())},
                 {"hidden", std::to_string(H)},
                 {"mlp_width", std::to_string(F)},
                 {"heads", "2"},
                 {"layers", std::to_string(real.schedule.size())},
                 {"max_columns", std::to_string(L.max_columns)},
                 {"data_rows", std::to_string(L.data_rows)},
                 {"row_one", std::to_string(L.one)},
                 {"row_rho1", std::to_string(L.rho1)},
                 {"row_rho2", std::to_string(L.rho2)},
                 {"row_tau0", std::to_string(L.tau0)},
                 {"row_pad_p", std::to_string(L.pad_p)},
                 {"row_pad_m", std::to_string(L.pad_m)},
                 {"row_zero", std::to_string(L.zero)},
                 {"gamma", num(k.gamma)},
                 {"N", num(k.N)},
                 {"K", std::to_string(k.K)},
                 {"P", num(k.P)},
                 {"M", num(k.M)},
                 {"ln_eps", num(k.ln_eps)}};
  io::set_format<S>(st, "icl.construct");              // format, format_version, scalar, stored_dtype
  for (std::size_t t = 0; t < L.tables.size(); ++t) {  // the table maps: (target, source) column pairs
    std::vector<std::int64_t> pairs;
    for (const auto& [tg, src] : L.tables[t].entries()) {
      pairs.push_back(tg);
      pairs.push_back(src);
    }
    st.put_nd("embed.table." + std::to_string(t), {static_cast<std::int64_t>(pairs.size() / 2), 2}, pairs,
              io::DType::I64);
  }
  return st;
}

/// ConstructedTransformer::to_safetensors: the program's file plus the architecture and the keys that let
/// a reader run the model from the file alone (docs/io.md "Constructed models").
template <class S, int D, int H, int F>
io::SafeTensors constructed_to_safetensors(const ConstructedTransformer<S, D, H, F>& m) {
  io::SafeTensors st = m.model().to_safetensors();
  const auto& L = m.model().realisation().layout;
  auto num = [](double v) { return io::detail::number_text(v); };
  io::ModelArchitecture a;  // the architecture keys, as a trained model writes them
  a.model = "constructed";
  a.scalar = io::detail::scalar_name<S>();
  a.d = D;
  a.layers = m.layers();
  a.hidden = H;
  a.heads = 2;
  a.mlp = F;
  a.max_tokens = L.max_columns;
  a.final_norm = false;
  a.block.head_width = H;  // full-width heads, no biases, softmax scores without scaling, LN without gain
  a.block.qkv_bias = false;
  a.block.scores = "softmax";
  a.block.score_scale = 1;
  a.block.norm_affine = false;
  a.block.norm_eps = m.model().realisation().constants.ln_eps;
  a.block.activation = "gelu_erf";
  for (const auto& [k, v] : io::architecture_metadata(a)) st.metadata[k] = v;
  st.metadata["format"] = "icl.constructed";
  const std::map<std::string, std::string> more = {
      {"block.in_proj_layout", "[Wq_1; Wq_2; Wk_1; Wk_2; Wv_1; Wv_2], each H x H, no bias"},
      {"chain.kind", m.spec().kind.empty() ? "custom" : m.spec().kind},
      {"chain.name", m.chain().name},
      {"chain.d", std::to_string(m.spec().d)},
      {"chain.n", std::to_string(m.spec().n)},
      {"chain.lr", num(m.spec().lr)},
      {"chain.lambda", num(m.spec().lambda)},
      {"range.margin", num(m.spec().range_margin)},
      {"range.calibration", m.spec().calibration},
      {"readout.row", std::to_string(m.chain().readout.row)},
      {"readout.column", std::to_string(m.chain().readout.column)},
      {"embed.token_rows", std::to_string(D + 1)},
      {"embed.formula",
       "h[:, c] = [token_c; 0] + embed.position[c, :]; position rows: row_one = 1, row_rho1 = c/Ts, "
       "row_rho2 = (c/Ts)^2, row_tau0 + k = source_k(c)/Ts with Ts = max_tokens and source_k from "
       "embed.table.<k> ((target, source) pairs; other columns read themselves)"}};
  for (const auto& [k, v] : more) st.metadata[k] = v;
  if (!m.spec().w.empty())
    st.put("chain.w",
           Eigen::Map<const Eigen::VectorXd>(m.spec().w.data(), static_cast<Eigen::Index>(m.spec().w.size())),
           io::dtype_of<S>());
  // the position rows exactly as embed() adds them (in S)
  const Mat<S> zero = Mat<S>::Zero(D + 1, L.max_columns);
  st.put_matrix("embed.position", m.model().realisation().embed(zero).transpose());
  return st;
}

/// The chain that `c` describes, rebuilt (IoError naming chain.kind for one that cannot be).
template <class S>
Chain<S> rebuild_chain(const ChainSpec& c, const std::string& context) {
  if (c.kind == "sgd") return sgd_chain<S>(c.d, c.n, c.lr, c.lambda);
  if (c.kind == "ridge") return ridge_chain<S>(c.d, c.n, c.lambda);
  if (c.kind == "ridge_w") return ridge_w_chain<S>(c.d, c.n, c.lambda);
  if (c.kind == "theorem2") return theorem2_chain<S>(c.d, c.lambda);
  if (c.kind == "theorem1") {
    ICL_CHECK_IO(static_cast<int>(c.w.size()) == c.d, context, ": chain.w has ", c.w.size(),
                 " entries, expected d = ", c.d);
    Vec<S> w(c.d);
    for (int i = 0; i < c.d; ++i) w(i) = static_cast<S>(c.w[static_cast<std::size_t>(i)]);
    return theorem1_chain<S>(c.d, w, c.lr, c.lambda);
  }
  icl::detail::raise<IoError>(context, ": chain.kind = '", c.kind,
                              "' cannot be rebuilt (sgd, ridge, ridge_w, theorem1 or theorem2 expected)");
}

/// One stored paper block back as BlockWeights: query/key rows beyond the 2 position features must be
/// zero and the values the identity (the construction's block form), else the file is refused.
template <class S, int H, int F>
BlockWeights<S> read_block(const io::SafeTensors& st, const std::string& p, const std::string& context) {
  const Mat<S> in = st.get<S>(p + "self_attn.in_proj_weight", 6 * H, H);
  BlockWeights<S> w;
  for (int j = 0; j < 2; ++j) {
    const auto q = in.middleRows(j * H, H), kk = in.middleRows((2 + j) * H, H),
               v = in.middleRows((4 + j) * H, H);
    ICL_CHECK_IO(q.bottomRows(H - 2).isZero(0) && kk.bottomRows(H - 2).isZero(0) && v.isIdentity(0), context,
                 ": block '", p,
                 "' is not of the constructed form (query/key rows beyond 2 must be zero, values "
                 "the identity)");
    w.wq[j] = q.topRows(2);
    w.wk[j] = kk.topRows(2);
  }
  w.wf = st.get<S>(p + "self_attn.out_proj.weight", H, 2 * H);
  w.bf = st.get_vector<S>(p + "self_attn.out_proj.bias", H);
  w.w1 = st.get<S>(p + "linear1.weight", F, H);
  w.b1 = st.get_vector<S>(p + "linear1.bias", F);
  w.w2 = st.get<S>(p + "linear2.weight", H, F);
  w.b2 = st.get_vector<S>(p + "linear2.bias", H);
  const std::pair<const char*, bool> finite[] = {{"self_attn.in_proj_weight", in.allFinite()},
                                                 {"self_attn.out_proj.weight", w.wf.allFinite()},
                                                 {"self_attn.out_proj.bias", w.bf.allFinite()},
                                                 {"linear1.weight", w.w1.allFinite()},
                                                 {"linear1.bias", w.b1.allFinite()},
                                                 {"linear2.weight", w.w2.allFinite()},
                                                 {"linear2.bias", w.b2.allFinite()}};
  for (const auto& [name, ok] : finite)
    ICL_CHECK_IO(ok, context, ": tensor '", p, name, "' has a NaN or infinite entry");
  return w;
}

/// ConstructedTransformer<S, D, H, F>::from_safetensors (its documentation lists the checks).
template <class S, int D, int H, int F>
ConstructedTransformer<S, D, H, F> constructed_from_safetensors(const io::SafeTensors& st,
                                                                const std::string& context) {
  const io::MetadataReader md(st, context);
  // A builder's InvalidArgument on what the file says is the file's fault: an IoError naming `what`.
  auto as_io = [&](const char* what, auto&& build) {
    try {
      return build();
    } catch (const InvalidArgument& e) {
      icl::detail::raise<IoError>(context, ": ", what, " does not describe a valid model: ", e.what());
    }
  };
  io::check_format_version(st, context);
  ICL_CHECK_IO(md.text("model") == "constructed", context, ": model = ", md.text("model"),
               ", expected a constructed model (load trained models with icl::train::load_model)");
  auto expect = [&](const std::string& key, int want, const char* what) {
    const int got = md.integer(key);
    ICL_CHECK_IO(got == want, context, ": the file is for another model type: ", key, " = ", got,
                 " in the file, ", want, " in the model type (", what, ")");
  };
  expect("d", D, "D");
  expect("hidden", H, "H");
  expect("mlp", F, "F");
  expect("heads", 2, "heads");

  // 1. The chain, against the type and the file's own sizes, before it is rebuilt: d is the type's, and
  //    n is bounded by the stored schedule (one I64 entry per layer), so that the rebuild's work and
  //    memory (O(layers · d²)) are bounded by the file's size.
  ChainSpec spec;
  spec.kind = md.text("chain.kind");
  const bool n1 = spec.kind == "theorem1" || spec.kind == "theorem2";
  ICL_CHECK_IO(n1 || spec.kind == "sgd" || spec.kind == "ridge" || spec.kind == "ridge_w", context,
               ": chain.kind = '", spec.kind,
               "' cannot be rebuilt (sgd, ridge, ridge_w, theorem1 or theorem2 expected)");
  spec.d = md.integer("chain.d");
  ICL_CHECK_IO(spec.d == D, context, ": chain.d = ", spec.d, ", the model type has D = ", D);
  spec.n = md.integer("chain.n");
  ICL_CHECK_IO(spec.n >= 1 && (!n1 || spec.n == 1), context, ": chain.n = ", spec.n, ": expected ",
               n1 ? "1 (Theorems 1 and 2 take one example)" : "at least 1 example");
  const long long n = spec.n;
  const long long want_layers = spec.kind == "sgd"        ? 5 * n + 3
                                : spec.kind == "ridge"    ? 9 * n + 5
                                : spec.kind == "ridge_w"  ? 12 * n + 4
                                : spec.kind == "theorem1" ? 9
                                                          : 14;
  const int layers = md.integer("layers");
  ICL_CHECK_IO(layers == want_layers, context, ": layers = ", layers, ", but a ", spec.kind,
               " chain with chain.n = ", spec.n, " has ", want_layers, " layers");
  ICL_CHECK_IO(st.has("schedule"), context, ": tensor 'schedule' is missing");
  const auto& sched_shape = st.info("schedule").shape;
  ICL_CHECK_IO(sched_shape.size() == 1 && sched_shape[0] == layers, context, ": tensor 'schedule' has shape ",
               io::shape_string(sched_shape), ", expected [", layers, "] (layers)");
  spec.lr = md.real("chain.lr");
  spec.lambda = md.real("chain.lambda");
  if (st.has("chain.w")) {
    const auto& wsh = st.info("chain.w").shape;
    ICL_CHECK_IO(wsh.size() == 1 && wsh[0] == D, context, ": tensor 'chain.w' has shape ",
                 io::shape_string(wsh), ", expected [", D, "]");
    const Eigen::VectorXd w = st.get_vector<double>("chain.w");
    ICL_CHECK_IO(w.allFinite(), context, ": tensor 'chain.w' has a NaN or infinite entry");
    spec.w.assign(w.data(), w.data() + w.size());
  }
  if (md.has("range.margin")) {
    spec.range_margin = md.real("range.margin");
    ICL_CHECK_IO(spec.range_margin > 0, context, ": metadata 'range.margin' = ", spec.range_margin,
                 ", expected > 0 (inf: no range check)");
  }
  spec.calibration = md.has("range.calibration") ? md.text("range.calibration") : "unknown";
  Chain<S> chain = as_io("chain.*", [&] { return rebuild_chain<S>(spec, context); });
  ICL_CHECK_IO(chain.program.size() == static_cast<std::size_t>(layers), context, ": layers = ", layers,
               ", but the rebuilt ", spec.kind, " chain has ", chain.program.size(), " ops");

  // 2. The layout: exactly the one realise() derives from the rebuilt program for 2n+1 columns.
  Realisation<S> r;
  auto& L = r.layout;
  L.data_rows = md.integer("data_rows");
  L.one = md.integer("row_one");
  L.rho1 = md.integer("row_rho1");
  L.rho2 = md.integer("row_rho2");
  L.tau0 = md.integer("row_tau0");
  L.pad_p = md.integer("row_pad_p");
  L.pad_m = md.integer("row_pad_m");
  L.zero = md.integer("row_zero");
  L.scr0 = md.integer("row_scr0");
  L.n_scr = md.integer("n_scr");
  L.height = md.integer("height");
  L.max_columns = md.integer("max_columns");
  ICL_CHECK_IO(L.max_columns == 2 * spec.n + 1, context, ": max_columns = ", L.max_columns,
               ", but a chain of ", spec.n, " examples takes 2n+1 = ", 2 * spec.n + 1, " tokens");
  const RealisedLayout want = realised_layout(chain.program, L.max_columns);
  const std::pair<const char*, std::pair<int, int>> rows[] = {{"data_rows", {L.data_rows, want.data_rows}},
                                                              {"row_one", {L.one, want.one}},
                                                              {"row_rho1", {L.rho1, want.rho1}},
                                                              {"row_rho2", {L.rho2, want.rho2}},
                                                              {"row_tau0", {L.tau0, want.tau0}},
                                                              {"row_pad_p", {L.pad_p, want.pad_p}},
                                                              {"row_pad_m", {L.pad_m, want.pad_m}},
                                                              {"row_zero", {L.zero, want.zero}},
                                                              {"row_scr0", {L.scr0, want.scr0}},
                                                              {"n_scr", {L.n_scr, want.n_scr}},
                                                              {"height", {L.height, want.height}}};
  for (const auto& [key, got_want] : rows)
    ICL_CHECK_IO(got_want.first == got_want.second, context, ": metadata '", key, "' = ", got_want.first,
                 ", but the ", spec.kind, " chain's realised layout has ", got_want.second);
  ICL_CHECK_IO(L.height == H, context, ": height = ", L.height, " (the type has H = ", H, ")");
  const int n_tables = md.integer("n_tables");
  ICL_CHECK_IO(n_tables == static_cast<int>(want.tables.size()), context, ": n_tables = ", n_tables,
               ", but the chain has ", want.tables.size(), " table maps");
  for (int t = 0; t < n_tables; ++t) {
    const std::string name = "embed.table." + std::to_string(t);
    ICL_CHECK_IO(st.has(name), context, ": tensor '", name, "' is missing");
    const auto& sh = st.info(name).shape;
    const auto& want_pairs = want.tables[static_cast<std::size_t>(t)].entries();
    ICL_CHECK_IO(sh.size() == 2 && sh[0] == static_cast<std::int64_t>(want_pairs.size()) && sh[1] == 2,
                 context, ": tensor '", name, "' has shape ", io::shape_string(sh), ", expected [",
                 want_pairs.size(), ", 2]");
    const std::vector<double> v = st.get_nd(name);
    for (std::size_t i = 0; i < want_pairs.size(); ++i)
      ICL_CHECK_IO(v[2 * i] == want_pairs[i].first && v[2 * i + 1] == want_pairs[i].second, context,
                   ": tensor '", name, "' pair ", i, " is (", v[2 * i], ", ", v[2 * i + 1],
                   "), the chain's table map has (", want_pairs[i].first, ", ", want_pairs[i].second, ")");
  }
  L.tables = want.tables;

  // 3. Constants, widths, schedule, blocks, readout and hints.
  Constants& k = r.constants;
  k.gamma = md.real("gamma");
  k.N = md.real("N");
  k.K = md.integer("K");
  k.P = md.real("P");
  k.M = md.real("M");
  k.ln_eps = md.real("ln_eps");
  as_io("the constants (gamma, N, K, P, M, ln_eps)", [&] {
    k.validate();
    return 0;
  });
  r.mlp_width = md.integer("realised_mlp_width");
  ICL_CHECK_IO(r.mlp_width >= 0 && r.mlp_width <= F, context, ": realised_mlp_width = ", r.mlp_width,
               " is outside [0, F = ", F, "]");

  int n_blocks = 0;
  while (n_blocks < layers && st.has("blocks." + std::to_string(n_blocks) + ".linear1.weight")) ++n_blocks;
  const std::vector<double> sched = st.get_nd("schedule");
  for (const double b : sched) {
    ICL_CHECK_IO(b >= 0 && b < n_blocks && b == static_cast<double>(static_cast<int>(b)), context,
                 ": schedule entry ", b, " is not one of the ", n_blocks, " stored blocks");
    r.schedule.push_back(static_cast<int>(b));
  }
  for (int b = 0; b < n_blocks; ++b)
    r.blocks.push_back(read_block<S, H, F>(st, "blocks." + std::to_string(b) + ".", context));
  Readout ro;
  ro.row = md.integer("readout.row");
  ro.column = md.integer("readout.column");
  ICL_CHECK_IO(ro.row == chain.readout.row && ro.column == chain.readout.column, context, ": readout row ",
               ro.row, " / column ", ro.column, ", but the ", spec.kind, " chain reads row ",
               chain.readout.row, " / column ", chain.readout.column);
  if (st.has("operand_hints")) {  // absent in files written before the calibrated range was stored
    const auto& hsh = st.info("operand_hints").shape;
    ICL_CHECK_IO(hsh.size() == 2 && hsh[0] == layers && hsh[1] == 2, context,
                 ": tensor 'operand_hints' has shape ", io::shape_string(hsh), ", expected [", layers,
                 ", 2] (one (s1, s2) per op)");
    const Eigen::MatrixXd hints = st.get<double>("operand_hints", layers, 2);
    for (Eigen::Index i = 0; i < hints.rows(); ++i) {
      ICL_CHECK_IO(
          std::isfinite(hints(i, 0)) && std::isfinite(hints(i, 1)) && hints(i, 0) > 0 && hints(i, 1) > 0,
          context, ": tensor 'operand_hints' row ", i, " = (", hints(i, 0), ", ", hints(i, 1),
          "): expected finite positive operand magnitudes");
      r.hints.push_back(OperandHint{hints(i, 0), hints(i, 1)});
    }
  }
  return as_io("the realisation", [&] {
    return ConstructedTransformer<S, D, H, F>(std::move(chain), std::move(r), std::move(spec));
  });
}

}  // namespace detail

}  // namespace icl::construct
