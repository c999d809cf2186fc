// The model: predict(), input validation, batching, the deterministic multi-threaded loss and
// gradient, no allocation in warm fixed-size paths, float against double.
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/nn.hpp"
#include "support/approx.hpp"
#include "support/throws.hpp"

namespace {
using icl::Mat;
constexpr int D = 2, H = 8, M = 2, F = 16, TMax = 9;
template <class S>
using Model = icl::nn::PreLNTransformer<S, D, H, M, F, TMax>;

template <class S>
Model<S> make_model(std::uint64_t seed, int L = 2) {
  Model<S> m(L, {}, {true});
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  return m;
}

// B prompts of n examples each, concatenated: (D+1) x (B·2n).
Mat<double> prompts(int B, int n, icl::Rng& rng) {
  Mat<double> P(D + 1, B * 2 * n);
  for (int b = 0; b < B; ++b) {
    const auto task = icl::data::sample_task<double, D>({n}, rng);
    P.middleCols(b * 2 * n, 2 * n) = icl::data::encode(task);
  }
  return P;
}
}  // namespace

TEST_CASE("model: batched forward equals per-sequence predict", "[nn][model]") {
  const Model<double> m = make_model<double>(1);
  icl::Rng rng(2);
  const int n = 4, B = 3;
  const Mat<double> P = prompts(B, n, rng);
  Mat<double> inputs, targets;
  icl::nn::split_prompts(P, n, inputs, targets);
  const int T = 2 * n - 1;
  Model<double>::Cache c;
  m.forward(inputs, T, c);
  for (int b = 0; b < B; ++b) {
    const Eigen::VectorXd p = m.predict(inputs.middleCols(b * T, T));
    REQUIRE(p.size() == n);
    for (int i = 0; i < n; ++i) {
      // same operations on the same numbers except GEMM blocking over B·T vs T columns: a few ulp
      CHECK(p(i) == Approx(c.out(b * T + 2 * i)).epsilon(1e-13).margin(1e-14));
      CHECK(targets(i, b) == P(0, b * 2 * n + 2 * i + 1));
    }
  }
  // hidden states and attention maps are available: L+1 states, causal column-stochastic maps
  CHECK(c.stack.hidden.size() == 3);
  const Mat<double> A = c.attention(1, 2, 1);
  CHECK(A.rows() == T);
  for (int i = 0; i < T; ++i) {
    CHECK(A.col(i).sum() == Approx(1.0).epsilon(1e-14));  // softmax columns sum to 1 up to rounding
    if (i + 1 < T) CHECK(A.col(i).tail(T - i - 1).isZero(0.0));
  }
}

