// Internals of the etcd client shared by client.cc and watch.cc: endpoint
// parsing, gRPC to absl status conversion, the Watch over a gRPC stream.
#ifndef XENCHAN_SERVER_ETCD_CLIENT_INTERNAL_H_
#define XENCHAN_SERVER_ETCD_CLIENT_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/etcd/client.h"

namespace xenchan {
namespace etcd {
namespace internal {

struct Endpoint {
  std::string target;  // a gRPC target: "unix:/path" or "host:port"
  bool tls = false;
};

// "unix:///path" or "unix:/path" -> unix, "http://h:p" or "h:p" -> plain,
// "https://h:p" -> TLS. INVALID_ARGUMENT for anything else (another
// scheme, an empty host or port, a path after host:port).
absl::StatusOr<Endpoint> ParseEndpoint(const std::string& endpoint);

// The same code and message (gRPC's and absl's codes are numbered alike).
absl::Status FromGrpc(const grpc::Status& status);

// A Watch over etcd's Watch stream on `channel`. `on_unavailable` runs when
// the stream breaks for another reason than Cancel.
std::unique_ptr<Watch> NewGrpcWatch(std::shared_ptr<grpc::Channel> channel,
                                    const std::string& prefix, int64_t start_revision,
                                    std::function<void()> on_unavailable);

}  // namespace internal
}  // namespace etcd
}  // namespace xenchan

#endif  // XENCHAN_SERVER_ETCD_CLIENT_INTERNAL_H_
