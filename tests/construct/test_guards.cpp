// What a constructed transformer refuses (docs/reliability.md): a prompt outside the range its GeLU
// multiplications were calibrated for (predict, predict_batch, forward, hidden_states; the explicit
// predict_unchecked path), and model files that would make the loader build, allocate or trust
// something other than the chain the file names (ConstructedTransformer::from_safetensors).
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "icl/construct.hpp"
#include "icl/data/task.hpp"
#include "support/throws.hpp"

using namespace icl::construct;
using icl::test::MessageContains;

namespace {

template <class S, int D>
typename icl::data::Tokens<S, D> prompt(int n, std::uint64_t seed, double x_scale = 1) {
  icl::Rng rng(seed);
  auto task = icl::data::sample_task<S, D>({n}, rng);
  Eigen::Matrix<S, D, 1> xq = icl::data::sample_x<S, D>({n}, rng);
  task.X *= static_cast<S>(x_scale);
  xq *= static_cast<S>(x_scale);
  task.y = task.X * task.w;  // noiseless, as sampled
  return icl::data::encode(task, xq);
}

// A copy of `st` without tensor `drop` (SafeTensors has no erase): as a file written without it.
icl::io::SafeTensors without(const icl::io::SafeTensors& st, const std::string& drop) {
  icl::io::SafeTensors out;
  out.metadata = st.metadata;
  for (const auto& name : st.names())
    if (name != drop) out.put_nd(name, st.info(name).shape, st.get_nd(name), st.info(name).dtype);
  return out;
}

template <class V>
double max_abs(const V& v) {
  return static_cast<double>(v.cwiseAbs().maxCoeff());
}

}  // namespace

// ---- the calibrated range ----------------------------------------------------------------------

TEST_CASE("predict refuses a prompt outside the calibrated range, naming the range and the remedy",
          "[construct][range][reliability]") {
  // The case: x scaled by 100 drives the first mul (A⁻¹x) ~100x beyond its calibrated operand
  // magnitude; the GeLU product then runs at N/100 = 5 and the prediction was off by up to 3.6e4.
  // (the moment form: its ops and Table W are the ones quoted; the default w-form is checked at the end)
  TransformerOptions moment;
  moment.ridge_form = RidgeForm::moment;
  const auto ridge = ridge_transformer<double, 4>(10, 0.5, moment);
  const auto far = prompt<double, 4>(10, 1, 100.0);
  CHECK(ridge.range_ratio(far) > 50);
  CHECK_THROWS_AS(ridge.predict(far), icl::InvalidArgument);
  // the first op beyond the margin is named (where the realised model starts to go wrong): here the
  // first mul, A⁻¹x of the first example, whose x operand is ~100x its hint
  CHECK_THROWS_WITH(ridge.predict(far),
                    Catch::Contains("outside the calibrated range: op 4 (mul, 'A_j⁻¹x_j')") &&
                        Catch::Contains("16 tasks of TaskDistribution{x_std = 1") &&
                        Catch::Contains("range_margin = 8") && Catch::Contains("Rescale the inputs") &&
                        Catch::Contains("TransformerOptions::distribution") &&
                        Catch::Contains("predict_unchecked"));
  CHECK_THROWS_AS(ridge.predict_batch(far, static_cast<int>(far.cols())), icl::InvalidArgument);
  CHECK_THROWS_AS(ridge.hidden_states(far, static_cast<int>(far.cols())), icl::InvalidArgument);
  CHECK_THROWS_AS(ridge.forward(far), icl::InvalidArgument);
  // one bad prompt among good ones refuses the batch
  Eigen::MatrixXd two(5, 2 * far.cols());
  two << prompt<double, 4>(10, 2), far;
  CHECK_THROWS_AS(ridge.predict_batch(two, static_cast<int>(far.cols())), icl::InvalidArgument);
  // the unchecked path still runs, and is indeed wrong there (the reason for the check)
  const Eigen::VectorXd wrong = ridge.predict_unchecked(far);
  CHECK(max_abs(wrong - ridge.predict_exact(far)) > 1.0);
  CHECK(ridge.predict_batch_unchecked(far, static_cast<int>(far.cols())).col(0) == wrong);
  // the exact interpreter has no range
  CHECK_NOTHROW(ridge.predict_exact(far));

  // Built for a wider range (calibrated on inputs of that scale), a prompt of that scale is accepted,
  // and predicted to the construction's accuracy at that scale, which for ridge falls as the scale
  // grows (λ fixed: the conditioning of λI + XᵀX grows as x_std²; docs/constructions.md Table W:
  // relative error 4e-11, 2.4e-9, 1.4e-6, 1.8e-4, 0.24 at x_std 1, 3, 10, 30, 100). At x × 10 the bound
  // 1e-5 is 7x the measured 1.4e-6; the default model refuses this prompt (ratio ~100).
  const auto mid = prompt<double, 4>(10, 1, 10.0);
  CHECK_THROWS_WITH(ridge.predict(mid), Catch::Contains("outside the calibrated range"));
  TransformerOptions wide = moment;
  wide.distribution.x_std = 10;
  const auto ridge_wide = ridge_transformer<double, 4>(10, 0.5, wide);
  CHECK(ridge_wide.range_ratio(mid) <= 8);
  const Eigen::VectorXd p = ridge_wide.predict(mid), e = ridge_wide.predict_exact(mid);
  CHECK(max_abs(p - e) <= 1e-5 * max_abs(e));
  // and range_margin = infinity switches the check off
  TransformerOptions off = moment;
  off.range_margin = std::numeric_limits<double>::infinity();
  CHECK_NOTHROW(ridge_transformer<double, 4>(10, 0.5, off).predict(far));
  off.range_margin = 0.0;
  CHECK_INVALID((ridge_transformer<double, 4>(10, 0.5, off)), "TransformerOptions.range_margin");
  // the default (w-form) model refuses the far prompt as well, naming its first mul
  const auto ridge_w = ridge_transformer<double, 4>(10, 0.5);
  CHECK(ridge_w.range_ratio(far) > 50);
  CHECK_THROWS_WITH(ridge_w.predict(far), Catch::Contains("outside the calibrated range: op 4 (mul, "));
}