TEST_CASE("model: bad input gives InvalidArgument", "[nn][model][errors]") {
  const Model<double> m = make_model<double>(1);
  Model<double>::Cache c;
  const Mat<double> ok = Mat<double>::Random(D + 1, 5);
  CHECK_NOTHROW(m.forward(ok, 5, c));
  CHECK_THROWS_AS(m.forward(Mat<double>::Random(D + 1, TMax + 1), TMax + 1, c), icl::InvalidArgument);
  CHECK_THROWS_AS(m.predict(Mat<double>::Random(D + 1, TMax + 2)), icl::InvalidArgument);
  CHECK_THROWS_AS(m.forward(Mat<double>::Random(D + 2, 5), 5, c), icl::InvalidArgument);
  CHECK_THROWS_AS(m.predict(Mat<double>::Random(D, 5)), icl::InvalidArgument);
  CHECK_THROWS_AS(m.forward(Mat<double>::Random(D + 1, 7), 5, c), icl::InvalidArgument);
  Mat<double> bad = ok;
  bad(1, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(m.forward(bad, 5, c), icl::InvalidArgument);
  bad(1, 3) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(m.predict(bad), Catch::Contains("finite"));
  using LN = icl::nn::LayerNorm<double, 4>;
  CHECK_THROWS_AS(LN(icl::nn::LayerNormOptions{true, -1.0}), icl::InvalidArgument);
}

TEST_CASE("model: threaded loss and gradient do not depend on the thread count", "[nn][model][threads]") {
  Model<double> m = make_model<double>(3, 2);
  icl::Rng rng(4);
  const int n = 4, B = 7, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  auto grads = [&](int threads, int chunk, double& loss) {
    icl::nn::BatchLoss<Model<double>> bl({threads, chunk});
    loss = bl(m, inputs, targets, T);
    std::vector<double> g;
    for (const auto& p : m.parameters()) g.insert(g.end(), p.grad, p.grad + p.size());
    return g;
  };
  double l1, l2, l3, lfull;
  const auto g1 = grads(1, 2, l1), g2 = grads(2, 2, l2), g3 = grads(3, 2, l3), gfull = grads(1, 0, lfull);
  CHECK(l1 == l2);  // bitwise: chunks fixed, reduction in chunk order
  CHECK(l1 == l3);
  CHECK(g1 == g2);
  CHECK(g1 == g3);
  // a different chunking only reorders sums: equal up to rounding (double, ~1e-16 · #terms)
  CHECK(lfull == Approx(l1).epsilon(1e-13));
  const Eigen::Map<const Eigen::VectorXd> a(g1.data(), static_cast<Eigen::Index>(g1.size()));
  const Eigen::Map<const Eigen::VectorXd> b(gfull.data(), static_cast<Eigen::Index>(gfull.size()));
  CHECK((a - b).norm() <= 1e-12 * b.norm());
  // bad input is reported before any worker starts
  icl::nn::BatchLoss<Model<double>> bl({2, 2});
  Mat<double> bad = inputs;
  bad(0, 5 * T + 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(bl(m, bad, targets, T), icl::InvalidArgument);
  CHECK_THROWS_AS(bl(m, inputs.topRows(D), targets, T), icl::InvalidArgument);
  CHECK_THROWS_AS(bl(m, inputs, targets.topRows(n - 1), T), icl::InvalidArgument);
}

TEST_CASE("model: BatchLoss replicas follow settings changed after the first call", "[nn][model][threads]") {
  // Replicas used to be copied once and then only had their weights refreshed, so a score scale,
  // activation or LayerNorm eps changed after the first call did not reach them, and the result
  // depended on chunk_sequences.
  Model<double> m = make_model<double>(8, 2);
  icl::Rng rng(9);
  const int n = 4, B = 6, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  icl::nn::BatchLoss<Model<double>> chunked({2, 2});  // 3 chunks: computed on replicas
  const double before = chunked(m, inputs, targets, T);
  for (auto& b : m.stack.blocks) {
    b.attn.set_scale(0.3);
    b.norm1.set_eps(0.25);
    b.ff.set_activation(icl::nn::Activation::relu);
  }
  const auto grads = [&] {
    std::vector<double> g;
    for (const auto& p : m.parameters()) g.insert(g.end(), p.grad, p.grad + p.size());
    return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(g.data(), static_cast<Eigen::Index>(g.size())));
  };
  const double after = chunked(m, inputs, targets, T);
  const Eigen::VectorXd g_chunked = grads();
  icl::nn::BatchLoss<Model<double>> whole({1, 0});  // one chunk: computed on the model itself
  const double reference = whole(m, inputs, targets, T);
  const Eigen::VectorXd g_whole = grads();
  INFO("loss before the change " << before << ", chunked after " << after << ", whole " << reference);
  CHECK(std::abs(reference - before) > 1e-3 * std::abs(before));  // the settings do change the loss
  // the same arithmetic up to the order of the chunk sums (double, ~1e-16 · #terms), as above
  CHECK(after == Approx(reference).epsilon(1e-13));
  CHECK((g_chunked - g_whole).norm() <= 1e-12 * g_whole.norm());
}

TEST_CASE("model: a failed worker start joins the started workers and throws", "[nn][model][threads]") {
  // A failed std::thread start used to unwind through joinable std::threads: std::terminate.
  Model<double> m = make_model<double>(3, 1);
  icl::Rng rng(5);
  const int n = 3, B = 7, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  icl::nn::BatchLoss<Model<double>> bl({4, 1});  // 7 chunks: waves of 4 (3 worker threads) and 3
  int starts = 0;
  std::atomic<int> finished{0};
  bl.set_thread_starter([&](std::function<void()> f) {
    if (++starts == 3)
      throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again), "injected");
    return std::thread([f = std::move(f), &finished] {
      f();
      ++finished;
    });
  });
  CHECK_THROWS_MATCHES(bl(m, inputs, targets, T), std::system_error,
                       icl::test::MessageContains("BatchLoss: starting worker thread 3 of 3 failed"));
  CHECK(finished == 2);  // the two workers that started were stopped and joined
  CHECK(bl.workers() == 0);
  // a starter that returns a thread that is not running is refused the same way
  starts = 0;
  bl.set_thread_starter([&](std::function<void()>) {
    ++starts;
    return std::thread();
  });
  CHECK_THROWS_MATCHES(bl(m, inputs, targets, T), std::system_error,
                       icl::test::MessageContains("starting worker thread 1 of 3 failed"));
  CHECK(starts == 1);
  // the workspace stays usable: with the default starter it gives the single-thread result
  bl.set_thread_starter({});
  const double threaded = bl(m, inputs, targets, T);
  icl::nn::BatchLoss<Model<double>> one({1, 1});
  CHECK(threaded == one(m, inputs, targets, T));  // bitwise: same chunks, same reduction order
}

