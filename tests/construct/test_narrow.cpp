// The narrow evaluation of constructed models (detail::RowBlock, the row-sparse in-place form behind
// BlockForm::narrow) against the full paper block (BlockForm::full): layer by layer on the realised ridge
// and GD models, end to end, in batches, and without allocation once the workspace is warm.
// docs/constructions.md §4.5, §6.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "icl/construct.hpp"
#include "icl/data/task.hpp"

using namespace icl::construct;

namespace {

using icl::Mat;

// Largest |narrow − full| / bound over the entries of every layer, each layer run by both forms on the same
// input (the full forward's state). Per entry (i, c) the bound is 2·γ_n·m(i, c) with γ_n = n·u / (1 − n·u)
// (Higham, Accuracy and Stability, Lemma 3.1: a sum of n terms computed in any order is within γ_n·Σ|terms|
// of the exact sum, so two orders differ by at most twice that), n = T + 2H + F + 4 (the longest chain of
// sums of the block: T keys in h·A_j, 2H columns of W^F, F units of W2, and the bias, residual and
// LayerNorm additions), and m the first-order magnitude of everything the block sums:
//   m = |h| + Σ_j |F_j|·(|h|·(|A_j| + 2·Zmax_j·A_j⊙(1 − A_j))) + |b^F| + |W2|·|σ(pre)|
//       + 1.13·|W2|·(|W1|·|z| + |b1|) + |b2|
// where Zmax_j(c) = max_k ((|W^K_j|·|h|)ᵀ(|W^Q_j|·|h|))(k, c) bounds the terms of the scores of query c (a
// score error ΔZ moves the softmax weight A_k by A_k·Σ_l A_l(ΔZ_k − ΔZ_l), at most 2·A_k(1 − A_k)·max|ΔZ|;
// the constructions' scores reach γ·Ts², so this term dominates the tiny leakage weights), z = LN(x),
// and 1.13 >= |σ'| bounds how the rounding of the MLP's input sums (which cancel by design: s0·(ℓ_r −
// ℓ_ZERO), docs/constructions.md (C4)) reaches the output. The narrow form computes the same sums in other
// orders (sparse, (F_j h)A_j by diagonals for F_j(hA_j), the LayerNorm variance as E[x²] − μ² where
// μ² ≤ E[x²]/16, so within 16/15 of the two-pass form's rounding), skips the subnormal attention weights
// ((N2) of narrow_paper_block.hpp: an absolute term T·min·|F_j||h|, the underflow level), and evaluates
// erf in double by a series / the C library's rational form (≈ 1 ulp of std::erf, covered by the
// |W2||σ(pre)| term).
template <class S, int D, int H, int F>
double worst_layer_ratio(const ConstructedTransformer<S, D, H, F>& m, int n_examples, std::uint64_t seed) {
  icl::Rng rng(seed);
  const auto task = icl::data::sample_task<S, D>({n_examples}, rng);
  const auto xq = icl::data::sample_x<S, D>({n_examples}, rng);
  const auto tokens = icl::data::encode(task, xq);
  const int T = static_cast<int>(tokens.cols());
  const auto states = m.hidden_states(tokens, T, BlockForm::full);
  const Realisation<S>& R = m.realisation();
  const double u = static_cast<double>(std::numeric_limits<S>::epsilon()) / 2;
  const double n = T + 2.0 * H + F + 4;
  const double gamma = n * u / (1 - n * u);
  double worst = 0;
  for (int l = 0; l < m.layers(); ++l) {
    const detail::Block<S, H, F> blk(
        R.blocks[static_cast<std::size_t>(R.schedule[static_cast<std::size_t>(l)])], R.constants.ln_eps);
    const auto& h = states[static_cast<std::size_t>(l)];
    typename detail::Block<S, H, F>::PaperBlock::Cache cache;
    typename detail::RowBlock<S>::Workspace ws;
    typename detail::Block<S, H, F>::SeqType full(H, T), narrow(H, T);
    blk.paper_block().forward(h, T, cache, full);
    detail::RowState<S> rows = h;
    blk.row_block().forward(rows.data(), T, T, ws);
    narrow = rows;
    auto& pb = const_cast<typename detail::Block<S, H, F>::PaperBlock&>(blk.paper_block());
    const Mat<S> wf = pb.wf(), w2 = pb.w2();
    const Mat<S> ah = h.cwiseAbs(), w1 = pb.w1();
    Mat<S> mag = ah;
    for (int j = 0; j < 2; ++j) {
      const Mat<S> A = cache.attn.weights(0, j), wq = pb.attn.wq(j), wk = pb.attn.wk(j);
      const Mat<S> zmag = (wk.cwiseAbs() * ah).transpose() * (wq.cwiseAbs() * ah);  // T x T
      const Mat<S> fj = wf.middleCols(j * H, H).cwiseAbs(), one_minus = Mat<S>::Ones(T, T) - A;
      const Mat<S> terms = fj * (ah * A.cwiseAbs()), sens = fj * (ah * A.cwiseProduct(one_minus).cwiseAbs());
      for (int c = 0; c < T; ++c) mag.col(c) += terms.col(c) + 2 * zmag.col(c).maxCoeff() * sens.col(c);
    }
    mag.colwise() += Mat<S>(pb.bf()).cwiseAbs().col(0) + Mat<S>(pb.b2()).cwiseAbs().col(0);
    mag += w2.cwiseAbs() * cache.ff.post.cwiseAbs();
    Mat<S> pre_terms = w1.cwiseAbs() * cache.z.cwiseAbs();
    pre_terms.colwise() += Mat<S>(pb.b1()).cwiseAbs().col(0);
    mag += S(1.13) * (w2.cwiseAbs() * pre_terms);
    // (N2): attention weights below the smallest normal number are skipped, by at most T·min·|F_j|·|h|
    Mat<S> under = Mat<S>::Zero(H, T);
    for (int j = 0; j < 2; ++j) under += wf.middleCols(j * H, H).cwiseAbs() * ah;
    under *= S(T) * std::numeric_limits<S>::min();
    const Mat<S> diff = (narrow - full).cwiseAbs();
    for (Eigen::Index i = 0; i < diff.size(); ++i) {
      const double bound =
          2 * gamma * static_cast<double>(mag.data()[i]) + static_cast<double>(under.data()[i]);
      const double d = static_cast<double>(diff.data()[i]);
      REQUIRE(std::isfinite(d));
      worst = std::max(worst, bound > 0 ? d / bound : (d > 0 ? 1e30 : 0.0));
    }
  }
  return worst;
}

// Largest |narrow − exact| of the predictions over a few prompts, and the same for |full − exact|.
template <class Model, int D>
std::pair<double, double> prediction_gaps(const Model& m, int n_examples, std::uint64_t seed) {
  using S = typename Model::Scalar;
  icl::Rng rng(seed);
  double nf = 0, fe = 0;
  for (int t = 0; t < 6; ++t) {
    const auto task = icl::data::sample_task<S, D>({n_examples}, rng);
    const auto xq = icl::data::sample_x<S, D>({n_examples}, rng);
    const auto tokens = icl::data::encode(task, xq);
    const auto narrow = m.predict(tokens), full = m.predict(tokens, BlockForm::full),
               exact = m.predict_exact(tokens);
    nf = std::max(nf, static_cast<double>((narrow - exact).cwiseAbs().maxCoeff()));
    fe = std::max(fe, static_cast<double>((full - exact).cwiseAbs().maxCoeff()));
  }
  return {nf, fe};
}

}  // namespace

