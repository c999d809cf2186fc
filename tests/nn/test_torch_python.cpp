// Hidden cases driven by tests/python/nn_torch.py: the pre-LN model and the paper model against
// PyTorch (nn.TransformerEncoderLayer(norm_first=True) and a hand-built paper block), in float and
// double. [py-nn-write] exports weights and a batch; python computes outputs, the Eq. 8 loss and
// every parameter gradient, plus a torch-initialised model; [py-nn-check] compares.
#include <catch2/catch.hpp>
#include <string>

#include "icl/core/rng.hpp"
#include "icl/data/task.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/nn.hpp"
#include "support/python.hpp"

namespace {

using icl::Mat;
constexpr int D = 3, H = 8, M = 2, F = 16, TMax = 11, L = 2, n = 5, B = 3, T = 2 * n - 1;
template <class S>
using PreLN = icl::nn::PreLNTransformer<S, D, H, M, F, TMax>;
template <class S>
using Paper = icl::nn::PaperTransformer<S, D, H, M, F, TMax>;

// PyTorch state_dict layout: matrices [rows, cols] row-major, vectors 1-D (as icl::train's
// checkpoint functions; kept local so that this test does not depend on the train area).
template <class S>
void put_params(icl::io::SafeTensors& st, const std::vector<icl::nn::ParamView<S>>& ps,
                const std::string& prefix = "") {
  for (const auto& p : ps) {
    if (p.cols == 1)
      st.put(prefix + p.name, Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(p.value, p.rows));
    else
      st.put(prefix + p.name, p.value_map());
  }
}
template <class S>
void get_params(const icl::io::SafeTensors& st, const std::vector<icl::nn::ParamView<S>>& ps,
                const std::string& prefix = "") {
  for (const auto& p : ps) {
    if (p.cols == 1)
      p.value_map() = st.get_vector<S>(prefix + p.name, p.rows);
    else
      p.value_map() = st.get<S>(prefix + p.name, p.rows, p.cols);
  }
}

template <class Model>
Model make(const std::string& kind) {
  if (kind == "preln") return Model(L, {}, {/*final_norm=*/true});
  return Model(L, {}, {/*final_norm=*/false});  // paper defaults: LN without gain, eps 0, scale 1
}

std::string file(const std::string& kind, const std::string& dt, const std::string& what) {
  return icl::test::python_dir() + "/nn_" + kind + "_" + dt + "_" + what + ".safetensors";
}

template <class Model>
void write_case(const std::string& kind, const std::string& dt, std::uint64_t seed) {
  using S = typename Model::Scalar;
  Model m = make<Model>(kind);
  icl::Rng rng(seed);
  icl::nn::init_uniform_scaling(m.parameters(), rng);
  // a larger scale than uniform scaling's 1/sqrt(fan_in) on the attention, so softmax is not flat
  for (const auto& p : m.parameters())
    if (p.name.find("in_proj_weight") != std::string::npos) p.value_map() *= S(3);
  Mat<double> prompts(D + 1, B * 2 * n);
  for (int b = 0; b < B; ++b)
    prompts.middleCols(b * 2 * n, 2 * n) = icl::data::encode(icl::data::sample_task<double, D>({n}, rng));
  Mat<S> inputs, targets;
  icl::nn::split_prompts(prompts.cast<S>().eval(), n, inputs, targets);
  icl::io::SafeTensors st;
  put_params(st, m.parameters());
  st.put("inputs", inputs);
  st.put("targets", targets);
  st.metadata = {{"kind", kind},           {"D", std::to_string(D)}, {"H", std::to_string(H)},
                 {"M", std::to_string(M)}, {"F", std::to_string(F)}, {"TMax", std::to_string(TMax)},
                 {"L", std::to_string(L)}, {"n", std::to_string(n)}, {"B", std::to_string(B)}};
  st.save(file(kind, dt, "in"));
}

double rel(const Mat<double>& a, const Mat<double>& b) {
  const double s = std::max({a.norm(), b.norm(), 1e-300});
  return (a - b).norm() / s;
}

// Each quantity q has its own tolerance "tol.<q>" in the python file: 2 C S_q, S_q the relative
// rounding scale of q on this input, derived in tests/python/nn_torch.py from a float64 run with
// every rounding operation perturbed as in the case's precision (not a number measured on one
// BLAS; issue 19 §1). A wrong weight, layout or formula moves a quantity by far more. `limit`
// (issue 4's bounds) caps the derived tolerances, so that a rounding model gone loose cannot make
// the comparison toothless.
double tolerance(const icl::io::SafeTensors& ref, const std::string& q, double limit) {
  const double tol = ref.get_scalar("tol." + q);
  INFO("derived tolerance of " << q << ": " << tol << ", limit " << limit);
  CHECK(tol > 0);
  CHECK(tol <= limit);
  return tol;
}

template <class Model>
void check_case(const std::string& kind, const std::string& dt, double limit) {
  using S = typename Model::Scalar;
  const auto in = icl::io::SafeTensors::load(file(kind, dt, "in"));
  const auto ref = icl::io::SafeTensors::load(file(kind, dt, "torch"));
  Model m = make<Model>(kind);
  get_params(in, m.parameters());
  const Mat<S> inputs = in.get<S>("inputs", D + 1, B * T), targets = in.get<S>("targets", n, B);
  typename Model::Cache c;
  Eigen::Matrix<S, 1, Eigen::Dynamic> dout;
  m.zero_grad();
  m.forward(inputs, T, c);
  const double loss = static_cast<double>(icl::nn::icl_loss<S>(c.out, targets, T, &dout));
  m.backward(c, dout);
  INFO(kind << " " << dt);
  {
    const double e = rel(c.out.template cast<double>(), ref.get<double>("out", 1, B * T));
    const double tol = tolerance(ref, "out", limit);
    INFO("outputs: rel error " << e << ", tolerance " << tol);
    CHECK(e <= tol);
  }
  {
    const double lt = ref.get_scalar("loss");
    const double e = std::abs(loss - lt) / std::abs(lt);
    const double tol = tolerance(ref, "loss", limit);
    INFO("loss " << loss << " torch " << lt << " rel error " << e << ", tolerance " << tol);
    CHECK(e <= tol);
  }
  double worst = 0;
  for (const auto& p : m.parameters()) {
    const Mat<double> g = p.grad_map().template cast<double>();
    const Mat<double> gt = p.cols == 1 ? Mat<double>(ref.get_vector<double>("grad." + p.name, p.rows))
                                       : ref.get<double>("grad." + p.name, p.rows, p.cols);
    const double e = rel(g, gt), tol = tolerance(ref, "grad." + p.name, limit);
    worst = std::max(worst, e / tol);
    INFO("gradient " << p.name << " rel error " << e << ", tolerance " << tol);
    CHECK(e <= tol);
  }
  WARN("nn_torch " << kind << " " << dt << ": worst gradient rel error " << worst << " of its tolerance");
  // weights initialised by PyTorch, loaded by name: same outputs
  Model m2 = make<Model>(kind);
  get_params(ref, m2.parameters(), "torchinit.");
  m2.forward(inputs, T, c);
  const double e2 = rel(c.out.template cast<double>(), ref.get<double>("torchinit.out", 1, B * T));
  const double tol2 = tolerance(ref, "torchinit.out", limit);
  INFO("torch-initialised weights: outputs rel error " << e2 << ", tolerance " << tol2);
  CHECK(e2 <= tol2);
}

}  // namespace

TEST_CASE("nn vs torch: write weights and batches", "[.][py-nn-write]") {
  REQUIRE(!icl::test::python_dir().empty());
  write_case<PreLN<double>>("preln", "f64", 11);
  write_case<PreLN<float>>("preln", "f32", 12);
  write_case<Paper<double>>("paper", "f64", 13);
  write_case<Paper<float>>("paper", "f32", 14);
}

TEST_CASE("nn vs torch: outputs, loss and gradients agree", "[.][py-nn-check]") {
  REQUIRE(!icl::test::python_dir().empty());
  // tolerances per quantity from the python file (see check_case), capped by issue 4's bounds
  check_case<PreLN<double>>("preln", "f64", 1e-10);
  check_case<Paper<double>>("paper", "f64", 1e-10);
  check_case<PreLN<float>>("preln", "f32", 1e-4);
  check_case<Paper<float>>("paper", "f32", 1e-4);
}