namespace {
// Counts the worker threads a BatchLoss starts and those that have returned.
struct StartCounter {
  std::atomic<int> started{0}, finished{0};
  icl::nn::BatchLoss<Model<double>>::ThreadStarter starter() {
    return [this](std::function<void()> f) {
      ++started;
      return std::thread([this, f = std::move(f)] {
        f();
        ++finished;
      });
    };
  }
};

std::vector<double> all_grads(Model<double>& m) {
  std::vector<double> g;
  for (const auto& p : m.parameters()) g.insert(g.end(), p.grad, p.grad + p.size());
  return g;
}
}  // namespace

TEST_CASE("model: BatchLoss starts its worker threads once and reuses them", "[nn][model][threads]") {
  static_assert(!std::is_copy_constructible_v<icl::nn::BatchLoss<Model<double>>>);
  static_assert(!std::is_copy_assignable_v<icl::nn::BatchLoss<Model<double>>>);
  static_assert(std::is_move_constructible_v<icl::nn::BatchLoss<Model<double>>>);
  Model<double> m = make_model<double>(11, 2);
  icl::Rng rng(12);
  const int n = 3, B = 7, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  icl::nn::BatchLoss<Model<double>> one({1, 1});
  const double reference = one(m, inputs, targets, T);
  const std::vector<double> g_reference = all_grads(m);
  StartCounter c;
  {
    icl::nn::BatchLoss<Model<double>> bl({4, 1});  // 7 chunks: waves of 4 and 3, 3 workers
    bl.set_thread_starter(c.starter());
    CHECK(bl.workers() == 0);  // nothing is started before a call needs it
    for (int call = 0; call < 4; ++call) {
      INFO("call " << call);
      CHECK(bl(m, inputs, targets, T) == reference);  // bitwise, every call
      CHECK(all_grads(m) == g_reference);
      CHECK(c.started == 3);  // started by the first call only
      CHECK(bl.workers() == 3);
    }
    // a smaller batch needs fewer workers: the pool keeps its threads and starts none
    const double small = bl(m, inputs.leftCols(2 * T), targets.leftCols(2), T);
    CHECK(small == one(m, inputs.leftCols(2 * T), targets.leftCols(2), T));
    CHECK(c.started == 3);
    // a moved BatchLoss takes its running workers with it
    icl::nn::BatchLoss<Model<double>> moved(std::move(bl));
    CHECK(moved.workers() == 3);
    CHECK(moved(m, inputs, targets, T) == reference);
    CHECK(c.started == 3);
    // a new starter joins the running workers; the next call starts new ones with it
    StartCounter c2;
    moved.set_thread_starter(c2.starter());
    CHECK(c.finished == 3);
    CHECK(moved.workers() == 0);
    CHECK(moved(m, inputs, targets, T) == reference);
    CHECK(c2.started == 3);
    CHECK(c2.finished == 0);
    moved.set_thread_starter(c.starter());  // joins c2's workers
    CHECK(c2.finished == 3);
    CHECK(moved(m, inputs, targets, T) == reference);
    CHECK(c.started == 6);
    CHECK(c.finished == 3);
  }
  CHECK(c.finished == 6);  // the destructor joined every worker it had
  // destroyed without a call: nothing was started, nothing to join
  StartCounter unused;
  {
    icl::nn::BatchLoss<Model<double>> bl({3, 1});
    bl.set_thread_starter(unused.starter());
  }
  CHECK(unused.started == 0);
  // one chunk, or one thread: no worker is ever started
  StartCounter none;
  icl::nn::BatchLoss<Model<double>> whole({4, 0}), single({1, 1});
  whole.set_thread_starter(none.starter());
  single.set_thread_starter(none.starter());
  whole(m, inputs, targets, T);
  single(m, inputs, targets, T);
  CHECK(none.started == 0);
  CHECK(whole.workers() == 0);
}

