/// @file
/// LayerNorm over the features of every token (column): y = (x - mean) / sqrt(var + eps) ⊙ g + b,
/// biased variance as PyTorch; gain/bias optional and eps >= 0 (eps = 0 is the paper's Eq. 7).
/// Backward: docs/derivations/nn_layers.md Eq. (N1)-(N3).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/param.hpp"
#include "icl/nn/types.hpp"

namespace icl::nn {

/// Options of a LayerNorm: learnable gain and bias (PyTorch elementwise_affine) and eps.
struct LayerNormOptions {
  bool affine = true;  ///< learnable gain ("weight", initialised to 1) and bias ("bias", 0)
  double eps = 1e-5;   ///< added to the variance; 0 gives the paper's Eq. 7 exactly
};

/// LayerNorm over the H features of each column.
template <class S, int H>
class LayerNorm {
  static_assert(is_scalar_v<S>, "icl::nn::LayerNorm: Scalar must be a floating-point type");
  static_assert(H > 1, "icl::nn::LayerNorm: the feature count H must be at least 2");

 public:
  using Scalar = S;                   ///< the scalar type S
  static constexpr int Features = H;  ///< normalised rows
  /// A sequence of H-feature tokens (H x T).
  using SeqType = Seq<S, H>;

  /// What forward keeps for backward: the normalised input and 1/sqrt(var + eps) per column.
  struct Cache {
    SeqType xhat;                              ///< (x − mean) / sqrt(var + eps) per column, H x T
    Eigen::Matrix<S, 1, Eigen::Dynamic> rstd;  ///< 1/sqrt(var + eps) per column, 1 x T
  };

  /// Gain g = 1 and bias β = 0. Throws icl::InvalidArgument unless opt.eps is finite and >= 0.
  explicit LayerNorm(LayerNormOptions opt = {}) : affine_(opt.affine), eps_(static_cast<S>(opt.eps)) {
    ICL_CHECK_ARG(opt.eps >= 0 && std::isfinite(opt.eps), "LayerNorm: eps: expected finite >= 0, got ",
                  opt.eps);
    g_.map().setOnes();
  }

  /// Whether the learnable gain and bias are applied (and exported by parameters()).
  bool affine() const { return affine_; }
  /// The eps added to the variance.
  S eps() const { return eps_; }
  /// Changes eps (eps = 0 is paper Eq. 7).
  /// @throws icl::InvalidArgument unless eps is finite and >= 0.
  void set_eps(S eps) {
    ICL_CHECK_ARG(eps >= 0 && std::isfinite(eps), "LayerNorm::set_eps: eps: expected finite >= 0, got ", eps);
    eps_ = eps;
  }
  /// Gain g, H entries, writable (used only when affine()).
  typename HeapMatrix<S, H, 1>::MapType weight() { return g_.map(); }
  /// Gain g, H entries, read-only.
  typename HeapMatrix<S, H, 1>::ConstMapType weight() const { return g_.map(); }
  /// Bias β, H entries, writable (used only when affine()).
  typename HeapMatrix<S, H, 1>::MapType bias() { return b_.map(); }
  /// Bias β, H entries, read-only.
  typename HeapMatrix<S, H, 1>::ConstMapType bias() const { return b_.map(); }
  /// dL/dg accumulated by backward() (only when affine()); cleared by zero_grad().
  typename HeapMatrix<S, H, 1>::MapType weight_grad() { return dg_.map(); }
  /// dL/dβ accumulated by backward() (only when affine()); cleared by zero_grad().
  typename HeapMatrix<S, H, 1>::MapType bias_grad() { return db_.map(); }

  /// y = LN(x) (Eq. N1); fills `c` (resized to x's columns; no allocation when the size repeats).
  void forward(const In<S>& x, Cache& c, Out<S> y) const {
    const Eigen::Index n = x.cols();
    c.xhat.resize(H, n);
    c.rstd.resize(1, n);
    const auto g = g_.map();
    const auto b = b_.map();
    for (Eigen::Index j = 0; j < n; ++j) {
      using std::sqrt;
      const S mu = x.col(j).mean();
      c.xhat.col(j).array() = x.col(j).array() - mu;
      const S var = c.xhat.col(j).squaredNorm() / S(H);
      const S r = S(1) / sqrt(var + eps_);
      c.rstd(j) = r;
      c.xhat.col(j) *= r;
      if (affine_)
        y.col(j).array() = c.xhat.col(j).array() * g.array() + b.array();
      else
        y.col(j) = c.xhat.col(j);
    }
  }

  /// Accumulates dgain, dbias and writes dx (Eq. N2, N3). dx may alias dy.
  void backward(const Cache& c, const In<S>& dy, Out<S> dx) {
    const Eigen::Index n = dy.cols();
    if (affine_) {
      dg_.map().noalias() += dy.cwiseProduct(c.xhat).rowwise().sum();
      db_.map().noalias() += dy.rowwise().sum();
    }
    const auto g = g_.map();
    Eigen::Matrix<S, H, 1> gc;
    for (Eigen::Index j = 0; j < n; ++j) {
      if (affine_)
        gc = dy.col(j).cwiseProduct(g);
      else
        gc = dy.col(j);
      const S m1 = gc.mean();
      const S m2 = gc.dot(c.xhat.col(j)) / S(H);
      dx.col(j).array() = c.rstd(j) * (gc.array() - m1 - c.xhat.col(j).array() * m2);
    }
  }

  /// "weight" and "bias" (H x 1 each) when affine; nothing otherwise.
  std::vector<ParamView<S>> parameters(const std::string& prefix = "") {
    std::vector<ParamView<S>> ps;
    append_parameters(ps, prefix);
    return ps;
  }
  /// Appends the views of parameters() to `ps` (nothing when not affine).
  void append_parameters(std::vector<ParamView<S>>& ps, const std::string& prefix) {
    if (!affine_) return;
    ps.push_back({prefix + "weight", H, 1, g_.data(), dg_.data()});
    ps.push_back({prefix + "bias", H, 1, b_.data(), db_.data()});
  }
  /// Sets dL/dg and dL/dβ to zero.
  void zero_grad() {
    dg_.map().setZero();
    db_.map().setZero();
  }

 private:
  bool affine_;
  S eps_;
  HeapMatrix<S, H, 1> g_, b_, dg_, db_;
};

}  // namespace icl::nn
