/// @file
/// Adam and AdamW exactly as torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13) define them:
/// bias-corrected moments, eps added outside the square root, L2 decay folded into the
/// gradient (Adam) or decoupled decay p <- p·(1 − lr·wd) (AdamW), optional AMSGrad.
/// See docs/train.md Eqs. (1)–(4).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "icl/core/error.hpp"
#include "icl/nn/param.hpp"

namespace icl::train {

/// Hyper-parameters of Adam / AdamW (PyTorch's names and defaults, except that AdamW's default
/// weight decay is 1e-2 in PyTorch: AdamW's constructor applies that when none is given).
struct AdamConfig {
  double lr = 1e-3;           ///< base learning rate (a schedule rescales it through set_lr)
  double beta1 = 0.9;         ///< first-moment decay, in [0, 1)
  double beta2 = 0.999;       ///< second-moment decay, in [0, 1)
  double eps = 1e-8;          ///< added to sqrt(v̂) (outside the square root), > 0
  double weight_decay = 0.0;  ///< L2 (Adam) or decoupled (AdamW) decay, >= 0
  bool amsgrad = false;       ///< use the running maximum of v (Reddi et al. 2018) as PyTorch does
};

/// Whether weight decay enters the gradient (Adam, L2) or the parameter directly (AdamW).
enum class DecayMode { l2, decoupled };

/// The optimiser state of one parameter tensor (same length as the tensor, column-major).
template <class S>
struct AdamSlot {
  Eigen::Matrix<S, Eigen::Dynamic, 1> exp_avg;         ///< m, PyTorch's state["exp_avg"]
  Eigen::Matrix<S, Eigen::Dynamic, 1> exp_avg_sq;      ///< v, PyTorch's state["exp_avg_sq"]
  Eigen::Matrix<S, Eigen::Dynamic, 1> max_exp_avg_sq;  ///< max of v (AMSGrad only; else empty)
};

/// Adam over a list of parameter views. The views must stay valid for the optimiser's life.
///
/// One step (t = number of steps taken, starting at 1; g = gradient, p = parameter):
///   Adam:  g <- g + wd·p                                   (docs/train.md Eq. 1)
///   AdamW: p <- p·(1 − lr·wd)                               (Eq. 2)
///   m <- β1·m + (1−β1)·g,  v <- β2·v + (1−β2)·g²            (Eq. 3)
///   p <- p − (lr / (1−β1^t)) · m / (sqrt(v̂) / sqrt(1−β2^t) + eps), v̂ = v or max(v̂, v) (Eq. 4)
/// exactly in PyTorch 1.13's operation order (_single_tensor_adam / _single_tensor_adamw); the
/// scalar factors are computed in double, as Python does, then rounded to S.
template <class S, DecayMode Mode = DecayMode::l2>
class BasicAdam {
 public:
  /// Scalar of the parameters.
  using Scalar = S;
  /// The parameters updated by step().
  using Params = std::vector<nn::ParamView<S>>;

  /// An optimiser over `params` (moments zero). @throws icl::InvalidArgument for a setting out of range.
  BasicAdam(Params params, const AdamConfig& cfg) : params_(std::move(params)), cfg_(cfg) {
    validate(cfg_);
    slots_.resize(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Eigen::Index n = params_[i].size();
      slots_[i].exp_avg = Eigen::Matrix<S, Eigen::Dynamic, 1>::Zero(n);
      slots_[i].exp_avg_sq = Eigen::Matrix<S, Eigen::Dynamic, 1>::Zero(n);
      if (cfg_.amsgrad) slots_[i].max_exp_avg_sq = Eigen::Matrix<S, Eigen::Dynamic, 1>::Zero(n);
    }
  }

  /// Checks a configuration; throws InvalidArgument naming the bad field.
  static void validate(const AdamConfig& c) {
    check_finite_scalar(c.lr, "AdamConfig.lr");
    ICL_CHECK_ARG(c.lr >= 0, "AdamConfig.lr: expected >= 0, got ", c.lr);
    ICL_CHECK_ARG(c.beta1 >= 0 && c.beta1 < 1, "AdamConfig.beta1: expected in [0, 1), got ", c.beta1);
    ICL_CHECK_ARG(c.beta2 >= 0 && c.beta2 < 1, "AdamConfig.beta2: expected in [0, 1), got ", c.beta2);
    ICL_CHECK_ARG(c.eps > 0 && std::isfinite(c.eps), "AdamConfig.eps: expected finite > 0, got ", c.eps);
    ICL_CHECK_ARG(c.weight_decay >= 0 && std::isfinite(c.weight_decay),
                  "AdamConfig.weight_decay: expected finite >= 0, got ", c.weight_decay);
  }

