// Test helpers for the engine against the simulated Xen host.
#include "tests/engine/sim_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"

namespace xenchan {
namespace testing_sim {

std::string XensimPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  std::string base = srcdir != nullptr ? srcdir : ".";
  return base + "/xenchan/backend/sim/xensim";
}

std::string MakeShortTempDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string base = (tmp != nullptr && strlen(tmp) < 40) ? tmp : "/tmp";
  std::string templ = base + "/eng-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

absl::StatusOr<std::unique_ptr<SimHost>> SimHost::Start() {
  auto h = std::unique_ptr<SimHost>(new SimHost());
  h->dir_ = MakeShortTempDir();
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
  if (!dir_.empty()) {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    [[maybe_unused]] int rc = system(cmd.c_str());
  }
}

absl::StatusOr<uint32_t> SimHost::CreateDomain(const std::string& name) {
  auto d = host_->CreateDomain(name, "", {});
  if (!d.ok()) return d.status();
  return d->domid;
}

std::string SimHost::GuestChannelPath(const std::string& domain,
                                      const std::string& channel) const {
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

int OpenRawTty(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ReadExactly(int fd, size_t n, absl::Duration timeout) {
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  while (got.size() < n) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buf[4096];
    const ssize_t r = read(fd, buf, std::min(sizeof(buf), n - got.size()));
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return got;
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

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345;
    s[i] = static_cast<char>('!' + (x >> 16) % 90);
  }
  return s;
}

}  // namespace testing_sim
}  // namespace xenchan
