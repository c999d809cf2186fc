// Paper block forward against a direct per-token transcription of the paper's Eqs. 3-7.
#include <catch2/catch.hpp>
#include <cmath>

#include "icl/core/rng.hpp"
#include "icl/nn.hpp"
#include "support/approx.hpp"

namespace {

using LD = long double;
using icl::Mat;
using icl::Vec;

// Weights of one paper block in long double, filled from an Rng.
struct RefWeights {
  int H, M, F;
  std::vector<Mat<LD>> wq, wk, wv;
  Mat<LD> wf, w1, w2;
  Vec<LD> bf, b1, b2, g, beta;
  RefWeights(int H_, int M_, int F_, icl::Rng& rng) : H(H_), M(M_), F(F_) {
    auto rnd = [&](int r, int c, double s) {
      Mat<LD> m(r, c);
      for (int j = 0; j < c; ++j)
        for (int i = 0; i < r; ++i) m(i, j) = static_cast<LD>(s * rng.normal());
      return m;
    };
    for (int j = 0; j < M; ++j) {
      wq.push_back(rnd(H, H, 0.5));
      wk.push_back(rnd(H, H, 0.5));
      wv.push_back(rnd(H, H, 0.5));
    }
    wf = rnd(H, M * H, 0.5);
    bf = rnd(H, 1, 0.5);
    w1 = rnd(F, H, 0.5);
    b1 = rnd(F, 1, 0.5);
    w2 = rnd(H, F, 0.5);
    b2 = rnd(H, 1, 0.5);
    g = rnd(H, 1, 0.3).array() + 1;
    beta = rnd(H, 1, 0.3);
  }
  template <class Block>
  void copy_to(Block& blk) const {
    using S = typename Block::Scalar;
    for (int j = 0; j < M; ++j) {
      blk.attn.wq(j) = wq[j].cast<S>();
      blk.attn.wk(j) = wk[j].cast<S>();
      blk.attn.wv(j) = wv[j].cast<S>();
    }
    blk.wf() = wf.cast<S>();
    blk.bf() = bf.cast<S>();
    blk.w1() = w1.cast<S>();
    blk.b1() = b1.cast<S>();
    blk.w2() = w2.cast<S>();
    blk.b2() = b2.cast<S>();
    blk.norm.weight() = g.cast<S>();
    blk.norm.bias() = beta.cast<S>();
  }
};

// One sequence through the paper's equations, token by token (digest §1.1, Eqs. 3, 5, 6, 7).
Mat<LD> reference_block(const RefWeights& w, const Mat<LD>& h, bool softmax, LD scale, bool affine, LD eps) {
  const int T = static_cast<int>(h.cols());
  Mat<LD> out(w.H, T);
  for (int i = 0; i < T; ++i) {
    Vec<LD> heads(w.M * w.H);
    for (int j = 0; j < w.M; ++j) {
      const Vec<LD> q = w.wq[j] * h.col(i);
      Vec<LD> s(i + 1);
      for (int k = 0; k <= i; ++k) s(k) = scale * q.dot(w.wk[j] * h.col(k));
      if (softmax) {
        const LD m = s.maxCoeff();
        s = (s.array() - m).exp();
        s /= s.sum();
      }
      Vec<LD> b = Vec<LD>::Zero(w.H);
      for (int k = 0; k <= i; ++k) b += s(k) * (w.wv[j] * h.col(k));
      heads.segment(j * w.H, w.H) = b;
    }
    const Vec<LD> a = w.wf * heads + w.bf;
    const Vec<LD> x = h.col(i) + a;
    const LD mu = x.mean();
    const LD var = (x.array() - mu).square().mean();
    Vec<LD> z = (x.array() - mu) / std::sqrt(var + eps);
    if (affine) z = z.cwiseProduct(w.g) + w.beta;
    Vec<LD> u = w.w1 * z + w.b1;
    for (int r = 0; r < u.size(); ++r) u(r) = u(r) / 2 * (1 + std::erf(u(r) / std::sqrt(LD(2))));
    out.col(i) = x + w.w2 * u + w.b2;
  }
  return out;
}

template <class S>
double tol();
// long double: the block and the reference differ only in summation order; ~100 roundings of
// 2^-64 each, amplified by the softmax/LN conditioning (< 100) -> 1e-14 is generous.
template <>
double tol<long double>() {
  return 1e-14;
}
// double: same argument with eps 1.1e-16 -> about 1e-12.
template <>
double tol<double>() {
  return 1e-11;
}
// float: eps 6e-8, inputs rounded to float; a few hundred ops with conditioning < 100 -> 1e-4.
template <>
double tol<float>() {
  return 1e-4;
}

}  // namespace

