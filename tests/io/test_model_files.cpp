// Self-describing model files (docs/io.md "Model files"): trained models (icl::train::save_model /
// load_model, checkpoints) and constructed ones (ConstructedTransformer::save / load) round-trip and
// refuse a mismatched model type by name; F16/BF16/I64 tensors read; the TMax convention of predict.
// [py-models-write] (hidden) writes every model kind in float and double with C++ predictions for
// tests/python/io_models.py, which runs them through python/icl_torch.py from the file alone.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "icl/construct/transformer.hpp"
#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn/init.hpp"
#include "icl/nn/transformer.hpp"
#include "icl/train/checkpoint.hpp"
#include "icl/train/trainer.hpp"
#include "support/python.hpp"
#include "support/throws.hpp"

namespace {

constexpr int kD = 3, kH = 8, kM = 2, kF = 16, kN = 5, kTMax = 2 * kN + 1;
template <class S>
using PreLN = icl::nn::PreLNTransformer<S, kD, kH, kM, kF, kTMax>;
template <class S>
using Paper = icl::nn::PaperTransformer<S, kD, kH, kM, kF, kTMax>;

// Random weights; LayerNorm gains and biases moved off 1 and 0 so that the file must carry them.
template <class Model>
Model make_trained(int L, std::uint64_t seed, bool final_norm) {
  Model m(L, {}, {final_norm});
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  for (auto& p : m.parameters())
    if (p.name.find("norm") != std::string::npos)
      for (Eigen::Index i = 0; i < p.rows * p.cols; ++i)
        p.value[i] += static_cast<typename Model::Scalar>(0.2 * rng.normal());
  return m;
}

std::string tmp_path(const std::string& name) { return "icl_model_files_test_" + name + ".safetensors"; }

// ---- trained models --------------------------------------------------------------------------

TEMPLATE_TEST_CASE("save_model / load_model round-trip a trained model exactly", "[io][model-file]", float,
                   double) {
  using S = TestType;
  auto a = make_trained<PreLN<S>>(2, 1, true);
  auto b = make_trained<PreLN<S>>(2, 2, true);  // other weights: all must come from the file
  const std::string path = tmp_path("preln");
  icl::train::save_model(a, path);
  const auto st = icl::io::SafeTensors::load(path);
  CHECK(st.metadata.at("model") == "pre_ln");
  CHECK(st.metadata.at("heads") == "2");
  CHECK(st.metadata.at("hidden") == "8");
  CHECK(st.metadata.at("mlp") == "16");
  CHECK(st.metadata.at("layers") == "2");
  CHECK(st.metadata.at("max_tokens") == std::to_string(kTMax));
  CHECK(st.metadata.at("final_norm") == "true");
  CHECK(st.metadata.at("d") == "3");
  CHECK(st.metadata.at("format_version") == "1");
  CHECK(st.metadata.at("block.score_scale") == "0.5");  // 1/sqrt(H/M) = 1/sqrt(4)
  icl::train::load_model(b, path);
  icl::Rng rng(5);
  const auto task = icl::data::sample_task<S, kD>({kN}, rng);
  const auto tok = icl::data::encode(task, icl::data::sample_x<S, kD>({kN}, rng));
  CHECK(a.predict(tok) == b.predict(tok));
  std::remove(path.c_str());
}

TEST_CASE("load_model refuses a file of another architecture, naming the key", "[io][model-file]") {
  auto a = make_trained<PreLN<double>>(2, 1, true);
  const auto st = icl::train::model_to_safetensors(a);
  auto before = [](auto& m) {
    std::vector<Eigen::MatrixXd> v;
    for (const auto& p : m.parameters()) v.push_back(p.value_map().template cast<double>());
    return v;
  };
  SECTION("fewer layers") {
    auto m = make_trained<PreLN<double>>(1, 3, true);
    const auto v0 = before(m);
    CHECK_THROWS_MATCHES(icl::train::load_model(m, st), icl::IoError,
                         icl::test::MessageContains("layers = 2 in the file, 1 in the model type"));
    CHECK(before(m) == v0);  // nothing was written
  }
  SECTION("other heads (same shapes: only the metadata tells)") {
    icl::nn::PreLNTransformer<double, kD, kH, 4, kF, kTMax> m(2, {}, {true});
    CHECK_THROWS_MATCHES(icl::train::load_model(m, st), icl::IoError,
                         icl::test::MessageContains("heads = 2 in the file, 4 in the model type"));
  }
  SECTION("the paper model") {
    Paper<double> m(2);
    CHECK_THROWS_MATCHES(icl::train::load_model(m, st), icl::IoError,
                         icl::test::MessageContains("model = pre_ln in the file, paper in the model type"));
  }
  SECTION("other block options") {
    icl::nn::PreLNBlockOptions o;
    o.norm.eps = 1e-6;
    PreLN<double> m(2, o, {true});
    CHECK_THROWS_MATCHES(icl::train::load_model(m, st), icl::IoError,
                         icl::test::MessageContains("block.norm_eps = 1e-05 in the file"));
  }
  SECTION("a file without format_version (icl 0.x)") {
    auto old = st;
    old.metadata.clear();
    auto m = make_trained<PreLN<double>>(2, 3, true);
    CHECK_THROWS_MATCHES(icl::train::load_model(m, old), icl::IoError,
                         icl::test::MessageContains("format_version"));
  }
}

TEST_CASE("a flipped byte in a model file's weights is refused, naming the tensor", "[io][model-file]") {
  // It loaded silently before the checksums (predictions moved by up to 0.076 in issue 19's trial).
  auto a = make_trained<PreLN<float>>(2, 1, true);
  const std::string path = tmp_path("flipped");
  icl::train::save_model(a, path);
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const std::string header = bytes.substr(8, n);
  const std::string key =
      "\"blocks.1.linear2.weight\":{\"dtype\":\"F32\",\"shape\":[8,16],\"data_offsets\":[";
  const std::size_t at = header.find(key);
  REQUIRE(at != std::string::npos);
  const std::size_t begin = std::stoull(header.substr(at + key.size()));
  bytes[8 + n + begin + 5] ^= 0x04;  // one bit of one weight
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto m = make_trained<PreLN<float>>(2, 2, true);
  CHECK_THROWS_MATCHES(icl::train::load_model(m, path), icl::IoError,
                       icl::test::MessageContains("tensor 'blocks.1.linear2.weight': checksum mismatch"));
  std::remove(path.c_str());
}

TEST_CASE("a training checkpoint carries the architecture and refuses another", "[io][model-file][train]") {
  using Tiny = icl::nn::PreLNTransformer<float, 2, 8, 2, 16, 7>;
  icl::train::TrainConfig cfg;
  cfg.steps = 2;
  cfg.batch = 4;
  cfg.task.n = 4;
  cfg.eval_batch = 4;
  cfg.log_every = 0;
  Tiny a(1);
  icl::train::Trainer<Tiny> ta(a, cfg);
  const auto st = ta.checkpoint();
  CHECK(st.metadata.at("heads") == "2");
  CHECK(st.metadata.at("model") == "pre_ln");
  CHECK(st.metadata.at("format") == "icl.train.checkpoint");
  using Other = icl::nn::PreLNTransformer<float, 2, 8, 4, 16, 7>;  // same shapes, 4 heads
  Other b(1);
  icl::train::Trainer<Other> tb(b, cfg);
  CHECK_THROWS_MATCHES(tb.restore(st), icl::IoError, icl::test::MessageContains("heads = 2 in the file"));
}

// ---- constructed models ----------------------------------------------------------------------

TEMPLATE_TEST_CASE("ConstructedTransformer::save / load round-trip without a rebuild",
                   "[io][model-file][construct]", float, double) {
  using S = TestType;
  const auto gd = icl::construct::gd_transformer<S, 2>(3, 0.1, 0.05);
  // one file per scalar type: ctest runs the float and double cases in parallel processes, and a
  // shared name let one read the file while the other was rewriting it (seen under ASan, -j2)
  const std::string path = tmp_path(std::is_same_v<S, float> ? "gd_f32" : "gd_f64");
  gd.save(path);
  const auto st = icl::io::SafeTensors::load(path);
  CHECK(st.info("schedule").dtype == icl::io::DType::I64);
  CHECK(st.metadata.at("model") == "constructed");
  CHECK(st.metadata.at("chain.kind") == "sgd");
  CHECK(st.metadata.at("readout.column") == "-1");
  CHECK(st.metadata.at("layers") == std::to_string(5 * 3 + 3));
  const auto back = icl::construct::GdTransformer<S, 2>::load(path);
  icl::Rng rng(3);
  const auto task = icl::data::sample_task<S, 2>({3}, rng);
  const auto tok = icl::data::encode(task, icl::data::sample_x<S, 2>({3}, rng));
  CHECK(back.predict(tok) == gd.predict(tok));  // the same weights, bit for bit
  CHECK(back.predict_exact(tok) == gd.predict_exact(tok));
  CHECK(back.realisation().schedule == gd.realisation().schedule);
  CHECK(back.resources().layers == gd.resources().layers);
  CHECK(back.resources().mlp_width == gd.resources().mlp_width);

  Eigen::Matrix<S, Eigen::Dynamic, 1> w(2);
  w << S(0.5), S(-1.25);
  const auto t1 = icl::construct::theorem1_transformer<S, 2>(w, 0.1, 0.05);
  t1.save(path);
  const auto t1b = icl::construct::Theorem1Transformer<S, 2>::load(path);
  const auto tok1 = tok.leftCols(3);
  REQUIRE(t1b.predict(tok1).size() == 1);
  CHECK(t1b.predict(tok1) == t1.predict(tok1));
  CHECK(t1b.spec().w == t1.spec().w);
  std::remove(path.c_str());
}

TEST_CASE("ConstructedTransformer::load refuses another model type, naming the key",
          "[io][model-file][construct]") {
  const auto gd = icl::construct::gd_transformer<double, 2>(2, 0.1, 0.0);
  const auto st = gd.to_safetensors();
  using G2 = icl::construct::GdTransformer<double, 2>;
  using G3 = icl::construct::GdTransformer<double, 3>;
  CHECK_THROWS_MATCHES(G3::from_safetensors(st), icl::IoError,
                       icl::test::MessageContains("d = 2 in the file, 3 in the model type"));
  using R2 = icl::construct::RidgeTransformer<double, 2>;
  CHECK_THROWS_MATCHES(R2::from_safetensors(st), icl::IoError,
                       icl::test::MessageContains("hidden = 20 in the file"));
  auto trained = icl::train::model_to_safetensors(make_trained<PreLN<double>>(1, 1, false));
  CHECK_THROWS_MATCHES(G2::from_safetensors(trained), icl::IoError,
                       icl::test::MessageContains("model = pre_ln, expected a constructed model"));
  auto old = st;
  old.metadata.erase("format_version");
  CHECK_THROWS_MATCHES(G2::from_safetensors(old), icl::IoError, icl::test::MessageContains("format_version"));
  auto bad = st;
  std::vector<double> sched = st.get_nd("schedule");  // the right length (checked first), one bad entry
  sched[0] = 999;
  bad.put_nd("schedule", {static_cast<std::int64_t>(sched.size())}, sched, icl::io::DType::I64);
  CHECK_THROWS_MATCHES(G2::from_safetensors(bad), icl::IoError,
                       icl::test::MessageContains("schedule entry 999"));
}

TEST_CASE("a long double constructed model is stored as F64 and says so", "[io][model-file][construct]") {
  const auto gd = icl::construct::gd_transformer<long double, 2>(2, 0.1, 0.0);
  const auto st = gd.to_safetensors();
  CHECK(st.metadata.at("scalar") == "long double");
  CHECK(st.metadata.at("stored_dtype") == "F64");
  CHECK(st.info("blocks.0.self_attn.out_proj.weight").dtype == icl::io::DType::F64);
  const auto back = icl::construct::GdTransformer<long double, 2>::from_safetensors(st);
  icl::Rng rng(9);
  const auto task = icl::data::sample_task<long double, 2>({2}, rng);
  const auto tok = icl::data::encode(task, icl::data::sample_x<long double, 2>({2}, rng));
  // Weights rounded to double (relative 2^-53) make the loaded model a double-accurate one: its
  // distance to the exact interpreter is bounded like the double chain's (test_realise: 1e-10).
  const auto d = (back.predict(tok) - back.predict_exact(tok)).cwiseAbs().maxCoeff();
  CHECK(static_cast<double>(d) <= 1e-10);
}

// ---- dtypes ------------------------------------------------------------------------------------

std::string file_with(const std::string& dtype, const std::vector<std::uint16_t>& halves) {
  const std::string n = std::to_string(halves.size());
  std::string h = "{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + n + "],\"data_offsets\":[0," +
                  std::to_string(2 * halves.size()) + "]}}";
  std::string out(8, '\0');
  const std::uint64_t len = h.size();
  std::memcpy(out.data(), &len, 8);
  out += h;
  for (const auto v : halves) out.append(reinterpret_cast<const char*>(&v), 2);
  return out;
}

