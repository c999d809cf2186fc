/// @file
/// One evaluation path for every predictor (docs/metrics.md §5): a PromptPredictor maps a batch of
/// prompts to the predictions at their x-tokens. Classical regressors (online protocol), trained
/// nn::Transformer models and constructed transformers all become PromptPredictors without
/// hand-written adapters; as_predictor() turns one into a metrics::Predictor for evaluate()
/// (separate query points, many prompts per forward call) and evaluate_online() runs the online
/// protocol from one causal forward pass per context, many contexts per call.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/data/task.hpp"
#include "icl/metrics/evaluate.hpp"
#include "icl/metrics/spd.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/online.hpp"

namespace icl::construct {
template <class S, int D, int H, int F>
class ConstructedTransformer;  // construct/transformer.hpp; named here only to deduce its D
}  // namespace icl::construct

namespace icl::metrics {

/// Any predictor over prompts: `predict(tokens, T)` takes B = tokens.cols()/T prompts of T tokens
/// side by side ((d+1) x (B·T), icl::data::encode layout) and returns ceil(T/2) x B predictions,
/// entry (i, b) made at prompt b's i-th x-token from what precedes it (a causal model reads only
/// columns < 2i+1; a regressor fits the i examples before it). `max_tokens` (0: no limit) is the
/// longest prompt the predictor accepts, `batch` the most prompts the adapters pass per call.
template <class S>
struct PromptPredictor {
  /// Token matrices and prediction matrices (icl::Mat<S>).
  using MatX = Mat<S>;
  std::string name;    ///< legend name, as Predictor::name
  int dim = 0;         ///< d: prompts have d+1 rows
  int max_tokens = 0;  ///< longest prompt accepted; 0 = any
  int batch = 256;     ///< prompts per call at most (memory bound of the adapters' calls)
  /// (tokens: (d+1) x (B·T), T) -> ceil(T/2) x B predictions, as described above.
  std::function<Mat<S>(const Mat<S>& tokens, int T)> predict;
};

namespace detail {

template <class>
inline constexpr bool always_false = false;

/// The input dimension D of a model type: Model::InputDim (nn::Transformer), D of a
/// ConstructedTransformer<S, D, H, F>, 0 when the type says nothing.
template <class M>
struct model_input_dim : std::integral_constant<int, 0> {};
template <class M>
requires requires { M::InputDim; }
struct model_input_dim<M> : std::integral_constant<int, M::InputDim> {};
template <class S, int D, int H, int F>
struct model_input_dim<construct::ConstructedTransformer<S, D, H, F>> : std::integral_constant<int, D> {};

template <class M, class = void>
struct has_predict_batch : std::false_type {};
template <class M>
struct has_predict_batch<
    M, std::void_t<decltype(std::declval<const M&>().predict_batch(
           std::declval<const Eigen::Matrix<typename M::Scalar, Eigen::Dynamic, Eigen::Dynamic>&>(), 1))>>
    : std::true_type {};

template <class M, class = void>
struct has_max_tokens : std::false_type {};
template <class M>
struct has_max_tokens<M, std::void_t<decltype(std::declval<const M&>().max_tokens())>> : std::true_type {};

template <class M>
int model_max_tokens(const M& m) {
  if constexpr (has_max_tokens<M>::value)
    return m.max_tokens();
  else if constexpr (requires { M::MaxLen; })
    return M::MaxLen;
  else
    return 0;
}

template <class S>
void check_prompts(const PromptPredictor<S>& p, Eigen::Index rows, Eigen::Index cols, int T, const char* fn) {
  ICL_CHECK_ARG(rows == p.dim + 1, fn, ": '", p.name, "': tokens: expected d+1 = ", p.dim + 1, " rows, got ",
                rows);
  ICL_CHECK_ARG(T >= 1 && cols % T == 0, fn, ": '", p.name, "': T: expected a prompt length >= 1 dividing ",
                cols, " columns, got ", T);
  ICL_CHECK_ARG(p.max_tokens == 0 || T <= p.max_tokens, fn, ": '", p.name, "': prompts of ", T,
                " tokens, the predictor accepts at most ", p.max_tokens);
}

}  // namespace detail

/// The regressor `algo` as a PromptPredictor for d-dimensional prompts: at each x-token the online
/// prediction from the examples before it (regress::online_predictions on the decoded prompt;
/// a trailing query x-token has no label, which the online protocol never reads).
template <class S, int D, class A>
PromptPredictor<S> prompt_predictor(const A& algo, std::string name = {}) {
  static_assert(regress::is_algorithm_v<A>, "icl::metrics::prompt_predictor: unknown algorithm type");
  static_assert(D >= 1, "icl::metrics::prompt_predictor: the input dimension D must be at least 1");
  regress::validate(algo, "prompt_predictor");
  PromptPredictor<S> p;
  p.name = name.empty() ? regress::name(algo) : std::move(name);
  p.dim = D;
  p.predict = [algo](const Mat<S>& tokens, int T) {
    const Eigen::Index B = tokens.cols() / T, P = (T + 1) / 2;
    Mat<S> out(P, B);
    Mat<S> X(P, D);
    Vec<S> y = Vec<S>::Zero(P);
    for (Eigen::Index b = 0; b < B; ++b) {
      for (Eigen::Index i = 0; i < P; ++i) {
        X.row(i) = tokens.col(b * T + 2 * i).tail(D).transpose();
        y(i) = 2 * i + 1 < T ? tokens(0, b * T + 2 * i + 1) : S(0);
      }
      out.col(b) = regress::online_predictions(algo, X, y);
    }
    return out;
  };
  return p;
}

/// Any sequence model as a PromptPredictor: a trained nn::Transformer or a constructed transformer
/// (anything with predict_batch(tokens, T) -> ceil(T/2) x B and a Scalar type), or a model with only
/// predict(tokens) (then one call per prompt). The model is held by reference: it must outlive the
/// returned predictor, and a temporary is refused at compile time. The input dimension D is deduced
/// from Model::InputDim (nn::Transformer) or the ConstructedTransformer<S, D, H, F> type; a model
/// type with neither names it explicitly (model_predictor<D>(model, name)), and an explicit D that
/// contradicts the deduced one is a compile-time error.
template <int D, class Model>
PromptPredictor<typename Model::Scalar> model_predictor(const Model& model, std::string name,
                                                        int batch = 256) {
  using S = typename Model::Scalar;
  static_assert(D >= 1, "icl::metrics::model_predictor: the input dimension D must be at least 1");
  static_assert(
      detail::model_input_dim<Model>::value == 0 || detail::model_input_dim<Model>::value == D,
      "icl::metrics::model_predictor: D differs from the model's input dimension (Model::InputDim); "
      "omit it: model_predictor(model, name)");
  ICL_CHECK_ARG(batch >= 1, "model_predictor: batch: expected >= 1 prompts per call, got ", batch);
  PromptPredictor<S> p;
  p.name = std::move(name);
  p.dim = D;
  p.batch = batch;
  p.max_tokens = detail::model_max_tokens(model);
  const Model* m = &model;
  p.predict = [m](const Mat<S>& tokens, int T) -> Mat<S> {
    if constexpr (detail::has_predict_batch<Model>::value) {
      return m->predict_batch(tokens, T);
    } else {
      const Eigen::Index B = tokens.cols() / T;
      Mat<S> out((T + 1) / 2, B);
      for (Eigen::Index b = 0; b < B; ++b) out.col(b) = m->predict(tokens.middleCols(b * T, T));
      return out;
    }
  };
  return p;
}
/// The same with D deduced (see above).
template <class Model>
PromptPredictor<typename Model::Scalar> model_predictor(const Model& model, std::string name,
                                                        int batch = 256) {
  static_assert(detail::model_input_dim<Model>::value >= 1,
                "icl::metrics::model_predictor: cannot deduce the input dimension D of this model type "
                "(no Model::InputDim): call model_predictor<D>(model, name)");
  return model_predictor<detail::model_input_dim<Model>::value>(model, std::move(name), batch);
}
/// A temporary model would dangle (the predictor holds a reference): refused at compile time.
template <class Model>
void model_predictor(const Model&& model, std::string name = {}, int batch = 256) {
  static_assert(detail::always_false<Model>,
                "icl::metrics::model_predictor: the predictor holds the model by reference; pass a model "
                "(an lvalue) that outlives it, not a temporary");
  (void)model, (void)name, (void)batch;
}
/// As above, with D given explicitly.
template <int D, class Model>
void model_predictor(const Model&& model, std::string name = {}, int batch = 256) {
  static_assert(detail::always_false<Model>,
                "icl::metrics::model_predictor: the predictor holds the model by reference; pass a model "
                "(an lvalue) that outlives it, not a temporary");
  (void)model, (void)name, (void)batch;
}

/// `p` in another scalar type: tokens are rounded to From before the call and the predictions
/// converted to To after it (e.g. a float model in a double evaluation next to double regressors).
template <class To, class From>
PromptPredictor<To> cast_predictor(PromptPredictor<From> p) {
  PromptPredictor<To> out;
  out.name = p.name;
  out.dim = p.dim;
  out.max_tokens = p.max_tokens;
  out.batch = p.batch;
  out.predict = [f = std::move(p.predict)](const Mat<To>& tokens, int T) -> Mat<To> {
    const Mat<From> t = tokens.template cast<From>();
    return f(t, T).template cast<To>();
  };
  return out;
}

/// Calls p.predict on B prompts of T tokens in chunks of at most p.batch prompts and checks the
/// result's shape and finiteness: ceil(T/2) x B.
template <class S>
Mat<S> predict_prompts(const PromptPredictor<S>& p, const std::type_identity_t<Mat<S>>& tokens, int T) {
  ICL_CHECK_ARG(static_cast<bool>(p.predict), "predict_prompts: '", p.name,
                "'.predict: expected a callable, got an empty function");
  ICL_CHECK_ARG(p.batch >= 1, "predict_prompts: '", p.name, "'.batch: expected >= 1, got ", p.batch);
  detail::check_prompts(p, tokens.rows(), tokens.cols(), T, "predict_prompts");
  const Eigen::Index B = tokens.cols() / T, P = (T + 1) / 2;
  Mat<S> out(P, B);
  for (Eigen::Index b0 = 0; b0 < B; b0 += p.batch) {
    const Eigen::Index nb = std::min<Eigen::Index>(p.batch, B - b0);
    const Mat<S> chunk = tokens.middleCols(b0 * T, nb * T);
    const Mat<S> r = p.predict(chunk, T);
    ICL_CHECK_ARG(r.rows() == P && r.cols() == nb, "predict_prompts: '", p.name, "': expected ", P, "x", nb,
                  " predictions (x-tokens x prompts), got ", r.rows(), "x", r.cols());
    ICL_CHECK_ARG(r.allFinite(), "predict_prompts: '", p.name, "': returned NaN or Inf");
    out.middleCols(b0, nb) = r;
  }
  return out;
}

/// The PromptPredictor as a metrics::Predictor for evaluate(): for a context of i examples and m
/// query rows, m prompts [x̃1, ỹ1, …, x̃i, ỹi, x̃q] (2i+1 tokens) in ceil(m / p.batch) calls; the
/// prediction is the one at the query's x-token. No weights() (ILWD uses the implicit fit).
template <class S>
Predictor<S> as_predictor(PromptPredictor<S> pp) {
  using P = Predictor<S>;
  ICL_CHECK_ARG(static_cast<bool>(pp.predict), "as_predictor: '", pp.name,
                "'.predict: expected a callable, got an empty function");
  ICL_CHECK_ARG(pp.dim >= 1, "as_predictor: '", pp.name, "'.dim: expected >= 1, got ", pp.dim);
  P out;
  out.name = pp.name;
  out.predict = [pp = std::move(pp)](const Mat<S>& X, const Vec<S>& y, const Mat<S>& queries) -> Vec<S> {
    const int d = pp.dim;
    const Eigen::Index i = X.rows(), m = queries.rows();
    ICL_CHECK_ARG(X.cols() == d && queries.cols() == d && y.size() == i, "as_predictor: '", pp.name,
                  "': expected X (n x ", d, "), y (n) and queries (m x ", d, "), got ", X.rows(), "x",
                  X.cols(), ", ", y.size(), ", ", queries.rows(), "x", queries.cols());
    const int T = static_cast<int>(2 * i + 1);
    Mat<S> tokens = Mat<S>::Zero(d + 1, m * T);
    for (Eigen::Index r = 0; r < m; ++r) {
      for (Eigen::Index j = 0; j < i; ++j) {
        tokens.col(r * T + 2 * j).tail(d) = X.row(j).transpose();
        tokens(0, r * T + 2 * j + 1) = y(j);
      }
      tokens.col(r * T + 2 * i).tail(d) = queries.row(r).transpose();
    }
    const Mat<S> pred = predict_prompts(pp, tokens, T);
    return pred.row(i).transpose();
  };
  return out;
}

/// Options of evaluate_online().
struct OnlineOptions {
  int n_contexts = 256;           ///< contexts (tasks), >= 2 (for a confidence interval)
  int batch = 64;                 ///< contexts per forward call (and per draw of tasks), >= 1
  bool keep_predictions = false;  ///< keep every predictor's n x n_contexts online predictions
  int mspd_first = 1;             ///< MSPD region: prefixes mspd_first <= i < min(d, n) (Eq. (M4))
};

/// Result of evaluate_online(): per-prefix SPD and squared error (metric "spd", "sq_error" as in
/// evaluate(); SPD here is over the online query x_i only) and MSPD over the under-determined region
/// (metric "mspd", examples = min(d, n), the region's end), all with 95% CIs over contexts.
struct OnlineResult {
  EvalResult table;  ///< rows "spd", "sq_error" per prefix and "mspd" per pair, as described above
  /// With keep_predictions: predictions[p](i, c), predictor p's online prediction for x_i of
  /// context c (from examples 0..i−1), in double.
  std::vector<Eigen::MatrixXd> predictions;
};

/// The MSPD row of (a, b) in an evaluate_online() table, in either order. Throws InvalidArgument if
/// absent.
inline const Stat& mspd_of(const EvalResult& res, const std::string& a, const std::string& b) {
  for (const auto& r : res.rows)
    if (r.metric == "mspd" && ((r.a == a && r.b == b) || (r.a == b && r.b == a))) return r.stat;
  ::icl::detail::raise<InvalidArgument>("mspd_of: no MSPD row for (", a, ", ", b, ")");
}

/// The online protocol for any PromptPredictors (docs/metrics.md §5, Eq. (M8)): contexts of dist.n
/// examples are drawn (data::sample_task from `rng`, one after another), encoded as the 2n−1 tokens
/// [x̃1, ỹ1, …, x̃n] (the last label is never an input), and each predictor sees opt.batch contexts per
/// call; prediction i of a context is its online prediction for x_i. Records per prefix i
///   spd(a, b)        = (a_i − b_i)²                                   (Eq. (M1) at the query x_i)
///   sq_error(a, truth) = (a_i − y_i)²
/// and per pair mspd(a, b) = mean over first <= i < min(d, n) of (a_i − b_i)² (Eq. (M4)); means and
/// 95% CIs over contexts (Eq. (M7)).
template <class S, int D>
OnlineResult evaluate_online(const data::TaskDistribution& dist,
                             const std::vector<PromptPredictor<S>>& predictors, const OnlineOptions& opt,
                             Rng& rng) {
  data::validate(dist);
  ICL_CHECK_ARG(dist.n >= 1, "evaluate_online: dist.n: expected >= 1 examples per context, got ", dist.n);
  ICL_CHECK_ARG(opt.n_contexts >= 2, "evaluate_online: opt.n_contexts: expected >= 2, got ", opt.n_contexts);
  ICL_CHECK_ARG(opt.batch >= 1, "evaluate_online: opt.batch: expected >= 1, got ", opt.batch);
  ICL_CHECK_ARG(opt.mspd_first >= 0 && opt.mspd_first < std::min(D, dist.n),
                "evaluate_online: opt.mspd_first: expected in [0, min(d, n) = ", std::min(D, dist.n),
                "), got ", opt.mspd_first);
  ICL_CHECK_ARG(!predictors.empty(),
                "evaluate_online: predictors: expected at least one predictor, got none");
  for (std::size_t p = 0; p < predictors.size(); ++p) {
    ICL_CHECK_ARG(predictors[p].dim == D, "evaluate_online: predictors[", p, "] ('", predictors[p].name,
                  "').dim: expected d = ", D, ", got ", predictors[p].dim);
    for (std::size_t q = 0; q < p; ++q)
      ICL_CHECK_ARG(predictors[p].name != predictors[q].name, "evaluate_online: predictors[", p,
                    "].name: expected unique names, '", predictors[p].name, "' repeats");
  }
  const int n = dist.n, P = static_cast<int>(predictors.size()), T = 2 * n - 1;
  const int npairs = P * (P - 1) / 2, last = std::min(D, n);
  std::vector<detail::Acc> acc_spd(static_cast<std::size_t>(n * npairs)),
      acc_err(static_cast<std::size_t>(n * P));
  std::vector<detail::Acc> acc_mspd(static_cast<std::size_t>(npairs));
  OnlineResult res;
  if (opt.keep_predictions) res.predictions.assign(predictors.size(), Eigen::MatrixXd(n, opt.n_contexts));
  std::vector<Mat<S>> preds(predictors.size());
  for (int c0 = 0; c0 < opt.n_contexts; c0 += opt.batch) {
    const int B = std::min(opt.batch, opt.n_contexts - c0);
    Mat<S> tokens(D + 1, static_cast<Eigen::Index>(B) * T);
    Mat<S> Y(n, B);
    for (int b = 0; b < B; ++b) {
      const data::Task<S, D> task = data::sample_task<S, D>(dist, rng);
      tokens.middleCols(static_cast<Eigen::Index>(b) * T, T) = data::encode(task).leftCols(T);
      Y.col(b) = task.y;
    }
    for (int p = 0; p < P; ++p) {
      PromptPredictor<S> pp = predictors[static_cast<std::size_t>(p)];
      pp.batch = B;  // the whole chunk in one call
      preds[static_cast<std::size_t>(p)] = predict_prompts(pp, tokens, T);
      if (opt.keep_predictions)
        res.predictions[static_cast<std::size_t>(p)].middleCols(c0, B) =
            preds[static_cast<std::size_t>(p)].template cast<double>();
    }
    for (int b = 0; b < B; ++b) {
      for (int p = 0; p < P; ++p)
        for (int i = 0; i < n; ++i) {
          const double e = static_cast<double>(preds[static_cast<std::size_t>(p)](i, b) - Y(i, b));
          acc_err[static_cast<std::size_t>(i * P + p)].add(e * e);
        }
      int pair = 0;
      for (int a = 0; a < P; ++a)
        for (int q = a + 1; q < P; ++q, ++pair) {
          const auto& pa = preds[static_cast<std::size_t>(a)];
          const auto& pq = preds[static_cast<std::size_t>(q)];
          double region = 0;
          for (int i = 0; i < n; ++i) {
            const double e = static_cast<double>(pa(i, b) - pq(i, b));
            acc_spd[static_cast<std::size_t>(i * npairs + pair)].add(e * e);
            if (i >= opt.mspd_first && i < last) region += e * e;
          }
          acc_mspd[static_cast<std::size_t>(pair)].add(region / (last - opt.mspd_first));
        }
    }
  }
  EvalResult& t = res.table;
  t.d = D;
  t.n = n;
  for (const auto& pr : predictors) t.names.push_back(pr.name);
  const auto nm = [&](int p) { return t.names[static_cast<std::size_t>(p)]; };
  for (int i = 0; i < n; ++i) {
    int pair = 0;
    for (int a = 0; a < P; ++a)
      for (int b = a + 1; b < P; ++b, ++pair)
        t.rows.push_back(
            {"spd", nm(a), nm(b), i, acc_spd[static_cast<std::size_t>(i * npairs + pair)].stat()});
    for (int p = 0; p < P; ++p)
      t.rows.push_back({"sq_error", nm(p), "truth", i, acc_err[static_cast<std::size_t>(i * P + p)].stat()});
  }
  int pair = 0;
  for (int a = 0; a < P; ++a)
    for (int b = a + 1; b < P; ++b, ++pair)
      t.rows.push_back({"mspd", nm(a), nm(b), last, acc_mspd[static_cast<std::size_t>(pair)].stat()});
  return res;
}

}  // namespace icl::metrics
