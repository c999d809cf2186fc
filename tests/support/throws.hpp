/// @file
/// Exception-message matcher: CHECK_THROWS_MATCHES(expr, icl::IoError,
/// icl::test::MessageContains("truncated")).
#pragma once

#include <catch2/catch.hpp>
#include <exception>
#include <string>

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
