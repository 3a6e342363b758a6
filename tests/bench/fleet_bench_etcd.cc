// The fleet's etcd writes and lease keep-alives, from etcd's side.
#include "tests/bench/fleet_bench_etcd.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/fleet/records.h"

namespace xenchan {
namespace bench {

absl::StatusOr<std::unique_ptr<FleetWriteCounter>> FleetWriteCounter::Start(
    std::shared_ptr<etcd::Client> etcd, const std::string& prefix) {
  std::unique_ptr<FleetWriteCounter> c(new FleetWriteCounter(std::move(etcd), prefix));
  auto range = c->etcd_->GetPrefix(prefix);
  if (!range.ok()) return range.status();
  if (range->more) return absl::ResourceExhaustedError("the fleet prefix did not fit one read");
  {
    MutexLock lock(&c->mu_);
    for (const etcd::KeyValue& kv : range->kvs) c->writer_[kv.key] = c->WriterOf(kv);
    c->counts_.revision = range->revision;
    c->watch_ = c->etcd_->WatchPrefix(prefix, range->revision + 1);
  }
  c->thread_ = std::thread([p = c.get(), from = range->revision + 1] { p->Run(from); });
  return c;
}

FleetWriteCounter::~FleetWriteCounter() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    if (watch_ != nullptr) watch_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
}

std::string FleetWriteCounter::WriterOf(const etcd::KeyValue& kv) const {
  const std::string hosts = fleet::HostsPrefix(prefix_);
  if (absl::StartsWith(kv.key, hosts)) {
    auto h = fleet::DecodeHost(prefix_, kv.key, kv.value);
    return h.ok() ? h->host_id() : "?";
  }
  if (absl::StartsWith(kv.key, fleet::DomainsPrefix(prefix_))) {
    auto d = fleet::DecodeDomain(prefix_, kv.key, kv.value);
    return d.ok() ? d->host_id() : "?";
  }
  if (absl::StartsWith(kv.key, fleet::DeclarationsPrefix(prefix_))) {
    auto d = fleet::DecodeDeclaration(prefix_, kv.key, kv.value);
    return d.ok() ? d->host_id() : "?";
  }
  return "?";
}

void FleetWriteCounter::Run(int64_t from_revision) {
  int64_t next = from_revision;
  for (;;) {
    etcd::Watch* watch;
    {
      MutexLock lock(&mu_);
      if (stop_) return;
      watch = watch_.get();
    }
    auto events = watch->Next(absl::Milliseconds(200));
    if (!events.ok()) {
      if (events.status().code() == absl::StatusCode::kCancelled) return;
      // The stream broke (a member went away): follow again from where it was.
      MutexLock lock(&mu_);
      if (stop_) return;
      watch_ = etcd_->WatchPrefix(prefix_, next);
      continue;
    }
    const absl::Time now = absl::Now();
    MutexLock lock(&mu_);
    for (const etcd::Event& e : *events) {
      std::string host;
      if (e.type == etcd::Event::Type::kPut) {
        host = WriterOf(e.kv);
        writer_[e.kv.key] = host;
      } else {
        auto it = writer_.find(e.kv.key);
        host = it == writer_.end() ? "?" : it->second;
        if (it != writer_.end()) writer_.erase(it);
      }
      ++counts_.per_host[host];
      ++counts_.events;
      counts_.revision = std::max(counts_.revision, e.kv.mod_revision);
      counts_.last_event = now;
      next = std::max(next, e.kv.mod_revision + 1);
    }
  }
}

FleetWriteCounter::Counts FleetWriteCounter::counts() const {
  MutexLock lock(&mu_);
  return counts_;
}

bool FleetWriteCounter::WaitQuiet(absl::Duration quiet, absl::Duration timeout) const {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  for (;;) {
    const absl::Time now = absl::Now();
    // Quiet counts from the call at the earliest: writes just made (a
    // migration the caller saw finish) may still be on their way through
    // this counter's watch.
    absl::Time last = start;
    {
      MutexLock lock(&mu_);
      last = std::max(last, counts_.last_event);
    }
    if (now - last >= quiet) return true;
    if (now > deadline) return false;
    absl::SleepFor(std::min(quiet - (now - last), absl::Milliseconds(100)));
  }
}

absl::StatusOr<int64_t> StoreRevision(etcd::Client& etcd) {
  // A key that never exists: the read reports the store revision.
  auto r = etcd.GetPrefix("/fleet_bench/never/", 1);
  if (!r.ok()) return r.status();
  return r->revision;
}

namespace {

// GET /metrics over the member's Unix client socket; the body.
absl::StatusOr<std::string> Metrics(const std::string& endpoint) {
  constexpr char kScheme[] = "unix://";
  if (!absl::StartsWith(endpoint, kScheme)) {
    return absl::InvalidArgumentError("not a unix:// endpoint: " + endpoint);
  }
  const std::string path = endpoint.substr(sizeof(kScheme) - 1);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect " + path);
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return absl::UnavailableError("write " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64 << 20)) break;
  }
  close(fd);
  const size_t body = out.find("\r\n\r\n");
  if (!absl::StartsWith(out, "HTTP/1.") || body == std::string::npos) {
    return absl::UnavailableError("no HTTP answer from " + path);
  }
  return out.substr(body + 4);
}

}  // namespace

absl::StatusOr<double> LeaseRenewals(const std::vector<std::string>& endpoints) {
  constexpr char kMetric[] = "etcd_debugging_lease_renewed_total ";
  double sum = 0;
  for (const std::string& e : endpoints) {
    auto body = Metrics(e);
    if (!body.ok()) return body.status();
    bool found = false;
    for (absl::string_view line : absl::StrSplit(*body, '\n')) {
      if (!absl::StartsWith(line, kMetric)) continue;
      double v = 0;
      if (!absl::SimpleAtod(line.substr(sizeof(kMetric) - 1), &v)) break;
      sum += v;
      found = true;
    }
    if (!found) return absl::NotFoundError(absl::StrCat("no ", kMetric, "at ", e));
  }
  return sum;
}

}  // namespace bench
}  // namespace xenchan
