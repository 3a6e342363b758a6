// XenStore over Debian's libxenstore: the one xenstore client of xenchan, used
// against real xenstored and against xensim alike.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_LIB_XENSTORE_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_LIB_XENSTORE_H_

#include <memory>
#include <string>

#include "backend/platform/xenstore.h"

struct xs_handle;

namespace xenchan {

// Maps an errno from libxenstore to a status with `what` as context: the
// shared table (backend/util/errno_status.h), except EAGAIN -> ABORTED (a
// transaction conflict) and UNAVAILABLE for errnos the table does not name
// (the connection is unusable). The codes XenStore documents.
absl::Status XsErrnoToStatus(int err, const std::string& what);

// Thread safety: libxenstore serialises requests on one handle, so every
// method may be called from any thread. Watch events are read by one thread.
class LibXenStore final : public XenStore {
 public:
  // Connects to the xenstored listening at `socket_path` (what XENSTORED_PATH
  // would name); an empty path uses libxenstore's default (the local daemon
  // socket, else /dev/xen/xenbus). UNAVAILABLE if nothing answers.
  static absl::StatusOr<std::unique_ptr<LibXenStore>> Open(const std::string& socket_path);
  ~LibXenStore() override;

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
  int WatchFd() const override;
  std::optional<XsWatchEvent> ReadWatch() override;
  absl::StatusOr<bool> IsDomainIntroduced(uint32_t domid) override;

  // Toolstack operations (dom0 only), used by xensim's domain manager.
  absl::Status IntroduceDomain(uint32_t domid, unsigned long mfn, unsigned int port);
  absl::Status ReleaseDomain(uint32_t domid);

 private:
  explicit LibXenStore(xs_handle* h) : h_(h) {}
  xs_handle* const h_;
  int watch_fd_ = -1;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_LIB_XENSTORE_H_
