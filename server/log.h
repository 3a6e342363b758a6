// Structured logs: one `key=value` line per event on stderr, logfmt style:
//   ts=2024-05-01T12:00:00.123456Z level=info msg=listening address=127.0.0.1:40123
// Values with spaces, quotes or `=` are double-quoted with escapes. Lines are
// written with one write(2) each, so concurrent lines do not interleave.
// Thread-safe.
#ifndef XENCHAN_SERVER_LOG_H_
#define XENCHAN_SERVER_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace xenchan {
namespace server {

using LogFields = std::vector<std::pair<std::string, std::string>>;

void Log(absl::string_view level, absl::string_view msg, const LogFields& fields = {});

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_LOG_H_
