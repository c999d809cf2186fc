/// @file
/// Exception-message matcher: CHECK_THROWS_MATCHES(expr, icl::IoError,
/// icl::test::MessageContains("truncated")), and CHECK_INVALID(expr, "name") for bad arguments.
#pragma once

#include <catch2/catch.hpp>
#include <exception>
#include <string>

#include "icl/core/error.hpp"

/// `expr` throws icl::InvalidArgument whose message contains `substr` (the argument's name).
#define CHECK_INVALID(expr, substr)                   \
  do {                                                \
    CHECK_THROWS_AS(expr, icl::InvalidArgument);      \
    CHECK_THROWS_WITH(expr, Catch::Contains(substr)); \
  } while (false)

namespace icl::test {

class MessageContains : public Catch::MatcherBase<std::exception> {
 public:
  explicit MessageContains(std::string fragment) : fragment_(std::move(fragment)) {}
  bool match(const std::exception& e) const override {
    return std::string(e.what()).find(fragment_) != std::string::npos;
  }
  std::string describe() const override { return "has a message containing \"" + fragment_ + "\""; }

 private:
  std::string fragment_;
};

}  // namespace icl::test
