// File-system helpers for tests: where a binary or data file is in the
// test's runfiles, fresh scratch directories (short ones for Unix socket
// paths), removing them, and reading and writing whole files. Plain
// functions; thread-safe.
#ifndef XENCHAN_TESTS_COMMON_FILES_H_
#define XENCHAN_TESTS_COMMON_FILES_H_

#include <string>

namespace xenchan {
namespace testcommon {

// The path of `workspace_path` (e.g. "server/xenchand") in the test's
// runfiles: $TEST_SRCDIR/xenchan/<workspace_path>, or ./xenchan/... when
// TEST_SRCDIR is unset.
std::string RunfilePath(const std::string& workspace_path);

// A fresh directory <TEST_TMPDIR or /tmp>/<prefix>-XXXXXX; "" on failure.
std::string MakeTempDir(const std::string& prefix);

// Like MakeTempDir, but under /tmp whenever TEST_TMPDIR is 40 characters or
// longer, so that Unix socket paths inside it stay below sun_path's 108.
std::string MakeShortTempDir(const std::string& prefix);

// Removes `dir` and everything under it (rm -rf); an empty path is ignored.
void RemoveTree(const std::string& dir);

// The whole contents of `path`; "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// Writes `text` to `path` through a temporary file renamed into place, so
// that a watcher never sees it half written; false on failure.
bool WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_FILES_H_
