// Central finite-difference checks (double) of every hand-written backward pass: layers, both
// blocks, the model and the Eq. 8 loss, over several compile-time sizes. Acceptance: relative
// error <= 1e-6 per tensor (the step choice and error estimate are in support/finite_diff.hpp).
#include <catch2/catch.hpp>

#include "icl/core/rng.hpp"
#include "icl/nn.hpp"
#include "support/finite_diff.hpp"

namespace {

using icl::Mat;
using icl::Seq;
using icl::nn::ParamView;
constexpr double kTol = 1e-6;  // issue 4's acceptance; expected errors are ~1e-9 (finite_diff.hpp)

Mat<double> random_mat(Eigen::Index r, Eigen::Index c, icl::Rng& rng, double s = 1.0) {
  Mat<double> m(r, c);
  for (Eigen::Index j = 0; j < c; ++j)
    for (Eigen::Index i = 0; i < r; ++i) m(i, j) = s * rng.normal();
  return m;
}

void randomise(const std::vector<ParamView<double>>& ps, icl::Rng& rng, double s = 0.5) {
  for (const auto& p : ps) {
    const bool gain = p.name.find("norm") != std::string::npos && p.name.find("weight") != std::string::npos;
    for (Eigen::Index k = 0; k < p.size(); ++k) p.value[k] = (gain ? 1.0 : 0.0) + s * rng.normal();
  }
}

// Checks parameter and input gradients of a layer for the objective f = <fwd(x), R>, R random.
// `fwd()` runs the forward pass on the current x and parameters and returns the output;
// `bwd(R)` runs forward + backward with upstream R and returns dx.
template <class X, class Fwd, class Bwd>
void check_layer(const std::vector<ParamView<double>>& ps, X& x, Fwd fwd, Bwd bwd, icl::Rng& rng) {
  const Mat<double> y0 = fwd();
  const Mat<double> R = random_mat(y0.rows(), y0.cols(), rng);
  icl::nn::zero_grad(ps);
  const X dx = bwd(R);
  auto f = [&] { return (fwd().array() * R.array()).sum(); };
  for (const auto& e : icl::test::check_param_gradients(ps, f)) {
    INFO("parameter " << e.name << " rel error " << e.rel_error << " |g| " << e.grad_norm);
    CHECK(e.rel_error <= kTol);
  }
  const double ein = icl::test::check_input_gradient(x, dx, f);
  INFO("input rel error " << ein);
  CHECK(ein <= kTol);
}

// check_layer for a Linear<double, In, Out> with random weights on `cols` random columns.
template <int In, int Out>
void check_linear(bool bias, Eigen::Index cols, icl::Rng& rng) {
  icl::nn::Linear<double, In, Out> lin(bias);
  auto ps = lin.parameters();
  randomise(ps, rng);
  Seq<double, In> x = random_mat(In, cols, rng);
  Seq<double, Out> y(Out, cols);
  Seq<double, In> dx(In, cols);
  check_layer(
      ps, x,
      [&]() -> Mat<double> {
        lin.forward(x, y);
        return y;
      },
      [&](const Mat<double>& R) {
        lin.forward(x, y);
        lin.backward(x, Seq<double, Out>(R), dx);
        return dx;
      },
      rng);
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("grad: Linear", "[nn][grad]", ((int In, int Out), In, Out), (3, 5), (4, 2)) {
  icl::Rng rng(1);
  for (const bool bias : {true, false}) check_linear<In, Out>(bias, 7, rng);
}

TEMPLATE_TEST_CASE_SIG("grad: LayerNorm", "[nn][grad]", ((int H), H), 3, 6) {
  icl::Rng rng(2);
  for (const icl::nn::LayerNormOptions opt :
       {icl::nn::LayerNormOptions{true, 1e-5}, icl::nn::LayerNormOptions{false, 0.0},
        icl::nn::LayerNormOptions{true, 0.0}}) {
    icl::nn::LayerNorm<double, H> ln(opt);
    auto ps = ln.parameters();
    randomise(ps, rng);
    typename icl::nn::LayerNorm<double, H>::Cache c;
    Seq<double, H> x = random_mat(H, 5, rng, 2.0);
    Seq<double, H> y(H, 5), dx(H, 5);
    check_layer(
        ps, x,
        [&]() -> Mat<double> {
          ln.forward(x, c, y);
          return y;
        },
        [&](const Mat<double>& R) {
          ln.forward(x, c, y);
          ln.backward(c, Seq<double, H>(R), dx);
          return dx;
        },
        rng);
  }
}

TEST_CASE("grad: activations and softmax", "[nn][grad]") {
  icl::Rng rng(3);
  using icl::nn::Activation;
  for (const Activation a : {Activation::gelu_erf, Activation::gelu_tanh, Activation::relu}) {
    INFO(icl::nn::to_string(a));
    Mat<double> x = random_mat(4, 6, rng, 2.0), y(4, 6), dx(4, 6);
    check_layer(
        {}, x,
        [&]() -> Mat<double> {
          icl::nn::activation_forward(a, x, y);
          return y;
        },
        [&](const Mat<double>& R) {
          icl::nn::activation_backward(a, x, R, dx);
          return dx;
        },
        rng);
  }
  for (const bool causal : {false, true}) {
    Mat<double> x = random_mat(5, 5, rng, 2.0), y(5, 5), dx(5, 5);
    check_layer(
        {}, x,
        [&]() -> Mat<double> {
          icl::nn::softmax_columns(x, y, causal);
          return y;
        },
        [&](const Mat<double>& R) {
          icl::nn::softmax_columns(x, y, causal);
          icl::nn::softmax_columns_backward(y, R, dx, causal);
          return dx;
        },
        rng);
  }
}

TEMPLATE_TEST_CASE_SIG("grad: attention (standard and paper form, softmax and linear)", "[nn][grad]",
                       ((int H, int M, int DQK, int DV), H, M, DQK, DV), (4, 2, 2, 2), (6, 3, 2, 2),
                       (4, 2, 4, 4)) {
  icl::Rng rng(4);
  using Attn = icl::nn::CausalAttention<double, H, M, DQK, DV>;
  const int T = 4, B = 2;
  for (const icl::nn::Scores sc : {icl::nn::Scores::softmax, icl::nn::Scores::linear}) {
    for (const bool bias : {true, false}) {
      Attn attn(icl::nn::AttentionOptions{sc, 0.7, bias, true});
      auto ps = attn.parameters();
      randomise(ps, rng);
      typename Attn::Cache c;
      Seq<double, H> x = random_mat(H, B * T, rng);
      Seq<double, H> y(H, B * T), dx(H, B * T);
      check_layer(
          ps, x,
          [&]() -> Mat<double> {
            attn.forward(x, T, c, y);
            return y;
          },
          [&](const Mat<double>& R) {
            attn.forward(x, T, c, y);
            attn.backward(x, c, Seq<double, H>(R), dx);
            return dx;
          },
          rng);
    }
  }
}

TEMPLATE_TEST_CASE_SIG("grad: FeedForward", "[nn][grad]", ((int H, int F), H, F), (3, 5), (4, 8)) {
  icl::Rng rng(5);
  icl::nn::FeedForward<double, H, F> ff;
  auto ps = ff.parameters();
  randomise(ps, rng);
  typename icl::nn::FeedForward<double, H, F>::Cache c;
  Seq<double, H> x = random_mat(H, 6, rng);
  Seq<double, H> y(H, 6), dx(H, 6);
  check_layer(
      ps, x,
      [&]() -> Mat<double> {
        ff.forward(x, c, y);
        return y;
      },
      [&](const Mat<double>& R) {
        ff.forward(x, c, y);
        ff.backward(x, c, Seq<double, H>(R), dx);
        return dx;
      },
      rng);
}

namespace {
template <class Block>
void check_block(const typename Block::Options& opt, icl::Rng& rng) {
  constexpr int H = Block::Hidden;
  const int T = 5, B = 2;
  Block blk(opt);
  auto ps = blk.parameters();
  randomise(ps, rng);
  typename Block::Cache c;
  Seq<double, H> x = random_mat(H, B * T, rng);
  Seq<double, H> y(H, B * T), dx(H, B * T);
  check_layer(
      ps, x,
      [&]() -> Mat<double> {
        blk.forward(x, T, c, y);
        return y;
      },
      [&](const Mat<double>& R) {
        blk.forward(x, T, c, y);
        blk.backward(x, c, Seq<double, H>(R), dx);
        return dx;
      },
      rng);
}
}  // namespace

TEMPLATE_TEST_CASE_SIG("grad: PaperBlock", "[nn][grad]", ((int H, int M, int F), H, M, F), (4, 2, 6),
                       (5, 1, 3)) {
  icl::Rng rng(6);
  icl::nn::PaperBlockOptions opt;  // paper defaults: no LN gain, eps 0, scale 1, softmax
  check_block<icl::nn::PaperBlock<double, H, M, F>>(opt, rng);
  opt.norm = {true, 1e-5};
  opt.scores = icl::nn::Scores::linear;
  opt.score_scale = 0.5;
  opt.activation = icl::nn::Activation::gelu_tanh;
  check_block<icl::nn::PaperBlock<double, H, M, F>>(opt, rng);
}

TEMPLATE_TEST_CASE_SIG("grad: PreLNBlock", "[nn][grad]", ((int H, int M, int F), H, M, F), (4, 2, 8),
                       (6, 3, 5)) {
  icl::Rng rng(7);
  icl::nn::PreLNBlockOptions opt;
  check_block<icl::nn::PreLNBlock<double, H, M, F>>(opt, rng);
  opt.activation = icl::nn::Activation::relu;
  opt.scores = icl::nn::Scores::linear;
  check_block<icl::nn::PreLNBlock<double, H, M, F>>(opt, rng);
}

namespace {
template <class Model>
void check_model(Model& model, icl::Rng& rng, int T, int B) {
  auto ps = model.parameters();
  icl::nn::init_uniform_scaling(ps, rng);
  randomise(ps, rng, 0.3);  // also move LN gains/biases away from 1/0
  const Mat<double> tokens = random_mat(Model::TokenRows, B * T, rng);
  const Mat<double> targets = random_mat((T + 1) / 2, B, rng);
  typename Model::Cache c;
  Eigen::Matrix<double, 1, Eigen::Dynamic> dout;
  model.zero_grad();
  model.forward(tokens, T, c);
  icl::nn::icl_loss<double>(c.out, targets, T, &dout);
  model.backward(c, dout);
  auto f = [&] {
    model.forward(tokens, T, c);
    return static_cast<double>(icl::nn::icl_loss<double>(c.out, targets, T));
  };
  for (const auto& e : icl::test::check_param_gradients(ps, f)) {
    INFO("parameter " << e.name << " rel error " << e.rel_error << " |g| " << e.grad_norm);
    CHECK(e.rel_error <= kTol);
  }
}
}  // namespace

TEST_CASE("grad: whole models with the Eq. 8 loss", "[nn][grad]") {
  icl::Rng rng(8);
  SECTION("pre-LN, final norm") {
    icl::nn::PreLNTransformer<double, 2, 4, 2, 8, 7> m(2, {}, {true});
    check_model(m, rng, 5, 3);
  }
  SECTION("paper blocks, no final norm") {
    icl::nn::PaperTransformer<double, 3, 6, 2, 5, 9> m(2);
    check_model(m, rng, 7, 2);
  }
}

TEST_CASE("grad: Eq. 8 loss", "[nn][grad]") {
  icl::Rng rng(9);
  const int T = 7, B = 3;
  Eigen::Matrix<double, 1, Eigen::Dynamic> out = random_mat(1, B * T, rng), dout;
  const Mat<double> y = random_mat(4, B, rng);
  icl::nn::icl_loss<double>(out, y, T, &dout);
  auto f = [&] { return icl::nn::icl_loss<double>(out, y, T); };
  const Eigen::VectorXd num = icl::test::numeric_gradient(out.data(), out.size(), f);
  CHECK(icl::test::relative_error(dout.transpose(), num) <= kTol);
  // the y-token columns carry no loss
  for (int b = 0; b < B; ++b)
    for (int t = 1; t < T; t += 2) CHECK(dout(b * T + t) == 0.0);
}

// The same checks with the products on icl's GEMM kernels (core/gemm.hpp): the suite is compiled
// without -march, so its default backend is Eigen's product; here every kernel the CPU has runs
// the layers' forward and backward (tiny shapes: every product is an edge tile).
TEST_CASE("grad: layers and whole models on every GEMM kernel", "[nn][grad][gemm]") {
  for (const icl::gemm::Backend be : {icl::gemm::Backend::avx2, icl::gemm::Backend::avx512}) {
    if (!icl::gemm::supported(be)) {
      WARN("icl::gemm backend " << icl::gemm::name(be) << " not supported here: not tested");
      continue;
    }
    icl::gemm::ScopedBackend use(be);
    INFO("backend " << icl::gemm::name(be));
    icl::Rng rng(10);
    check_linear<37, 45>(true, 29, rng);  // more rows than one register tile, columns past NR
    check_block<icl::nn::PreLNBlock<double, 6, 3, 5>>(icl::nn::PreLNBlockOptions{}, rng);
    icl::nn::PreLNTransformer<double, 2, 4, 2, 8, 7> pre(2, {}, {true});
    check_model(pre, rng, 5, 3);
    icl::nn::PaperTransformer<double, 3, 6, 2, 5, 9> paper(2);
    check_model(paper, rng, 7, 2);
  }
}
