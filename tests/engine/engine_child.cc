// A channel engine in its own process, for tests that kill it (kill -9) and
// start another one on the same simulated host.
//
// Usage: engine_child <state-dir>
// Prints "ready" once the engine runs, then one line per lifecycle event:
//   event <TYPE> <domain>/<channel> state=<STATE> epoch=<n> reason=<r> error=<e>
// (<r>: EpochChangeReason as a number, <e>: last_error's ChannelErrorKind)
// and obeys commands on stdin, one per line:
//   create <domain> <channel> <buffer-limit>  -> "created <devid>" | "error <msg>"
//   read <domain> <channel>                   -> "data <hex>" lines (from the
//                                                earliest retained byte on)
//   write <domain> <channel> <hex>            -> "wrote <end-offset>" | "error <msg>",
//                                                then "delivered <offset>" once in the ring
//   delete <domain> <channel> <force-ms>      -> at once "deleting", later (from the
//                                                engine thread) "deleted forced=<0|1>"
//                                                | "error <msg>"
// Usage with a second argument: engine_child <state-dir> <devid-reuse-delay-ms>
// sets the engine's devid_reuse_delay.
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"

namespace xenchan {
namespace {

void Say(const std::string& line) {
  std::string l = line + "\n";
  [[maybe_unused]] ssize_t n = write(1, l.data(), l.size());
}

int Main(const std::string& state_dir, std::optional<absl::Duration> devid_reuse_delay) {
  EngineOptions o;
  auto xs = LibXenStore::Open(state_dir + "/xenstored.sock");
  auto ev = SimEventChannels::Create(state_dir + "/hypervisor.sock");
  auto gt = SimGrantTables::Create(state_dir + "/hypervisor.sock");
  if (!xs.ok() || !ev.ok() || !gt.ok()) {
    Say("error platform");
    return 1;
  }
  o.xenstore = *std::move(xs);
  o.event_channels = *std::move(ev);
  o.grant_tables = *std::move(gt);
  if (devid_reuse_delay.has_value()) o.devid_reuse_delay = *devid_reuse_delay;
  auto engine = Engine::Create(std::move(o));
  if (!engine.ok()) {
    Say("error " + engine.status().ToString());
    return 1;
  }
  Engine& e = **engine;
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const uint64_t sub = e.SubscribeEvents([efd] {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd, &one, sizeof(one));
  });
  uint64_t rev = e.revision();
  while (rev > 0 && e.EventsAfter(rev - 1, 1).ok()) --rev;
  Say("ready");
  {
    // Print the events of Engine::Create (recovery) at once.
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd, &one, sizeof(one));
  }
  std::unique_ptr<Session> reader;
  std::string line_buf;
  for (;;) {
    pollfd fds[3] = {
        {0, POLLIN, 0}, {efd, POLLIN, 0}, {reader ? reader->notify_fd() : -1, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) continue;
    if (fds[1].revents) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = read(efd, &v, sizeof(v));
      auto events = e.EventsAfter(rev, 1000);
      if (events.ok()) {
        for (const ChannelEvent& ev : *events) {
          rev = ev.revision;
          Say(absl::StrCat(
              "event ", ToString(ev.type), " ", ev.channel.domain_name, "/", ev.channel.channel_id,
              " state=", ToString(ev.channel.state), " epoch=", ev.channel.epoch,
              " reason=", ev.epoch_change ? static_cast<int>(ev.epoch_change->reason) : 0,
              " error=", static_cast<int>(ev.channel.last_error.kind)));
        }
      }
    }
    if (reader && fds[2].revents) {
      auto recs = reader->Read(1 << 16);
      if (recs.ok()) {
        for (const SessionRecord& r : *recs) {
          if (r.kind == SessionRecord::Kind::kData) Say("data " + absl::BytesToHexString(r.data));
        }
      }
    }
    if (fds[0].revents) {
      char buf[4096];
      const ssize_t n = read(0, buf, sizeof(buf));
      if (n <= 0) break;
      line_buf.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = line_buf.find('\n')) != std::string::npos) {
        std::istringstream in(line_buf.substr(0, nl));
        line_buf.erase(0, nl + 1);
        std::string cmd, dom, chan;
        in >> cmd >> dom >> chan;
        if (cmd == "create") {
          CreateChannelRequest req;
          req.domain = dom;
          req.channel_id = chan;
          in >> req.config.buffer_limit_bytes;
          req.wait_until_connected = true;
          auto c = e.CreateChannelAndWait(req);
          Say(c.ok() ? absl::StrCat("created ", c->devid) : "error " + c.status().ToString());
        } else if (cmd == "read") {
          SessionOptions so;
          so.start.anchor = ReadStart::Anchor::kEarliest;
          auto s = e.OpenSession({dom, chan}, so);
          if (!s.ok()) {
            Say("error " + s.status().ToString());
          } else {
            reader = *std::move(s);
            const uint64_t one = 1;
            [[maybe_unused]] ssize_t w = write(reader->notify_fd(), &one, sizeof(one));
          }
        } else if (cmd == "delete") {
          int64_t force_ms = 0;
          in >> force_ms;
          Say("deleting");
          e.DeleteChannel({dom, chan}, absl::Milliseconds(force_ms),
                          [](absl::StatusOr<DeleteResult> r) {
                            Say(r.ok() ? absl::StrCat("deleted forced=", r->forced ? 1 : 0)
                                       : "error " + r.status().ToString());
                          });
        } else if (cmd == "write") {
          std::string hex;
          in >> hex;
          SessionOptions so;
          so.role = SessionRole::kWriter;
          auto s = e.OpenSession({dom, chan}, so);
          if (!s.ok()) {
            Say("error " + s.status().ToString());
            continue;
          }
          auto r = (*s)->Write(absl::HexStringToBytes(hex));
          Say(r.ok() ? absl::StrCat("wrote ", r->end) : "error " + r.status().ToString());
          if (!r.ok()) continue;
          // Wait (bounded) until the bytes are in the guest's ring.
          const absl::Time deadline = absl::Now() + absl::Seconds(20);
          while ((*s)->write_status().delivered_offset < r->end && absl::Now() < deadline) {
            pollfd p{(*s)->notify_fd(), POLLIN, 0};
            poll(&p, 1, 1000);
            uint64_t v;
            [[maybe_unused]] ssize_t n = read((*s)->notify_fd(), &v, sizeof(v));
          }
          Say(absl::StrCat("delivered ", (*s)->write_status().delivered_offset));
        }
      }
    }
  }
  reader.reset();
  e.UnsubscribeEvents(sub);
  close(efd);
  return 0;
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: engine_child <state-dir> [<devid-reuse-delay-ms>]\n");
    return 2;
  }
  std::optional<absl::Duration> delay;
  if (argc == 3) delay = absl::Milliseconds(atol(argv[2]));
  return xenchan::Main(argv[1], delay);
}
