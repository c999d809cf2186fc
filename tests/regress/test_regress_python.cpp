// Hidden cases driven by tests/python/regress_sklearn.py (CTest python.regress_sklearn): icl writes
// datasets, Python refits numpy/scikit-learn per prefix, icl checks its online predictions.
#include <catch2/catch.hpp>
#include <string>

#include "icl/io/safetensors.hpp"
#include "icl/regress.hpp"
#include "regress/reference.hpp"
#include "support/python.hpp"

namespace rg = icl::regress;

namespace {
// The datasets: (n, d, rank, noise). Rank < d makes X = A·B rank-deficient.
struct Spec {
  int n, d, rank;
  double noise;
};
constexpr Spec kSpecs[] = {{40, 8, 8, 0.0}, {40, 8, 8, 0.5}, {25, 5, 2, 0.1}, {24, 16, 16, 0.3}};
}  // namespace

TEST_CASE("regress: write datasets for the scikit-learn cross-check", "[.][py-regress-write]") {
  const std::string dir = icl::test::python_dir();
  REQUIRE(!dir.empty());
  icl::Rng rng(2023);
  icl::io::SafeTensors st;
  int k = 0;
  for (const Spec& s : kSpecs) {
    Eigen::MatrixXd X = icl::test::gaussian<double>(s.n, s.rank, rng);
    if (s.rank < s.d) X = (X * icl::test::gaussian<double>(s.rank, s.d, rng)).eval();
    const Eigen::VectorXd w = icl::test::gaussian<double>(s.d, 1, rng).col(0);
    const Eigen::VectorXd y = X * w + s.noise * icl::test::gaussian<double>(s.n, 1, rng).col(0);
    st.put("X" + std::to_string(k), X);
    st.put("y" + std::to_string(k), y);
    ++k;
  }
  st.metadata["datasets"] = std::to_string(k);
  st.save(dir + "/regress_data.safetensors");
}

TEST_CASE("regress: online predictions agree with numpy and scikit-learn", "[.][py-regress-check]") {
  const std::string dir = icl::test::python_dir();
  REQUIRE(!dir.empty());
  const auto data = icl::io::SafeTensors::load(dir + "/regress_data.safetensors");
  const auto ref = icl::io::SafeTensors::load(dir + "/regress_reference.safetensors");
  const int count = std::stoi(data.metadata.at("datasets"));
  REQUIRE(count == int(std::size(kSpecs)));
  double worst = 0;
  for (int k = 0; k < count; ++k) {
    const std::string s = std::to_string(k);
    const Eigen::MatrixXd X = data.get<double>("X" + s);
    const Eigen::VectorXd y = data.get_vector<double>("y" + s);
    const double scale = std::sqrt(y.squaredNorm() / double(y.size()));  // rms label
    auto check = [&](const auto& algo, const std::string& name) {
      const Eigen::VectorXd p = rg::online_predictions(algo, X, y);
      const Eigen::VectorXd r = ref.get_vector<double>(name + s, X.rows());
      for (Eigen::Index i = 0; i < p.size(); ++i) {
        // 1e-8 relative, with the rms label as the floor of the scale (a prediction near 0)
        const double err = std::abs(p(i) - r(i)) / std::max(std::abs(r(i)), scale);
        worst = std::max(worst, err);
        INFO(rg::name(algo) << " vs " << name << ", dataset " << k << ", prefix " << i << ": icl " << p(i)
                            << ", reference " << r(i));
        CHECK(err <= 1e-8);
      }
    };
    check(rg::Ols{}, "ols_sklearn");
    check(rg::Ols{}, "ols_lstsq");
    check(rg::Ridge{0.1}, "ridge0.1_");
    check(rg::Ridge{0.5}, "ridge0.5_");
    check(rg::Knn{3}, "knn_uniform");
    check(rg::Knn{3, rg::KnnWeights::inverse_square}, "knn_inverse_square");
  }
  WARN("max relative difference to numpy/scikit-learn: " << worst);
}
