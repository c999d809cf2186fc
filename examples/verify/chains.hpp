// verify: build a realised chain in scalar S for dimension D and measure it against the classical
// algorithm (icl::regress in long double). Included by the chains_<S>_d<D>.cpp translation units.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "icl/construct.hpp"
#include "icl/data/task.hpp"
#include "icl/regress.hpp"
#include "verify.hpp"

namespace verify {

namespace detail {

using LD = long double;

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The n examples followed by the query as one (n+1) x D design, labels with a 0 for the query: the
/// online protocol of icl::regress then gives the n in-context predictions and the query's last.
template <class S, int D>
void with_query(const icl::data::Task<S, D>& t, const Eigen::Matrix<S, D, 1>& xq, icl::Mat<LD>& X,
                icl::Vec<LD>& y) {
  const auto n = t.X.rows();
  X.resize(n + 1, D);
  y.resize(n + 1);
  X.topRows(n) = t.X.template cast<LD>();
  X.row(n) = xq.transpose().template cast<LD>();
  y.head(n) = t.y.template cast<LD>();
  y(n) = 0;  // never used: the query's prediction comes from examples 0..n-1
}

/// The classical algorithm each chain implements, in long double, on the inputs the model saw.
template <class S, int D>
icl::Vec<LD> classical(ChainId chain, const Settings& s, const icl::data::Task<S, D>& t,
                       const Eigen::Matrix<S, D, 1>& xq, const Eigen::Matrix<S, Eigen::Dynamic, 1>& w0) {
  namespace rg = icl::regress;
  icl::Mat<LD> X;
  icl::Vec<LD> y;
  with_query(t, xq, X, y);
  switch (chain) {
    case ChainId::thm1: {  // one GD step from w0 on example 1, predicted at the query (Theorem 1)
      const icl::Vec<LD> w = w0.template cast<LD>(), x1 = X.row(0).transpose();
      const icl::Vec<LD> w1 = w - 2 * LD(s.alpha1) * (x1 * (x1.dot(w) - y(0)) + LD(s.lambda1) * w);
      return icl::Vec<LD>::Constant(1, w1.dot(X.row(1).transpose()));
    }
    case ChainId::thm2:  // ridge on example 1, predicted at the query (Theorem 2)
      return icl::Vec<LD>::Constant(1, rg::online_predictions(rg::Ridge{s.lambda_ridge}, X, y)(1));
    case ChainId::sgd:
      return rg::online_predictions(rg::Sgd{s.lr, s.lambda_sgd}, X, y);
    case ChainId::ridge:
    case ChainId::ridge_w:
      return rg::online_predictions(rg::Ridge{s.lambda_ridge}, X, y);
  }
  return {};
}

template <class S, int D, class Model>
Cell measure(ChainId chain, const Settings& s, int n, const Model& model, double build_s,
             const Eigen::Matrix<S, Eigen::Dynamic, 1>& w0) {
  Cell c;
  c.build_s = build_s;
  c.res = model.resources();
  icl::Rng rng(s.seed + static_cast<std::uint64_t>(1000 * D + n));  // the same tasks for every S
  double eval = 0;
  for (int k = 0; k < s.draws; ++k) {
    // drawn in double and rounded to S, so every scalar type sees the same tasks
    const auto td = icl::data::sample_task<double, D>({n}, rng);
    const Eigen::Matrix<double, D, 1> xqd = icl::data::sample_x<double, D>({n}, rng);
    const icl::data::Task<S, D> t{td.X.template cast<S>(), td.y.template cast<S>(), td.w.template cast<S>()};
    const Eigen::Matrix<S, D, 1> xq = xqd.template cast<S>();
    const auto t0 = std::chrono::steady_clock::now();
    const Eigen::Matrix<S, Eigen::Dynamic, 1> p = model.predict(icl::data::encode(t, xq));
    eval += seconds_since(t0);
    const icl::Vec<LD> ref = classical<S, D>(chain, s, t, xq, w0);
    ICL_CHECK_ARG(p.size() == ref.size(), "verify: ", p.size(), " predictions, expected ", ref.size());
    c.err = std::max(c.err, static_cast<double>((p.template cast<LD>() - ref).cwiseAbs().maxCoeff()));
    c.max_abs_pred = std::max(c.max_abs_pred, static_cast<double>(ref.cwiseAbs().maxCoeff()));
  }
  c.eval_s = eval / s.draws;
  return c;
}

}  // namespace detail

template <class S, int D>
Cell run_chain(ChainId chain, const Settings& s) {
  namespace ct = icl::construct;
  icl::Vec<S> w0 = icl::Vec<S>::Zero(D);
  icl::Rng wr(7);
  for (int i = 0; i < D; ++i) w0(i) = static_cast<S>(wr.normal());
  const auto t0 = std::chrono::steady_clock::now();
  switch (chain) {
    case ChainId::thm1: {
      const auto m = ct::theorem1_transformer<S, D>(w0, s.alpha1, s.lambda1);
      return detail::measure<S, D>(chain, s, 1, m, detail::seconds_since(t0), w0);
    }
    case ChainId::thm2: {
      const auto m = ct::theorem2_transformer<S, D>(s.lambda_ridge);
      return detail::measure<S, D>(chain, s, 1, m, detail::seconds_since(t0), w0);
    }
    case ChainId::sgd: {
      const auto m = ct::gd_transformer<S, D>(s.n, s.lr, s.lambda_sgd);
      return detail::measure<S, D>(chain, s, s.n, m, detail::seconds_since(t0), w0);
    }
    case ChainId::ridge:
    case ChainId::ridge_w: {
      ct::TransformerOptions o;
      o.ridge_form = chain == ChainId::ridge_w ? ct::RidgeForm::w : ct::RidgeForm::moment;
      const auto m = ct::ridge_transformer<S, D>(s.n, s.lambda_ridge, o);
      return detail::measure<S, D>(chain, s, s.n, m, detail::seconds_since(t0), w0);
    }
  }
  return {};
}

}  // namespace verify
