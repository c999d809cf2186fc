/// @file
/// Tolerance matchers for Eigen objects: pass if ||a-b|| <= abs or ||a-b|| <= rel*max(||a||,||b||)
/// (absolute near zero, relative elsewhere). On failure both matrices and the difference print.
#pragma once

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <sstream>

namespace icl::test {

template <class Plain>
class IsClose : public Catch::MatcherBase<Plain> {
 public:
  IsClose(Plain expected, double rel, double abs) : expected_(std::move(expected)), rel_(rel), abs_(abs) {}

  bool match(const Plain& actual) const override {
    if (actual.rows() != expected_.rows() || actual.cols() != expected_.cols()) return false;
    const double diff = static_cast<double>((actual - expected_).norm());
    const double scale = static_cast<double>(std::max(actual.norm(), expected_.norm()));
    return diff <= abs_ || diff <= rel_ * scale;
  }

  std::string describe() const override {
    std::ostringstream os;
    os << "is close to (rel " << rel_ << ", abs " << abs_ << ")\n" << expected_;
    return os.str();
  }

 private:
  Plain expected_;
  double rel_, abs_;
};

/// CHECK_THAT(actual, IsCloseTo(expected, rel, abs)). Both arguments are evaluated to the same
/// plain type first.
template <class Derived>
IsClose<typename Derived::PlainObject> IsCloseTo(const Eigen::MatrixBase<Derived>& expected,
                                                 double rel = 1e-10, double abs = 1e-12) {
  return IsClose<typename Derived::PlainObject>(expected.eval(), rel, abs);
}

/// Max absolute entrywise difference, as double.
template <class A, class B>
double max_abs_diff(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
  return static_cast<double>((a - b).cwiseAbs().maxCoeff());
}

}  // namespace icl::test
