// xenchanctl --fleet: hosts, domains, fleet-wide list, and routing (see
// fleet_commands.h).
#include "clients/cli/fleet_commands.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "clients/cli/usage.h"
#include "clients/lib/fleet_client.h"
#include "clients/lib/fleet_follower.h"

namespace xenchan {
namespace cli {
namespace {

constexpr char kDomainsPrefix[] = "domains/";

// Commands whose first argument names a domain (optional for list, watch).
bool NamesDomain(const std::string& command) {
  for (const char* c :
       {"get", "create", "update", "delete", "list", "watch", "attach", "read", "write", "call"}) {
    if (command == c) return true;
  }
  return false;
}

int HostsCommand(client::FleetClient& fleet, const Output& out) {
  auto hosts = fleet.ListHosts();
  if (!hosts.ok()) return out.Fail(hosts.status());
  if (!out.json()) {
    std::printf("%-24s %-28s %-28s %s\n", "HOST", "ADDRESS", "IDENTITY", "VERSION");
  }
  for (const v1::Host& h : *hosts) {
    if (out.json()) {
      out.PrintJson(h);
    } else {
      std::printf("%-24s %-28s %-28s %s\n", h.host_id().c_str(), h.api_address().c_str(),
                  h.identity().empty() ? "-" : h.identity().c_str(), h.xenchan_version().c_str());
    }
  }
  return kOk;
}

// Every domain of the fleet, from the fleet watch's snapshot.
int DomainsCommand(client::FleetClient& fleet, const Output& out) {
  std::vector<v1::FleetDomain> domains;
  v1::WatchFleetRequest request;
  absl::Status s = fleet.WatchFleet(request, [&](const v1::WatchFleetResponse& m) {
    if (m.type() == v1::FLEET_EVENT_TYPE_SYNCED) return false;
    if (m.has_domain()) domains.push_back(m.domain());
    return true;
  });
  if (!s.ok()) return out.Fail(s);
  if (!out.json()) {
    std::printf("%-36s %-24s %-24s %-6s %s\n", "UUID", "NAME", "HOST", "DOMID", "STATE");
  }
  for (const v1::FleetDomain& d : domains) {
    if (out.json()) {
      out.PrintJson(d);
      continue;
    }
    const std::string host(absl::StripPrefix(d.host(), "hosts/"));
    std::printf("%-36s %-24s %-24s %-6u %s\n", d.uuid().c_str(), d.display_name().c_str(),
                host.c_str(), d.domid(),
                Output::Short(d.state(), v1::DomainState_Name(d.state()), "DOMAIN_STATE_").c_str());
  }
  return kOk;
}

// `list` without a DOMAIN: the channels of every host, host by host.
int ListEverywhere(client::FleetClient& fleet, const Args& args, absl::Duration timeout,
                   const Output& out, const std::function<int(const CommandContext&)>& dispatch) {
  auto hosts = fleet.ListHosts();
  if (!hosts.ok()) return out.Fail(hosts.status());
  int code = kOk;
  for (const v1::Host& h : *hosts) {
    auto c = fleet.ConnectToHost(h);
    if (!c.ok()) {
      code = out.Fail(c.status());
      continue;
    }
    if (!out.json()) std::printf("# host %s (%s)\n", h.host_id().c_str(), h.api_address().c_str());
    std::fflush(stdout);
    const int one = dispatch(CommandContext{args, **c, out, timeout});
    if (one != kOk) code = one;
  }
  return code;
}

// `read --follow DOMAIN/CHANNEL` across the fleet: FleetFollower reads from
// the domain's host and moves with it (docs/FLEET.md, "Following a channel
// across hosts"); the move is printed as the epoch line a single-host read
// prints, after a `[following on host ...]` line.
int FollowCommand(client::FleetClient& fleet, const Args& args, const Output& out) {
  if (args.positional.size() != 2) return out.Usage("read needs DOMAIN/CHANNEL");
  absl::string_view spec = args.positional[1];
  const bool full = absl::ConsumePrefix(&spec, kDomainsPrefix);
  const size_t slash = spec.find('/');
  if (slash == absl::string_view::npos) return out.Usage("read needs DOMAIN/CHANNEL");
  const std::string domain(spec.substr(0, slash));
  absl::string_view channel = spec.substr(slash + 1);
  if (full && !absl::ConsumePrefix(&channel, "channels/")) {
    return out.Usage("read needs DOMAIN/CHANNEL");
  }
  client::FollowOptions options;
  if (!ParseStart(args.Get("from"), &options.start)) return out.Usage("bad --from");
  uint64_t max_bytes = 0;
  if (args.Has("max-bytes") && !absl::SimpleAtoi(args.Get("max-bytes"), &max_bytes)) {
    return out.Usage("bad --max-bytes");
  }
  bool first_host = true;
  options.on_host = [&](const client::DomainLocation& where) {
    if (!first_host && !out.json()) {
      std::fprintf(stderr, "[following on host %s (%s)]\n", where.host.host_id().c_str(),
                   where.host.api_address().c_str());
    }
    first_host = false;
  };
  client::FleetFollower follower(&fleet, domain, std::string(channel), options);
  uint64_t sent = 0;
  absl::Status s = follower.Run([&](const v1::ReadResponse& r) {
    if (out.json()) {
      out.PrintJson(r);
    } else if (r.has_data()) {
      const std::string& data = r.data().data();
      const size_t n =
          max_bytes == 0 ? data.size() : std::min<uint64_t>(data.size(), max_bytes - sent);
      fwrite(data.data(), 1, n, stdout);
      std::fflush(stdout);
    } else if (r.has_gap()) {
      std::fprintf(stderr, "[gap: %llu bytes lost]\n",
                   static_cast<unsigned long long>(r.gap().length()));
    } else if (r.has_epoch_change()) {
      std::fprintf(stderr, "[epoch %llu%s]\n",
                   static_cast<unsigned long long>(r.epoch_change().epoch()),
                   Output::ReasonSuffix(r.epoch_change().reason()).c_str());
    }
    if (r.has_data()) sent += r.data().data().size();
    return max_bytes == 0 || sent < max_bytes;
  });
  return s.ok() ? kOk : out.Fail(s);
}

}  // namespace

std::optional<std::string> CommandDomain(const Args& args) {
  if (args.positional.size() < 2 || !NamesDomain(args.positional[0])) return std::nullopt;
  if (args.positional[0] == "list" && args.Has("domains")) return std::nullopt;
  absl::string_view spec = args.positional[1];
  if (absl::StartsWith(spec, kDomainsPrefix)) spec.remove_prefix(sizeof(kDomainsPrefix) - 1);
  spec = spec.substr(0, spec.find('/'));
  if (spec.empty()) return std::nullopt;
  return std::string(spec);
}

Args WithDomain(const Args& args, const std::string& uuid) {
  Args out = args;
  std::string& spec = out.positional[1];
  const bool full = absl::StartsWith(spec, kDomainsPrefix);
  const size_t start = full ? sizeof(kDomainsPrefix) - 1 : 0;
  const size_t end = spec.find('/', start);
  spec = spec.substr(0, start) + uuid + (end == std::string::npos ? "" : spec.substr(end));
  return out;
}

int RunFleetCommand(const Args& args, const std::string& fleet_target,
                    const client::ConnectOptions& options, absl::Duration timeout,
                    const Output& out, const std::function<int(const CommandContext&)>& dispatch) {
  auto fleet = client::FleetClient::Connect(fleet_target, options);
  if (!fleet.ok()) {
    std::fprintf(stderr, "xenchanctl: %s\n", std::string(fleet.status().message()).c_str());
    return kUsageError;
  }
  const std::string& command = args.positional[0];
  if (command == "hosts") return HostsCommand(**fleet, out);
  if (command == "domains" || (command == "list" && args.Has("domains"))) {
    return DomainsCommand(**fleet, out);
  }
  if (command == "read" && args.Has("follow")) return FollowCommand(**fleet, args, out);
  const std::optional<std::string> domain = CommandDomain(args);
  if (!domain.has_value()) {
    if (command == "list") return ListEverywhere(**fleet, args, timeout, out, dispatch);
    if (NamesDomain(command)) {
      return out.Usage("with --fleet, " + command + " needs a DOMAIN");
    }
    return out.Usage("unknown command '" + command + "'");
  }
  auto resolved = (*fleet)->ResolveDomain(*domain);
  if (!resolved.ok()) return out.Fail(resolved.status());
  const Args routed = WithDomain(args, resolved->location.domain.uuid());
  return dispatch(CommandContext{routed, *resolved->client, out, timeout});
}

}  // namespace cli
}  // namespace xenchan
