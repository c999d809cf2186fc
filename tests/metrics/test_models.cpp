// One evaluation path (docs/metrics.md §5): regressors, trained and constructed transformers as
// PromptPredictors, through evaluate() (as_predictor) and evaluate_online().
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "icl/construct.hpp"
#include "icl/metrics.hpp"
#include "icl/nn.hpp"
#include "icl/regress.hpp"
#include "support/throws.hpp"

namespace mt = icl::metrics;
namespace rg = icl::regress;

namespace {

using Model = icl::nn::PreLNTransformer<double, 2, 8, 2, 16, 9>;  // d = 2, up to 4 examples + query

Model small_model(std::uint64_t seed) {
  Model m(2);
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  return m;
}

// n x contexts online predictions of `algo` on the tasks evaluate_online draws from Rng(seed).
template <class A>
Eigen::MatrixXd online_reference(const A& algo, const icl::data::TaskDistribution& dist, int contexts,
                                 std::uint64_t seed) {
  icl::Rng rng(seed);
  Eigen::MatrixXd out(dist.n, contexts);
  for (int c = 0; c < contexts; ++c) {
    const auto task = icl::data::sample_task<double, 2>(dist, rng);
    out.col(c) = rg::online_predictions(algo, Eigen::MatrixXd(task.X), Eigen::VectorXd(task.y));
  }
  return out;
}

// Online predictions from prompts of 2n−1 tokens against those from the full task: rows 0..n−2
// bitwise equal (the same incremental solver on the same numbers). The last row predicts x_n, whose
// label is not in the prompt (the adapter passes 0); the OLS/ridge solver's rotation sweep that adds
// example n−1 yields the prediction before it uses y, but the label enters the rotated vector, so the
// results may differ by rounding: a few ulp of the O(1..10) predictions, 1e-14 absolute.
bool same_online(const Eigen::MatrixXd& got, const Eigen::MatrixXd& ref) {
  const Eigen::Index n = ref.rows();
  return got.rows() == n && got.cols() == ref.cols() && got.topRows(n - 1) == ref.topRows(n - 1) &&
         (got.row(n - 1) - ref.row(n - 1)).cwiseAbs().maxCoeff() <= 1e-14;
}

}  // namespace

TEST_CASE("evaluate_online: regressors as prompt predictors give exactly regress::online_predictions",
          "[metrics][models]") {
  const icl::data::TaskDistribution dist{6};
  mt::OnlineOptions opt;
  opt.n_contexts = 10;
  opt.batch = 4;  // chunks of 4, 4, 2 contexts
  opt.keep_predictions = true;
  icl::Rng rng(5);
  const auto res = mt::evaluate_online<double, 2>(
      dist, {mt::prompt_predictor<double, 2>(rg::Ols{}), mt::prompt_predictor<double, 2>(rg::Ridge{0.5})},
      opt, rng);
  const Eigen::MatrixXd ols = online_reference(rg::Ols{}, dist, 10, 5);
  const Eigen::MatrixXd ridge = online_reference(rg::Ridge{0.5}, dist, 10, 5);
  // the same function on the same decoded numbers
  CHECK(same_online(res.predictions[0], ols));
  CHECK(same_online(res.predictions[1], ridge));
  // the tables are the formulas over these predictions
  const Eigen::ArrayXXd sq = (ols - ridge).array().square();
  for (int i = 0; i < 6; ++i)
    CHECK(res.table.at("spd", "Ridge(0.5)", "OLS", i).mean == Approx(sq.row(i).mean()).epsilon(1e-13));
  const int last = 2;  // min(d, n): the region is prefix 1 only
  CHECK(mt::mspd_of(res.table, "OLS", "Ridge(0.5)").mean ==
        Approx(sq.middleRows(1, last - 1).colwise().mean().mean()).epsilon(1e-13));
  CHECK(mt::mspd_of(res.table, "OLS", "Ridge(0.5)").count == 10);
}

