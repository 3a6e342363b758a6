// xenchanctl's contract with its user: the help text and the exit codes
// (by gRPC status class), which the README and scripts rely on.
#ifndef XENCHAN_CLIENTS_CLI_USAGE_H_
#define XENCHAN_CLIENTS_CLI_USAGE_H_

#include "absl/status/status.h"

namespace xenchan {
namespace cli {

// What `xenchanctl --help` prints.
extern const char kUsage[];

enum ExitCode {
  kOk = 0,
  kError = 1,
  kUsageError = 2,
};

// The exit code for a failed RPC's status (the table in kUsage).
int ExitCodeOf(absl::StatusCode code);

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_USAGE_H_
