// Adam / AdamW, the warmup-cosine schedule and gradient clipping against their defining
// formulas (docs/train.md Eqs. 1–6), computed independently here in long double.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "icl/io/safetensors.hpp"
#include "icl/train/adam.hpp"
#include "icl/train/clip.hpp"
#include "icl/train/optimizer_state.hpp"
#include "icl/train/schedule.hpp"
#include "support/approx.hpp"

namespace {

using icl::nn::ParamView;

// A 2x2 matrix and a 3-vector as the parameter set, with owned storage.
template <class S>
struct TwoParams {
  Eigen::Matrix<S, 2, 2> w = Eigen::Matrix<S, 2, 2>::Zero(), gw = Eigen::Matrix<S, 2, 2>::Zero();
  Eigen::Matrix<S, 3, 1> b = Eigen::Matrix<S, 3, 1>::Zero(), gb = Eigen::Matrix<S, 3, 1>::Zero();
  std::vector<ParamView<S>> views() {
    return {{"w", 2, 2, w.data(), gw.data()}, {"b", 3, 1, b.data(), gb.data()}};
  }
};

// Scalar reference of one parameter coordinate, following Eqs. (1)-(4) in long double.
struct RefAdam {
  long double p, m = 0, v = 0, vmax = 0;
  void step(long double g, int t, long double lr, long double b1, long double b2, long double eps,
            long double wd, bool decoupled, bool ams) {
    if (decoupled)
      p *= 1 - lr * wd;
    else
      g += wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    vmax = std::max(vmax, v);
    const long double vh = (ams ? vmax : v) / (1 - std::pow(b2, static_cast<long double>(t)));
    const long double mh = m / (1 - std::pow(b1, static_cast<long double>(t)));
    p -= lr * mh / (std::sqrt(vh) + eps);
  }
};

template <class S>
S grad_at(int t, int k) {  // deterministic, sign-changing gradients of varied magnitude
  return static_cast<S>(std::sin(0.7 * t + 1.3 * k) * std::pow(10.0, (k % 3) - 1));
}

template <class Opt>
void run_against_reference(bool decoupled, bool ams, double wd, double tol) {
  using S = typename Opt::Scalar;
  TwoParams<S> ps;
  ps.w << 0.5, -1.0, 2.0, 0.25;
  ps.b << -0.3, 0.0, 1.5;
  std::vector<RefAdam> ref;
  for (int k = 0; k < 4; ++k) ref.push_back({static_cast<long double>(ps.w.data()[k])});
  for (int k = 0; k < 3; ++k) ref.push_back({static_cast<long double>(ps.b.data()[k])});
  icl::train::AdamConfig cfg;
  cfg.lr = 0.05;
  cfg.beta1 = 0.8;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-6;
  cfg.weight_decay = wd;
  cfg.amsgrad = ams;
  Opt opt(ps.views(), cfg);
  for (int t = 1; t <= 12; ++t) {
    const double lr = 0.05 * (1.0 + 0.1 * t);  // a schedule changes lr between steps
    opt.set_lr(lr);
    for (int k = 0; k < 4; ++k) ps.gw.data()[k] = grad_at<S>(t, k);
    for (int k = 0; k < 3; ++k) ps.gb.data()[k] = grad_at<S>(t, 4 + k);
    opt.step();
    for (int k = 0; k < 7; ++k)
      ref[k].step(static_cast<long double>(k < 4 ? ps.gw.data()[k] : ps.gb.data()[k - 4]), t, lr, 0.8L, 0.95L,
                  1e-6L, wd, decoupled, ams);
  }
  CHECK(opt.step_count() == 12);
  for (int k = 0; k < 7; ++k) {
    const double got = static_cast<double>(k < 4 ? ps.w.data()[k] : ps.b.data()[k - 4]);
    CHECK(got == Approx(static_cast<double>(ref[k].p)).epsilon(tol).margin(tol));
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Adam and AdamW follow the PyTorch update formulas", "[train][adam]", float, double) {
  using S = TestType;
  // 12 steps of O(1) arithmetic, each a few roundings of relative size u; the update
  // m/(sqrt(v)+eps) is well conditioned (|m| <= sqrt(v) up to bias factors), so the error
  // stays below ~100 u: 1e-13 for double (u = 1.1e-16), 1e-5 for float (u = 6e-8).
  const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-13;
  SECTION("Adam, no decay") { run_against_reference<icl::train::Adam<S>>(false, false, 0.0, tol); }
  SECTION("Adam, L2 decay") { run_against_reference<icl::train::Adam<S>>(false, false, 0.1, tol); }
  SECTION("AdamW, decoupled decay") { run_against_reference<icl::train::AdamW<S>>(true, false, 0.1, tol); }
  SECTION("Adam, AMSGrad") { run_against_reference<icl::train::Adam<S>>(false, true, 0.1, tol); }
  SECTION("AdamW, AMSGrad") { run_against_reference<icl::train::AdamW<S>>(true, true, 0.1, tol); }
}

TEST_CASE("Adam's first step moves each coordinate by lr * g / (|g| + eps)", "[train][adam]") {
  // Bias correction makes m̂ = g and v̂ = g² after one step (Eq. 4).
  Eigen::Vector3d p(1.0, -2.0, 3.0), g(0.5, -1e-3, 4.0);
  icl::train::AdamConfig cfg;
  cfg.lr = 0.1;
  icl::train::Adam<double> opt({{"p", 3, 1, p.data(), g.data()}}, cfg);
  const Eigen::Vector3d p0 = p;
  opt.step();
  const Eigen::Vector3d expected = p0 - (0.1 * g.array() / (g.array().abs() + 1e-8)).matrix();
  // a handful of roundings on O(1) numbers: 1e-15
  CHECK_THAT(p, icl::test::IsCloseTo(expected, 1e-15, 1e-15));
}

TEST_CASE("AdamW with zero gradients only decays: p_t = p_0 (1 - lr wd)^t", "[train][adam]") {
  Eigen::Vector2d p(1.5, -0.5), g = Eigen::Vector2d::Zero();
  icl::train::AdamConfig cfg = icl::train::adamw_defaults();
  CHECK(cfg.weight_decay == 1e-2);
  cfg.lr = 0.1;
  icl::train::AdamW<double> opt({{"p", 2, 1, p.data(), g.data()}}, cfg);
  for (int t = 0; t < 10; ++t) opt.step();
  const Eigen::Vector2d expected = Eigen::Vector2d(1.5, -0.5) * std::pow(1.0 - 0.1 * 1e-2, 10);
  // 10 multiplications by the same factor: <= 10 u relative
  CHECK_THAT(p, icl::test::IsCloseTo(expected, 1e-14, 0));
}

TEST_CASE("Adam rejects bad hyper-parameters with the field's name", "[train][adam]") {
  Eigen::Vector2d p = Eigen::Vector2d::Zero(), g = Eigen::Vector2d::Zero();
  std::vector<ParamView<double>> ps{{"p", 2, 1, p.data(), g.data()}};
  icl::train::AdamConfig c;
  c.beta1 = 1.0;
  CHECK_THROWS_WITH(icl::train::Adam<double>(ps, c), Catch::Contains("AdamConfig.beta1"));
  c = {};
  c.eps = 0;
  CHECK_THROWS_WITH(icl::train::Adam<double>(ps, c), Catch::Contains("AdamConfig.eps"));
  c = {};
  c.lr = std::nan("");
  CHECK_THROWS_WITH(icl::train::Adam<double>(ps, c), Catch::Contains("AdamConfig.lr"));
  icl::train::Adam<double> ok(ps, {});
  CHECK_THROWS_AS(ok.set_lr(-1.0), icl::InvalidArgument);
}

TEST_CASE("Warmup + cosine schedule: linear ramp, half cosine to zero", "[train][schedule]") {
  const auto s = icl::train::WarmupCosine::paper(100);
  CHECK(s.warmup_steps == 20);
  CHECK(s.factor(0) == 0.0);
  CHECK(s.factor(10) == Approx(0.5).epsilon(1e-15));
  CHECK(s.factor(20) == Approx(1.0).epsilon(1e-15));
  CHECK(s.factor(60) == Approx(0.5).epsilon(1e-15));
  CHECK(s.factor(40) == Approx(0.5 * (1 + std::cos(std::numbers::pi * 0.25))).epsilon(1e-15));
  CHECK(s.factor(100) == Approx(0.0).margin(1e-15));
  CHECK(s.factor(150) >= 0.0);  // clamped at 0 after the end (a full cosine would rise again)
  // monotone decay after warmup
  for (int t = 20; t < 100; ++t) CHECK(s.factor(t + 1) <= s.factor(t));
  icl::train::WarmupCosine bad{10, 5, 0.5};
  CHECK_THROWS_WITH(bad.validate(), Catch::Contains("total_steps"));
}

TEST_CASE("clip_grad_norm scales by max_norm / (N + 1e-6) only when N exceeds max_norm", "[train][clip]") {
  TwoParams<double> ps;
  ps.w.setZero();
  ps.b.setZero();
  ps.gw << 3, 0, 0, 0;
  ps.gb << 0, 4, 12;  // total norm sqrt(9 + 16 + 144) = 13
  auto v = ps.views();
  CHECK(icl::train::grad_norm(v) == Approx(13.0).epsilon(1e-15));
  const Eigen::Vector3d gb0 = ps.gb;
  CHECK(icl::train::clip_grad_norm(v, 20.0) == Approx(13.0).epsilon(1e-15));
  CHECK(ps.gb == gb0);  // no clipping below the threshold
  CHECK(icl::train::clip_grad_norm(v, 6.5) == Approx(13.0).epsilon(1e-15));
  const double c = 6.5 / (13.0 + 1e-6);
  // one multiplication per entry: 1 u
  CHECK_THAT(ps.gb, icl::test::IsCloseTo(Eigen::Vector3d(gb0 * c), 1e-15, 0));
  CHECK(ps.gw(0, 0) == Approx(3 * c).epsilon(1e-15));
  CHECK(icl::train::grad_norm(v) == Approx(6.5).epsilon(1e-6));  // 6.5 * 13/(13+1e-6)

  ps.gw(1, 1) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(icl::train::clip_grad_norm(v, 1.0), Catch::Contains("'w'"));
  CHECK(icl::train::first_nonfinite(v, true) == "w");
  CHECK(icl::train::first_nonfinite(v, false).empty());
  CHECK_THROWS_AS(icl::train::clip_grad_norm(v, 0.0), icl::InvalidArgument);
}

TEMPLATE_TEST_CASE("Optimiser state round-trips through safetensors and resumes bit-identically",
                   "[train][adam]", float, double) {
  using S = TestType;
  icl::train::AdamConfig cfg;
  cfg.amsgrad = true;
  cfg.weight_decay = 0.05;
  const auto grads = [](TwoParams<S>& ps, int t) {
    for (int k = 0; k < 4; ++k) ps.gw.data()[k] = grad_at<S>(t, k);
    for (int k = 0; k < 3; ++k) ps.gb.data()[k] = grad_at<S>(t, 4 + k);
  };
  TwoParams<S> a;
  a.w << 1, 2, 3, 4;
  a.b << -1, 0, 1;
  TwoParams<S> b = a;
  icl::train::AdamW<S> oa(a.views(), cfg);
  for (int t = 0; t < 3; ++t) grads(a, t), oa.set_lr(0.01 * (t + 1)), oa.step();
  icl::io::SafeTensors st;
  icl::train::save_state(st, oa);
  const auto bytes = st.to_bytes();
  // a fresh optimiser on parameters equal to a's, state loaded from the bytes
  b.w = a.w;
  b.b = a.b;
  icl::train::AdamW<S> ob(b.views(), cfg);
  icl::train::load_state(icl::io::SafeTensors::from_bytes(bytes), ob);
  CHECK(ob.step_count() == 3);
  CHECK(ob.lr() == oa.lr());
  for (int t = 3; t < 6; ++t) {
    grads(a, t), oa.step();
    grads(b, t), ob.step();
  }
  CHECK(a.w == b.w);  // bit-identical: the state is stored in the optimiser's own dtype
  CHECK(a.b == b.b);

  // another shape, or other hyper-parameters: clear errors
  Eigen::Matrix<S, 3, 2> w3 = Eigen::Matrix<S, 3, 2>::Zero(), g3 = Eigen::Matrix<S, 3, 2>::Zero();
  Eigen::Matrix<S, 3, 1> bb = Eigen::Matrix<S, 3, 1>::Zero(), gbb = Eigen::Matrix<S, 3, 1>::Zero();
  icl::train::AdamW<S> oc({{"w", 3, 2, w3.data(), g3.data()}, {"b", 3, 1, bb.data(), gbb.data()}}, cfg);
  CHECK_THROWS_WITH(icl::train::load_state(st, oc), Catch::Contains("'optim.w.exp_avg' has shape [2, 2]"));
  icl::train::AdamConfig other = cfg;
  other.beta2 = 0.98;
  icl::train::AdamW<S> od(b.views(), other);
  CHECK_THROWS_WITH(icl::train::load_state(st, od), Catch::Contains("beta2"));
  icl::train::Adam<S> oe(b.views(), cfg);
  CHECK_THROWS_WITH(icl::train::load_state(st, oe), Catch::Contains("decoupled"));
}

TEMPLATE_TEST_CASE("load_state refuses non-finite moments and negative second moments, naming the tensor",
                   "[train][adam][reliability]", float, double) {
  using S = TestType;
  icl::train::AdamConfig cfg;
  cfg.amsgrad = true;
  TwoParams<S> a;
  a.w << 1, 2, 3, 4;
  icl::train::AdamW<S> oa(a.views(), cfg);
  a.gw << 0.5, -1, 2, 0.25;
  a.gb << 1, -1, 0.5;
  oa.step();
  icl::io::SafeTensors good;
  icl::train::save_state(good, oa);
  const S inf = std::numeric_limits<S>::infinity(), nan = std::numeric_limits<S>::quiet_NaN();
  struct Case {
    const char* tensor;
    S value;
    const char* says;
  };
  // exp_avg may be negative (a mean of gradients); only its finiteness is checked
  const Case cases[] = {{"optim.w.exp_avg", nan, "NaN or infinite"},
                        {"optim.b.exp_avg", -inf, "NaN or infinite"},
                        {"optim.w.exp_avg_sq", -S(1e-3), "negative entry"},
                        {"optim.b.exp_avg_sq", inf, "NaN or infinite"},
                        {"optim.w.max_exp_avg_sq", -S(2), "negative entry"},
                        {"optim.b.max_exp_avg_sq", nan, "NaN or infinite"}};
  for (const auto& c : cases) {
    INFO(c.tensor);
    icl::io::SafeTensors st = good;
    const auto& info = st.info(c.tensor);
    Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> m = st.get<S>(c.tensor, info.shape[0], info.shape[1]);
    m(0, 0) = c.value;
    st.put(c.tensor, m);
    TwoParams<S> b = a;
    icl::train::AdamW<S> ob(b.views(), cfg);
    CHECK_THROWS_AS(icl::train::load_state(st, ob), icl::IoError);
    CHECK_THROWS_WITH(icl::train::load_state(st, ob),
                      Catch::Contains(std::string("'") + c.tensor + "'") && Catch::Contains(c.says));
    CHECK(ob.step_count() == 0);  // refused before anything was changed
  }
  // a negative first moment is legitimate
  icl::io::SafeTensors st = good;
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> m = st.get<S>("optim.w.exp_avg", 2, 2);
  m(0, 0) = -S(0.5);
  st.put("optim.w.exp_avg", m);
  TwoParams<S> b = a;
  icl::train::AdamW<S> ob(b.views(), cfg);
  CHECK_NOTHROW(icl::train::load_state(st, ob));
  CHECK(ob.step_count() == 1);
}