TEST_CASE("safetensors reads F16 and BF16 (converted) and writes I64", "[io][safetensors]") {
  // F16: 1, -2, 65504 (largest), 2^-24 (smallest subnormal), 2^-14 (smallest normal), +inf
  const auto f16 =
      icl::io::SafeTensors::from_bytes(file_with("F16", {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00}));
  const Eigen::VectorXd a = f16.get_vector<double>("t");
  CHECK(a(0) == 1.0);
  CHECK(a(1) == -2.0);
  CHECK(a(2) == 65504.0);
  CHECK(a(3) == std::ldexp(1.0, -24));
  CHECK(a(4) == std::ldexp(1.0, -14));
  CHECK(std::isinf(a(5)));
  // BF16: 1, -3, 1/3 rounded (0x3EAB = 0.333984375)
  const auto bf = icl::io::SafeTensors::from_bytes(file_with("BF16", {0x3F80, 0xC040, 0x3EAB}));
  const Eigen::VectorXf b = bf.get_vector<float>("t");
  CHECK(b(0) == 1.0f);
  CHECK(b(1) == -3.0f);
  CHECK(b(2) == 0.333984375f);
  icl::io::SafeTensors st;
  st.put_nd("i", {3}, std::vector<long long>{-7, 0, 1LL << 40}, icl::io::DType::I64);
  const auto back = icl::io::SafeTensors::from_bytes(st.to_bytes());
  CHECK(back.info("i").dtype == icl::io::DType::I64);
  CHECK(back.get_nd("i") == std::vector<double>{-7.0, 0.0, 1099511627776.0});
  CHECK_INVALID(st.put_nd("j", {1}, std::vector<double>{0.5}, icl::io::DType::I64), "integers");
  CHECK_INVALID(st.put_nd("h", {1}, std::vector<double>{0.5}, icl::io::DType::F16), "dtype");
}

