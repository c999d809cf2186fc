// The fast paths of the layers against their plain forms: the padded causal softmax that attention
// runs (causal_softmax_blocks and its backward) against softmax_columns, and the forward_add
// variants (y += layer(x), used for a block's residual stream) against forward followed by an add.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "icl/core/rng.hpp"
#include "icl/nn.hpp"

namespace {
using icl::Mat;

template <class S>
Mat<S> uniform(Eigen::Index r, Eigen::Index c, icl::Rng& rng, double a) {
  Mat<S> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = static_cast<S>(a * (2 * rng.uniform() - 1));
  return m;
}
}  // namespace

TEMPLATE_TEST_CASE("fused: causal_softmax_blocks equals softmax_columns on every block", "[nn][fused]", float,
                   double) {
  using S = TestType;
  const S eps = std::numeric_limits<S>::epsilon();
  icl::Rng rng(11);
  for (const int T : {1, 2, 5, 15, 16, 17, 31, 33, 79}) {
    INFO("T = " << T);
    const int K = 3;  // score matrices side by side
    const Eigen::Index Tp = icl::nn::causal_padded_rows(T);
    REQUIRE(Tp % 16 == 0);
    REQUIRE(Tp >= T);
    REQUIRE(Tp < T + 16);
    // scores in [-6, 6]: no weight underflows, so relative comparisons are meaningful
    const Mat<S> Z = uniform<S>(T, K * T, rng, 6.0);
    Mat<S> A = Mat<S>::Constant(Tp, K * T, std::numeric_limits<S>::quiet_NaN());  // padding: ignored
    A.topRows(T) = Z;
    icl::nn::causal_softmax_blocks<S>(A, T);
    Mat<S> ref(T, K * T);
    for (int k = 0; k < K; ++k)
      icl::nn::softmax_columns(Z.middleCols(k * T, T), ref.middleCols(k * T, T), /*causal=*/true);
    bool zeros_exact = true, masked_exact = true;
    double worst = 0;
    for (Eigen::Index c = 0; c < K * T; ++c) {
      const Eigen::Index i = c % T;
      for (Eigen::Index r = T; r < Tp; ++r) zeros_exact = zeros_exact && A(r, c) == S(0);
      for (Eigen::Index r = i + 1; r < T; ++r) masked_exact = masked_exact && A(r, c) == S(0);
      for (Eigen::Index r = 0; r <= i; ++r)
        worst = std::max(worst, static_cast<double>(std::abs(A(r, c) - ref(r, c)) / ref(r, c)));
    }
    CHECK(zeros_exact);
    CHECK(masked_exact);
    // Both forms compute exp(z - m) / Σ exp(z - m) with the same shift and summation order; they
    // differ only in which exponential produced a term (Eigen's vectorised one, a few ulp, against
    // std::exp, ≤ 1 ulp, for the trailing entries of a column in softmax_columns). Each weight then
    // differs by ≤ 4 ulp in its numerator plus ≤ 4 ulp per term in the sum: (4 + 4·T)·eps relative.
    CHECK(worst <= (4.0 + 4.0 * T) * eps);
    // columns sum to 1 up to the rounding of the sum and the division
    for (Eigen::Index c = 0; c < K * T; ++c) CHECK(std::abs(A.col(c).sum() - S(1)) <= (T + 2) * eps);

    // backward: dx = y ⊙ (dy − yᵀdy) with the padding rows of dy zero, as attention passes them
    Mat<S> dY = Mat<S>::Zero(Tp, T);
    dY.topRows(T) = uniform<S>(T, T, rng, 1.0);
    for (int k = 0; k < K; ++k) {
      Mat<S> dx(Tp, T), dref(T, T);
      icl::nn::causal_softmax_blocks_backward<S>(A.middleCols(k * T, T), dY, dx);
      icl::nn::softmax_columns_backward(ref.middleCols(k * T, T), dY.topRows(T), dref, /*causal=*/true);
      for (Eigen::Index i = 0; i < T; ++i) {
        const Eigen::Index c = k * T + i;  // column i of block k
        const double scale = static_cast<double>(ref.col(c).cwiseAbs().dot(dY.col(i).topRows(T).cwiseAbs()));
        for (Eigen::Index r = 0; r < Tp; ++r) {
          if (r > i) {  // outside the window (padding included): exactly zero
            CHECK(dx(r, i) == S(0));
            continue;
          }
          // y differs by ≤ (4 + 4T) eps relative (above); s = yᵀdy is a T-term dot product
          // (≤ T eps of Σ|y||dy| rounding) and the product and difference add 2 eps: bound
          // |Δdx| ≤ y·((8 + 5T) eps (|dy| + Σ|y||dy|)).
          const double bound = (8.0 + 5.0 * T) * static_cast<double>(eps) * static_cast<double>(ref(r, c)) *
                               (std::abs(static_cast<double>(dY(r, i))) + scale);
          CHECK(std::abs(static_cast<double>(dx(r, i) - dref(r, i))) <= bound);
        }
      }
    }
  }
}

