/// @file
/// Saving and restoring Adam / AdamW state in a safetensors container, so that a resumed run
/// continues bit-identically (the moments are stored in the optimiser's own dtype: F32 for float,
/// F64 for double; long double moments are rounded to F64, so its resume is not bit-identical).
/// Tensor names: docs/train.md, "Checkpoint layout".
#pragma once

#include <cmath>
#include <string>

#include "icl/core/error.hpp"
#include "icl/io/safetensors.hpp"
#include "icl/train/adam.hpp"

namespace icl::train {

/// Writes `<prefix>step`, `<prefix>lr`, the hyper-parameters and, per parameter `<name>`,
/// `<prefix><name>.exp_avg`, `<prefix><name>.exp_avg_sq` (and `.max_exp_avg_sq` with AMSGrad),
/// each of the parameter's shape {rows, cols} (row-major, like the parameter itself).
template <class S, DecayMode Mode>
void save_state(io::SafeTensors& st, const BasicAdam<S, Mode>& opt, const std::string& prefix = "optim.") {
  const AdamConfig& c = opt.config();
  st.put_scalar(prefix + "step", static_cast<double>(opt.step_count()));
  st.put_scalar(prefix + "lr", c.lr);
  st.put_scalar(prefix + "beta1", c.beta1);
  st.put_scalar(prefix + "beta2", c.beta2);
  st.put_scalar(prefix + "eps", c.eps);
  st.put_scalar(prefix + "weight_decay", c.weight_decay);
  st.put_scalar(prefix + "amsgrad", c.amsgrad ? 1.0 : 0.0);
  st.put_scalar(prefix + "decoupled", Mode == DecayMode::decoupled ? 1.0 : 0.0);
  const auto& ps = opt.params();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const auto& sl = opt.slots()[i];
    const auto put = [&](const std::string& what, const Eigen::Matrix<S, Eigen::Dynamic, 1>& v) {
      st.put_matrix(prefix + ps[i].name + what,
                    Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>>(v.data(), ps[i].rows,
                                                                                       ps[i].cols),
                    io::dtype_of<S>());
    };
    put(".exp_avg", sl.exp_avg);
    put(".exp_avg_sq", sl.exp_avg_sq);
    if (c.amsgrad) put(".max_exp_avg_sq", sl.max_exp_avg_sq);
  }
}

/// Restores what save_state wrote into an optimiser built over parameters of the same names and
/// shapes with the same hyper-parameters (the current lr is restored too).
/// @throws icl::IoError if a tensor is missing, has another shape, holds a NaN or infinite entry, or
///         (a second moment: exp_avg_sq, max_exp_avg_sq) a negative entry (the message names it);
///         icl::InvalidArgument if the hyper-parameters or the decay mode differ.
template <class S, DecayMode Mode>
void load_state(const io::SafeTensors& st, BasicAdam<S, Mode>& opt, const std::string& prefix = "optim.") {
  const AdamConfig& c = opt.config();
  const auto same = [&](const char* field, double mine) {
    const double theirs = st.get_scalar(prefix + field);
    ICL_CHECK_ARG(theirs == mine, "load_state: the checkpoint's optimiser has ", field, " = ", theirs,
                  ", this optimiser has ", mine);
  };
  same("beta1", c.beta1);
  same("beta2", c.beta2);
  same("eps", c.eps);
  same("weight_decay", c.weight_decay);
  same("amsgrad", c.amsgrad ? 1.0 : 0.0);
  same("decoupled", Mode == DecayMode::decoupled ? 1.0 : 0.0);
  const double step = st.get_scalar(prefix + "step");
  // Range first: converting a double at or beyond 2^63 (or NaN) to int64 is undefined behaviour.
  ICL_CHECK_IO(step >= 0 && step < 9223372036854775808.0 && step == std::floor(step), "load_state: '", prefix,
               "step' must be a non-negative integer below 2^63, got ", step);
  const double lr = st.get_scalar(prefix + "lr");
  const auto& ps = opt.params();
  // read everything first so that a failure leaves the optimiser unchanged
  std::vector<AdamSlot<S>> slots(ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    // second moments (exp_avg_sq, max_exp_avg_sq) are running means of squares: >= 0, and the next
    // step takes their square root, so a negative one (or any NaN/Inf) would turn into NaN weights
    const auto get = [&](const std::string& what, bool second_moment) {
      const std::string name = prefix + ps[i].name + what;
      ICL_CHECK_IO(st.has(name), "load_state: the checkpoint has no optimiser state '", name, "'");
      const auto& sh = st.info(name).shape;
      const bool ok = (sh.size() == 2 && sh[0] == ps[i].rows && sh[1] == ps[i].cols) ||
                      (sh.size() == 1 && ps[i].cols == 1 && sh[0] == ps[i].rows);
      ICL_CHECK_IO(ok, "load_state: optimiser state '", name, "' has shape ", io::shape_string(sh),
                   " in the checkpoint, but parameter '", ps[i].name, "' is ", ps[i].rows, " x ", ps[i].cols);
      const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> m = st.get<S>(name, ps[i].rows, ps[i].cols);
      ICL_CHECK_IO(m.allFinite(), "load_state: optimiser state '", name, "' has a NaN or infinite entry");
      ICL_CHECK_IO(!second_moment || (m.array() >= S(0)).all(), "load_state: optimiser state '", name,
                   "' has a negative entry (", m.minCoeff(), "); a second moment is a mean of squares, >= 0");
      return Eigen::Matrix<S, Eigen::Dynamic, 1>(
          Eigen::Map<const Eigen::Matrix<S, Eigen::Dynamic, 1>>(m.data(), m.size()));
    };
    slots[i].exp_avg = get(".exp_avg", false);
    slots[i].exp_avg_sq = get(".exp_avg_sq", true);
    if (c.amsgrad) slots[i].max_exp_avg_sq = get(".max_exp_avg_sq", true);
  }
  opt.set_lr(lr);  // the only step left that can throw (a negative or non-finite lr): first
  opt.slots() = std::move(slots);
  opt.set_step_count(static_cast<std::int64_t>(step));
}

}  // namespace icl::train
