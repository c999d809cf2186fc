// libFuzzer target: bytes -> icl::io::SafeTensors::from_bytes -> Trainer::restore into a small
// pre-LN model (tests/fuzz/fuzz_model.hpp), the path of Trainer::load_checkpoint (docs/reliability.md).
//
// Properties checked on every input (a violation aborts, which libFuzzer reports as a finding):
//  1. parsing throws icl::IoError or returns; restore returns or throws icl::IoError /
//     icl::InvalidArgument; any other exception, a crash, a sanitizer report or a hang is a finding;
//  2. after a restore that returned, the trainer's step lies in [0, steps] and equals the file's
//     train.step exactly, the trainer's own checkpoint restores into a fresh trainer, and a
//     training step either works or stops with icl::NumericalError;
//  3. a restore that threw left the trainer unchanged (all-or-nothing): its checkpoint (parameters,
//     optimiser state, step, RNG) is byte-identical to that of a trainer that never restored.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_model.hpp"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "icl fuzz_checkpoint: %s: %s\n", what, detail.c_str());
  std::abort();
}

// The checkpoint of a fresh trainer (model seed 5, icl_fuzz::config()): deterministic, so it is
// built once per process and every failed restore is compared against it.
const std::string& untouched_checkpoint() {
  static const std::string bytes = [] {
    icl_fuzz::Model model = icl_fuzz::make_model(1, 5);
    const icl_fuzz::Trainer trainer(model, icl_fuzz::config());
    return trainer.checkpoint().to_bytes();
  }();
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  icl::io::SafeTensors st;
  try {
    st = icl::io::SafeTensors::from_bytes(bytes, "fuzz");
  } catch (const icl::IoError&) {
    return 0;
  }
  icl_fuzz::Model model = icl_fuzz::make_model(1, 5);
  const auto cfg = icl_fuzz::config();
  icl_fuzz::Trainer trainer(model, cfg);
  bool restored = false;
  try {
    trainer.restore(st);
    restored = true;
  } catch (const icl::IoError&) {
  } catch (const icl::InvalidArgument&) {
  }
  if (!restored) {
    if (trainer.step() != 0 || trainer.checkpoint().to_bytes() != untouched_checkpoint())
      finding("a restore that threw changed the trainer (not all-or-nothing)",
              "step " + std::to_string(trainer.step()));
    return 0;
  }
  if (trainer.step() < 0 || trainer.step() > cfg.steps)
    finding("restore accepted a step outside [0, steps]", std::to_string(trainer.step()));
  if (static_cast<double>(trainer.step()) != st.get_scalar("train.step"))
    finding("restore changed train.step (a corrupt value was rounded, not refused)",
            std::to_string(st.get_scalar("train.step")));
  // The restored state re-saves and restores (taken before the training step: a step that stops
  // with NumericalError leaves NaN/Inf parameters, which a restore rightly refuses).
  const std::string resaved = trainer.checkpoint().to_bytes();
  if (trainer.step() < cfg.steps) {
    try {
      trainer.train_step();
    } catch (const icl::NumericalError&) {  // NaN/Inf weights or moments from the file: a clear stop
    }
  }
  icl_fuzz::Model fresh = icl_fuzz::make_model(1, 6);
  icl_fuzz::Trainer again(fresh, cfg);
  try {
    again.restore(icl::io::SafeTensors::from_bytes(resaved, "fuzz round trip"));
  } catch (const std::exception& e) {
    finding("the trainer's own checkpoint was refused", e.what());
  }
  if (static_cast<double>(again.step()) != st.get_scalar("train.step")) finding("round trip", "step differs");
  return 0;
}
