// NarrowPaperBlock (the paper block's narrow form: R query/key rows, identity values) against
// PaperBlock::forward with the same weights: random weights of that form, both score types, an affine
// LayerNorm, zero rows in W^F and zero units in the MLP; a warm workspace does not allocate.
#include <catch2/catch.hpp>
#include <cmath>
#include <utility>

#include "icl/core/rng.hpp"
#include "icl/nn.hpp"
#include "support/approx.hpp"

namespace {

constexpr int H = 8, M = 2, F = 6, R = 2;
using Block = icl::nn::PaperBlock<double, H, M, F>;
using Narrow = icl::nn::NarrowPaperBlock<double, H, M, F, R>;

// A block of the narrow form with O(1) random weights; W^F row 5 and MLP units 1 and 4 unused.
void fill_narrow(Block& b, icl::Rng& rng) {
  auto rnd = [&](auto&& m) {
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = 0.5 * rng.normal();
  };
  for (int j = 0; j < M; ++j) {
    b.attn.wq(j).setZero();
    b.attn.wk(j).setZero();
    rnd(b.attn.wq(j).topRows(R));
    rnd(b.attn.wk(j).topRows(R));
    b.attn.wv(j).setIdentity();
  }
  rnd(b.wf());
  b.wf().row(5).setZero();
  rnd(b.bf());
  rnd(b.w1());
  rnd(b.b1());
  rnd(b.w2());
  b.w2().col(1).setZero();
  b.w2().col(4).setZero();
  rnd(b.b2());
  rnd(b.norm.weight());
  rnd(b.norm.bias());
}

using Seq = icl::Seq<double, H>;

// The full block's forward (first) and the narrow form's (second, through `ws`) of h, T tokens each.
std::pair<Seq, Seq> both_forwards(const Block& full, const Narrow& narrow, const Seq& h, int T,
                                  Narrow::Workspace& ws) {
  Seq a(H, h.cols()), b(H, h.cols());
  Block::Cache cache;
  full.forward(h, T, cache, a);
  narrow.forward(h, T, ws, b);
  return {a, b};
}

}  // namespace

TEST_CASE("narrow paper block: forward equals the full block of the same weights", "[nn][narrow]") {
  for (const auto scores : {icl::nn::Scores::softmax, icl::nn::Scores::linear}) {
    for (const bool affine : {false, true}) {
      icl::nn::PaperBlockOptions opt;
      opt.scores = scores;
      opt.score_scale = 0.7;
      opt.norm.affine = affine;
      opt.norm.eps = 1e-5;
      Block full(opt);
      icl::Rng rng(7);
      fill_narrow(full, rng);
      const Narrow narrow(full);
      CHECK(narrow.active_units() == F - 2);
      CHECK(narrow.mixed_rows() == 2 * (H - 1));
      const Seq h = Seq::Random(H, 15);  // 3 sequences of 5 tokens
      Narrow::Workspace ws;
      const auto [a, b] = both_forwards(full, narrow, h, 5, ws);
      // O(1) weights and inputs, sums of at most 2H + T + F terms: a few hundred ulps at most
      CHECK_THAT(b, icl::test::IsCloseTo(a, 1e-13, 1e-13));
      // warm workspace: no allocation (checked where Eigen's assertions are on), the same result bitwise
      Seq c(H, 15);
      Eigen::internal::set_is_malloc_allowed(false);
      narrow.forward(h, 5, ws, c);
      Eigen::internal::set_is_malloc_allowed(true);
      CHECK(c == b);
    }
  }
}

TEST_CASE("narrow paper block: the MLP is skipped when no unit is active", "[nn][narrow]") {
  Block full;  // paper defaults: softmax, LN without gain, eps 0
  icl::Rng rng(8);
  fill_narrow(full, rng);
  full.w2().setZero();
  const Narrow narrow(full);
  CHECK(narrow.active_units() == 0);
  const Seq h = Seq::Random(H, 6);
  Narrow::Workspace ws;
  const auto [a, b] = both_forwards(full, narrow, h, 6, ws);
  CHECK_THAT(b, icl::test::IsCloseTo(a, 1e-13, 1e-13));
}

TEST_CASE("narrow paper block: refuses blocks that are not of the narrow form", "[nn][narrow]") {
  Block blk;
  for (int j = 0; j < M; ++j) blk.attn.wv(j).setIdentity();
  CHECK_NOTHROW(Narrow(blk));
  blk.attn.wk(1)(2, 3) = 0.5;  // a third key row
  CHECK_THROWS_AS(Narrow(blk), icl::InvalidArgument);
  CHECK_NOTHROW(icl::nn::NarrowPaperBlock<double, H, M, F, 3>(blk));
  blk.attn.wk(1)(2, 3) = 0;
  blk.attn.wv(0)(1, 0) = 1e-300;  // values not the identity
  CHECK_THROWS_AS(Narrow(blk), icl::InvalidArgument);
  icl::Seq<double, H> h = icl::Seq<double, H>::Zero(H, 6), out(H, 6);
  blk.attn.wv(0)(1, 0) = 0;
  const Narrow ok(blk);
  Narrow::Workspace ws;
  CHECK_THROWS_AS(ok.forward(h, 4, ws, out), icl::InvalidArgument);  // 4 does not divide 6
}
