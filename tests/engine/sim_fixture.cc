// Test helpers for the engine against the simulated Xen host.
#include "tests/engine/sim_fixture.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "tests/common/files.h"

namespace xenchan {
namespace testing_sim {

std::string XensimPath() { return testcommon::RunfilePath("backend/sim/xensim"); }

absl::StatusOr<std::unique_ptr<SimHost>> SimHost::Start() {
  auto h = std::unique_ptr<SimHost>(new SimHost());
  h->dir_ = testcommon::MakeShortTempDir("eng");
  if (h->dir_.empty()) return absl::InternalError("mkdtemp failed");
  h->state_dir_ = h->dir_ + "/s";
  auto host = sim::Host::Create({h->state_dir_, XensimPath()});
  if (!host.ok()) return host.status();
  h->host_ = *std::move(host);
  auto xs = LibXenStore::Open(h->xenstore_socket());
  if (!xs.ok()) return xs.status();
  h->xs_ = *std::move(xs);
  return h;
}

SimHost::~SimHost() {
  xs_.reset();
  host_.reset();
  testcommon::RemoveTree(dir_);
}

absl::StatusOr<uint32_t> SimHost::CreateDomain(const std::string& name) {
  auto d = host_->CreateDomain(name, "", {});
  if (!d.ok()) return d.status();
  return d->domid;
}

std::string SimHost::GuestChannelPath(const std::string& domain, const std::string& channel) const {
  return state_dir_ + "/guests/" + domain + "/root/dev/xen-channel/" + channel;
}

bool SimHost::DomainExists(uint32_t domid) {
  for (const auto& d : host_->ListDomains()) {
    if (d.domid == domid) return true;
  }
  return false;
}

absl::StatusOr<EngineOptions> SimHost::EngineOptionsForHost() {
  EngineOptions o;
  auto xs = LibXenStore::Open(xenstore_socket());
  if (!xs.ok()) return xs.status();
  auto ev = SimEventChannels::Create(hypervisor_socket());
  if (!ev.ok()) return ev.status();
  auto gt = SimGrantTables::Create(hypervisor_socket());
  if (!gt.ok()) return gt.status();
  o.xenstore = *std::move(xs);
  o.event_channels = *std::move(ev);
  o.grant_tables = *std::move(gt);
  return o;
}

EventWaiter::EventWaiter(Engine* engine) : engine_(engine) {
  fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  next_ = 0;
  sub_ = engine_->SubscribeEvents([fd = fd_] {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
  });
  // Start from the oldest retained event so nothing since creation is missed.
  auto all = engine_->EventsAfter(0, 0);
  if (!all.ok()) {
    // The message names the oldest retained revision; find it by probing
    // from the current revision backwards is not needed: start at the
    // beginning of what is retained.
    uint64_t rev = engine_->revision();
    while (rev > 0 && engine_->EventsAfter(rev - 1, 1).ok()) --rev;
    next_ = rev;
  }
}

EventWaiter::~EventWaiter() {
  engine_->UnsubscribeEvents(sub_);
  close(fd_);
}

std::optional<ChannelEvent> EventWaiter::WaitFor(
    const std::function<bool(const ChannelEvent&)>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    auto events = engine_->EventsAfter(next_, 1000);
    if (events.ok()) {
      for (const ChannelEvent& e : *events) {
        next_ = e.revision;
        if (pred(e)) return e;
      }
      if (!events->empty()) continue;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    uint64_t v;
    [[maybe_unused]] ssize_t n = read(fd_, &v, sizeof(v));
  }
}

bool EventWaiter::WaitUntil(const std::function<bool()>& cond, absl::Duration timeout,
                            absl::Duration tick) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!cond()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(std::min(left, tick))) + 1);
    uint64_t v;
    [[maybe_unused]] ssize_t n = read(fd_, &v, sizeof(v));
  }
  return true;
}

std::string ReadSession(Session& session, size_t n, absl::Duration timeout,
                        std::vector<SessionRecord>* others) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.size() < n) {
    auto recs = session.Read(n - got.size());
    if (!recs.ok()) break;
    for (SessionRecord& r : *recs) {
      if (r.kind == SessionRecord::Kind::kData) {
        got += r.data;
      } else if (others != nullptr) {
        others->push_back(std::move(r));
      }
    }
    if (got.size() >= n || !recs->empty()) continue;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{session.notify_fd(), POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
  return got;
}

bool WaitWriteStatus(Session& session, const std::function<bool(const WriteStatus&)>& pred,
                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred(session.write_status())) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{session.notify_fd(), POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    // Clear the notification without consuming stream data.
    uint64_t v;
    [[maybe_unused]] ssize_t n = read(session.notify_fd(), &v, sizeof(v));
  }
  return true;
}

}  // namespace testing_sim
}  // namespace xenchan
