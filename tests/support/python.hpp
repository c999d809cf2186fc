/// @file
/// Helpers for the hidden [.python] test cases that Python scripts drive (tests/python/).
#pragma once

#include <cstdlib>
#include <string>

namespace icl::test {

/// The work directory handed over by the driving script (ICL_PY_DIR), or "" when unset.
inline std::string python_dir() {
  const char* d = std::getenv("ICL_PY_DIR");
  return d ? std::string(d) : std::string();
}

}  // namespace icl::test
