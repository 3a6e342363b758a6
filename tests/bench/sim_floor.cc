// SimFloor: a backend loop with nothing but the ring protocol.
#include "tests/bench/sim_floor.h"

#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace bench {

absl::StatusOr<std::unique_ptr<SimFloor>> SimFloor::Attach(XenStore& xs,
                                                           std::unique_ptr<EventChannels> evtchn,
                                                           GrantTables& gnttab, uint32_t domid,
                                                           uint32_t devid) {
  const std::string fe = FrontendPath(domid, devid);
  auto ref = xs.Read(kNoTransaction, NodePath(fe, "ring-ref"));
  auto port = xs.Read(kNoTransaction, NodePath(fe, "port"));
  if (!ref.ok()) return ref.status();
  if (!port.ok()) return port.status();
  auto mapping = gnttab.Map(domid, static_cast<uint32_t>(std::strtoul(ref->c_str(), nullptr, 10)),
                            /*writable=*/true);
  if (!mapping.ok()) return mapping.status();
  auto local = evtchn->BindInterdomain(
      domid, static_cast<EvtchnPort>(std::strtoul(port->c_str(), nullptr, 10)));
  if (!local.ok()) return local.status();
  return std::unique_ptr<SimFloor>(new SimFloor(std::move(evtchn), *std::move(mapping), *local));
}

SimFloor::SimFloor(std::unique_ptr<EventChannels> evtchn, std::unique_ptr<GrantMapping> mapping,
                   EvtchnPort port)
    : evtchn_(std::move(evtchn)),
      mapping_(std::move(mapping)),
      ring_(mapping_->data()),
      port_(port) {}

SimFloor::~SimFloor() { (void)evtchn_->Unbind(port_); }

bool SimFloor::WaitEvent(absl::Time until) {
  for (;;) {
    absl::StatusOr<std::optional<EvtchnPort>> p = evtchn_->Pending();
    if (p.ok() && p->has_value()) {
      ++events_;
      (void)evtchn_->Unmask(**p);
      return true;
    }
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd pfd{evtchn_->fd(), POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 100)));
  }
}

size_t SimFloor::Drain(size_t total, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  char buf[ConsoleRing::kOutSize];
  size_t got = 0;
  while (got < total) {
    absl::StatusOr<size_t> n = ring_.DrainOut(buf, sizeof(buf));
    if (!n.ok()) return got;
    if (*n > 0) {
      got += *n;
      // Only a guest that found the ring full waits for room: it notified
      // us after every write, so nothing is lost by not waking it otherwise.
      if (ring_.out_was_full()) (void)evtchn_->Notify(port_);
      continue;
    }
    if (!WaitEvent(until)) return got;
  }
  return got;
}

size_t SimFloor::Fill(size_t total, char byte, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  const std::vector<char> chunk(ConsoleRing::kInSize, byte);
  size_t sent = 0;
  while (sent < total) {
    absl::StatusOr<size_t> n = ring_.FillIn(chunk.data(), std::min(chunk.size(), total - sent));
    if (!n.ok()) return sent;
    if (*n > 0) {
      sent += *n;
      (void)evtchn_->Notify(port_);
      continue;
    }
    if (!WaitEvent(until)) return sent;
  }
  return sent;
}

bool SimFloor::Echo(const std::string& message, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  for (size_t sent = 0; sent < message.size();) {
    absl::StatusOr<size_t> n = ring_.FillIn(message.data() + sent, message.size() - sent);
    if (!n.ok()) return false;
    if (*n > 0) {
      sent += *n;
      (void)evtchn_->Notify(port_);
    } else if (!WaitEvent(until)) {
      return false;
    }
  }
  std::string back;
  char buf[ConsoleRing::kOutSize];
  while (back.size() < message.size()) {
    absl::StatusOr<size_t> n = ring_.DrainOut(buf, message.size() - back.size());
    if (!n.ok()) return false;
    if (*n > 0) {
      back.append(buf, *n);
      if (ring_.out_was_full()) (void)evtchn_->Notify(port_);
    } else if (!WaitEvent(until)) {
      return false;
    }
  }
  return back == message;
}

}  // namespace bench
}  // namespace xenchan
