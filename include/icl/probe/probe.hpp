/// @file
/// The paper's probe (§6.4; docs/probe.md §2): learned input-independent position scores (softmax over
/// positions), a linear map of the hidden states, then a linear or a 2-layer GeLU MLP read-out, with a
/// hand-written backward (Eqs. (P1)-(P9)); trained with Adam on a training split and scored (MSE, R²)
/// on a held-out split (fit_probe, Eqs. (P10)-(P11)).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/core/rng.hpp"
#include "icl/core/storage.hpp"
#include "icl/nn/activation.hpp"
#include "icl/nn/param.hpp"
#include "icl/train/adam.hpp"

namespace icl::probe {

/// The read-out FF_v of the probe: linear, or a 2-layer MLP with GeLU (erf form).
enum class Readout { linear, mlp };

/// "linear" or "mlp".
inline const char* to_string(Readout r) { return r == Readout::linear ? "linear" : "mlp"; }

/// Shape of a probe.
struct ProbeShape {
  int hidden = 0;       ///< H: rows of the hidden states probed
  int positions = 0;    ///< T: token positions per prompt (the softmax runs over them)
  int outputs = 0;      ///< k: entries of the target
  int width = 64;       ///< H': rows of W h (the paper: 512)
  int mlp_hidden = 64;  ///< units of the MLP read-out (the paper: 512); unused for linear
  /// FF_v: linear (Eq. (P4a)) or 2-layer GeLU MLP (Eq. (P4b)).
  Readout readout = Readout::linear;

  /// @throws icl::InvalidArgument naming the first field below 1 (mlp_hidden only for the MLP read-out).
  void validate() const {
    ICL_CHECK_ARG(hidden >= 1, "ProbeShape.hidden: expected >= 1, got ", hidden);
    ICL_CHECK_ARG(positions >= 1, "ProbeShape.positions: expected >= 1, got ", positions);
    ICL_CHECK_ARG(outputs >= 1, "ProbeShape.outputs: expected >= 1, got ", outputs);
    ICL_CHECK_ARG(width >= 1, "ProbeShape.width: expected >= 1, got ", width);
    ICL_CHECK_ARG(readout == Readout::linear || mlp_hidden >= 1, "ProbeShape.mlp_hidden: expected >= 1, got ",
                  mlp_hidden);
  }
};

/// A probe v̂ = FF(W Σ_t α_t h_t), α = softmax(s) (docs/probe.md Eqs. (P1)-(P4)). Input: N prompts' hidden
/// states side by side, H x (N·T) (a model's hidden state at one layer); output k x N.
/// Parameters ("scores" T, "proj.weight" H' x H, then "out.weight" k x H' and "out.bias" k for the linear
/// read-out, or "fc1.weight" F x H', "fc1.bias" F, "fc2.weight" k x F, "fc2.bias" k for the MLP).
template <class S>
class Probe {
 public:
  using Mat = icl::Mat<S>;  ///< hidden states, weights, outputs (icl::Mat<S>)
  using Vec = icl::Vec<S>;  ///< scores, biases (icl::Vec<S>)

  /// Intermediates of forward() that backward() needs (N = prompts in the batch); reusable across calls.
  struct Cache {
    Vec alpha;  ///< softmax(s), T
    Mat u;      ///< Σ_t α_t h_t per prompt, H x N   (P2)
    Mat z;      ///< W u, H' x N                      (P3)
    Mat g, r;   ///< MLP read-out only: GeLU(g), F x N
    Mat out;    ///< v̂, k x N                          (P4)

    /// @var g
    /// MLP read-out only: pre-activation g = A1 z + a1, F x N (P4b); unused for the linear read-out.
  };

  /// Scores s = 0 (uniform attention); weights uniform in ±1/√fan_in, biases 0, from `rng`.
  Probe(const ProbeShape& shape, Rng& rng) : shape_(shape) {
    shape_.validate();
    const int k = shape_.outputs, Hp = shape_.width, F = shape_.mlp_hidden;
    s_ = Vec::Zero(shape_.positions);
    W_ = uniform(Hp, shape_.hidden, rng);
    if (shape_.readout == Readout::linear) {
      A1_ = uniform(k, Hp, rng);
      a1_ = Vec::Zero(k);
    } else {
      A1_ = uniform(F, Hp, rng);
      a1_ = Vec::Zero(F);
      A2_ = uniform(k, F, rng);
      a2_ = Vec::Zero(k);
    }
    ds_ = Vec::Zero(s_.size());
    dW_ = Mat::Zero(W_.rows(), W_.cols());
    dA1_ = Mat::Zero(A1_.rows(), A1_.cols());
    da1_ = Vec::Zero(a1_.size());
    dA2_ = Mat::Zero(A2_.rows(), A2_.cols());
    da2_ = Vec::Zero(a2_.size());
  }