TEST_CASE("safetensors: an I64 value beyond 2^53 loads, is refused on read, and round-trips",
          "[io][safetensors]") {
  // A file another writer made (icl's put_nd refuses such values): 2^53 + 1 has no exact double, so
  // every read of the tensor throws IoError naming the reason, while the file itself is valid and
  // rewrites to the same bytes. Found by fuzz_safetensors (corpus/regress_i64_beyond_2p53).
  const std::int64_t big = (std::int64_t{1} << 53) + 1, edge = std::int64_t{1} << 53;
  std::vector<std::uint16_t> halves(8);
  std::memcpy(halves.data(), &big, 8);
  std::memcpy(halves.data() + 4, &edge, 8);
  std::string bytes = file_with("I64", halves);
  // file_with counts 16-bit halves: the header says shape [8] and 16 bytes; make it [2] of I64.
  const std::string from = "\"shape\":[8]", to = "\"shape\":[2]";
  bytes.replace(bytes.find(from), from.size(), to);
  const auto st = icl::io::SafeTensors::from_bytes(bytes);
  CHECK(st.info("t").numel() == 2);
  CHECK_THROWS_MATCHES(st.get_nd("t"), icl::IoError, icl::test::MessageContains("beyond 2^53"));
  CHECK_THROWS_MATCHES(st.get_vector<double>("t"), icl::IoError, icl::test::MessageContains("beyond 2^53"));
  CHECK(icl::io::SafeTensors::from_bytes(st.to_bytes()).to_bytes() == st.to_bytes());
  // 2^53 itself is exact and reads.
  std::memcpy(halves.data(), &edge, 8);
  std::string ok = file_with("I64", halves);
  ok.replace(ok.find(from), from.size(), to);
  CHECK(icl::io::SafeTensors::from_bytes(ok).get_nd("t") ==
        std::vector<double>{9007199254740992.0, 9007199254740992.0});
}