  /// One update of every parameter from its current gradient (gradients are not zeroed).
  void step() {
    ++step_;
    const double t = static_cast<double>(step_);
    const double bc1 = 1.0 - std::pow(cfg_.beta1, t);
    const double bc2 = 1.0 - std::pow(cfg_.beta2, t);
    const S step_size = static_cast<S>(cfg_.lr / bc1);
    const S bc2_sqrt = static_cast<S>(std::sqrt(bc2));
    const S b1 = static_cast<S>(cfg_.beta1), one_m_b1 = static_cast<S>(1.0 - cfg_.beta1);
    const S b2 = static_cast<S>(cfg_.beta2), one_m_b2 = static_cast<S>(1.0 - cfg_.beta2);
    const S eps = static_cast<S>(cfg_.eps);
    const S wd = static_cast<S>(cfg_.weight_decay);
    const S decay = static_cast<S>(1.0 - cfg_.lr * cfg_.weight_decay);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& pv = params_[i];
      AdamSlot<S>& sl = slots_[i];
      S* p = pv.value;
      const S* g = pv.grad;
      S* m = sl.exp_avg.data();
      S* v = sl.exp_avg_sq.data();
      S* vmax = cfg_.amsgrad ? sl.max_exp_avg_sq.data() : nullptr;
      const Eigen::Index n = pv.size();
      for (Eigen::Index k = 0; k < n; ++k) {
        S gk = g[k];
        if constexpr (Mode == DecayMode::l2) {
          if (cfg_.weight_decay != 0) gk = gk + wd * p[k];  // Eq. (1)
        } else {
          p[k] = p[k] * decay;  // Eq. (2)
        }
        m[k] = m[k] * b1 + one_m_b1 * gk;  // Eq. (3)
        v[k] = v[k] * b2 + one_m_b2 * gk * gk;
        S vk = v[k];
        if (vmax) {
          vmax[k] = std::max(vmax[k], vk);
          vk = vmax[k];
        }
        const S denom = std::sqrt(vk) / bc2_sqrt + eps;  // Eq. (4)
        p[k] = p[k] + (-step_size) * m[k] / denom;
      }
    }
  }

  /// Current learning rate (what a schedule sets before each step).
  double lr() const { return cfg_.lr; }
  /// Sets the learning rate. @throws icl::InvalidArgument unless finite and >= 0.
  void set_lr(double lr) {
    check_finite_scalar(lr, "BasicAdam::set_lr: lr");
    ICL_CHECK_ARG(lr >= 0, "BasicAdam::set_lr: lr: expected >= 0, got ", lr);
    cfg_.lr = lr;
  }
  /// The settings (lr as last set).
  const AdamConfig& config() const { return cfg_; }
  /// The parameters, in the order of slots().
  const Params& params() const { return params_; }

  /// Steps taken so far (PyTorch's state["step"], the same for every tensor here).
  std::int64_t step_count() const { return step_; }
  /// Sets the step count (restoring a checkpoint). @throws icl::InvalidArgument if negative.
  void set_step_count(std::int64_t t) {
    ICL_CHECK_ARG(t >= 0, "BasicAdam::set_step_count: expected >= 0, got ", t);
    step_ = t;
  }
  /// Moment buffers, one slot per parameter in params() order (read and write, for checkpoints).
  const std::vector<AdamSlot<S>>& slots() const { return slots_; }
  /// Writable moment buffers (restoring a checkpoint).
  std::vector<AdamSlot<S>>& slots() { return slots_; }

 private:
  Params params_;
  AdamConfig cfg_;
  std::vector<AdamSlot<S>> slots_;
  std::int64_t step_ = 0;
};

/// torch.optim.Adam: weight decay as L2 added to the gradient.
template <class S>
using Adam = BasicAdam<S, DecayMode::l2>;

/// torch.optim.AdamW: decoupled weight decay. PyTorch's default weight_decay for AdamW is 1e-2.
template <class S>
using AdamW = BasicAdam<S, DecayMode::decoupled>;

/// AdamConfig with PyTorch's AdamW defaults (weight_decay = 1e-2).
inline AdamConfig adamw_defaults() {
  AdamConfig c;
  c.weight_decay = 1e-2;
  return c;
}

}  // namespace icl::train
