// FleetClient: see fleet_client.h.
#include "clients/lib/fleet_client.h"

#include <utility>

namespace xenchan {
namespace client {

FleetClient::FleetClient(std::shared_ptr<grpc::Channel> channel, ConnectOptions options)
    : channel_(std::move(channel)),
      stub_(v1::FleetService::NewStub(channel_)),
      options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<FleetClient>> FleetClient::Connect(const std::string& target,
                                                                  ConnectOptions options) {
  auto channel = MakeChannel(target, options);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<FleetClient>(new FleetClient(*std::move(channel), std::move(options)));
}

void FleetClient::Prepare(grpc::ClientContext* context) const {
  if (options_.unary_timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.unary_timeout));
  }
}

absl::StatusOr<std::vector<v1::Host>> FleetClient::ListHosts() {
  std::vector<v1::Host> out;
  v1::ListHostsRequest request;
  request.set_page_size(1000);
  for (;;) {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ListHostsResponse response;
    absl::Status s = FromGrpc(stub_->ListHosts(&context, request, &response));
    if (!s.ok()) return s;
    for (auto& h : *response.mutable_hosts()) out.push_back(std::move(h));
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
}

absl::StatusOr<DomainLocation> FleetClient::LocateDomain(const std::string& domain) {
  grpc::ClientContext context;
  Prepare(&context);
  v1::LocateDomainRequest request;
  request.set_name(DomainName(domain));
  v1::LocateDomainResponse response;
  absl::Status s = FromGrpc(stub_->LocateDomain(&context, request, &response));
  if (!s.ok()) return s;
  return DomainLocation{response.domain(), response.host(), response.revision()};
}

absl::StatusOr<std::unique_ptr<Client>> FleetClient::ConnectToHost(const v1::Host& host) const {
  ConnectOptions options = options_;
  if (!options.tls_ca_file.empty() && !host.identity().empty()) {
    options.tls_server_name = host.identity();
  }
  return Client::Connect(host.api_address(), options);
}

absl::StatusOr<ResolvedDomain> FleetClient::ResolveDomain(const std::string& domain) {
  auto location = LocateDomain(domain);
  if (!location.ok()) return location.status();
  auto client = ConnectToHost(location->host);
  if (!client.ok()) return client.status();
  return ResolvedDomain{*std::move(location), *std::move(client)};
}

absl::Status FleetClient::WatchFleet(
    const v1::WatchFleetRequest& request,
    const std::function<bool(const v1::WatchFleetResponse&)>& on_message,
    grpc::ClientContext* context) {
  grpc::ClientContext own;
  if (context == nullptr) {
    if (options_.stream_timeout > absl::ZeroDuration()) {
      own.set_deadline(absl::ToChronoTime(absl::Now() + options_.stream_timeout));
    }
    context = &own;
  }
  auto reader = stub_->WatchFleet(context, request);
  v1::WatchFleetResponse message;
  bool stopped = false;
  while (reader->Read(&message)) {
    if (!on_message(message)) {
      stopped = true;
      context->TryCancel();
      while (reader->Read(&message)) {
      }
      break;
    }
  }
  absl::Status s = FromGrpc(reader->Finish());
  if (stopped && s.code() == absl::StatusCode::kCancelled) return absl::OkStatus();
  return s;
}

}  // namespace client
}  // namespace xenchan
