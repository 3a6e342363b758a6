// FakeXenStoreHub: sim::xenstore::Store behind a lock, with in-memory
// connections.
#include "backend/platform/fake/xenstore_hub.h"

#include <unistd.h>
#include <xen/io/xs_wire.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace {

void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

void Drain(int fd) {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(fd, &value, sizeof(value));
}

// The trace entry of a request that succeeded, or "" if it is not traced.
std::string TraceEntry(uint32_t domid, uint32_t type, uint32_t tx_id, const std::string& payload) {
  const sim::xenstore::SplitPayload split = sim::xenstore::SplitStrings(payload);
  if (type == XS_TRANSACTION_END) {
    return !split.strings.empty() && split.strings[0] == "T" ? absl::StrCat("xs ", domid, " commit")
                                                             : "";
  }
  if (tx_id != 0 || split.strings.empty()) return "";
  const std::string path(split.strings[0]);
  switch (type) {
    case XS_WRITE:
      return absl::StrCat("xs ", domid, " write ", path, " ", payload.substr(path.size() + 1));
    case XS_MKDIR:
      return absl::StrCat("xs ", domid, " mkdir ", path);
    case XS_RM:
      return absl::StrCat("xs ", domid, " rm ", path);
    default:
      return "";
  }
}

}  // namespace

FakeXenStoreHub::FakeXenStoreHub(std::shared_ptr<FakeTrace> trace,
                                 const sim::xenstore::StoreOptions& options)
    : trace_(std::move(trace)), store_(options, this) {}

FakeXenStoreHub::~FakeXenStoreHub() = default;

FakeXenStoreHub::ConnId FakeXenStoreHub::Connect(uint32_t domid, bool privileged, int event_fd) {
  MutexLock lock(&mu_);
  const ConnId id = store_.AddConnection(domid, privileged);
  Conn& c = conns_[id];
  c.domid = domid;
  c.event_fd = event_fd;
  return id;
}

void FakeXenStoreHub::Disconnect(ConnId conn) {
  MutexLock lock(&mu_);
  store_.RemoveConnection(conn);
  conns_.erase(conn);
}

absl::StatusOr<sim::xenstore::Message> FakeXenStoreHub::Call(ConnId conn, uint32_t type,
                                                             uint32_t tx_id, std::string payload) {
  MutexLock lock(&mu_);
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.released) {
    return absl::UnavailableError("the xenstore connection is gone");
  }
  sim::xenstore::Message request;
  request.type = type;
  request.req_id = next_req_id_++;
  request.tx_id = tx_id;
  request.payload = std::move(payload);
  it->second.reply.reset();
  store_.Handle(conn, request);
  // The request may have released the connection's own domain.
  it = conns_.find(conn);
  if (it == conns_.end() || !it->second.reply.has_value()) {
    return absl::UnavailableError("the xenstore connection is gone");
  }
  sim::xenstore::Message reply = *std::move(it->second.reply);
  it->second.reply.reset();
  if (reply.type != XS_ERROR) {
    std::string entry = TraceEntry(it->second.domid, type, tx_id, request.payload);
    if (!entry.empty()) trace_->Add(std::move(entry));
  }
  return reply;
}

std::optional<XsWatchEvent> FakeXenStoreHub::NextEvent(ConnId conn) {
  MutexLock lock(&mu_);
  auto it = conns_.find(conn);
  if (it == conns_.end()) return std::nullopt;
  Conn& c = it->second;
  if (c.events.empty()) {
    Drain(c.event_fd);
    return std::nullopt;
  }
  XsWatchEvent event = std::move(c.events.front());
  c.events.pop_front();
  if (c.events.empty()) Drain(c.event_fd);
  return event;
}

void FakeXenStoreHub::Inspect(const std::function<void(const sim::xenstore::Store&)>& read) const {
  MutexLock lock(&mu_);
  read(store_);
}

void FakeXenStoreHub::Send(ConnId conn, std::string frame) {
  mu_.AssertHeld();  // only Store::Handle, run under mu_, sends
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  absl::StatusOr<sim::xenstore::Message> message = sim::xenstore::DecodeMessage(frame);
  if (!message.ok()) return;  // the Store only sends whole frames
  if (message->type != XS_WATCH_EVENT) {
    it->second.reply = *std::move(message);
    return;
  }
  const sim::xenstore::SplitPayload split = sim::xenstore::SplitStrings(message->payload);
  if (split.strings.size() < 2) return;
  it->second.events.push_back(
      XsWatchEvent{std::string(split.strings[0]), std::string(split.strings[1])});
  Signal(it->second.event_fd);
}

absl::Status FakeXenStoreHub::DomainIntroduced(uint32_t /*domid*/) {
  return absl::OkStatus();  // no per-domain socket to make
}

void FakeXenStoreHub::DomainReleased(uint32_t /*domid*/, const std::vector<ConnId>& conns) {
  mu_.AssertHeld();  // called from Store::Handle (XS_RELEASE)
  for (ConnId id : conns) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    it->second.released = true;
    it->second.events.clear();
    Drain(it->second.event_fd);
  }
}

}  // namespace xenchan