TEST_CASE("model: BatchLoss over a reused pool is bitwise identical for 1, 2 and 3 threads",
          "[nn][model][threads]") {
  Model<double> m = make_model<double>(13, 2);
  icl::Rng rng(14);
  const int n = 4, B = 7, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  // chunk 2: 4 chunks, so 3 threads run a wave of 3 and a wave of 1 (on the caller)
  icl::nn::BatchLoss<Model<double>> b1({1, 2}), b2({2, 2}), b3({3, 2});
  std::vector<double> losses;
  std::vector<std::vector<double>> grads;
  for (int call = 0; call < 3; ++call)  // the second and third calls run on the same workers
    for (auto* bl : {&b1, &b2, &b3}) {
      losses.push_back((*bl)(m, inputs, targets, T));
      grads.push_back(all_grads(m));
    }
  CHECK(b2.workers() == 1);
  CHECK(b3.workers() == 2);
  for (std::size_t i = 1; i < losses.size(); ++i) {
    INFO("call " << i / 3 << ", threads " << i % 3 + 1);
    CHECK(losses[i] == losses[0]);
    CHECK(grads[i] == grads[0]);
  }
}

namespace {
// A model whose forward throws (on whatever thread runs it) for a chunk whose first token has
// `marker` in row 1; records the thread it threw on.
struct ThrowingModel : Model<double> {
  explicit ThrowingModel(Model<double> m) : Model<double>(std::move(m)) {}
  double marker = 0;  // 0: never throws
  std::thread::id* thrower = nullptr;
  void forward(const Eigen::Ref<const Mat<double>>& tokens, int T, Cache& c) const {
    if (marker != 0 && tokens(1, 0) == marker) {
      if (thrower) *thrower = std::this_thread::get_id();
      throw std::runtime_error("injected model failure");
    }
    Model<double>::forward(tokens, T, c);
  }
};
}  // namespace

TEST_CASE("model: an exception of the model on a worker thread reaches the caller; the pool stays usable",
          "[nn][model][threads]") {
  ThrowingModel m(make_model<double>(15, 2));
  icl::Rng rng(16);
  const int n = 3, B = 7, T = 2 * n - 1;
  Mat<double> inputs, targets;
  icl::nn::split_prompts(prompts(B, n, rng), n, inputs, targets);
  icl::nn::BatchLoss<ThrowingModel> one({1, 2});
  const double reference = one(m, inputs, targets, T);
  icl::nn::BatchLoss<ThrowingModel> bl({2, 2});  // 4 chunks of 2: waves of 2, one worker
  std::atomic<int> started{0};
  bl.set_thread_starter([&](std::function<void()> f) {
    ++started;
    return std::thread(std::move(f));
  });
  CHECK(bl(m, inputs, targets, T) == reference);
  std::thread::id thrower;
  m.thrower = &thrower;
  // chunk 1 (sequences 2-3) runs on the worker; chunk 2 on the caller; chunk 3 on the worker again
  for (const int chunk : {1, 2, 3}) {
    INFO("chunk " << chunk);
    m.marker = inputs(1, chunk * 2 * T);
    CHECK_THROWS_WITH(bl(m, inputs, targets, T), "injected model failure");
    CHECK((thrower == std::this_thread::get_id()) == (chunk % 2 == 0));  // the worker threw for odd chunks
    m.marker = 0;
    CHECK(bl(m, inputs, targets, T) == reference);  // the next call works, on the same worker
    CHECK(started == 1);
    CHECK(bl.workers() == 1);
  }
}

TEST_CASE("model: block and attention forward refuse a T that does not divide the columns",
          "[nn][model][errors]") {
  // These were ICL_ASSERTs only: in Release the trailing columns of the output were left unwritten.
  using Block = icl::nn::PreLNBlock<double, H, M, F>;
  using Paper = icl::nn::PaperBlock<double, H, M, F>;
  using Attn = icl::nn::MultiHeadAttention<double, H, M>;
  const Mat<double> h = Mat<double>::Random(H, 7);
  Mat<double> out(H, 7);
  const Block block;
  Block::Cache bc;
  CHECK_INVALID(block.forward(h, 3, bc, out), "PreLNBlock::forward: T");
  CHECK_INVALID(block.forward(h, 0, bc, out), "PreLNBlock::forward: T");
  const Paper paper;
  Paper::Cache pc;
  CHECK_INVALID(paper.forward(h, 2, pc, out), "PaperBlock::forward: T");
  const Attn attn;
  Attn::Cache ac;
  CHECK_INVALID(attn.forward(h, 4, ac, out), "CausalAttention::forward: T");
  CHECK_INVALID(attn.forward(h, -7, ac, out), "CausalAttention::forward: T");
  CHECK_NOTHROW(block.forward(h, 7, bc, out));
  CHECK_NOTHROW(attn.forward(h, 1, ac, out));
}

