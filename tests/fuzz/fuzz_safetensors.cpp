// libFuzzer target: icl::io::SafeTensors::from_bytes on arbitrary bytes (docs/reliability.md).
//
// Properties checked on every input (a violation aborts, which libFuzzer reports as a finding):
//  1. from_bytes either returns or throws icl::IoError; any other exception, a crash, a sanitizer
//     report or a hang is a finding;
//  2. on a file that loaded, every tensor can be read with get_nd (numel values), and get, get_vector
//     and get_scalar either return values of the tensor's size or throw icl::IoError. The one
//     documented refusal of get_nd: an I64 tensor holding a value beyond 2^53 in magnitude (it has no
//     exact double; docs/io.md) throws icl::IoError, and then only for I64;
//  3. a file that loaded survives to_bytes -> from_bytes with the same names, dtypes, shapes,
//     bit-identical values and metadata, and writing it again gives the same bytes.
// No behaviour is excused: zero-element tensors (null data, zero-length spans at any offset) must
// load, read and round-trip like any other.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "icl/io/safetensors.hpp"

namespace {

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "icl fuzz_safetensors: %s: %s\n", what, detail.c_str());
  std::abort();
}

// get_nd, with property 2's one excused refusal: returns false for an I64 tensor beyond 2^53.
bool read_nd(const icl::io::SafeTensors& st, const std::string& name, std::vector<double>& v) {
  try {
    v = st.get_nd(name);
    return true;
  } catch (const icl::IoError& e) {
    const std::string what = e.what();
    if (st.info(name).dtype != icl::io::DType::I64 || what.find("beyond 2^53") == std::string::npos)
      finding("get_nd refused a tensor that loaded", name + ": " + what);
    return false;
  }
}

void read_every_tensor(const icl::io::SafeTensors& st) {
  for (const auto& name : st.names()) {
    const auto& info = st.info(name);
    std::vector<double> v;
    if (!read_nd(st, name, v)) continue;  // get/get_vector/get_scalar would refuse it the same way
    if (static_cast<std::int64_t>(v.size()) != info.numel()) finding("get_nd size", name);
    try {
      const Eigen::MatrixXd m = st.get<double>(name);
      if (m.size() != info.numel()) finding("get size", name);
    } catch (const icl::IoError&) {
    }
    try {
      const Eigen::VectorXf x = st.get_vector<float>(name);
      if (x.size() != info.numel()) finding("get_vector size", name);
    } catch (const icl::IoError&) {
    }
    try {
      (void)st.get_scalar(name);
      if (info.numel() != 1) finding("get_scalar accepted a non-scalar", name);
    } catch (const icl::IoError&) {
    }
  }
}

void same_contents(const icl::io::SafeTensors& a, const icl::io::SafeTensors& b) {
  if (a.names() != b.names()) finding("round trip", "tensor names differ");
  if (a.metadata != b.metadata) finding("round trip", "metadata differs");
  for (const auto& name : a.names()) {
    if (a.info(name).dtype != b.info(name).dtype || a.info(name).shape != b.info(name).shape)
      finding("round trip: dtype or shape differs", name);
    std::vector<double> va, vb;
    const bool ra = read_nd(a, name, va), rb = read_nd(b, name, vb);
    if (ra != rb) finding("round trip: readable in one copy only", name);
    if (va.size() != vb.size() || (!va.empty() && std::memcmp(va.data(), vb.data(), 8 * va.size()) != 0))
      finding("round trip: values differ", name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  icl::io::SafeTensors st;
  try {
    st = icl::io::SafeTensors::from_bytes(bytes, "fuzz");
  } catch (const icl::IoError&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  read_every_tensor(st);
  const std::string again = st.to_bytes();
  icl::io::SafeTensors st2;
  try {
    st2 = icl::io::SafeTensors::from_bytes(again, "fuzz round trip");
  } catch (const icl::IoError& e) {
    finding("round trip: a file icl wrote was refused", e.what());
  }
  same_contents(st, st2);
  if (st2.to_bytes() != again) finding("round trip", "writing the reread file gave other bytes");
  return 0;
}
