// xenchanctl's commands, one function per verb, grouped by family in
// list_commands.cc (list, get, watch), lifecycle_commands.cc (create,
// delete), io_commands.cc (read, write, attach) and call_command.cc (call).
// main() picks one by the first positional argument.
#ifndef XENCHAN_CLIENTS_CLI_COMMANDS_H_
#define XENCHAN_CLIENTS_CLI_COMMANDS_H_

#include "absl/time/time.h"
#include "clients/cli/args.h"
#include "clients/cli/output.h"
#include "clients/lib/client.h"

namespace xenchan {
namespace cli {

// What a command works with. Everything is borrowed from main() for the
// duration of the one command.
struct CommandContext {
  // The command line; positional[0] is the command.
  const Args& args;
  client::Client& client;
  const Output& out;
  // --timeout: deadline of unary calls, write and call.
  absl::Duration timeout;
};

// Each runs one command to completion (streams until they end or Ctrl-C)
// and returns the process's exit code (usage.h): kUsageError for bad
// arguments, the RPC's status class for a failed call.
int ListCommand(const CommandContext& ctx);
int GetCommand(const CommandContext& ctx);
int WatchCommand(const CommandContext& ctx);
int CreateCommand(const CommandContext& ctx);
int UpdateCommand(const CommandContext& ctx);
int DeleteCommand(const CommandContext& ctx);
int ReadCommand(const CommandContext& ctx);
int WriteCommand(const CommandContext& ctx);
int AttachCommand(const CommandContext& ctx);
int CallCommand(const CommandContext& ctx);

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_COMMANDS_H_