TEST_CASE("model: warm forward and backward do not allocate", "[nn][model][nomalloc]") {
  Model<double> m = make_model<double>(5);
  Mat<double> tokens = Mat<double>::Random(D + 1, 2 * 7), targets = Mat<double>::Random(4, 2);
  Model<double>::Cache c;
  Eigen::Matrix<double, 1, Eigen::Dynamic> dout;
  auto step = [&] {
    m.zero_grad();
    m.forward(tokens, 7, c);
    const double l = icl::nn::icl_loss<double>(c.out, targets, 7, &dout);
    m.backward(c, dout);
    return l;
  };
  const double l0 = step();  // sizes every buffer
  Eigen::internal::set_is_malloc_allowed(false);
  const double l1 = step();
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(l1 == l0);
}

TEST_CASE("model: float agrees with double", "[nn][model]") {
  const Model<double> md = make_model<double>(6);
  Model<float> mf(2, {}, {true});
  auto pd = const_cast<Model<double>&>(md).parameters();
  auto pf = mf.parameters();
  REQUIRE(pd.size() == pf.size());
  for (std::size_t i = 0; i < pd.size(); ++i) pf[i].value_map() = pd[i].value_map().cast<float>();
  const Mat<double> tok = Mat<double>::Random(D + 1, 9);
  const Eigen::VectorXd yd = md.predict(tok);
  const Eigen::VectorXd yf = mf.predict(tok.cast<float>()).cast<double>();
  // float rounding (6e-8) through two LN-normalised blocks of width 8: errors ~1e-6 relative
  CHECK_THAT(yf, icl::test::IsCloseTo(yd, 1e-4, 1e-5));
}

TEST_CASE("model: initialised at construction (uniform scaling, seed 0), Init::zeros on request",
          "[nn][model]") {
  using S = double;
  const auto values = [](Model<S>& m) {
    std::vector<Eigen::MatrixXd> v;
    for (const auto& p : m.parameters()) v.push_back(p.value_map());
    return v;
  };
  Model<S> a(2, {}, {true}), b(2, {}, {true});
  // the default is init_uniform_scaling with Rng(0), drawn over parameters() in order
  icl::nn::TransformerOptions zeros_opt{true};
  zeros_opt.init = icl::nn::Init::zeros;
  Model<S> z(2, {}, zeros_opt), ref(2, {}, zeros_opt);
  icl::Rng rng(0);
  icl::nn::init_uniform_scaling(ref.parameters(), rng);
  const auto va = values(a), vb = values(b), vz = values(z), vref = values(ref);
  REQUIRE(va.size() == vz.size());
  for (std::size_t i = 0; i < va.size(); ++i) {
    const std::string name = a.parameters()[i].name;
    INFO(name);
    CHECK(va[i] == vb[i]);    // reproducible
    CHECK(va[i] == vref[i]);  // the documented scheme and seed
    if (icl::nn::is_layer_norm_param(name)) {
      const bool gain = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
      CHECK(va[i].isConstant(gain ? 1.0 : 0.0));  // LayerNorm: gain 1, bias 0, as PyTorch
      CHECK(vz[i].isConstant(gain ? 1.0 : 0.0));
    } else {
      // U(±1/sqrt(fan_in)): not zero, and inside the bound
      const double fan_in = static_cast<double>(name.find("pos_embedding") != std::string::npos
                                                    ? va[i].rows()
                                                    : (va[i].cols() > 1 ? va[i].cols() : va[i].rows()));
      CHECK(va[i].cwiseAbs().maxCoeff() > 0);
      CHECK(va[i].cwiseAbs().maxCoeff() <= 1 / std::sqrt(fan_in));
      CHECK(vz[i].isZero(0));  // Init::zeros: the old all-zero start
    }
  }
  // another seed, other weights; the model predicts something other than 0 before training
  icl::nn::TransformerOptions seeded{true};
  seeded.init_seed = 1;
  Model<S> c(2, {}, seeded);
  CHECK(values(c)[0] != va[0]);
  icl::Rng prng(3);
  const auto task = icl::data::sample_task<S, D>({4}, prng);
  CHECK(a.predict(icl::data::encode(task)).cwiseAbs().maxCoeff() > 1e-3);
  CHECK(z.predict(icl::data::encode(task)).isZero(0));
}
