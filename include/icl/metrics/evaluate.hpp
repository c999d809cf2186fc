/// @file
/// The evaluation routine: for a task distribution and a list of predictors, per-prefix tables
/// (mean and 95% confidence interval over contexts) of SPD and ILWD between every pair, of the
/// squared error against the ground truth and of the R² of each implicit fit; CSV output
/// (docs/metrics.md §3).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/data/task.hpp"
#include "icl/io/csv.hpp"
#include "icl/metrics/implicit_weights.hpp"
#include "icl/metrics/spd.hpp"
#include "icl/metrics/stat.hpp"
#include "icl/regress/algorithms.hpp"
#include "icl/regress/fit.hpp"

namespace icl::metrics {

/// Any predictor: `predict(X, y, probes)` returns one prediction per row of probes (m×d) from the
/// context (X: n×d, y: n), n possibly 0. `weights(X, y)`, when set, returns the predictor's own
/// linear weights (d entries, finite: evaluate() checks both and throws icl::InvalidArgument
/// naming the predictor); ILWD then uses them instead of the implicit fit (paper §5).
/// Trained or constructed transformers plug in through `predict` alone.
template <class S>
struct Predictor {
  using MatX = Mat<S>;  ///< X (n x d) and probes (m x d): icl::Mat<S>
  using VecX = Vec<S>;  ///< y, predictions, weights: icl::Vec<S>
  std::string name;     ///< legend name; identifies the predictor in EvalResult rows and the CSV
  /// (X: n x d context inputs, y: n targets, probes: m x d) -> m predictions, one per probe row;
  /// must accept n = 0 and return m finite values (evaluate() throws icl::InvalidArgument otherwise).
  std::function<Vec<S>(const Mat<S>& X, const Vec<S>& y, const Mat<S>& probes)> predict;
  std::function<Vec<S>(const Mat<S>& X, const Vec<S>& y)> weights;  ///< empty: not linear
};

/// A Predictor for one of the regressors of icl::regress (name defaults to its legend name).
template <class S, class A>
Predictor<S> predictor(const A& algo, std::string name = {}) {
  static_assert(regress::is_algorithm_v<A>, "icl::metrics::predictor: unknown algorithm type");
  regress::validate(algo, "predictor");
  using P = Predictor<S>;
  P p;
  p.name = name.empty() ? regress::name(algo) : std::move(name);
  p.predict = [algo](const Mat<S>& X, const Vec<S>& y, const Mat<S>& probes) {
    return regress::predict(algo, X, y, probes);
  };
  if constexpr (regress::is_linear_v<A>) {
    p.weights = [algo](const Mat<S>& X, const Vec<S>& y) {
      Vec<S> w = regress::fit(algo, X, y);
      return w;
    };
  }
  return p;
}

/// Options of evaluate().
struct EvalOptions {
  int n_contexts = 256;    ///< contexts (tasks) averaged over, >= 2 (for a confidence interval)
  int n_probes = 32;       ///< probe inputs x' ~ p(x) per context for ILWD, SPD and R², >= 1
  bool intercept = false;  ///< implicit fits with an intercept (the released code's choice)
};

/// One line of the result table: `metric` of predictor `a` (against predictor `b`, or "truth")
/// after `examples` examples.
struct EvalRow {
  std::string metric;  ///< "spd", "ilwd", "sq_error" (b = "truth") or "r2" (b = "")
  /// The predictor measured (its Predictor::name).
  std::string a, b;
  /// @var b
  /// The other predictor for "spd" and "ilwd" (the pair is unordered), "truth" for "sq_error", ""
  /// for "r2".

  int examples = 0;  ///< prefix length: the predictions use the first `examples` examples of the context
  Stat stat;         ///< mean and 95% CI over the contexts
};

/// Per-prefix tables of evaluate().
struct EvalResult {
  int d = 0;                       ///< input dimension (for the ÷d normalisation)
  int n = 0;                       ///< examples per context; prefixes 0..n-1
  std::vector<std::string> names;  ///< predictor names, in the order given
  std::vector<EvalRow> rows;       ///< long format: metric, pair, examples

