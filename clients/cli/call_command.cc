// xenchanctl's `call`: send one request over the channel's framing and print
// the guest's response.
#include <cstdio>

#include "clients/cli/commands.h"
#include "clients/cli/usage.h"

namespace xenchan {
namespace cli {

using client::ChannelName;

int CallCommand(const CommandContext& ctx) {
  const Args& args = ctx.args;
  const Output& out = ctx.out;
  if (args.positional.size() != 3) return out.Usage("call needs DOMAIN/CHANNEL REQUEST");
  v1::CallRequest req;
  req.set_channel(ChannelName(args.positional[1]));
  req.set_request(args.positional[2]);
  if (args.Has("framing") && !ParseFraming(args.Get("framing"), req.mutable_framing()).ok()) {
    return out.Usage("bad --framing");
  }
  auto r = ctx.client.Call(req, ctx.timeout);
  if (!r.ok()) return out.Fail(r.status());
  if (out.json()) {
    out.PrintJson(*r);
  } else {
    std::printf("%s\n", r->response().c_str());
  }
  return kOk;
}

}  // namespace cli
}  // namespace xenchan
