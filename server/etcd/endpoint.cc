// Endpoint parsing and status conversion for the etcd client
// (client_internal.h).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/etcd/client_internal.h"

namespace xenchan {
namespace etcd {
namespace internal {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("etcd: ", status.error_message()));
}

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& endpoint) {
  Endpoint out;
  std::string rest = endpoint;
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("etcd endpoint '", endpoint, "': ", why));
  };
  if (absl::StartsWith(rest, "unix://")) {
    const std::string path = rest.substr(7);
    if (path.empty() || path[0] != '/') return bad("a unix endpoint needs an absolute path");
    out.target = "unix:" + path;
    return out;
  }
  if (absl::StartsWith(rest, "unix:")) {
    const std::string path = rest.substr(5);
    if (path.empty() || path[0] != '/') return bad("a unix endpoint needs an absolute path");
    out.target = "unix:" + path;
    return out;
  }
  if (absl::StartsWith(rest, "https://")) {
    out.tls = true;
    rest = rest.substr(8);
  } else if (absl::StartsWith(rest, "http://")) {
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return bad("the scheme must be unix, http or https");
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return bad("expected host:port");
  }
  if (rest.find('/') != std::string::npos) return bad("no path may follow host:port");
  for (char c : rest.substr(colon + 1)) {
    if (c < '0' || c > '9') return bad("the port must be a number");
  }
  out.target = rest;
  return out;
}

}  // namespace internal
}  // namespace etcd
}  // namespace xenchan
