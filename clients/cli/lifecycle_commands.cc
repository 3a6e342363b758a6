// xenchanctl's channel lifecycle commands: `create` (hot-add a channel,
// optionally waiting until the guest connects, optionally durable),
// `update` (change its settings in place, only those named) and `delete` (unplug and remove one,
// forcing after a grace period; for a durable channel also its declaration).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "clients/cli/commands.h"
#include "clients/cli/usage.h"

namespace xenchan {
namespace cli {

using client::ChannelName;
using client::DomainName;

int CreateCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 3) return out.Usage("create needs DOMAIN CHANNEL");
  v1::CreateChannelRequest req;
  req.set_parent(DomainName(args.positional[1]));
  req.set_channel_id(args.positional[2]);
  req.set_wait_until_connected(args.Has("wait"));
  req.set_validate_only(args.Has("validate-only"));
  absl::Duration connect_timeout = absl::Seconds(30);
  if (args.Has("connect-timeout")) {
    if (!absl::ParseDuration(args.Get("connect-timeout"), &connect_timeout)) {
      return out.Usage("bad --connect-timeout");
    }
    req.mutable_connect_timeout()->set_seconds(absl::ToInt64Seconds(connect_timeout));
  }
  absl::Status config = ParseChannelConfig(args, req.mutable_config());
  if (!config.ok()) return out.Usage(std::string(config.message()));
  const absl::Duration t =
      args.Has("wait") ? std::max(ctx.timeout, connect_timeout + absl::Seconds(5)) : ctx.timeout;
  auto c = ctx.client.CreateChannel(req, t);
  if (!c.ok()) return out.Fail(c.status());
  if (out.json()) {
    out.PrintJson(*c);
  } else {
    std::printf("%s %s (devid %u, %s)\n", req.validate_only() ? "would create" : "created",
                c->name().empty() ? req.channel_id().c_str() : c->name().c_str(), c->devid(),
                Output::Lifetime(c->config().lifetime()).c_str());
  }
  return kOk;
}

int UpdateCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("update needs DOMAIN/CHANNEL");
  v1::UpdateChannelRequest req;
  req.mutable_channel()->set_name(ChannelName(args.positional[1]));
  req.set_validate_only(args.Has("validate-only"));
  absl::Status parsed = ParseChannelUpdate(args, &req);
  if (!parsed.ok()) return out.Usage(std::string(parsed.message()));
  auto c = ctx.client.UpdateChannel(req, ctx.timeout);
  if (!c.ok()) return out.Fail(c.status());
  if (out.json()) {
    out.PrintJson(*c);
  } else {
    std::printf("%s %s (buffer limit %llu, write queue limit %llu, %s)\n",
                req.validate_only() ? "would update" : "updated", c->name().c_str(),
                static_cast<unsigned long long>(c->config().buffer_limit_bytes()),       // NOLINT
                static_cast<unsigned long long>(c->config().write_queue_limit_bytes()),  // NOLINT
                Output::Lifetime(c->config().lifetime()).c_str());
  }
  return kOk;
}

int DeleteCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 2) return out.Usage("delete needs DOMAIN/CHANNEL");
  v1::DeleteChannelRequest req;
  req.set_name(ChannelName(args.positional[1]));
  absl::Duration force = absl::Seconds(10);
  if (args.Has("force-after")) {
    if (!absl::ParseDuration(args.Get("force-after"), &force)) {
      return out.Usage("bad --force-after");
    }
    req.mutable_force_after()->set_seconds(absl::ToInt64Seconds(force));
    req.mutable_force_after()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(force) % 1000000000));
  }
  auto r = ctx.client.DeleteChannel(req, std::max(ctx.timeout, force + absl::Seconds(10)));
  if (!r.ok()) return out.Fail(r.status());
  if (out.json()) {
    out.PrintJson(*r);
  } else {
    std::printf("deleted %s%s\n", r->channel().name().c_str(), r->forced() ? " (forced)" : "");
  }
  return kOk;
}

}  // namespace cli
}  // namespace xenchan
