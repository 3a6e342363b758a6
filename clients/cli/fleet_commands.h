// xenchanctl --fleet TARGET: the fleet through any of its xenchands
// (FleetService, clients/lib/fleet_client.h). `hosts` and `domains` list
// the fleet; `list` without a DOMAIN lists the channels of every host; every
// command that names a DOMAIN (get, create, update, delete, list DOMAIN,
// watch DOMAIN, attach, read, write, call) is routed: the domain is located
// through TARGET, then the command runs against the owning host's xenchand
// at its advertised address, with the same TLS options (checking the host's
// advertised certificate identity), addressing the domain by its UUID.
// `read --follow` follows the channel from host to host as its domain moves
// (client::FleetFollower).
#ifndef XENCHAN_CLIENTS_CLI_FLEET_COMMANDS_H_
#define XENCHAN_CLIENTS_CLI_FLEET_COMMANDS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "clients/cli/args.h"
#include "clients/cli/commands.h"
#include "clients/cli/output.h"
#include "clients/lib/client.h"

namespace xenchan {
namespace cli {

// The domain a command names in its first argument (DOMAIN, DOMAIN/CHANNEL
// or a resource name), or nullopt for a command without one.
std::optional<std::string> CommandDomain(const Args& args);

// `args` with the domain of its first argument replaced by `uuid`.
Args WithDomain(const Args& args, const std::string& uuid);

// Runs the command of `args` across the fleet that `fleet_target` belongs
// to, with `options` for every connection; `dispatch` runs a per-host
// command once the host's client is made. Returns the exit code.
int RunFleetCommand(const Args& args, const std::string& fleet_target,
                    const client::ConnectOptions& options, absl::Duration timeout,
                    const Output& out, const std::function<int(const CommandContext&)>& dispatch);

}  // namespace cli
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_CLI_FLEET_COMMANDS_H_
