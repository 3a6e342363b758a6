// HvErrnoToStatus (backend/sim/hv/client.h): the codes client.h documents
// for the hypervisor's errnos and for a broken connection, pinned errno by
// errno, with the shared table's "<what>: <strerror>" message.
#include <errno.h>
#include <string.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/hv/client.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

using absl::StatusCode;

struct Case {
  int err;
  StatusCode code;
};

TEST(HvErrnoToStatusTest, EveryDocumentedErrnoKeepsItsCode) {
  const Case kCases[] = {
      // The hypervisor's answers.
      {EINVAL, StatusCode::kInvalidArgument},
      {ESRCH, StatusCode::kNotFound},
      {EACCES, StatusCode::kPermissionDenied},
      {EPERM, StatusCode::kPermissionDenied},
      {EBUSY, StatusCode::kFailedPrecondition},
      {EBADF, StatusCode::kFailedPrecondition},
      {ENOSPC, StatusCode::kResourceExhausted},
      // The transport: no reply within SO_RCVTIMEO, hypervisor gone.
      {EAGAIN, StatusCode::kDeadlineExceeded},
      {ENOENT, StatusCode::kUnavailable},
      {ECONNREFUSED, StatusCode::kUnavailable},
      {ECONNRESET, StatusCode::kUnavailable},
      {EPIPE, StatusCode::kUnavailable},
      {ENOTCONN, StatusCode::kUnavailable},
      // Others by the shared table, then absl's.
      {ENOMEM, StatusCode::kResourceExhausted},
      {EMFILE, StatusCode::kResourceExhausted},
      {EINTR, StatusCode::kUnavailable},
      {ETIMEDOUT, StatusCode::kDeadlineExceeded},
  };
  for (const Case& c : kCases) {
    const absl::Status s = HvErrnoToStatus(c.err, "hypervisor");
    EXPECT_EQ(s.code(), c.code) << "errno " << c.err << ": " << s;
    EXPECT_EQ(s.message(), absl::StrCat("hypervisor: ", strerror(c.err)));
  }
}

TEST(HvErrnoToStatusTest, NeverOk) {
  for (int err = 0; err < 200; ++err) EXPECT_FALSE(HvErrnoToStatus(err, "x").ok()) << err;
}

}  // namespace
}  // namespace hv
}  // namespace sim
}  // namespace xenchan