TEST_CASE("the calibrated range accepts the calibration distribution, in every chain and scalar",
          "[construct][range]") {
  // Fresh draws exceed the max over the 16 calibration draws by up to 2.8x (20000 draws, d = 4,
  // n = 10, measured) and up to 5x at d = 2, n = 5: far inside double's margin 8. Float's margin 2
  // refuses some of them (1.2% at d = 2, n = 5), those whose float errors reach 10% (Table R).
  TransformerOptions moment;
  moment.ridge_form = RidgeForm::moment;
  const auto ridge = ridge_transformer<double, 4>(10, 0.5);  // the w-form (the default)
  const auto ridge_m = ridge_transformer<double, 4>(10, 0.5, moment);
  const auto gd = gd_transformer<double, 4>(10, 0.05, 0.1);
  double worst = 0;
  for (std::uint64_t s = 0; s < 200; ++s) {
    const auto tok = prompt<double, 4>(10, 100 + s);
    worst = std::max({worst, ridge.range_ratio(tok), ridge_m.range_ratio(tok), gd.range_ratio(tok)});
    REQUIRE_NOTHROW(ridge.predict(tok));
    REQUIRE_NOTHROW(ridge_m.predict(tok));
    CHECK(ridge.predict(tok) == ridge.predict_unchecked(tok));  // the check changes nothing in range
    CHECK(gd.predict(tok) == gd.predict_unchecked(tok));
  }
  CHECK(worst > 0.5);  // the ratio is measured, not 0
  CHECK(worst <= 4);
  const auto t2 = theorem2_transformer<double, 4>(0.5);
  CHECK_NOTHROW(t2.predict(prompt<double, 4>(1, 7).leftCols(3)));
  const auto gf = gd_transformer<float, 4>(10, 0.05, 0.1);
  CHECK(gf.spec().range_margin == 2);
  CHECK_NOTHROW(gf.predict(prompt<float, 4>(10, 3)));
  CHECK_THROWS_WITH(gf.predict(prompt<float, 4>(10, 3, 10.0)), Catch::Contains("range_margin = 2"));
}

