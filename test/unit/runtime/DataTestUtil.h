//===- DataTestUtil.h - Shared helpers for the data pipeline tests -*- C++ -*-//
//
// Temporary files and one-line error messages, for the language-model and
// the translation data tests.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TEST_UNIT_RUNTIME_DATATESTUTIL_H
#define MOE_TEST_UNIT_RUNTIME_DATATESTUTIL_H

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace moe::test {

/// A file in the test temporary directory, removed when the test ends.
class TempFile {
public:
  explicit TempFile(const std::string &tag) {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = ::testing::TempDir() + "moe-data-" + info->test_suite_name() + "-" +
            info->name() + "-" + tag + "-" + std::to_string(getpid());
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string &path() const { return path_; }
  void write(const std::string &contents) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << contents;
    ASSERT_TRUE(out.good()) << path_;
  }
  std::string read() const {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

private:
  std::string path_;
};

/// The std::runtime_error message of `fn`, or "" (with a failure) if none.
template <typename Fn> std::string runtimeErrorOf(Fn fn) {
  try {
    fn();
  } catch (const std::runtime_error &e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::runtime_error thrown";
  return "";
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_RUNTIME_DATATESTUTIL_H
