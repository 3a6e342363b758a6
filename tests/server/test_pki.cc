// Test PKI generation (see the header).
#include "tests/server/test_pki.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "tests/common/files.h"

namespace xenchan {
namespace servertest {

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  const std::string script = testcommon::RunfilePath("tests/server/make_test_certs.sh");
  const std::string command = absl::StrCat("/bin/bash '", script, "' '", dir, "' 2>&1");
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return absl::InternalError("popen failed");
  std::string output;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) output.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) return absl::InternalError(absl::StrCat("make_test_certs.sh failed:\n", output));
  return TestPki{dir};
}

}  // namespace servertest
}  // namespace xenchan
