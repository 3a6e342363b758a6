// Helpers shared by the declaration store's tests: fresh store paths under
// TEST_TMPDIR, deterministic sample declarations, and direct SQLite access
// to a store file (to age, damage or inspect it behind the store's back).
// Plain functions; thread-safe.
#ifndef XENCHAN_TESTS_STORE_STORE_TEST_UTIL_H_
#define XENCHAN_TESTS_STORE_STORE_TEST_UTIL_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/store/declaration.h"

namespace xenchan {
namespace storetest {

// "<fresh temp dir>/state/declarations.db": the state directory does not
// exist yet, as on a first start. "" if the temp dir cannot be made.
std::string NewStorePath(const std::string& prefix);

// The canonical UUID of test domain `domain` (the same in every run).
std::string DomainUuid(int domain);

// A valid declaration of `channel_id` for test domain `domain`, its uid
// derived from both; the configuration varies with `variant` so that two
// variants differ in every configuration field.
ChannelDeclaration SampleDeclaration(int domain, absl::string_view channel_id, int variant = 0);

// Runs `sql` on the file at `path` through a connection of its own.
absl::Status RawExec(const std::string& path, const std::string& sql);
// The first column of the first row `sql` returns, as an integer or text.
absl::StatusOr<int64_t> RawQueryInt(const std::string& path, const std::string& sql);
absl::StatusOr<std::string> RawQueryText(const std::string& path, const std::string& sql);

}  // namespace storetest

// Prints a declaration field by field in gtest's failure messages (found by
// argument-dependent lookup, hence in the type's namespace).
void PrintTo(const ChannelDeclaration& declaration, std::ostream* os);

}  // namespace xenchan

#endif  // XENCHAN_TESTS_STORE_STORE_TEST_UTIL_H_