  /// The validated shape the probe was built with.
  const ProbeShape& shape() const { return shape_; }
  /// The attention over positions, softmax(s) (Eq. (P1)).
  Vec attention() const {
    Vec a = (s_.array() - s_.maxCoeff()).exp();
    return a / a.sum();
  }

  /// v̂ for N = hidden.cols()/T prompts (Eqs. (P1)-(P4)).
  void forward(const Eigen::Ref<const Mat>& hidden, Cache& c) const {
    const Eigen::Index T = shape_.positions;
    ICL_CHECK_ARG(hidden.rows() == shape_.hidden, "Probe::forward: hidden: expected H = ", shape_.hidden,
                  " rows, got ", hidden.rows());
    ICL_CHECK_ARG(hidden.cols() >= T && hidden.cols() % T == 0,
                  "Probe::forward: hidden: expected a multiple of T = ", T,
                  " columns (prompts x positions), got ", hidden.cols());
    c.alpha = attention();
    c.u = Mat::Zero(hidden.rows(), hidden.cols() / T);
    for (Eigen::Index t = 0; t < T; ++t) c.u.noalias() += c.alpha(t) * position(hidden, t);  // (P2)
    c.z.noalias() = W_ * c.u;                                                                // (P3)
    if (shape_.readout == Readout::linear) {
      c.out.noalias() = A1_ * c.z;  // (P4a)
      c.out.colwise() += a1_;
    } else {
      c.g.noalias() = A1_ * c.z;  // (P4b)
      c.g.colwise() += a1_;
      c.r.resize(c.g.rows(), c.g.cols());
      nn::activation_forward(nn::Activation::gelu_erf, c.g, c.r);
      c.out.noalias() = A2_ * c.r;
      c.out.colwise() += a2_;
    }
  }

  /// Predictions only.
  Mat predict(const Eigen::Ref<const Mat>& hidden) const {
    Cache c;
    forward(hidden, c);
    return c.out;
  }

  /// Accumulates the gradients of every parameter for upstream dout = ∂loss/∂v̂ (k x N), given the
  /// forward's input and cache (Eqs. (P6)-(P9)).
  void backward(const Eigen::Ref<const Mat>& hidden, const Cache& c, const Mat& dout) {
    const Eigen::Index T = shape_.positions, N = c.u.cols();
    ICL_CHECK_ARG(dout.rows() == shape_.outputs && dout.cols() == N, "Probe::backward: dout: expected ",
                  shape_.outputs, "x", N, ", got ", dout.rows(), "x", dout.cols());
    Mat dz;
    if (shape_.readout == Readout::linear) {
      dA1_.noalias() += dout * c.z.transpose();  // (P6a)
      da1_ += dout.rowwise().sum();
      dz.noalias() = A1_.transpose() * dout;
    } else {
      dA2_.noalias() += dout * c.r.transpose();  // (P6b)
      da2_ += dout.rowwise().sum();
      Mat dr = A2_.transpose() * dout;
      Mat dg(dr.rows(), dr.cols());
      nn::activation_backward(nn::Activation::gelu_erf, c.g, dr, dg);
      dA1_.noalias() += dg * c.z.transpose();
      da1_ += dg.rowwise().sum();
      dz.noalias() = A1_.transpose() * dg;
    }
    dW_.noalias() += dz * c.u.transpose();  // (P7)
    const Mat du = W_.transpose() * dz;
    Vec dalpha(T);  // (P8)
    for (Eigen::Index t = 0; t < T; ++t) dalpha(t) = position(hidden, t).cwiseProduct(du).sum();
    ds_.array() += c.alpha.array() * (dalpha.array() - c.alpha.dot(dalpha));  // (P9)
  }

