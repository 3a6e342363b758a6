// FakeConsoleFrontend: the scripted hvc_xen frontend of the fake host.
#include "backend/platform/fake/console_frontend.h"

#include <poll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/guest/frontend_ring.h"

namespace xenchan {
namespace {

constexpr char kWatchToken[] = "fake-frontend";

// Polls `fd` readable for up to `timeout`; true if it is.
bool PollIn(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(
      absl::Ceil(std::max(timeout, absl::ZeroDuration()), absl::Milliseconds(1))));
  return poll(&p, 1, ms) > 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeConsoleFrontend>> FakeConsoleFrontend::Create(FakeHost& host,
                                                                                 uint32_t domid,
                                                                                 uint32_t devid) {
  std::unique_ptr<FakeConsoleFrontend> fe(new FakeConsoleFrontend(host, domid, devid));
  absl::StatusOr<std::unique_ptr<FakeXenStore>> xs = host.OpenXenStore(domid);
  if (!xs.ok()) return xs.status();
  fe->xs_ = *std::move(xs);
  absl::StatusOr<std::unique_ptr<FakeEventChannels>> evtchn = host.OpenEventChannels(domid);
  if (!evtchn.ok()) return evtchn.status();
  fe->evtchn_ = *std::move(evtchn);
  return fe;
}

FakeConsoleFrontend::FakeConsoleFrontend(FakeHost& host, uint32_t domid, uint32_t devid)
    : host_(host),
      domid_(domid),
      path_(absl::StrCat("/local/domain/", domid, "/device/console/", devid)) {}

FakeConsoleFrontend::~FakeConsoleFrontend() = default;

absl::Status FakeConsoleFrontend::ReadBackend() {
  absl::StatusOr<std::string> id = xs_->Read(kNoTransaction, path_ + "/backend-id");
  if (!id.ok()) return id.status();
  if (!absl::SimpleAtoi(*id, &backend_id_)) {
    return absl::InvalidArgumentError(absl::StrCat("bad backend-id '", *id, "'"));
  }
  absl::StatusOr<std::string> backend = xs_->Read(kNoTransaction, path_ + "/backend");
  if (!backend.ok()) return backend.status();
  backend_path_ = *backend;
  return absl::OkStatus();
}

absl::Status FakeConsoleFrontend::Probe() {
  if (absl::Status s = ReadBackend(); !s.ok()) return s;
  page_ = std::shared_ptr<FakePage>(new FakePage());
  if (absl::Status s = ConnectRing(); !s.ok()) return s;
  if (!watching_) {
    absl::Status s = xs_->Watch(backend_path_ + "/state", kWatchToken);
    if (s.ok()) s = xs_->Watch(path_, kWatchToken);
    if (!s.ok()) return s;
    watching_ = true;
  }
  return absl::OkStatus();
}

absl::Status FakeConsoleFrontend::ConnectRing() {
  absl::StatusOr<EvtchnPort> port = evtchn_->AllocUnbound(backend_id_);
  if (!port.ok()) return port.status();
  port_ = *port;
  absl::StatusOr<uint32_t> ref =
      host_.hypervisor().GrantPage(domid_, backend_id_, /*readonly=*/false, page_);
  if (!ref.ok()) return ref.status();
  ring_ref_ = *ref;
  // One transaction, retried on conflicts (hvc_xen's "goto again" on EAGAIN).
  absl::Status s = RunInTransaction(
      *xs_,
      [&](XsTransaction t) {
        absl::Status w = xs_->Write(t, path_ + "/ring-ref", absl::StrCat(ring_ref_));
        return w.ok() ? xs_->Write(t, path_ + "/port", absl::StrCat(port_)) : w;
      },
      /*max_attempts=*/100);
  if (!s.ok()) return s;
  return SetState(kInitialised);
}

ABSL_ATTRIBUTE_NOINLINE void FakeConsoleFrontend::GuestWritePage(void* page, size_t offset,
                                                                 const void* src, size_t len) {
  if (offset >= kXenPageSize) return;
  len = std::min(len, kXenPageSize - offset);
  std::memcpy(static_cast<unsigned char*>(page) + offset, src, len);
}

absl::Status FakeConsoleFrontend::Resume() {
  if (page_ == nullptr) return absl::FailedPreconditionError("the frontend was never probed");
  if (absl::Status s = ReadBackend(); !s.ok()) return s;
  last_backend_ = -1;  // the re-registered otherend watch fires at once
  // hvc_xen's resume zeroes the whole page (xencons_resume).
  static const FakePage kZero{};
  GuestWritePage(page_->bytes, 0, kZero.bytes, sizeof(kZero.bytes));
  (void)evtchn_->Unbind(port_);
  (void)host_.hypervisor().EndAccess(domid_, ring_ref_);  // fails while mapped: kept
  return ConnectRing();
}

absl::Status FakeConsoleFrontend::SetState(int state) {
  absl::Status s = xs_->Write(kNoTransaction, path_ + "/state", absl::StrCat(state));
  if (s.ok()) state_ = state;
  return s;
}

int FakeConsoleFrontend::BackendState() {
  if (backend_path_.empty()) return kUnknown;
  absl::StatusOr<std::string> value = xs_->Read(kNoTransaction, backend_path_ + "/state");
  int state = kUnknown;
  if (!value.ok() || !absl::SimpleAtoi(*value, &state)) return kUnknown;
  return state;
}

int FakeConsoleFrontend::Follow() {
  if (!removed_ && page_ != nullptr &&
      absl::IsNotFound(xs_->Read(kNoTransaction, path_).status())) {
    // xenbus_dev_changed -> xencons_remove: the port goes, the page is
    // freed; the grant is not ended (§2.3).
    (void)evtchn_->Unbind(port_);
    page_.reset();
    removed_ = true;
  }
  const int backend = BackendState();
  if (removed_ || backend == last_backend_) return backend;
  last_backend_ = backend;  // hvc_xen acts on changes (the otherend watch)
  if (backend == kConnected && state_ != kConnected) {
    (void)SetState(kConnected);
  } else if ((backend == kClosing || backend == kClosed) && state_ != kClosed && page_ != nullptr) {
    (void)SetState(kClosed);  // hvc_remove + xenbus_frontend_closed
  }
  return backend;
}

absl::Status FakeConsoleFrontend::FollowUntil(int state, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Follow() != state) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("backend of ", path_, " is in state ", BackendState(), ", not ", state));
    }
    WaitWatch(left);
  }
  return absl::OkStatus();
}

