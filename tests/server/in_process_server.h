// Test helper: xenchand's Server (server/server.h) started inside the test
// process, on a temp Unix socket, over an in-process simulated Xen host
// (tests/engine/sim_fixture.h: xenstored and hypervisor in this process,
// guests as child processes of the xensim binary), with a generated-stub
// client on the socket. The built-in policy grants the test's uid every verb
// there. Plus small helpers to read an error's reason and details.
#ifndef XENCHAN_TESTS_SERVER_IN_PROCESS_SERVER_H_
#define XENCHAN_TESTS_SERVER_IN_PROCESS_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/engine/sim_fixture.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace xenchan {
namespace servertest {

class InProcessServer {
 public:
  // Starts the host, creates `domains` (running, without channels), then the
  // server with `config`, whose `listen` gets the Unix socket in front (keep
  // it empty or add TCP listeners) and whose platform is the host.
  static absl::StatusOr<std::unique_ptr<InProcessServer>> Start(
      const std::vector<std::string>& domains, server::ServerConfig config = {});
  // Shuts the server down, then the host.
  ~InProcessServer();

  testing_sim::SimHost& sim() { return *sim_; }
  server::Server& server() { return *server_; }
  v1::ChannelService::Stub& stub() { return *stub_; }
  // A new stub on its own connection to `target` (default: the Unix socket).
  std::unique_ptr<v1::ChannelService::Stub> NewStub(const std::string& target = "") const;

  // Creates RING channel `id` in `domain` and waits until it is CONNECTED.
  absl::StatusOr<v1::Channel> CreateConnected(const std::string& domain, const std::string& id);
  // The guest's end of the channel, opened raw (waits for it to appear).
  int OpenTty(const std::string& domain, const std::string& id);

 private:
  InProcessServer() = default;

  std::unique_ptr<testing_sim::SimHost> sim_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<v1::ChannelService::Stub> stub_;
};

// `domains/{domain}/channels/{id}`.
std::string ChannelName(const std::string& domain, const std::string& id);
// A deadline `timeout` from now, for a ClientContext.
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

// The google.rpc.Status a failed call carries (empty if none).
google::rpc::Status RpcStatusOf(const grpc::Status& status);
// The ErrorInfo reason of `status` ("" if none).
std::string ReasonOf(const grpc::Status& status);
// The detail of type T of `status`, if it carries one.
template <class T>
std::optional<T> DetailOf(const grpc::Status& status) {
  const google::rpc::Status rpc = RpcStatusOf(status);
  for (const auto& any : rpc.details()) {
    T detail;
    if (any.UnpackTo(&detail)) return detail;
  }
  return std::nullopt;
}

}  // namespace servertest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SERVER_IN_PROCESS_SERVER_H_
