// Fuzz target: arbitrary request sequences from several connections (dom0
// and two guests) into the Store. Checks that every frame the Store emits is
// well-formed and within the payload limit, that each request gets exactly
// one reply, and that the tree keeps its root and owner accounting.
#include <errno.h>
#include <stdint.h>
#include <xen/io/xs_wire.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/sim/xenstore/store.h"
#include "backend/sim/xenstore/wire.h"

namespace {

using namespace xenchan::sim::xenstore;  // NOLINT: test-only brevity.

void Check(bool ok) {
  if (!ok) std::abort();
}

class CheckingDelegate : public Store::Delegate {
 public:
  void Send(ConnId conn, std::string frame) override {
    auto msg = DecodeMessage(frame);
    Check(msg.ok());
    Check(msg->payload.size() <= kPayloadMax);
    if (msg->type == XS_WATCH_EVENT) {
      auto split = SplitStrings(msg->payload);
      Check(split.strings.size() == 2 && split.rest.empty());
    } else {
      ++replies[conn];
      if (msg->type == XS_ERROR) Check(OneArg(msg->payload).has_value());
    }
  }
  absl::Status DomainIntroduced(uint32_t domid) override {
    return domid % 7 == 3 ? absl::InternalError("refused") : absl::OkStatus();
  }
  void DomainReleased(uint32_t, const std::vector<ConnId>&) override {}

  std::map<ConnId, int> replies;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckingDelegate delegate;
  StoreOptions options;
  options.nodes_per_domain = 50;  // Reach the quotas with small inputs.
  options.watches_per_domain = 8;
  Store store(options, &delegate);
  const std::vector<ConnId> conns = {store.AddConnection(0, true), store.AddConnection(5, false),
                                     store.AddConnection(7, false), store.AddConnection(0, true)};
  FrameParser parser;
  parser.Append(absl::string_view(reinterpret_cast<const char*>(data), size));
  for (int n = 0; n < 2000; ++n) {
    auto next = parser.Next();
    if (!next.ok() || !next->has_value()) break;
    const Message& msg = **next;
    const ConnId conn = conns[msg.req_id % conns.size()];
    const bool live = store.HasConnection(conn);
    const int before = delegate.replies[conn];
    store.Handle(conn, msg);
    // Exactly one reply per request from a live connection; none for one
    // that XS_RELEASE dropped.
    Check(delegate.replies[conn] - before == (live ? 1 : 0));
    Check(store.Find("/") != nullptr);
    int owned = 0;
    for (uint32_t d : {0u, 5u, 7u}) owned += store.OwnedNodeCount(d);
    Check(owned <= static_cast<int>(store.node_count()));
  }
  return 0;
}
