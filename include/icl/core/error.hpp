/// @file
/// Error policy of icl: static_assert for compile-time shape rules, exceptions from checked
/// entry points (files, user configuration, run-time sizes of public functions), ICL_ASSERT for
/// internal preconditions (compiled out under NDEBUG, like eigen_assert).
#pragma once

#include <cassert>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace icl {

/// Bad argument to a public entry point: wrong run-time size, out-of-range value, NaN/Inf.
/// The message names the argument and states the expectation.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A numerical failure that the caller can act on (singular system, divergence).
class NumericalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be read or written, or its contents are malformed (truncated, corrupt,
/// wrong dtype or shape).
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

template <class E, class... Parts>
[[noreturn, gnu::cold, gnu::noinline]] void raise(Parts&&... parts) {
  throw E(concat(std::forward<Parts>(parts)...));
}

}  // namespace detail

/// Throws InvalidArgument("<where>: <what>") unless `cond`.
#define ICL_CHECK_ARG(cond, ...)                                            \
  do {                                                                      \
    if (!(cond)) ::icl::detail::raise<::icl::InvalidArgument>(__VA_ARGS__); \
  } while (false)

/// Throws IoError unless `cond`.
#define ICL_CHECK_IO(cond, ...)                                     \
  do {                                                              \
    if (!(cond)) ::icl::detail::raise<::icl::IoError>(__VA_ARGS__); \
  } while (false)

#ifndef ICL_ASSERT
#ifdef NDEBUG
#define ICL_ASSERT(cond, msg) ((void)0)
#else
/// Internal precondition; compiled out under NDEBUG. Users may define their own before including.
#define ICL_ASSERT(cond, msg) assert((cond) && (msg))
#endif
#endif

/// Throws InvalidArgument naming `what` if any entry of `m` is NaN or infinite.
template <class Derived>
void check_finite(const Derived& m, const char* what) {
  if (!m.allFinite()) {
    detail::raise<InvalidArgument>(what, ": expected finite values, found NaN or Inf");
  }
}

/// Throws InvalidArgument naming `what` unless `v` is finite.
inline void check_finite_scalar(double v, const char* what) {
  if (!std::isfinite(v)) detail::raise<InvalidArgument>(what, ": expected a finite value, got ", v);
}

}  // namespace icl
