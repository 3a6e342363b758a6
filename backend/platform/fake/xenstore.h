// FakeXenStore: one connection to the fake host's in-memory xenstored
// (FakeXenStoreHub), as dom0 (the engine, the toolstack, a test) or as a
// guest domain (a scripted frontend). No sockets: a call runs the request in
// the shared Store and returns its reply.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/fake/xenstore_hub.h"
#include "backend/platform/xenstore.h"

namespace xenchan {

// Semantics are xenstored's as sim::xenstore::Store implements them (the
// same code that serves xensim's sockets), and status codes are
// LibXenStore's mapping of the errno (XsErrnoToStatus), so the engine sees
// the same answers as over libxenstore. A connection whose domain was
// released answers UNAVAILABLE, as a closed socket does.
//
// WatchFd() is an eventfd: readable while ReadWatch() has an event queued
// (level-triggered). Blocking: no call waits for anything but the hub's
// lock. Thread safety: as XenStore promises, calls may be made from any
// thread; watch events are consumed by one thread at a time.
// Ownership: owns its eventfd and its hub connection; shares the hub.
class FakeXenStore final : public XenStore {
 public:
  // INTERNAL if no eventfd can be made.
  static absl::StatusOr<std::unique_ptr<FakeXenStore>> Connect(std::shared_ptr<FakeXenStoreHub> hub,
                                                               uint32_t domid, bool privileged);
  ~FakeXenStore() override;
  FakeXenStore(const FakeXenStore&) = delete;
  FakeXenStore& operator=(const FakeXenStore&) = delete;

  absl::StatusOr<std::string> Read(XsTransaction t, const std::string& path) override;
  absl::Status Write(XsTransaction t, const std::string& path, const std::string& value) override;
  absl::Status Mkdir(XsTransaction t, const std::string& path) override;
  absl::Status Remove(XsTransaction t, const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> Directory(XsTransaction t,
                                                     const std::string& path) override;
  absl::Status SetPermissions(XsTransaction t, const std::string& path,
                              const std::vector<XsPermission>& perms) override;
  absl::StatusOr<std::vector<XsPermission>> GetPermissions(XsTransaction t,
                                                           const std::string& path) override;
  absl::StatusOr<XsTransaction> StartTransaction() override;
  absl::Status EndTransaction(XsTransaction t, bool commit) override;
  absl::Status Watch(const std::string& path, const std::string& token) override;
  absl::Status Unwatch(const std::string& path, const std::string& token) override;
  int WatchFd() const override { return event_fd_; }
  std::optional<XsWatchEvent> ReadWatch() override;
  absl::StatusOr<bool> IsDomainIntroduced(uint32_t domid) override;

  // Toolstack operations (privileged connections only, else
  // PERMISSION_DENIED): XS_INTRODUCE (fires @introduceDomain) and
  // XS_RELEASE (drops the domain's connections and nodes, fires
  // @releaseDomain).
  absl::Status IntroduceDomain(uint32_t domid);
  absl::Status ReleaseDomain(uint32_t domid);

 private:
  FakeXenStore(std::shared_ptr<FakeXenStoreHub> hub, FakeXenStoreHub::ConnId conn, int event_fd)
      : hub_(std::move(hub)), conn_(conn), event_fd_(event_fd) {}

  // One request; the reply's payload, or the error as a status naming `what`.
  absl::StatusOr<std::string> Call(uint32_t type, XsTransaction t, std::string payload,
                                   const std::string& what);

  const std::shared_ptr<FakeXenStoreHub> hub_;
  const FakeXenStoreHub::ConnId conn_;
  const int event_fd_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_XENSTORE_H_