TEST_CASE("fused: forward_add equals forward plus the addend", "[nn][fused]") {
  constexpr int H = 8, M = 2, F = 16, T = 5, B = 3;
  icl::Rng rng(12);
  const Mat<double> x = uniform<double>(H, B * T, rng, 1.0), base = uniform<double>(H, B * T, rng, 1.0);
  // The sum is formed in another order (base + b first, then the product accumulates), so the two
  // agree to rounding: |Δ| ≤ a few eps times the magnitudes involved (all O(1) here, sizes ≤ 16).
  const double tol = 64 * std::numeric_limits<double>::epsilon();
  for (const bool bias : {true, false}) {
    icl::nn::Linear<double, H, H> lin(bias);
    for (auto& p : lin.parameters()) p.value_map() = uniform<double>(p.rows, p.cols, rng, 0.5);
    Mat<double> y(H, B * T), acc = base;
    lin.forward(x, y);
    lin.forward_add(x, acc);
    CHECK((acc - (base + y)).cwiseAbs().maxCoeff() <= tol);
  }
  icl::nn::MultiHeadAttention<double, H, M> attn;
  for (auto& p : attn.parameters()) p.value_map() = uniform<double>(p.rows, p.cols, rng, 0.5);
  icl::nn::MultiHeadAttention<double, H, M>::Cache ca;
  Mat<double> y(H, B * T), acc = base;
  attn.forward(x, T, ca, y);
  attn.forward_add(x, T, ca, acc);
  CHECK((acc - (base + y)).cwiseAbs().maxCoeff() <= tol);
  icl::nn::FeedForward<double, H, F> ff;
  for (auto& p : ff.parameters()) p.value_map() = uniform<double>(p.rows, p.cols, rng, 0.5);
  icl::nn::FeedForward<double, H, F>::Cache cf;
  acc = base;
  ff.forward(x, cf, y);
  ff.forward_add(x, cf, acc);
  CHECK((acc - (base + y)).cwiseAbs().maxCoeff() <= tol);
  // forward_add refuses a T that does not divide the columns, like forward
  CHECK_THROWS_AS(attn.forward_add(x, 4, ca, acc), icl::InvalidArgument);
}

