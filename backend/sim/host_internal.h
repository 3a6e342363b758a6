// Helpers shared by the files that implement Host (host.cc, host_libxl.cc,
// host_control.cc). Not part of the API; only those files include it.
#ifndef XENCHAN_BACKEND_SIM_HOST_INTERNAL_H_
#define XENCHAN_BACKEND_SIM_HOST_INTERNAL_H_

#include <string>

#include "absl/status/status.h"

namespace xenchan {
namespace sim {

// mkdir -p: creates `path` and its missing ancestors (mode 0755). INTERNAL
// with the failing directory when mkdir fails other than with EEXIST.
absl::Status MkdirP(const std::string& path);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HOST_INTERNAL_H_
