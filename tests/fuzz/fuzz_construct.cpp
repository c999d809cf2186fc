// libFuzzer target: bytes -> icl::io::SafeTensors::from_bytes -> ConstructedTransformer::from_safetensors
// into the model type of gd_transformer<float, 1> (H = 15, F = 9; also Theorem 1's type at D = 1), the
// path of ConstructedTransformer::load (docs/reliability.md). Seeds: tests/fuzz/construct_model.hpp.
//
// Properties checked on every input (a violation aborts, which libFuzzer reports as a finding):
//  1. parsing throws icl::IoError or returns; the loader returns or throws icl::IoError, whatever the
//     file claims (chain.n = 2^30, NaN constants, ...): std::bad_alloc, icl::InvalidArgument, any other
//     exception, a crash, a sanitizer report, a hang or > 2 GB is a finding;
//  2. a loaded model predicts a fixed prompt or refuses it as outside its calibrated range
//     (icl::InvalidArgument); predict_unchecked returns; the checked prediction, when given, is the
//     unchecked one bit for bit;
//  3. the loaded model's own file loads again and writes the same bytes, with the same predictions.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "construct_model.hpp"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "icl fuzz_construct: %s: %s\n", what, detail.c_str());
  std::abort();
}

using Model = icl_fuzz::ConstructModel;

const Model::Tokens& prompt() {
  static const Model::Tokens tok = icl_fuzz::construct_prompt();
  return tok;
}

// Bitwise equality (NaN == NaN), so that a model with non-finite outputs still compares with itself.
bool same_bits(const Model::Vector& a, const Model::Vector& b) {
  if (a.size() != b.size()) return false;
  for (Eigen::Index i = 0; i < a.size(); ++i)
    if (std::memcmp(&a(i), &b(i), sizeof(float)) != 0) return false;
  return true;
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
  std::optional<Model> model;
  try {
    model.emplace(Model::from_safetensors(st, "fuzz"));
  } catch (const icl::IoError&) {
    return 0;
  } catch (const std::exception& e) {
    finding("the loader threw something other than icl::IoError", e.what());
  }
  const Model::Tokens tok = prompt().leftCols(std::min<Eigen::Index>(prompt().cols(), model->max_tokens()));
  Model::Vector unchecked, checked;
  bool refused = false;
  try {
    unchecked = model->predict_unchecked(tok);
  } catch (const std::exception& e) {
    finding("predict_unchecked of a loaded model threw", e.what());
  }
  try {
    checked = model->predict(tok);
  } catch (const icl::InvalidArgument& e) {
    if (std::string(e.what()).find("calibrated range") == std::string::npos)
      finding("predict refused with another reason than the calibrated range", e.what());
    refused = true;
  } catch (const std::exception& e) {
    finding("predict of a loaded model threw something other than icl::InvalidArgument", e.what());
  }
  if (!refused && !same_bits(checked, unchecked))
    finding("predict and predict_unchecked differ in range", "");
  try {
    const std::string own = model->to_safetensors().to_bytes();
    const Model back = Model::from_safetensors(icl::io::SafeTensors::from_bytes(own, "fuzz round trip"));
    if (back.to_safetensors().to_bytes() != own)
      finding("round trip", "the reloaded model writes other bytes");
    if (!same_bits(back.predict_unchecked(tok), unchecked)) finding("round trip", "predictions differ");
  } catch (const std::exception& e) {
    finding("the loaded model's own file was refused", e.what());
  }
  return 0;
}