  /// The row of (metric, a, b, examples); the pair is unordered for spd and ilwd. Throws
  /// InvalidArgument if absent.
  const Stat& at(const std::string& metric, const std::string& a, const std::string& b, int examples) const {
    for (const auto& r : rows) {
      if (r.metric != metric || r.examples != examples) continue;
      if ((r.a == a && r.b == b) || ((metric == "spd" || metric == "ilwd") && r.a == b && r.b == a))
        return r.stat;
    }
    ::icl::detail::raise<InvalidArgument>("EvalResult::at: no row (", metric, ", ", a, ", ", b, ", ",
                                          examples, ")");
  }
};

/// Evaluates `predictors` on `opt.n_contexts` tasks drawn from `dist` (tasks of dist.n examples
/// in D dimensions, scalar S). For every context and every prefix i = 0..n−1 (i examples), each
/// predictor sees (X[0:i], y[0:i]) and predicts at the query x_i and at n_probes probes x'
/// (drawn once per context, after the task). Recorded per prefix (docs/metrics.md §3):
///   spd(a, b):  mean over {x_i} ∪ probes of (a − b)²          (Eq. (M1))
///   ilwd(a, b): ‖ŵ_a − ŵ_b‖², ŵ = own weights or implicit fit  (Eqs. (M2)-(M3))
///   sq_error(a, truth): (a(x_i) − y_i)²
///   r2(a): R² of a's implicit fit on the probes                (Eq. (M6))
/// then mean and 95% CI over contexts (Eq. (M7)). Random draws: for each context, the task
/// (data::sample_task) and then the probes (data::sample_x), from `rng`.
template <class S, int D>
EvalResult evaluate(const data::TaskDistribution& dist, const std::vector<Predictor<S>>& predictors,
                    const EvalOptions& opt, Rng& rng) {
  data::validate(dist);
  ICL_CHECK_ARG(dist.n >= 1, "evaluate: dist.n: expected >= 1 examples per context, got ", dist.n);
  ICL_CHECK_ARG(opt.n_contexts >= 2, "evaluate: opt.n_contexts: expected >= 2, got ", opt.n_contexts);
  ICL_CHECK_ARG(opt.n_probes >= 1, "evaluate: opt.n_probes: expected >= 1, got ", opt.n_probes);
  ICL_CHECK_ARG(!predictors.empty(), "evaluate: predictors: expected at least one predictor, got none");
  for (std::size_t p = 0; p < predictors.size(); ++p) {
    ICL_CHECK_ARG(static_cast<bool>(predictors[p].predict), "evaluate: predictors[", p,
                  "].predict: expected a callable, got an empty function");
    for (std::size_t q = 0; q < p; ++q)
      ICL_CHECK_ARG(predictors[p].name != predictors[q].name, "evaluate: predictors[", p,
                    "].name: expected unique names, '", predictors[p].name, "' repeats");
  }
  const int n = dist.n, P = static_cast<int>(predictors.size()), m = opt.n_probes;
  const int npairs = P * (P - 1) / 2;
  // accumulators [prefix][pair] / [prefix][predictor]
  std::vector<detail::Acc> acc_spd(static_cast<std::size_t>(n * npairs)), acc_ilwd(acc_spd.size());
  std::vector<detail::Acc> acc_err(static_cast<std::size_t>(n * P)), acc_r2(acc_err.size());
  Mat<S> Q(m + 1, D), probes(m, D), preds(m + 1, P), W(D, P);
  for (int c = 0; c < opt.n_contexts; ++c) {
    const data::Task<S, D> task = data::sample_task<S, D>(dist, rng);
    for (int j = 0; j < m; ++j) probes.row(j) = data::sample_x<S, D>(dist, rng).transpose();
    Q.bottomRows(m) = probes;
    for (int i = 0; i < n; ++i) {
      const Mat<S> Xi = task.X.topRows(i);
      const Vec<S> yi = task.y.head(i);
      Q.row(0) = task.X.row(i);
      for (int p = 0; p < P; ++p) {
        const auto& pr = predictors[static_cast<std::size_t>(p)];
        const Vec<S> out = pr.predict(Xi, yi, Q);
        ICL_CHECK_ARG(out.size() == m + 1, "evaluate: predictor '", pr.name, "': expected ", m + 1,
                      " predictions (one per probe row), got ", out.size());
        ICL_CHECK_ARG(out.allFinite(), "evaluate: predictor '", pr.name, "': returned NaN or Inf");
        preds.col(p) = out;
        const ImplicitFit<S> fit = implicit_fit(probes, out.tail(m), opt.intercept);
        if (pr.weights) {
          const Vec<S> w = pr.weights(Xi, yi);
          ICL_CHECK_ARG(w.size() == D, "evaluate: predictor '", pr.name, "': weights() returned ", w.size(),
                        " entries, expected d = ", D);
          ICL_CHECK_ARG(w.allFinite(), "evaluate: predictor '", pr.name, "': weights() returned NaN or Inf");
          W.col(p) = w;
        } else {
          W.col(p) = fit.w;
        }
        const std::size_t k = static_cast<std::size_t>(i * P + p);
        acc_r2[k].add(fit.r2);
        const double e = static_cast<double>(out(0) - task.y(i));
        acc_err[k].add(e * e);
      }
      int pair = 0;
      for (int a = 0; a < P; ++a)
        for (int b = a + 1; b < P; ++b, ++pair) {
          const std::size_t k = static_cast<std::size_t>(i * npairs + pair);
          acc_spd[k].add(spd(preds.col(a), preds.col(b)));
          acc_ilwd[k].add(ilwd(W.col(a), W.col(b)));
        }
    }
  }
  EvalResult res;
  res.d = D;
  res.n = n;
  for (const auto& pr : predictors) res.names.push_back(pr.name);
  for (int i = 0; i < n; ++i) {
    int pair = 0;
    for (int a = 0; a < P; ++a)
      for (int b = a + 1; b < P; ++b, ++pair) {
        const std::size_t k = static_cast<std::size_t>(i * npairs + pair);
        res.rows.push_back({"spd", res.names[static_cast<std::size_t>(a)],
                            res.names[static_cast<std::size_t>(b)], i, acc_spd[k].stat()});
        res.rows.push_back({"ilwd", res.names[static_cast<std::size_t>(a)],
                            res.names[static_cast<std::size_t>(b)], i, acc_ilwd[k].stat()});
      }
    for (int p = 0; p < P; ++p) {
      const std::size_t k = static_cast<std::size_t>(i * P + p);
      res.rows.push_back({"sq_error", res.names[static_cast<std::size_t>(p)], "truth", i, acc_err[k].stat()});
      res.rows.push_back({"r2", res.names[static_cast<std::size_t>(p)], "", i, acc_r2[k].stat()});
    }
  }
  return res;
}

/// Writes `res` as CSV with columns metric,a,b,examples,mean,ci95,mean_per_dim,ci95_per_dim,count
/// (per_dim = ÷ d, Eq. (M5)). Throws IoError if the file cannot be written.
inline void write_csv(const EvalResult& res, const std::string& path) {
  io::CsvWriter w(path,
                  {"metric", "a", "b", "examples", "mean", "ci95", "mean_per_dim", "ci95_per_dim", "count"});
  for (const auto& r : res.rows)
    w.row(r.metric, r.a, r.b, r.examples, r.stat.mean, r.stat.ci95, r.stat.mean / res.d, r.stat.ci95 / res.d,
          r.stat.count);
  w.flush();
}

}  // namespace icl::metrics