TEST_CASE("fused: a PreLNBlock run in tiles equals the block run in one piece", "[nn][fused]") {
  constexpr int H = 8, M = 2, F = 16, T = 6, B = 5;
  using Block = icl::nn::PreLNBlock<double, H, M, F>;
  icl::Rng rng(13);
  icl::nn::PreLNBlockOptions one_piece, tiled;
  one_piece.tile_sequences = B;
  tiled.tile_sequences = 2;  // tiles of 2, 2 and 1 sequences
  Block a(one_piece), t(tiled);
  for (auto& p : a.parameters()) p.value_map() = uniform<double>(p.rows, p.cols, rng, 0.5);
  {
    const auto pa = a.parameters(), pt = t.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) pt[i].value_map() = pa[i].value_map();
  }
  CHECK(a.tile_sequences(T) == B);
  CHECK(t.tile_sequences(T) == 2);
  const Mat<double> h = uniform<double>(H, B * T, rng, 1.0), dout = uniform<double>(H, B * T, rng, 1.0);
  Block::Cache ca, ct;
  Mat<double> ya(H, B * T), yt(H, B * T), dha(H, B * T), dht(H, B * T);
  a.forward(h, T, ca, ya);
  t.forward(h, T, ct, yt);
  REQUIRE(ca.tiles.size() == 1);
  REQUIRE(ct.tiles.size() == 3);
  // Forward: column by column the same operations; only the GEMM blocking may differ with the
  // number of columns, which reorders sums of H or F = 16 terms: a few eps of O(1) values.
  const double tol = 64 * std::numeric_limits<double>::epsilon();
  CHECK((ya - yt).cwiseAbs().maxCoeff() <= tol);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < M; ++j)
      CHECK((Mat<double>(ca.weights(b, j)) - Mat<double>(ct.weights(b, j))).cwiseAbs().maxCoeff() <= tol);
  a.zero_grad();
  t.zero_grad();
  a.backward(h, ca, dout, dha);
  t.backward(h, ct, dout, dht);
  CHECK((dha - dht).cwiseAbs().maxCoeff() <= tol);
  // Weight gradients are sums over all B·T = 30 tokens, here in 3 partial sums: the order changes,
  // so the bound grows with the token count (30 terms of O(1)): 4·30 eps relative to the magnitude.
  const auto pa = a.parameters(), pt = t.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].name);
    const double scale = std::max(1.0, pa[i].grad_map().cwiseAbs().maxCoeff());
    CHECK((pa[i].grad_map() - pt[i].grad_map()).cwiseAbs().maxCoeff() <=
          4 * 30 * scale * std::numeric_limits<double>::epsilon());
  }
  // the backward scratch is one set shared by the tiles (swapped in per tile), as wide as the
  // widest tile; the tiles' own scratch buffers stay empty
  CHECK(ct.attn_scratch.dqkv.cols() == 2 * T);
  CHECK(ct.ff_scratch.dinner.cols() == 2 * T);
  for (const auto& k : ct.tiles) {
    CHECK(k.attn.dqkv.size() == 0);
    CHECK(k.attn.dheads.size() == 0);
    CHECK(k.attn.dA.size() == 0);
    CHECK(k.ff.dinner.size() == 0);
  }
  // warm: a second forward/backward with the uneven last tile allocates nothing
  Eigen::internal::set_is_malloc_allowed(false);
  t.forward(h, T, ct, yt);
  t.backward(h, ct, dout, dht);
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK((ya - yt).cwiseAbs().maxCoeff() <= tol);
  // the automatic rule, max(256, 640 KiB / (F·sizeof(S)), F/2) tokens (PreLNBlock::tile_sequences)
  CHECK(icl::nn::PreLNBlock<float, 64, 4, 256>().tile_sequences(79) == 640 / 79);
  CHECK(icl::nn::PreLNBlock<float, 128, 4, 512>().tile_sequences(79) == 320 / 79);
  CHECK(icl::nn::PreLNBlock<float, 512, 4, 2048>().tile_sequences(79) == 1024 / 79);
  CHECK(icl::nn::PreLNBlock<double, 8, 2, 16>().tile_sequences(10000) == 1);  // 5120 tokens: never 0
  // bad option
  icl::nn::PreLNBlockOptions bad;
  bad.tile_sequences = -1;
  CHECK_THROWS_AS(Block(bad), icl::InvalidArgument);
}