TEST_CASE("a constructed ridge transformer evaluated through the metrics equals online ridge",
          "[metrics][models][construct]") {
  const int n = 4;
  const double lambda = 0.5;
  const auto tf = icl::construct::ridge_transformer<double, 2>(n, lambda);
  const icl::data::TaskDistribution dist{n};
  icl::Rng rng(7);
  // predict_batch of several prompts equals predict() prompt by prompt: the same blocks on the same
  // columns; only the GEMM blocking may differ (sizes differ), so equality to rounding. The realised
  // state carries values up to the construction's large constants (N ~ 1e3 amplifies rounding in the
  // div), so allow 1e-10, still 1/100 of the 1e-8 construction bound used below.
  Eigen::MatrixXd tokens(3, 3 * (2 * n + 1));
  std::vector<Eigen::VectorXd> single;
  for (int b = 0; b < 3; ++b) {
    const auto task = icl::data::sample_task<double, 2>(dist, rng);
    const Eigen::Vector2d xq = icl::data::sample_x<double, 2>(dist, rng);
    tokens.middleCols(b * (2 * n + 1), 2 * n + 1) = icl::data::encode(task, xq);
    single.push_back(tf.predict(icl::data::encode(task, xq)));
  }
  const Eigen::MatrixXd batch = tf.predict_batch(tokens, 2 * n + 1);
  REQUIRE(batch.rows() == n + 1);
  REQUIRE(batch.cols() == 3);
  for (int b = 0; b < 3; ++b) CHECK((batch.col(b) - single[b]).cwiseAbs().maxCoeff() <= 1e-10);
  // every layer's hidden state: layers + 1 states, the last one's read-out row is the prediction
  const auto states = tf.hidden_states(tokens, 2 * n + 1);
  REQUIRE(static_cast<int>(states.size()) == tf.layers() + 1);
  CHECK(tf.layers() == 12 * n + 4);  // the default ridge form, the w-form
  CHECK(states.back()(tf.chain().readout.row, 2 * n) == batch(n, 0));

  // online protocol: one causal pass per context, 5 contexts per call. The realised construction
  // matches the exact algorithm to 1e-8 (tests/construct: the d = 8, n = 40 bound; it is far smaller here)
  mt::OnlineOptions opt;
  opt.n_contexts = 12;
  opt.batch = 5;
  opt.keep_predictions = true;
  icl::Rng rng2(9);
  const auto res = mt::evaluate_online<double, 2>(
      dist, {mt::model_predictor(tf, "constructed"), mt::prompt_predictor<double, 2>(rg::Ridge{lambda})}, opt,
      rng2);
  const Eigen::MatrixXd ref = online_reference(rg::Ridge{lambda}, dist, 12, 9);
  CHECK(same_online(res.predictions[1], ref));
  CHECK((res.predictions[0] - ref).cwiseAbs().maxCoeff() <= 1e-8);
  CHECK(mt::mspd_of(res.table, "constructed", "Ridge(0.5)").mean <= 1e-16);  // (1e-8)²

  // separate query points (evaluate): the same, and ILWD through the implicit fit of the constructed
  // model's predictions at 6 probes vs the exact ridge weights. The fit solves a 6 x 2 least-squares
  // problem with standard-normal probes (condition ~ a few), so weight errors stay ~1e-8: ILWD <= 1e-14.
  mt::EvalOptions eo;
  eo.n_contexts = 3;
  eo.n_probes = 6;
  icl::Rng rng3(11);
  const auto tab = mt::evaluate<double, 2>(
      dist,
      {mt::as_predictor(mt::model_predictor(tf, "constructed", 4)), mt::predictor<double>(rg::Ridge{lambda})},
      eo, rng3);
  for (int i = 0; i < n; ++i) {
    CHECK(tab.at("spd", "constructed", "Ridge(0.5)", i).mean <= 1e-16);
    CHECK(tab.at("ilwd", "constructed", "Ridge(0.5)", i).mean <= 1e-14);
  }
}

TEST_CASE("a trained model's batched evaluation equals per-context calls", "[metrics][models][nn]") {
  const Model model = small_model(3);
  const icl::data::TaskDistribution dist{4};
  // nn::Transformer::predict_batch against predict() per prompt. Both run the same layers; Eigen picks
  // a coefficient-based product for the small per-prompt matrices (sum of sizes < 20) and its blocked
  // GEMM for the batch, so the sums may be ordered differently: equal to rounding. Outputs are O(1)
  // after 2 blocks with LayerNorm; a few ulp per layer and op gives ~1e-15, so 1e-13 is a safe bound.
  icl::Rng rng(13);
  mt::OnlineOptions opt;
  opt.n_contexts = 9;
  opt.batch = 4;
  opt.keep_predictions = true;
  const auto res = mt::evaluate_online<double, 2>(dist, {mt::model_predictor(model, "model")}, opt, rng);
  icl::Rng rng_ref(13);
  for (int c = 0; c < 9; ++c) {
    const auto task = icl::data::sample_task<double, 2>(dist, rng_ref);
    const Eigen::VectorXd p = model.predict(icl::data::encode(task).leftCols(2 * 4 - 1));
    CHECK((res.predictions[0].col(c) - p).cwiseAbs().maxCoeff() <= 1e-13);
  }
  // as_predictor: the prediction at a query from i examples, prompts batched over the queries
  icl::Rng rng2(17);
  const auto task = icl::data::sample_task<double, 2>(dist, rng2);
  Eigen::MatrixXd queries(5, 2);
  for (int r = 0; r < 5; ++r) queries.row(r) = icl::data::sample_x<double, 2>(dist, rng2).transpose();
  const mt::Predictor<double> pr = mt::as_predictor(mt::model_predictor(model, "model", 2));
  for (int i = 0; i <= 3; ++i) {
    const Eigen::MatrixXd X = task.X.topRows(i);
    const Eigen::VectorXd y = task.y.head(i);
    const Eigen::VectorXd got = pr.predict(X, y, queries);
    REQUIRE(got.size() == 5);
    for (int r = 0; r < 5; ++r) {
      const icl::data::Task<double, 2> sub{task.X.topRows(i), task.y.head(i), task.w};
      const Eigen::VectorXd p = model.predict(icl::data::encode(sub, queries.row(r).transpose()));
      CHECK(std::abs(got(r) - p(i)) <= 1e-13);
    }
  }
}

