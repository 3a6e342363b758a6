// xenchanctl: the command line of xenchan, in the spirit of virsh. A thin
// front end over the C++ client library (clients/lib): every command is one
// RPC (streams for watch/attach/read/write), human output by default,
// `--output json` for scripts, and exit codes by gRPC status class (see
// kUsage in usage.cc and the README).
//
// With --fleet, commands are located and routed through the fleet
// (fleet_commands.h).
//
// main() only parses the global options, connects and dispatches: argument
// parsing is args.h, output formatting output.h, terminal handling
// terminal.h and the commands commands.h.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/cli/args.h"
#include "clients/cli/commands.h"
#include "clients/cli/fleet_commands.h"
#include "clients/cli/output.h"
#include "clients/cli/usage.h"
#include "clients/lib/client.h"

namespace xenchan {
namespace cli {
namespace {

struct Command {
  const char* name;
  int (*run)(const CommandContext& ctx);
};

constexpr Command kCommands[] = {
    {"list", ListCommand},     {"get", GetCommand},       {"create", CreateCommand},
    {"update", UpdateCommand}, {"delete", DeleteCommand}, {"watch", WatchCommand},
    {"attach", AttachCommand}, {"read", ReadCommand},     {"write", WriteCommand},
    {"call", CallCommand},
};

int Dispatch(const CommandContext& ctx) {
  const std::string& cmd = ctx.args.positional[0];
  for (const Command& command : kCommands) {
    if (cmd == command.name) return command.run(ctx);
  }
  return ctx.out.Usage("unknown command '" + cmd + "'");
}

int Main(int argc, char** argv) {
  std::vector<std::string> argv_rest;
  for (int i = 1; i < argc; ++i) argv_rest.push_back(argv[i]);
  absl::StatusOr<Args> args = ParseArgs(argv_rest);
  if (!args.ok()) {
    std::fprintf(stderr, "xenchanctl: %s\n", std::string(args.status().message()).c_str());
    return kUsageError;
  }
  if (args->Has("help") || (!args->positional.empty() && args->positional[0] == "help")) {
    std::fputs(kUsage, stdout);
    return kOk;
  }
  if (args->positional.empty()) {
    std::fputs(kUsage, stderr);
    return kUsageError;
  }
  absl::StatusOr<GlobalOptions> global =
      ParseGlobalOptions(*args, [](const char* name) -> const char* { return getenv(name); });
  if (!global.ok()) {
    std::fprintf(stderr, "xenchanctl: %s\n", std::string(global.status().message()).c_str());
    return kUsageError;
  }
  client::ConnectOptions options;
  options.unary_timeout = global->timeout;
  options.tls_ca_file = global->tls_ca_file;
  options.tls_cert_file = global->tls_cert_file;
  options.tls_key_file = global->tls_key_file;
  options.tls_server_name = global->tls_server_name;
  const Output out(global->json);
  const std::string& command = args->positional[0];
  if (!global->fleet.empty()) {
    return RunFleetCommand(*args, global->fleet, options, global->timeout, out, Dispatch);
  }
  if (command == "hosts" || command == "domains") {
    return out.Usage(command + " needs --fleet TARGET");
  }
  auto c = client::Client::Connect(global->server, options);
  if (!c.ok()) {
    std::fprintf(stderr, "xenchanctl: %s\n", std::string(c.status().message()).c_str());
    return kUsageError;
  }
  return Dispatch(CommandContext{*args, **c, out, global->timeout});
}

}  // namespace
}  // namespace cli
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::cli::Main(argc, argv); }