namespace {
// Plain dense attention (Eqs. T1-T8 with full T x T products, no panels, no padding) for the
// reference of the test below: forward output, dx and the four parameter gradients.
template <class Attn>
struct DenseAttention {
  Mat<double> y, dx, dw_in, db_in, dw_out, db_out;
  DenseAttention(Attn& attn, const Mat<double>& x, int T, const Mat<double>& dy) {
    constexpr int M = Attn::Heads, DQK = Attn::QKWidth, DV = Attn::VWidth;
    const Eigen::Index N = x.cols(), B = N / T;
    const Mat<double> w_in = attn.in_proj().weight(), w_out = attn.out_proj().weight();
    const bool softmax = attn.scores() == icl::nn::Scores::softmax;
    const double scale = attn.scale();
    Mat<double> qkv = w_in * x;
    if (attn.in_proj().has_bias()) qkv.colwise() += Mat<double>(attn.in_proj().bias()).col(0);
    Mat<double> heads(M * DV, N), dheads, dqkv(qkv.rows(), N);
    // rows [r, r + n) of the projections for sequence b: one head's Q_j, K_j or V_j
    auto head = [&](Eigen::Index r, Eigen::Index b, Eigen::Index n) -> Mat<double> {
      return qkv.block(r, b * T, n, T);
    };
    std::vector<Mat<double>> As;
    for (Eigen::Index b = 0; b < B; ++b)
      for (int j = 0; j < M; ++j) {
        const Mat<double> Q = head(j * DQK, b, DQK), K = head((M + j) * DQK, b, DQK),
                          V = head(2 * M * DQK + j * DV, b, DV);
        const Mat<double> Z = scale * K.transpose() * Q;
        Mat<double> A(T, T);
        if (softmax)
          icl::nn::softmax_columns(Z, A, /*causal=*/true);
        else
          A = Z.triangularView<Eigen::Upper>();
        heads.block(j * DV, b * T, DV, T) = V * A;
        As.push_back(A);
      }
    y = w_out * heads;
    if (attn.out_proj().has_bias()) y.colwise() += Mat<double>(attn.out_proj().bias()).col(0);
    dw_out = dy * heads.transpose();
    db_out = dy.rowwise().sum();
    dheads = w_out.transpose() * dy;
    for (Eigen::Index b = 0; b < B; ++b)
      for (int j = 0; j < M; ++j) {
        const Mat<double> Q = head(j * DQK, b, DQK), K = head((M + j) * DQK, b, DQK),
                          V = head(2 * M * DQK + j * DV, b, DV);
        const Mat<double>& A = As[static_cast<std::size_t>(b * M + j)];
        const Mat<double> dO = dheads.block(j * DV, b * T, DV, T);
        const Mat<double> dA = V.transpose() * dO;
        Mat<double> dZ(T, T);
        if (softmax)
          icl::nn::softmax_columns_backward(A, dA, dZ, /*causal=*/true);
        else
          dZ = dA.triangularView<Eigen::Upper>();
        dqkv.block(j * DQK, b * T, DQK, T) = scale * K * dZ;
        dqkv.block((M + j) * DQK, b * T, DQK, T) = scale * Q * dZ.transpose();
        dqkv.block(2 * M * DQK + j * DV, b * T, DV, T) = dO * A.transpose();
      }
    dw_in = dqkv * x.transpose();
    db_in = dqkv.rowwise().sum();
    dx = w_in.transpose() * dqkv;
  }
};

template <class Attn>
void check_panels_against_dense(icl::nn::AttentionOptions opt, icl::Rng& rng) {
  constexpr int H = Attn::Hidden;
  const double eps = std::numeric_limits<double>::epsilon();
  for (const int T : {5, 47, 48, 79, 130}) {  // 1, 1, 2, 2 and 4 query panels (Eq. T9)
    INFO("T = " << T << (opt.scores == icl::nn::Scores::softmax ? ", softmax" : ", linear"));
    const int B = 2;
    Attn attn(opt);
    for (auto& p : attn.parameters()) p.value_map() = uniform<double>(p.rows, p.cols, rng, 0.5);
    const Mat<double> x = uniform<double>(H, B * T, rng, 1.0), dy = uniform<double>(H, B * T, rng, 1.0);
    typename Attn::Cache c;
    Mat<double> y(H, B * T), dx(H, B * T);
    attn.zero_grad();
    attn.forward(x, T, c, y);
    attn.backward(x, c, dy, dx);
    const DenseAttention<Attn> ref(attn, x, T, dy);
    // Both sides form the same sums over at most max(T, H, M·DV) = 130 terms, in other orders (the
    // panels skip only products with exact zeros of A, Z or dA): |Δ| ≤ 130·eps·Σ|terms| per entry.
    // Σ|terms| is bounded here by 50× the largest reference entry (O(1) inputs, weights ≤ 0.5,
    // linear scores up to T·DQK/4), so 1e4·eps relative to that entry; a skipped or misplaced block
    // would be an O(1) relative error.
    auto close = [&](const Mat<double>& got, const Mat<double>& want) {
      const double s = std::max(1.0, want.cwiseAbs().maxCoeff());
      return (got - want).cwiseAbs().maxCoeff() <= 1e4 * eps * s;
    };
    CHECK(close(y, ref.y));
    CHECK(close(dx, ref.dx));
    CHECK(close(attn.in_proj().weight_grad(), ref.dw_in));
    CHECK(close(attn.out_proj().weight_grad(), ref.dw_out));
    CHECK(close(attn.out_proj().bias_grad(), ref.db_out));
    if (opt.qkv_bias) CHECK(close(attn.in_proj().bias_grad(), ref.db_in));
    // the cached weights are the causal ones, exact zeros below the diagonal and in the padding rows
    for (int b = 0; b < B; ++b)
      CHECK(Mat<double>(c.weights(b, 0)).triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0));
    CHECK(c.attn.bottomRows(c.attn.rows() - T).isZero(0));
  }
}
}  // namespace