TEST_CASE("narrow blocks: every realised layer equals the full paper block within rounding",
          "[construct][narrow]") {
  // Each layer of the realised ridge (moment and w form) and SGD models, d = 2 and 4, double, float and
  // long double, on the full forward's own states: within the sum-rounding bound above.
  TransformerOptions moment, w_form;
  moment.ridge_form = RidgeForm::moment;
  w_form.ridge_form = RidgeForm::w;
  CHECK(worst_layer_ratio(ridge_transformer<double, 2>(4, 0.5, moment), 4, 1) <= 1);
  CHECK(worst_layer_ratio(ridge_transformer<double, 4>(4, 0.5, moment), 4, 2) <= 1);
  CHECK(worst_layer_ratio(ridge_transformer<double, 2>(3, 0.5, w_form), 3, 3) <= 1);
  CHECK(worst_layer_ratio(gd_transformer<double, 2>(5, 0.05, 0.1), 5, 4) <= 1);
  CHECK(worst_layer_ratio(gd_transformer<double, 4>(5, 0.05, 0.1), 5, 5) <= 1);
  CHECK(worst_layer_ratio(ridge_transformer<float, 2>(3, 0.5), 3, 6) <= 1);
  CHECK(worst_layer_ratio(ridge_transformer<long double, 2>(3, 0.5), 3, 7) <= 1);
  CHECK(worst_layer_ratio(theorem2_transformer<double, 2>(0.5), 1, 8) <= 1);
}