  /// Parameter views (names in the class comment), for Adam and gradient checks.
  std::vector<nn::ParamView<S>> parameters() {
    std::vector<nn::ParamView<S>> ps;
    ps.push_back({"scores", s_.size(), 1, s_.data(), ds_.data()});
    ps.push_back({"proj.weight", W_.rows(), W_.cols(), W_.data(), dW_.data()});
    if (shape_.readout == Readout::linear) {
      ps.push_back({"out.weight", A1_.rows(), A1_.cols(), A1_.data(), dA1_.data()});
      ps.push_back({"out.bias", a1_.size(), 1, a1_.data(), da1_.data()});
    } else {
      ps.push_back({"fc1.weight", A1_.rows(), A1_.cols(), A1_.data(), dA1_.data()});
      ps.push_back({"fc1.bias", a1_.size(), 1, a1_.data(), da1_.data()});
      ps.push_back({"fc2.weight", A2_.rows(), A2_.cols(), A2_.data(), dA2_.data()});
      ps.push_back({"fc2.bias", a2_.size(), 1, a2_.data(), da2_.data()});
    }
    return ps;
  }
  /// Sets every accumulated gradient to zero (backward() adds to them).
  void zero_grad() { nn::zero_grad(parameters()); }

 private:
  // Position t of every prompt, H x N (column b = h_{b,t}): a strided view of the H x (N·T) states.
  Eigen::Map<const Mat, 0, Eigen::OuterStride<>> position(const Eigen::Ref<const Mat>& hidden,
                                                          Eigen::Index t) const {
    const Eigen::Index T = shape_.positions;
    return {hidden.data() + t * hidden.outerStride(), hidden.rows(), hidden.cols() / T,
            Eigen::OuterStride<>(hidden.outerStride() * T)};
  }

  static Mat uniform(int rows, int cols, Rng& rng) {
    const double a = 1.0 / std::sqrt(static_cast<double>(cols));
    Mat m(rows, cols);
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = static_cast<S>(a * (2 * rng.uniform() - 1));
    return m;
  }

  ProbeShape shape_;
  Vec s_, a1_, a2_, ds_, da1_, da2_;
  Mat W_, A1_, A2_, dW_, dA1_, dA2_;
};

/// MSE loss of Eq. (P5), (1/(N·k)) Σ ‖v̂_b − v_b‖², and its gradient ∂loss/∂v̂ = 2(v̂ − v)/(N·k) into dout.
template <class S>
double probe_loss(const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& pred,
                  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& target,
                  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>* dout = nullptr) {
  ICL_CHECK_ARG(pred.rows() == target.rows() && pred.cols() == target.cols(), "probe_loss: target: expected ",
                pred.rows(), "x", pred.cols(), ", got ", target.rows(), "x", target.cols());
  const double scale = 1.0 / static_cast<double>(pred.size());
  if (dout) *dout = (pred - target) * static_cast<S>(2 * scale);
  return static_cast<double>((pred - target).squaredNorm()) * scale;
}

/// Options of fit_probe (docs/probe.md §3).
struct FitOptions {
  int steps = 1000;              ///< Adam steps
  int batch = 128;               ///< prompts per step (sequential chunks of the training split); 0 = all
  double lr = 1e-3;              ///< Adam learning rate (the paper's, chosen on validation data)
  double train_fraction = 0.75;  ///< first part of the prompts trains, the rest is held out
  bool standardize = true;       ///< standardise every hidden row by its training mean and deviation
  /// Train on targets standardised per entry, v ← (v − μ_v) ⊙ σ_v⁻¹ with the training split's mean
  /// and deviation (docs/probe.md Eq. (P10b)); the probe's outputs are mapped back, so the scores stay
  /// in target units. Off: the raw targets (whose scale may grow with n, as XᵀY's does).
  bool standardize_targets = false;
  std::uint64_t seed = 0;  ///< initialisation of the probe
};

/// Held-out (and training) scores of a probe: MSE per entry (Eq. (P5)) and R² = 1 − SS_res/SS_tot
/// pooled over the k entries, SS_tot around the held-out mean of each entry (Eq. (P11)).
struct ProbeScore {
  /// Held-out MSE per entry (Eq. (P5)), in squared target units.
  double mse = 0, r2 = 0;  ///< held-out R² (Eq. (P11))
  /// MSE on the training split (Eq. (P5)).
  double train_mse = 0, train_r2 = 0;  ///< R² on the training split (SS_tot around its own mean)
  /// Prompts in the training split.
  int train = 0, test = 0;  ///< prompts in the held-out split
};

/// R² of predictions against targets (k x N), SS_tot around each row's mean (Eq. (P11)).
template <class S>
double r2_score(const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& pred,
                const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& target) {
  const Eigen::MatrixXd p = pred.template cast<double>(), t = target.template cast<double>();
  const double ss_res = (p - t).squaredNorm();
  const double ss_tot = (t.colwise() - t.rowwise().mean()).squaredNorm();
  return ss_tot > 0 ? 1.0 - ss_res / ss_tot : (ss_res == 0 ? 1.0 : 0.0);
}

/// A trained probe with its standardisation and scores.
template <class S>
struct ProbeFit {
  /// The trained probe; it expects standardised states (h − mean) ⊙ inv_std, not the raw ones.
  Probe<S> probe;
  /// Per hidden row, the training mean μ (0 without standardize), H entries (Eq. (P10)).
  Eigen::Matrix<S, Eigen::Dynamic, 1> mean, inv_std;
  /// @var inv_std
  /// Per hidden row, 1/σ over the training columns (1 without standardize; 0 for a row constant up
  /// to rounding, σ <= √ε · its RMS, whose centred feature is then 0).