TEST_CASE("a saved model keeps its calibrated range; a file without one refuses the checked predict",
          "[construct][range][io]") {
  const auto gd = gd_transformer<double, 2>(3, 0.1, 0.05);
  const auto st = gd.to_safetensors();
  REQUIRE(st.has("operand_hints"));
  CHECK(st.metadata.at("range.margin") == "8");
  const auto back = GdTransformer<double, 2>::from_safetensors(st);
  CHECK(back.spec().range_margin == 8);
  CHECK(back.spec().calibration == gd.spec().calibration);
  const auto in = prompt<double, 2>(3, 4), out = prompt<double, 2>(3, 4, 50.0);
  CHECK(back.range_ratio(in) == gd.range_ratio(in));
  CHECK(back.predict(in) == gd.predict(in));
  CHECK_THROWS_WITH(back.predict(out), Catch::Contains("outside the calibrated range"));
  const auto old = without(st, "operand_hints");  // a file written before the range was stored
  const auto unknown = GdTransformer<double, 2>::from_safetensors(old);
  CHECK_THROWS_WITH(unknown.predict(in), Catch::Contains("calibrated range is unknown"));
  CHECK(unknown.predict_unchecked(in) == gd.predict(in));
}

// ---- the model-file loader ---------------------------------------------------------------------

TEST_CASE("ConstructedTransformer::load checks the chain against the type and the file before building",
          "[construct][io][reliability]") {
  using G2 = GdTransformer<double, 2>;
  const auto gd = gd_transformer<double, 2>(2, 0.1, 0.0);
  const icl::io::SafeTensors good = gd.to_safetensors();
  REQUIRE_NOTHROW(G2::from_safetensors(good));
  const auto refused = [&](const std::string& key, const std::string& value, const std::string& says) {
    INFO(key << " = " << value);
    auto st = good;
    st.metadata[key] = value;
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError, MessageContains(says));
  };
  const std::string big = std::to_string(1LL << 30);
  {  // the case: chain.d = chain.n = 2^30 ended in std::bad_alloc (the chain was built first)
    auto st = good;
    st.metadata["chain.d"] = big;
    st.metadata["chain.n"] = big;
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError, MessageContains("chain.d = " + big));
  }
  // n is bounded by the file: the layer count must be the chain's and the schedule must hold it
  refused("chain.n", big, "layers = 13, but a sgd chain with chain.n = " + big + " has");
  {
    auto st = good;
    st.metadata["chain.n"] = "1000000";
    st.metadata["layers"] = "5000003";
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError,
                         MessageContains("tensor 'schedule' has shape [13], expected [5000003]"));
  }
  refused("chain.n", "0", "chain.n = 0: expected at least 1 example");  // was InvalidArgument
  refused("chain.n", "-1", "chain.n = -1");
  refused("chain.lr", "inf", "chain.* does not describe a valid model");  // was InvalidArgument
  refused("chain.lambda", "nan", "chain.* does not describe a valid model");
  refused("chain.kind", "theorem2", "chain.n = 2: expected 1 (Theorems 1 and 2 take one example)");
  refused("chain.kind", "custom", "chain.kind = 'custom' cannot be rebuilt");
  refused("max_columns", "9", "max_columns = 9, but a chain of 2 examples takes 2n+1 = 5 tokens");
  refused("row_one", "0", "metadata 'row_one' = 0, but the sgd chain's realised layout has 14");
  refused("row_scr0", "1000", "metadata 'row_scr0' = 1000");
  refused("n_scr", "5", "metadata 'n_scr' = 5");
  refused("n_tables", "1", "n_tables = 1, but the chain has 0 table maps");
  refused("readout.row", "3", "readout row 3 / column -1, but the sgd chain reads row 13 / column -1");
  refused("realised_mlp_width", "99", "realised_mlp_width = 99 is outside [0, F = 18]");
}

