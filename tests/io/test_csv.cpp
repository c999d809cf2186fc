#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include "support/throws.hpp"

#include "icl/io/csv.hpp"

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("csv: header, rows, quoting and round-trip number formatting", "[io][csv]") {
  const std::string path = (std::filesystem::temp_directory_path() / "icl_test.csv").string();
  {
    icl::io::CsvWriter w(path, {"name", "k", "value"});
    w.row("ridge, 0.1", 3, 0.1);
    w.row("say \"hi\"", -2, 1e-300);
    w.row(std::string("x"), 0, 2.5f);
    CHECK_THROWS_MATCHES(w.row("too", "few"), icl::InvalidArgument,
                         icl::test::MessageContains("expected 3 fields"));
    w.flush();
  }
  CHECK(slurp(path) == "name,k,value\n\"ridge, 0.1\",3,0.1\n\"say \"\"hi\"\"\",-2,1e-300\nx,0,2.5\n");
  // Shortest round-trip formatting: parsing the text gives back the same double.
  const double third = 1.0 / 3.0;
  CHECK(std::stod(icl::io::CsvWriter::format(third)) == third);

  Eigen::Matrix<double, 2, 2> m;
  m << 1, 2, 3, 4.5;
  icl::io::write_csv(path, {"a", "b"}, m);
  CHECK(slurp(path) == "a,b\n1,2\n3,4.5\n");
  CHECK_THROWS_AS(icl::io::write_csv(path, {"a"}, m), icl::InvalidArgument);
  std::remove(path.c_str());
  CHECK_THROWS_MATCHES(icl::io::CsvWriter("/nonexistent/dir/x.csv", {"a"}), icl::IoError,
                       icl::test::MessageContains("cannot open"));
}
