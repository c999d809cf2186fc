/// @file
/// Elementwise activations with their derivatives: GeLU (erf form, paper Eq. 6, and the tanh
/// approximation), ReLU. See docs/derivations/nn_layers.md Eqs. (A1)-(A3).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <type_traits>
#include <unsupported/Eigen/SpecialFunctions>

#include "icl/core/error.hpp"
#include "icl/core/storage.hpp"

namespace icl::nn {

/// Which elementwise nonlinearity a feed-forward layer applies.
enum class Activation {
  gelu_erf,   ///< x/2 (1 + erf(x/sqrt 2)), the paper's Eq. 6 and PyTorch's gelu (default form)
  gelu_tanh,  ///< x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))), PyTorch's gelu(approximate='tanh')
  relu        ///< max(x, 0)
};

/// Human-readable name ("gelu_erf", "gelu_tanh", "relu").
inline const char* to_string(Activation a) {
  switch (a) {
    case Activation::gelu_erf:
      return "gelu_erf";
    case Activation::gelu_tanh:
      return "gelu_tanh";
    case Activation::relu:
      return "relu";
  }
  return "?";
}

namespace detail {

// erf: Eigen's vectorised (few-ulp) float kernel for float; the C library's erf for double and
// long double (Eigen's generic erf would fall back to the float kernel for long double).
template <class S>
inline constexpr S sqrt1_2 = S(0.7071067811865475244008443621048490L);  // 1/sqrt(2)
template <class S>
inline constexpr S inv_sqrt_2pi = S(0.3989422804014326779399460599343819L);  // 1/sqrt(2 pi)
template <class S>
inline constexpr S sqrt_2_over_pi = S(0.7978845608028653558798921198687637L);  // sqrt(2/pi)
template <class S>
inline constexpr S gelu_tanh_c = S(0.044715L);

}  // namespace detail

/// y = act(x), elementwise, into a preallocated y of the same shape (may alias x).
/// Eq. (A1)-(A3) of docs/derivations/nn_layers.md.
template <class DerivedX, class DerivedY>
void activation_forward(Activation act, const Eigen::MatrixBase<DerivedX>& x,
                        const Eigen::MatrixBase<DerivedY>& y_) {
  using S = typename DerivedX::Scalar;
  auto& y = const_cast<Eigen::MatrixBase<DerivedY>&>(y_);  // Eigen's idiom for writable outputs
  switch (act) {
    case Activation::gelu_erf:
      if constexpr (std::is_same_v<S, float>) {
        y.array() = S(0.5) * x.array() * (S(1) + (x.array() * detail::sqrt1_2<S>).erf());
      } else {
        y.array() = x.array().unaryExpr([](S v) {
          using std::erf;
          return S(0.5) * v * (S(1) + erf(v * detail::sqrt1_2<S>));
        });
      }
      break;
    case Activation::gelu_tanh:
      y.array() =
          S(0.5) * x.array() *
          (S(1) +
           (detail::sqrt_2_over_pi<S> * (x.array() + detail::gelu_tanh_c<S> * x.array().cube())).tanh());
      break;
    case Activation::relu:
      y.array() = x.array().max(S(0));
      break;
  }
}

/// dx = act'(x) ⊙ dy, elementwise, into a preallocated dx (may alias dy, not x).
/// Derivatives: Eqs. (A1')-(A3') of docs/derivations/nn_layers.md.
template <class DerivedX, class DerivedDY, class DerivedDX>
void activation_backward(Activation act, const Eigen::MatrixBase<DerivedX>& x,
                         const Eigen::MatrixBase<DerivedDY>& dy, const Eigen::MatrixBase<DerivedDX>& dx_) {
  using S = typename DerivedX::Scalar;
  auto& dx = const_cast<Eigen::MatrixBase<DerivedDX>&>(dx_);
  switch (act) {
    case Activation::gelu_erf:
      // d/dx [x Phi(x)] = Phi(x) + x phi(x)                                         (A1')
      if constexpr (std::is_same_v<S, float>) {
        dx.array() =
            dy.array() * (S(0.5) * (S(1) + (x.array() * detail::sqrt1_2<S>).erf()) +
                          x.array() * detail::inv_sqrt_2pi<S> * (S(-0.5) * x.array().square()).exp());
      } else {
        dx.array() = dy.array() * x.array().unaryExpr([](S v) {
          using std::erf;
          using std::exp;
          return S(0.5) * (S(1) + erf(v * detail::sqrt1_2<S>)) +
                 v * detail::inv_sqrt_2pi<S> * exp(S(-0.5) * v * v);
        });
      }
      break;
    case Activation::gelu_tanh: {
      // u = c0 (x + c1 x^3), t = tanh u: d/dx = (1 + t)/2 + x/2 (1 - t^2) c0 (1 + 3 c1 x^2)   (A2')
      dx.array() = dy.array() * x.array().unaryExpr([](S v) {
        using std::tanh;
        const S t = tanh(detail::sqrt_2_over_pi<S> * (v + detail::gelu_tanh_c<S> * v * v * v));
        return S(0.5) * (S(1) + t) + S(0.5) * v * (S(1) - t * t) * detail::sqrt_2_over_pi<S> *
                                         (S(1) + S(3) * detail::gelu_tanh_c<S> * v * v);
      });
      break;
    }
    case Activation::relu:
      // derivative 1 for x > 0, else 0 (0 at the kink, as PyTorch)                    (A3')
      dx.array() = (x.array() > S(0)).select(dy.array(), S(0));
      break;
  }
}

}  // namespace icl::nn