TEST_CASE("cast_predictor runs a float predictor inside a double evaluation", "[metrics][models]") {
  // tokens are rounded to float, predictions widened back: the float OLS equals the double one to float
  // rounding. The online least-squares solve of 5 examples in 2 dimensions with O(1) data loses a few
  // digits at most (condition of a 2 x 2 Gram matrix of Gaussian rows): 1e-4 absolute is ~1e3 eps_float.
  const auto f = mt::cast_predictor<double>(mt::prompt_predictor<float, 2>(rg::Ols{}, "OLS float"));
  const auto d = mt::prompt_predictor<double, 2>(rg::Ols{});
  CHECK(f.dim == 2);
  icl::Rng rng(21);
  Eigen::MatrixXd tokens(3, 4 * 9);
  for (int b = 0; b < 4; ++b)
    tokens.middleCols(b * 9, 9) = icl::data::encode(icl::data::sample_task<double, 2>({5}, rng)).leftCols(9);
  const Eigen::MatrixXd pf = mt::predict_prompts(f, tokens, 9), pd = mt::predict_prompts(d, tokens, 9);
  REQUIRE(pf.rows() == 5);
  CHECK((pf - pd).cwiseAbs().maxCoeff() <= 1e-4);
  CHECK((pf - pd).cwiseAbs().maxCoeff() > 0);  // really computed in float
}

TEST_CASE("prompt predictors reject bad input with clear errors", "[metrics][models]") {
  const Model model = small_model(4);
  const auto pp = mt::model_predictor<2>(model, "model");  // D explicit: must equal Model::InputDim
  CHECK(pp.max_tokens == 9);
  CHECK(mt::model_predictor(model, "deduced").dim == 2);  // D deduced from Model::InputDim
  const icl::data::TaskDistribution dist{6};              // 11 tokens > TMax = 9
  mt::OnlineOptions opt;
  opt.n_contexts = 2;
  icl::Rng rng(1);
  CHECK_THROWS_WITH((mt::evaluate_online<double, 2>(dist, {pp}, opt, rng)),
                    Catch::Contains("prompts of 11 tokens, the predictor accepts at most 9"));
  CHECK_THROWS_WITH((mt::evaluate_online<double, 3>({4}, {pp}, opt, rng)),
                    Catch::Contains(".dim: expected d = 3"));
  opt.batch = 0;
  CHECK_THROWS_WITH((mt::evaluate_online<double, 2>({4}, {pp}, opt, rng)), Catch::Contains("opt.batch"));
  opt.batch = 2;
  CHECK_THROWS_WITH((mt::evaluate_online<double, 2>({4}, {pp, pp}, opt, rng)),
                    Catch::Contains("unique names"));
  mt::PromptPredictor<double> bad = mt::prompt_predictor<double, 2>(rg::Ols{}, "nan");
  bad.predict = [](const Eigen::MatrixXd& tok, int T) {
    return Eigen::MatrixXd::Constant((T + 1) / 2, tok.cols() / T, std::numeric_limits<double>::quiet_NaN());
  };
  CHECK_THROWS_WITH((mt::evaluate_online<double, 2>({4}, {bad}, opt, rng)),
                    Catch::Contains("'nan': returned NaN"));
  bad.predict = [](const Eigen::MatrixXd&, int) { return Eigen::MatrixXd::Zero(1, 1); };
  CHECK_THROWS_WITH((mt::evaluate_online<double, 2>({4}, {bad}, opt, rng)), Catch::Contains("expected 4x2"));
  CHECK_THROWS_AS(mt::model_predictor<2>(model, "m", 0), icl::InvalidArgument);
  CHECK_THROWS_WITH(mt::mspd_of(mt::EvalResult{}, "a", "b"), Catch::Contains("no MSPD row"));
}