// ---- TMax convention ---------------------------------------------------------------------------

TEST_CASE("predict: a model trained on n examples (TMax = 2n-1) takes encode(task) as it is",
          "[nn][model-file]") {
  using M = icl::nn::PreLNTransformer<double, kD, kH, kM, kF, 2 * kN - 1>;
  M m(1);
  icl::Rng rng(4);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  const auto task = icl::data::sample_task<double, kD>({kN}, rng);
  const auto tok = icl::data::encode(task);  // 2n tokens, ends with y_n
  const Eigen::VectorXd p = m.predict(tok);
  CHECK(p.size() == kN);
  CHECK(p == m.predict(tok.leftCols(2 * kN - 1)));  // the trailing y changes nothing (causal)
  const auto with_query = icl::data::encode(task, icl::data::sample_x<double, kD>({kN}, rng));
  CHECK_INVALID(m.predict(with_query), "built for TMax >= 11");
}

// ---- the PyTorch runner (driven by tests/python/io_models.py) --------------------------------

// Writes <name>.safetensors (the model) and <name>.io.safetensors (tokens B x T x (d+1) and the C++
// predictions B x P) into the work directory.
template <class S, int D, class Model>
void write_case(const std::string& name, const Model& model, int n, bool query, std::uint64_t seed) {
  const std::string dir = icl::test::python_dir();
  if constexpr (requires { model.save(std::string()); })
    model.save(dir + "/" + name + ".safetensors");
  else
    icl::train::save_model(model, dir + "/" + name + ".safetensors");
  constexpr int B = 3;
  icl::Rng rng(seed);
  std::vector<double> tokens, preds;
  std::int64_t T = 0, P = 0;
  for (int b = 0; b < B; ++b) {
    const auto task = icl::data::sample_task<S, D>({n}, rng);
    const icl::data::Tokens<S, D> tok =
        query ? icl::data::encode(task, icl::data::sample_x<S, D>({n}, rng)) : icl::data::encode(task);
    const auto p = model.predict(tok);
    T = tok.cols();
    P = p.size();
    for (Eigen::Index t = 0; t < tok.cols(); ++t)
      for (Eigen::Index r = 0; r < tok.rows(); ++r) tokens.push_back(static_cast<double>(tok(r, t)));
    for (Eigen::Index i = 0; i < p.size(); ++i) preds.push_back(static_cast<double>(p(i)));
  }
  icl::io::SafeTensors io;
  io.put_nd("tokens", {B, T, D + 1}, tokens, icl::io::DType::F64);
  io.put_nd("predictions", {B, P}, preds, icl::io::DType::F64);
  io.metadata["scalar"] = icl::io::detail::scalar_name<S>();
  io.save(dir + "/" + name + ".io.safetensors");
}

template <class S>
void write_all(const std::string& dt) {
  write_case<S, kD>("preln_" + dt, make_trained<PreLN<S>>(2, 11, true), kN, true, 21);
  write_case<S, kD>("paper_" + dt, make_trained<Paper<S>>(2, 12, false), kN, true, 22);
  write_case<S, kD>("paper_noquery_" + dt, make_trained<Paper<S>>(1, 13, true), kN, false, 23);
  write_case<S, 2>("sgd_" + dt, icl::construct::gd_transformer<S, 2>(3, 0.1, 0.05), 3, true, 24);
  Eigen::Matrix<S, Eigen::Dynamic, 1> w(2);
  w << S(0.5), S(-1.25);
  write_case<S, 2>("theorem1_" + dt, icl::construct::theorem1_transformer<S, 2>(w, 0.1, 0.05), 1, true, 25);
  write_case<S, 2>("theorem2_" + dt, icl::construct::theorem2_transformer<S, 2>(0.5), 1, true, 26);
}

}  // namespace

TEST_CASE("py-models-write", "[.python][py-models-write]") {
  REQUIRE(!icl::test::python_dir().empty());
  write_all<double>("f64");
  write_all<float>("f32");
}