absl::Status FakeConsoleFrontend::FollowUntil(const std::function<bool()>& done,
                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    Follow();
    if (done()) return absl::OkStatus();
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("gave up following ", path_));
    }
    WaitWatch(std::min(left, absl::Milliseconds(10)));
  }
}

bool FakeConsoleFrontend::WaitWatch(absl::Duration timeout) {
  const bool ready = PollIn(xs_->WatchFd(), timeout);
  while (xs_->ReadWatch().has_value()) {
  }
  return ready;
}

absl::StatusOr<size_t> FakeConsoleFrontend::Write(absl::string_view data) {
  if (page_ == nullptr) return absl::FailedPreconditionError("no ring");
  absl::StatusOr<size_t> n = sim::guest::WriteOutRing(ring(), data.data(), data.size());
  if (n.ok() && *n > 0) (void)evtchn_->Notify(port_);
  return n;
}

absl::Status FakeConsoleFrontend::WriteAll(absl::string_view data, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!data.empty()) {
    absl::StatusOr<size_t> n = Write(data);
    if (!n.ok()) return n.status();
    data.remove_prefix(*n);
    if (data.empty()) break;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(data.size(), " bytes left unsent"));
    }
    WaitEvent(std::min(left, absl::Milliseconds(50)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeConsoleFrontend::Read(size_t max) {
  if (page_ == nullptr) return absl::FailedPreconditionError("no ring");
  absl::StatusOr<sim::guest::InRingView> view = sim::guest::PeekInRing(ring());
  if (!view.ok()) return view.status();
  std::string out(std::min(max, view->available), '\0');
  const size_t n = sim::guest::CopyFromInRing(ring(), *view, 0, out.data(), out.size());
  out.resize(n);
  if (n > 0) {
    sim::guest::ConsumeInRing(ring(), *view, n);
    (void)evtchn_->Notify(port_);
  }
  return out;
}

std::string FakeConsoleFrontend::ReadExactly(size_t n, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string got;
  while (got.size() < n) {
    absl::StatusOr<std::string> chunk = Read(n - got.size());
    if (!chunk.ok()) break;
    got += *chunk;
    if (got.size() >= n || !chunk->empty()) continue;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    WaitEvent(std::min(left, absl::Milliseconds(50)));
  }
  return got;
}

absl::Status FakeConsoleFrontend::Notify() { return evtchn_->Notify(port_); }

bool FakeConsoleFrontend::TakeEvents() {
  bool any = false;
  for (;;) {
    absl::StatusOr<std::optional<EvtchnPort>> port = evtchn_->Pending();
    if (!port.ok() || !port->has_value()) return any;
    any = true;
    (void)evtchn_->Unmask(**port);
  }
}

bool FakeConsoleFrontend::WaitEvent(absl::Duration timeout) {
  if (TakeEvents()) return true;
  if (!PollIn(evtchn_->fd(), timeout)) return false;
  return TakeEvents();
}

xencons_interface* FakeConsoleFrontend::ring() const {
  return page_ == nullptr ? nullptr : reinterpret_cast<xencons_interface*>(page_->bytes);
}

}  // namespace xenchan
