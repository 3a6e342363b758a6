// File-system helpers for tests (see files.h).
#include "tests/common/files.h"

#include <stdio.h>
#include <stdlib.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace testcommon {

std::string RunfilePath(const std::string& workspace_path) {
  const char* srcdir = getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/xenchan/", workspace_path);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

std::string MakeShortTempDir(const std::string& prefix) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string base = (tmp != nullptr && strlen(tmp) < 40) ? tmp : "/tmp";
  std::string tmpl = absl::StrCat(base, "/", prefix, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

void RemoveTree(const std::string& dir) {
  if (dir.empty()) return;
  const std::string cmd = "rm -rf '" + dir + "'";
  [[maybe_unused]] int rc = system(cmd.c_str());
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  const bool written = fwrite(text.data(), 1, text.size(), f) == text.size();
  if (fclose(f) != 0 || !written) return false;
  return rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace testcommon
}  // namespace xenchan