TEST_CASE("fused: attention's causal panels (Eq. T9) equal the dense products", "[nn][fused]") {
  icl::Rng rng(14);
  for (const auto sc : {icl::nn::Scores::softmax, icl::nn::Scores::linear}) {
    icl::nn::AttentionOptions opt;
    opt.scores = sc;
    // heads of 4, 16 and 3 doubles run through the head kernels (detail/head_products.hpp: 4 and 16
    // with in-register transposes where the packet size divides them, 3 entry by entry), heads of 24
    // doubles (192 bytes) through Eigen's panel products
    check_panels_against_dense<icl::nn::MultiHeadAttention<double, 8, 2>>(opt, rng);
    check_panels_against_dense<icl::nn::MultiHeadAttention<double, 32, 2>>(opt, rng);
    check_panels_against_dense<icl::nn::MultiHeadAttention<double, 12, 4>>(opt, rng);
    check_panels_against_dense<icl::nn::MultiHeadAttention<double, 48, 2>>(opt, rng);
    check_panels_against_dense<icl::nn::PaperAttention<double, 4, 2>>(
        icl::nn::paper_attention_options(sc, 0.5), rng);
  }
}

namespace {
// The head kernels against plain loops, on every edge the tiles have: widths 1..32, column counts
// that are not multiples of the tile, windows that start and end inside a tile.
template <class S, int D>
void check_head_kernels(icl::Rng& rng) {
  namespace hd = icl::nn::detail;
  using Index = Eigen::Index;
  const double eps = std::numeric_limits<S>::epsilon();
  for (const int T : {1, 2, 7, 8, 9, 17, 33, 79}) {
    INFO("D = " << D << ", T = " << T << ", " << sizeof(S) << "-byte scalar");
    const Index Tp = icl::nn::causal_padded_rows(T), ld = D + 3;  // a column stride past D
    const Mat<S> X = uniform<double>(ld, T, rng, 1.0).cast<S>(),
                 Y = uniform<double>(Tp, T, rng, 1.0).cast<S>();
    const S alpha = S(0.75);
    // thin, both windows and both layouts of Y: C(:, j) = α Σ_{p in window} X(:, p) Y(p, j) or Y(j, p)
    for (const bool transposed : {false, true}) {
      for (const bool lower : {false, true}) {  // window [0, last + 1) or [first, T)
        Mat<S> C = Mat<S>::Constant(ld, T, S(7));
        auto window = [&](Index f, Index l) {
          return lower ? std::pair<Index, Index>(0, l + 1) : std::pair<Index, Index>(f, T);
        };
        const Index sp = transposed ? Tp : 1, sj = transposed ? 1 : Tp;
        hd::thin_product<S, D, false>(C.data(), ld, X.data(), ld, Y.data(), sp, sj, 0, T, alpha, window);
        // the reference sums over the window of the column's tile (thin_product's contract: the
        // entries of Y outside a column's own window are added too, which attention keeps at zero)
        constexpr int NR = hd::thin_tile_cols<S, D>();
        double worst = 0;
        for (Index j = 0; j < T; ++j) {
          const Index t0 = j / NR * NR;
          const auto [lo, hi] = window(t0, std::min<Index>(T, t0 + NR) - 1);
          for (int r = 0; r < D; ++r) {
            double sum = 0, mag = 0;
            for (Index p = lo; p < hi; ++p) {
              const double t = double(X(r, p)) * double(Y.data()[p * sp + j * sj]);
              sum += t, mag += std::abs(t);
            }
            // hi - lo rounded products and sums, the α product and the += onto 7:
            // |Δ| ≤ (T + 3)·eps·(Σ|terms| + 7)
            const double ref = 7 + double(alpha) * sum;
            worst = std::max(worst, std::abs(double(C(r, j)) - ref) / ((T + 3) * eps * (mag + 7)));
          }
        }
        CHECK(worst <= 1.0);
        CHECK(C.bottomRows(ld - D) == Mat<S>::Constant(ld - D, T, S(7)));  // rows past D untouched
      }
    }
    // transpose and square: C(i, q) = α Σ_r X(r, i) Y'(r, q) for i < q + 1 rounded up to row blocks,
    // zeros from there to Tp
    Mat<S> Xt = Mat<S>::Constant(Tp, D, S(-1));
    hd::transpose_head<S, D>(X.data(), ld, T, Xt.data(), Tp);
    CHECK(Xt.topRows(T) == Mat<S>(X.topRows(D).transpose()));
    CHECK(Xt.bottomRows(Tp - T).isZero(0));
    const Mat<S> Yq = uniform<double>(ld, T, rng, 1.0).cast<S>();
    Mat<S> C = Mat<S>::Constant(Tp, T, S(7));
    hd::square_product<S, D>(
        C.data(), Tp, Xt.data(), Tp, Yq.data(), ld, T, alpha, [](Index q) { return q + 1; }, Tp);
    const Mat<double> Z = double(alpha) * X.topRows(D).template cast<double>().transpose() *
                          Yq.topRows(D).template cast<double>();
    double worst = 0;
    for (Index q = 0; q < T; ++q) {
      for (Index i = 0; i <= q; ++i)
        worst = std::max(
            worst, std::abs(double(C(i, q)) - Z(i, q)) / ((D + 2) * eps * (std::abs(Z(i, q)) + double(D))));
      // rows past the row blocks of the tile of 8 columns holding q are zero (the blocks may hold more
      // rows of Z)
      constexpr Index MB = 64 / Index(sizeof(S));
      const Index r1 = (std::min<Index>(T, (q / 8 + 1) * 8) + MB - 1) / MB * MB;
      CHECK(C.col(q).segment(r1, Tp - r1).isZero(0));
    }
    CHECK(worst <= 1.0);  // D rounded products and sums, |terms| ≤ 1 each: ≤ (D + 2)·eps·(|Z| + D)
  }
}
}  // namespace

TEST_CASE("fused: the attention head kernels equal plain loops on every tile edge", "[nn][fused]") {
  icl::Rng rng(15);
  check_head_kernels<float, 1>(rng);
  check_head_kernels<float, 3>(rng);
  check_head_kernels<float, 4>(rng);
  check_head_kernels<float, 16>(rng);
  check_head_kernels<float, 32>(rng);
  check_head_kernels<double, 2>(rng);
  check_head_kernels<double, 8>(rng);
  check_head_kernels<double, 16>(rng);
}
