// In-process Server over a simulated host (see in_process_server.h).
#include "tests/server/in_process_server.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/rpc/error_info.pb.h"
#include "tests/common/io.h"

namespace xenchan {
namespace servertest {

absl::StatusOr<std::unique_ptr<InProcessServer>> InProcessServer::Start(
    const std::vector<std::string>& domains, server::ServerConfig config) {
  std::unique_ptr<InProcessServer> s(new InProcessServer());
  auto sim = testing_sim::SimHost::Start();
  if (!sim.ok()) return sim.status();
  s->sim_ = *std::move(sim);
  for (const std::string& d : domains) {
    auto domid = s->sim_->CreateDomain(d);
    if (!domid.ok()) return domid.status();
  }
  auto platform = s->sim_->EngineOptionsForHost();
  if (!platform.ok()) return platform.status();
  config.listen.insert(config.listen.begin(), "unix://" + s->sim_->state_dir() + "/x.sock");
  server::ServerOptions options;
  options.config = std::move(config);
  options.platform = *std::move(platform);
  auto server = server::Server::BuildAndStart(std::move(options));
  if (!server.ok()) return server.status();
  s->server_ = *std::move(server);
  s->stub_ = s->NewStub();
  return s;
}

InProcessServer::~InProcessServer() {
  stub_.reset();
  server_.reset();
  sim_.reset();
}

std::unique_ptr<v1::ChannelService::Stub> InProcessServer::NewStub(
    const std::string& target) const {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
  auto channel = grpc::CreateCustomChannel(target.empty() ? server_->unix_target() : target,
                                           grpc::InsecureChannelCredentials(), args);
  return v1::ChannelService::NewStub(channel);
}

absl::StatusOr<v1::Channel> InProcessServer::CreateConnected(const std::string& domain,
                                                             const std::string& id) {
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(30));
  v1::CreateChannelRequest request;
  request.set_parent("domains/" + domain);
  request.set_channel_id(id);
  request.set_wait_until_connected(true);
  v1::CreateChannelResponse response;
  const grpc::Status s = stub_->CreateChannel(&context, request, &response);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return response.channel();
}

int InProcessServer::OpenTty(const std::string& domain, const std::string& id) {
  return testcommon::OpenGuestTty(sim_->GuestChannelPath(domain, id));
}

std::string ChannelName(const std::string& domain, const std::string& id) {
  return absl::StrCat("domains/", domain, "/channels/", id);
}

void SetTimeout(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

google::rpc::Status RpcStatusOf(const grpc::Status& status) {
  google::rpc::Status rpc;
  if (!status.error_details().empty()) rpc.ParseFromString(status.error_details());
  return rpc;
}

std::string ReasonOf(const grpc::Status& status) {
  auto info = DetailOf<google::rpc::ErrorInfo>(status);
  return info.has_value() ? info->reason() : "";
}

}  // namespace servertest
}  // namespace xenchan
