// model_predictor holds the model by reference: a temporary would dangle, so it is refused at
// compile time (issue 19: model_predictor<D>(Model(1), ...) compiled and dangled).
#include "icl/metrics/models.hpp"

struct Model {  // the interface model_predictor needs: Scalar, InputDim, predict(tokens)
  using Scalar = double;
  static constexpr int InputDim = 2;
  Eigen::VectorXd predict(const Eigen::MatrixXd& tokens) const {
    return Eigen::VectorXd::Zero(tokens.cols());
  }
};

int main() { icl::metrics::model_predictor(Model{}, "dangling"); }
