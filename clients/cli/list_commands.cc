// xenchanctl's listing commands: `list` (channels, or domains with
// --domains), `get` (one domain or channel) and `watch` (the stream of
// channel lifecycle events).
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "clients/cli/commands.h"
#include "clients/cli/usage.h"

namespace xenchan {
namespace cli {

using client::ChannelName;
using client::DomainName;

int ListCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.Has("domains")) {
    auto domains = ctx.client.ListDomains();
    if (!domains.ok()) return out.Fail(domains.status());
    if (!out.json()) out.PrintDomainHeader();
    for (const auto& d : *domains) {
      if (out.json()) {
        out.PrintJson(d);
      } else {
        out.PrintDomainRow(d);
      }
    }
    return kOk;
  }
  v1::ListChannelsRequest req;
  req.set_parent(args.positional.size() > 1 ? DomainName(args.positional[1]) : "domains/-");
  req.set_page_size(1000);
  req.mutable_filter()->set_channel_id_prefix(args.Get("prefix"));
  for (const std::string& s : args.All("state")) {
    absl::StatusOr<v1::ChannelState> st = ParseChannelState(s);
    if (!st.ok()) return out.Usage(std::string(st.status().message()));
    req.add_states(*st);
  }
  auto channels = ctx.client.ListChannels(req);
  if (!channels.ok()) return out.Fail(channels.status());
  if (!out.json()) out.PrintChannelHeader();
  for (const auto& c : *channels) out.json() ? out.PrintJson(c) : out.PrintChannelRow(c);
  return kOk;
}

int GetCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("get needs DOMAIN or DOMAIN/CHANNEL");
  const std::string& what = args.positional[1];
  const std::string name = ChannelName(what);
  if (absl::StrContains(name, "/channels/")) {
    auto c = ctx.client.GetChannel(name);
    if (!c.ok()) return out.Fail(c.status());
    out.PrintChannel(*c);
    return kOk;
  }
  auto d = ctx.client.GetDomain(DomainName(what));
  if (!d.ok()) return out.Fail(d.status());
  out.PrintDomain(*d);
  return kOk;
}

int WatchCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  v1::WatchChannelsRequest req;
  req.set_parent(args.positional.size() > 1 ? DomainName(args.positional[1]) : "domains/-");
  if (args.Has("from")) {
    uint64_t rev;
    if (!absl::SimpleAtoi(args.Get("from"), &rev)) return out.Usage("bad --from");
    req.set_start_revision(rev);
  }
  absl::Status s = ctx.client.Watch(req, [&](const v1::WatchChannelsResponse& e) {
    if (out.json()) {
      out.PrintJson(e);
    } else {
      std::printf(
          "%llu %-10s %s %s\n", static_cast<unsigned long long>(e.revision()),
          Output::Short(e.type(), v1::ChannelEventType_Name(e.type()), "CHANNEL_EVENT_TYPE_")
              .c_str(),
          e.channel().name().c_str(),
          e.has_channel() ? Output::State(e.channel().state()).c_str() : "");
      std::fflush(stdout);
    }
    return true;
  });
  return s.ok() ? kOk : out.Fail(s);
}

}  // namespace cli
}  // namespace xenchan