  /// Per target entry, the training mean μ_v the probe's outputs are mapped back with,
  /// v̂ = μ_v + σ_v ⊙ probe(h) (0 without FitOptions::standardize_targets; Eq. (P10b)).
  Eigen::Matrix<S, Eigen::Dynamic, 1> target_mean;
  /// Per target entry, the training deviation σ_v of v̂ = μ_v + σ_v ⊙ probe(h) (1 without
  /// FitOptions::standardize_targets, and for an entry constant over the training split).
  Eigen::Matrix<S, Eigen::Dynamic, 1> target_std;

  ProbeScore score;          ///< held-out and training MSE and R²
  std::vector<double> loss;  ///< training loss per step (on the standardised targets when used)

  /// v̂ for raw hidden states (H x (N·T)): standardised as in training, then mapped back to target
  /// units.
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> predict(
      const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& hidden) const {
    ICL_CHECK_ARG(hidden.rows() == mean.size(), "ProbeFit::predict: hidden: expected ", mean.size(),
                  " rows, got ", hidden.rows());
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> x =
        ((hidden.colwise() - mean).array().colwise() * inv_std.array()).matrix();
    return ((probe.predict(x).array().colwise() * target_std.array()).colwise() + target_mean.array())
        .matrix();
  }
};

/// Trains one probe (one layer, one target, one n) on `hidden` (H x (N·T): N prompts of T positions, one
/// layer's states) against `targets` (k x N): the first round(train_fraction·N) prompts train it with
/// Adam (Eq. (P10)), the rest score it (Eq. (P11)).
template <class S>
ProbeFit<S> fit_probe(const Mat<S>& hidden, int T, const Mat<S>& targets, ProbeShape shape,
                      const FitOptions& opt) {
  ICL_CHECK_ARG(T >= 1 && hidden.cols() % T == 0, "fit_probe: T: expected a prompt length >= 1 dividing the ",
                hidden.cols(), " columns of hidden, got ", T);
  const Eigen::Index N = hidden.cols() / T;
  ICL_CHECK_ARG(targets.cols() == N, "fit_probe: targets: expected one column per prompt (", N, "), got ",
                targets.cols());
  ICL_CHECK_ARG(opt.steps >= 1, "fit_probe: opt.steps: expected >= 1, got ", opt.steps);
  ICL_CHECK_ARG(opt.batch >= 0, "fit_probe: opt.batch: expected >= 0, got ", opt.batch);
  ICL_CHECK_ARG(opt.train_fraction > 0 && opt.train_fraction < 1,
                "fit_probe: opt.train_fraction: expected in (0, 1), got ", opt.train_fraction);
  const Eigen::Index n_train =
      static_cast<Eigen::Index>(std::lround(opt.train_fraction * static_cast<double>(N)));
  ICL_CHECK_ARG(n_train >= 1 && n_train < N, "fit_probe: ", N,
                " prompts leave no training or held-out prompt at ", "train_fraction ", opt.train_fraction);
  ICL_CHECK_ARG(hidden.allFinite(), "fit_probe: hidden: expected finite values, found NaN or Inf");
  ICL_CHECK_ARG(targets.allFinite(), "fit_probe: targets: expected finite values, found NaN or Inf");
  shape.hidden = static_cast<int>(hidden.rows());
  shape.positions = T;
  shape.outputs = static_cast<int>(targets.rows());
  Rng rng(opt.seed);
  ProbeFit<S> fit{Probe<S>(shape, rng),
                  Vec<S>::Zero(hidden.rows()),
                  Vec<S>::Ones(hidden.rows()),
                  Vec<S>::Zero(targets.rows()),
                  Vec<S>::Ones(targets.rows()),
                  {},
                  {}};
  const Mat<S> Htr = hidden.leftCols(n_train * T), Vtr = targets.leftCols(n_train);
  if (opt.standardize_targets) {  // (P10b): v ← (v − μ_v) ⊙ σ_v⁻¹ per entry, over the training split
    fit.target_mean = Vtr.rowwise().mean();
    const Vec<S> var = (Vtr.colwise() - fit.target_mean).rowwise().squaredNorm() / static_cast<S>(Vtr.cols());
    for (Eigen::Index i = 0; i < var.size(); ++i)
      fit.target_std(i) = var(i) > S(0) ? std::sqrt(var(i)) : S(1);
  }
  const Mat<S> Vtr_fit =
      ((Vtr.colwise() - fit.target_mean).array().colwise() / fit.target_std.array()).matrix();
  if (opt.standardize) {  // (P10): h ← (h − μ) ⊙ σ⁻¹ per row, μ, σ over the training columns
    fit.mean = Htr.rowwise().mean();
    const Vec<S> var = (Htr.colwise() - fit.mean).rowwise().squaredNorm() / static_cast<S>(Htr.cols());
    // A row whose deviation is at most √ε of its RMS (ε = the machine epsilon of S) holds less than
    // half of S's digits of variation: what a constant row (a bias feature, a construction's pad
    // or ONE row) shows after rounding amplified up to 1/√ε (4096 in float) through the network.
    // Dividing by that deviation would turn rounding into order-1 features (inv_std 1e7 for a float
    // row of 1 ± ε), so such a row counts as constant: inv_std = 0, its centred feature is 0.
    const double eps = static_cast<double>(std::numeric_limits<S>::epsilon());
    for (Eigen::Index i = 0; i < var.size(); ++i) {
      const double v = static_cast<double>(var(i)), mu = static_cast<double>(fit.mean(i));
      const double ms = v + mu * mu;  // mean square of the row: its scale
      fit.inv_std(i) = v > eps * ms ? S(1) / std::sqrt(var(i)) : S(0);
    }
  }
  const auto normalise = [&](const Mat<S>& h) -> Mat<S> {
    return ((h.colwise() - fit.mean).array().colwise() * fit.inv_std.array()).matrix();
  };
  const Mat<S> Xtr = normalise(Htr), Xte = normalise(hidden.rightCols((N - n_train) * T));
  const Mat<S> Vte = targets.rightCols(N - n_train);
  train::AdamConfig cfg;
  cfg.lr = opt.lr;
  train::Adam<S> adam(fit.probe.parameters(), cfg);
  const Eigen::Index bs = opt.batch == 0 ? n_train : std::min<Eigen::Index>(opt.batch, n_train);
  const Eigen::Index chunks = (n_train + bs - 1) / bs;
  typename Probe<S>::Cache c;
  Mat<S> dout;
  for (int step = 0; step < opt.steps; ++step) {
    const Eigen::Index b0 = (step % chunks) * bs, nb = std::min(bs, n_train - b0);
    const auto Xb = Xtr.middleCols(b0 * T, nb * T);  // a view, no copy
    fit.probe.zero_grad();
    fit.probe.forward(Xb, c);
    fit.loss.push_back(probe_loss<S>(c.out, Vtr_fit.middleCols(b0, nb), &dout));
    fit.probe.backward(Xb, c, dout);
    adam.step();
  }
  const auto unstandardise = [&](const Mat<S>& z) -> Mat<S> {
    return ((z.array().colwise() * fit.target_std.array()).colwise() + fit.target_mean.array()).matrix();
  };
  const Mat<S> ptr = unstandardise(fit.probe.predict(Xtr)), pte = unstandardise(fit.probe.predict(Xte));
  fit.score.train = static_cast<int>(n_train);
  fit.score.test = static_cast<int>(N - n_train);
  fit.score.train_mse = probe_loss<S>(ptr, Vtr);
  fit.score.train_r2 = r2_score<S>(ptr, Vtr);
  fit.score.mse = probe_loss<S>(pte, Vte);
  fit.score.r2 = r2_score<S>(pte, Vte);
  if (!std::isfinite(fit.score.mse) || !std::isfinite(fit.score.train_mse))
    ::icl::detail::raise<NumericalError>("fit_probe: the probe diverged (held-out MSE ", fit.score.mse,
                                         "); lower opt.lr or standardise the hidden states");
  return fit;
}

}  // namespace icl::probe