TEMPLATE_TEST_CASE("paper block: forward equals the paper's equations token by token", "[nn][paper_block]",
                   float, double, long double) {
  using S = TestType;
  constexpr int H = 6, M = 2, F = 8;
  icl::Rng rng(7);
  const RefWeights w(H, M, F, rng);
  const int T = 5, B = 3;
  Mat<LD> hL(H, B * T);
  for (int j = 0; j < hL.cols(); ++j)
    for (int i = 0; i < H; ++i) hL(i, j) = static_cast<LD>(rng.normal());

  struct Case {
    icl::nn::Scores scores;
    double scale;
    bool affine;
    double eps;
  };
  const Case cases[] = {{icl::nn::Scores::softmax, 1.0, false, 0.0},
                        {icl::nn::Scores::softmax, 0.5, true, 1e-5},
                        {icl::nn::Scores::linear, 0.3, false, 0.0}};
  for (const Case& cs : cases) {
    icl::nn::PaperBlockOptions opt;
    opt.scores = cs.scores;
    opt.score_scale = cs.scale;
    opt.norm = {cs.affine, cs.eps};
    icl::nn::PaperBlock<S, H, M, F> blk(opt);
    w.copy_to(blk);
    typename icl::nn::PaperBlock<S, H, M, F>::Cache cache;
    icl::Seq<S, H> out(H, B * T);
    const icl::Seq<S, H> h = hL.cast<S>();
    blk.forward(h, T, cache, out);
    for (int b = 0; b < B; ++b) {
      const Mat<LD> ref = reference_block(w, hL.middleCols(b * T, T), cs.scores == icl::nn::Scores::softmax,
                                          static_cast<LD>(cs.scale), cs.affine, static_cast<LD>(cs.eps));
      const Mat<LD> got = out.middleCols(b * T, T).template cast<LD>();
      CHECK_THAT(got, icl::test::IsCloseTo(ref, tol<S>(), 0));
      // the single-sequence convenience overload gives the same numbers
      const Mat<LD> one = blk.forward(icl::Seq<S, H>(h.middleCols(b * T, T))).template cast<LD>();
      CHECK_THAT(one, icl::test::IsCloseTo(got, tol<S>(), 0));
    }
  }
}

TEST_CASE("paper block: a stack of blocks runs them in order", "[nn][paper_block]") {
  using S = long double;
  constexpr int H = 4, M = 2, F = 6;
  icl::Rng rng(11);
  const RefWeights w0(H, M, F, rng), w1(H, M, F, rng);
  icl::nn::BlockStack<icl::nn::PaperBlock<S, H, M, F>> stack(2);
  w0.copy_to(stack.blocks[0]);
  w1.copy_to(stack.blocks[1]);
  Mat<LD> h(H, 7);
  for (int j = 0; j < h.cols(); ++j)
    for (int i = 0; i < H; ++i) h(i, j) = static_cast<LD>(rng.normal());
  const icl::Seq<S, H> out = stack.forward(icl::Seq<S, H>(h));
  const Mat<LD> ref = reference_block(w1, reference_block(w0, h, true, 1, false, 0), true, 1, false, 0);
  CHECK_THAT(Mat<LD>(out), icl::test::IsCloseTo(ref, 1e-14, 0));  // as the long double case above
}

TEST_CASE("paper block: forward into a warm cache does not allocate", "[nn][paper_block][nomalloc]") {
  using S = double;
  constexpr int H = 4, M = 2, F = 6;
  icl::Rng rng(3);
  const RefWeights w(H, M, F, rng);
  icl::nn::PaperBlock<S, H, M, F> blk;
  w.copy_to(blk);
  const icl::Seq<S, H> h = icl::Seq<S, H>::Random(H, 12);
  icl::Seq<S, H> out(H, 12), out2(H, 12);
  icl::nn::PaperBlock<S, H, M, F>::Cache cache;
  blk.forward(h, 4, cache, out);  // sizes the cache
  Eigen::internal::set_is_malloc_allowed(false);
  blk.forward(h, 4, cache, out2);
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(out2 == out);  // same computation, same order: bitwise equal
}
