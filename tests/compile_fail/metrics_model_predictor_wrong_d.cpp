// An explicit D that contradicts Model::InputDim is a compile-time error (it failed at run time
// with a message that blamed the model).
#include "icl/metrics/models.hpp"

struct Model {
  using Scalar = double;
  static constexpr int InputDim = 2;
  Eigen::VectorXd predict(const Eigen::MatrixXd& tokens) const {
    return Eigen::VectorXd::Zero(tokens.cols());
  }
};

int main() {
  const Model m;
  const auto p = icl::metrics::model_predictor<3>(m, "wrong d");
  (void)p;
}