TEST_CASE("narrow blocks: predictions equal the full path's up to its own construction error",
          "[construct][narrow]") {
  // End to end the per-layer rounding differences pass through the remaining layers as any rounding
  // does: each form's error against the exact program is the construction's own error plus its
  // propagated rounding, so the narrow form is as accurate as the full one up to the spread of that
  // rounding: measured max over 6 prompts of |narrow − exact| / |full − exact| 0.3–2 (float ridge d = 2
  // over 11 seeds; double 0.5–1.2), hence the factor 3.
  const auto check = [](std::pair<double, double> g) {
    INFO("narrow - exact " << g.first << ", full - exact " << g.second);
    CHECK(g.first <= 3 * g.second + 1e-13);  // + a few hundred ulps of O(1) predictions
  };
  check(prediction_gaps<RidgeTransformer<double, 2>, 2>(ridge_transformer<double, 2>(6, 0.5), 6, 11));
  check(prediction_gaps<RidgeTransformer<double, 4>, 4>(ridge_transformer<double, 4>(6, 0.5), 6, 12));
  check(prediction_gaps<GdTransformer<double, 4>, 4>(gd_transformer<double, 4>(6, 0.05, 0.1), 6, 13));
  check(prediction_gaps<RidgeTransformer<float, 2>, 2>(ridge_transformer<float, 2>(6, 0.5), 6, 14));
}

TEST_CASE("narrow blocks: batches, hidden states and the workspace forward agree", "[construct][narrow]") {
  const auto m = ridge_transformer<double, 2>(4, 0.5);
  icl::Rng rng(21);
  constexpr int B = 3, T = 9;
  Eigen::MatrixXd prompts(3, B * T);
  for (int b = 0; b < B; ++b) {
    const auto task = icl::data::sample_task<double, 2>({4}, rng);
    const Eigen::Vector2d xq = icl::data::sample_x<double, 2>({4}, rng);
    prompts.middleCols(b * T, T) = icl::data::encode(task, xq);
  }
  const Eigen::MatrixXd batch = m.predict_batch(prompts, T);
  for (int b = 0; b < B; ++b) {
    const Eigen::VectorXd one = m.predict(prompts.middleCols(b * T, T)),
                          exact = m.predict_exact(prompts.middleCols(b * T, T));
    // the same sums per column, but Eigen's kernels peel by alignment (FMA in the packets, not in the
    // scalar remainder), so a batch may round differently: within the model's own error (≈ 1e-11 for
    // ridge d = 2 against the exact program, §4.3), not bitwise
    const double gap = (batch.col(b) - one).cwiseAbs().maxCoeff();
    INFO("batch vs one prompt " << gap << ", one prompt vs exact " << (one - exact).cwiseAbs().maxCoeff());
    CHECK(gap <= 1e-10);
  }
  const auto hs = m.hidden_states(prompts, T);
  REQUIRE(static_cast<int>(hs.size()) == m.layers() + 1);
  const auto h0 = m.embed_batch(prompts, T);
  CHECK(hs.back() == m.model().forward(h0, T));  // same batch, same path: bitwise

  // forward into a kept workspace: the same state, and once warm its buffers are neither reallocated
  // (the addresses stay) nor, in builds with Eigen's assertions, allocated at all.
  RidgeTransformer<double, 2>::SeqType::PlainObject first;
  CompiledProgram<double, ChainWidths<2>::ridge_height, ChainWidths<2>::ridge_mlp>::Workspace ws;
  first = m.model().forward(h0, T, ws);
  CHECK(first == hs.back());
  const double* const buffers[] = {ws.block.g.data(), ws.block.p.data(),   ws.block.x.data(),
                                   ws.block.z.data(), ws.block.pre.data(), ws.state.data(),
                                   ws.result.data()};
  Eigen::internal::set_is_malloc_allowed(false);
  const auto& again = m.model().forward(h0, T, ws);
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(again == first);
  const double* const after[] = {ws.block.g.data(),   ws.block.p.data(), ws.block.x.data(), ws.block.z.data(),
                                 ws.block.pre.data(), ws.state.data(),   ws.result.data()};
  for (std::size_t i = 0; i < std::size(after); ++i) CHECK(after[i] == buffers[i]);

  // chunks of 2 sequences (2 + 1): the same data rows up to rounding (the model's error is ~1e-11)
  CompiledProgram<double, ChainWidths<2>::ridge_height, ChainWidths<2>::ridge_mlp>::Workspace small;
  small.chunk_columns = 2 * T;
  const auto& chunked = m.model().forward(h0, T, small);
  CHECK(small.state.cols() == 2 * T);
  const int rows = m.realisation().layout.data_rows;
  CHECK((chunked.topRows(rows) - first.topRows(rows)).cwiseAbs().maxCoeff() <= 1e-9);
}