TEST_CASE("ConstructedTransformer::load validates the stored constants and refuses non-finite weights",
          "[construct][io][reliability]") {
  using G2 = GdTransformer<double, 2>;
  const icl::io::SafeTensors good = gd_transformer<double, 2>(2, 0.1, 0.0).to_safetensors();
  const auto constant = [&](const std::string& key, const std::string& value, const std::string& says) {
    INFO(key << " = " << value);
    auto st = good;
    st.metadata[key] = value;
    CHECK_THROWS_MATCHES(
        G2::from_safetensors(st), icl::IoError,
        MessageContains("the constants (gamma, N, K, P, M, ln_eps)") && MessageContains(says));
  };
  constant("K", "5", "Constants.K: expected 1, 2 or 3");  // were loaded without Constants::validate
  constant("gamma", "nan", "Constants.gamma");
  constant("N", "0", "Constants.N");
  constant("P", "inf", "Constants.P");
  constant("ln_eps", "-1", "Constants.ln_eps");
  for (const char* tensor : {"blocks.0.self_attn.in_proj_weight", "blocks.1.self_attn.out_proj.weight",
                             "blocks.2.linear1.weight", "blocks.3.linear2.bias"}) {
    for (const double bad :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
      INFO(tensor << " gets " << bad);
      auto st = good;
      const auto& sh = st.info(tensor).shape;
      Eigen::MatrixXd m =
          sh.size() == 1 ? Eigen::MatrixXd(st.get_vector<double>(tensor)) : st.get<double>(tensor);
      m(0, 0) = bad;  // row 0 of in_proj is a query row the construction uses
      if (sh.size() == 1)
        st.put(tensor, Eigen::VectorXd(m.col(0)));
      else
        st.put(tensor, m);
      CHECK_THROWS_MATCHES(
          G2::from_safetensors(st), icl::IoError,
          MessageContains(std::string("tensor '") + tensor + "' has a NaN or infinite entry"));
    }
  }
  {
    auto st = good;
    Eigen::MatrixXd h = st.get<double>("operand_hints");
    h(3, 1) = -1;
    st.put("operand_hints", h);
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError,
                         MessageContains("'operand_hints' row 3 = (") &&
                             MessageContains("expected finite positive operand magnitudes"));
    st.put("operand_hints", Eigen::MatrixXd::Ones(2, 2));
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError, MessageContains("expected [13, 2]"));
  }
  {
    auto st = good;
    st.metadata["range.margin"] = "-2";
    CHECK_THROWS_MATCHES(G2::from_safetensors(st), icl::IoError, MessageContains("'range.margin' = -2"));
  }
  {  // Theorem 1's w: shape and finiteness
    Eigen::VectorXd w(2);
    w << 0.5, -1;
    const auto st1 = theorem1_transformer<double, 2>(w, 0.1, 0.05).to_safetensors();
    using T1 = Theorem1Transformer<double, 2>;
    REQUIRE_NOTHROW(T1::from_safetensors(st1));
    auto st = st1;
    st.put("chain.w", Eigen::VectorXd::Ones(3));
    CHECK_THROWS_MATCHES(T1::from_safetensors(st), icl::IoError,
                         MessageContains("tensor 'chain.w' has shape [3], expected [2]"));
    w(1) = std::numeric_limits<double>::quiet_NaN();
    st.put("chain.w", w);
    CHECK_THROWS_MATCHES(T1::from_safetensors(st), icl::IoError, MessageContains("NaN or infinite"));
    st = st1;
    st.metadata["chain.n"] = "2";
    CHECK_THROWS_MATCHES(T1::from_safetensors(st), icl::IoError,
                         MessageContains("chain.n = 2: expected 1 (Theorems 1 and 2 take one example)"));
  }
}
