// The xenchan C++ client library (see the header).
#include "clients/lib/client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "google/rpc/error_info.pb.h"

namespace xenchan {
namespace client {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status s(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  google::rpc::Status rpc;
  if (!status.error_details().empty() && rpc.ParseFromString(status.error_details())) {
    s.SetPayload(kRpcStatusPayloadUrl, absl::Cord(status.error_details()));
  }
  return s;
}

google::rpc::Status RpcStatusOf(const absl::Status& status) {
  google::rpc::Status rpc;
  auto payload = status.GetPayload(kRpcStatusPayloadUrl);
  if (!payload.has_value() || !rpc.ParseFromString(std::string(*payload))) {
    rpc.Clear();
    rpc.set_code(static_cast<int>(status.code()));
    rpc.set_message(std::string(status.message()));
  }
  return rpc;
}

std::string ReasonOf(const absl::Status& status) {
  auto info = DetailOf<google::rpc::ErrorInfo>(status);
  return info.has_value() ? info->reason() : "";
}

std::map<std::string, std::string> MetadataOf(const absl::Status& status) {
  std::map<std::string, std::string> out;
  if (auto info = DetailOf<google::rpc::ErrorInfo>(status)) {
    for (const auto& [k, v] : info->metadata()) out[k] = v;
  }
  return out;
}

std::string ChannelName(const std::string& spec) {
  if (absl::StartsWith(spec, "domains/")) return spec;
  const size_t slash = spec.find('/');
  if (slash == std::string::npos) return spec;
  return "domains/" + spec.substr(0, slash) + "/channels/" + spec.substr(slash + 1);
}

std::string DomainName(const std::string& spec) {
  if (absl::StartsWith(spec, "domains/")) return spec;
  return "domains/" + spec;
}

Client::Client(std::shared_ptr<grpc::Channel> channel, ConnectOptions options)
    : channel_(std::move(channel)),
      stub_(v1::ChannelService::NewStub(channel_)),
      options_(options) {}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ConnectOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("empty server target");
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls_ca_file.empty()) {
    auto read = [](const std::string& path, std::string* out) {
      std::ifstream in(path);
      if (!in) return false;
      std::stringstream text;
      text << in.rdbuf();
      *out = text.str();
      return true;
    };
    grpc::SslCredentialsOptions ssl;
    if (!read(options.tls_ca_file, &ssl.pem_root_certs)) {
      return absl::NotFoundError("cannot read the CA file " + options.tls_ca_file);
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError("a client certificate needs its key, and the key its cert");
    }
    if (!options.tls_cert_file.empty() && (!read(options.tls_cert_file, &ssl.pem_cert_chain) ||
                                           !read(options.tls_key_file, &ssl.pem_private_key))) {
      return absl::NotFoundError("cannot read the client certificate or key");
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  } else if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs the server's CA (tls_ca_file)");
  }
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  if (channel == nullptr) return absl::InvalidArgumentError("cannot create a channel to " + target);
  return channel;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        ConnectOptions options) {
  auto channel = MakeChannel(target, options);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<Client>(new Client(*std::move(channel), options));
}

bool Client::WaitForConnected(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

void Client::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  if (timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

absl::StatusOr<std::vector<v1::Domain>> Client::ListDomains() {
  std::vector<v1::Domain> out;
  v1::ListDomainsRequest request;
  request.set_page_size(1000);
  for (;;) {
    grpc::ClientContext context;
    Prepare(&context, options_.unary_timeout);
    v1::ListDomainsResponse response;
    absl::Status s = FromGrpc(stub_->ListDomains(&context, request, &response));
    if (!s.ok()) return s;
    for (auto& d : *response.mutable_domains()) out.push_back(std::move(d));
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
}

absl::StatusOr<v1::Domain> Client::GetDomain(const std::string& name) {
  grpc::ClientContext context;
  Prepare(&context, options_.unary_timeout);
  v1::GetDomainRequest request;
  request.set_name(name);
  v1::GetDomainResponse response;
  absl::Status s = FromGrpc(stub_->GetDomain(&context, request, &response));
  if (!s.ok()) return s;
  return response.domain();
}

absl::StatusOr<std::vector<v1::Channel>> Client::ListChannels(
    const v1::ListChannelsRequest& first) {
  std::vector<v1::Channel> out;
  v1::ListChannelsRequest request = first;
  for (;;) {
    grpc::ClientContext context;
    Prepare(&context, options_.unary_timeout);
    v1::ListChannelsResponse response;
    absl::Status s = FromGrpc(stub_->ListChannels(&context, request, &response));
    if (!s.ok()) return s;
    for (auto& c : *response.mutable_channels()) out.push_back(std::move(c));
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
}

absl::StatusOr<v1::Channel> Client::GetChannel(const std::string& name) {
  grpc::ClientContext context;
  Prepare(&context, options_.unary_timeout);
  v1::GetChannelRequest request;
  request.set_name(name);
  v1::GetChannelResponse response;
  absl::Status s = FromGrpc(stub_->GetChannel(&context, request, &response));
  if (!s.ok()) return s;
  return response.channel();
}

absl::StatusOr<v1::Channel> Client::CreateChannel(const v1::CreateChannelRequest& request,
                                                  absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout > absl::ZeroDuration() ? timeout : options_.unary_timeout);
  v1::CreateChannelResponse response;
  absl::Status s = FromGrpc(stub_->CreateChannel(&context, request, &response));
  if (!s.ok()) return s;
  return response.channel();
}

absl::StatusOr<v1::Channel> Client::UpdateChannel(const v1::UpdateChannelRequest& request,
                                                  absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout > absl::ZeroDuration() ? timeout : options_.unary_timeout);
  v1::UpdateChannelResponse response;
  absl::Status s = FromGrpc(stub_->UpdateChannel(&context, request, &response));
  if (!s.ok()) return s;
  return response.channel();
}

absl::StatusOr<v1::DeleteChannelResponse> Client::DeleteChannel(
    const v1::DeleteChannelRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout > absl::ZeroDuration() ? timeout : options_.unary_timeout);
  v1::DeleteChannelResponse response;
  absl::Status s = FromGrpc(stub_->DeleteChannel(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::CallResponse> Client::Call(const v1::CallRequest& request,
                                              absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout);
  v1::CallResponse response;
  absl::Status s = FromGrpc(stub_->Call(&context, request, &response));
  if (!s.ok()) return s;
  return response;
}

namespace {

template <class Resp>
absl::Status Drain(grpc::ClientReader<Resp>* reader, grpc::ClientContext* context,
                   const std::function<bool(const Resp&)>& on_message) {
  Resp message;
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

}  // namespace

absl::Status Client::Watch(const v1::WatchChannelsRequest& request,
                           const std::function<bool(const v1::WatchChannelsResponse&)>& on_message,
                           grpc::ClientContext* context) {
  grpc::ClientContext own;
  if (context == nullptr) {
    Prepare(&own, options_.stream_timeout);
    context = &own;
  }
  auto reader = stub_->WatchChannels(context, request);
  return Drain<v1::WatchChannelsResponse>(reader.get(), context, on_message);
}

absl::Status Client::Read(const v1::ReadRequest& request,
                          const std::function<bool(const v1::ReadResponse&)>& on_message,
                          grpc::ClientContext* context) {
  grpc::ClientContext own;
  if (context == nullptr) {
    Prepare(&own, options_.stream_timeout);
    context = &own;
  }
  auto reader = stub_->Read(context, request);
  return Drain<v1::ReadResponse>(reader.get(), context, on_message);
}

absl::StatusOr<v1::WriteResponse> Client::Write(const v1::WriteRequest& first,
                                                const std::function<bool(std::string*)>& next,
                                                absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout > absl::ZeroDuration() ? timeout : options_.stream_timeout);
  v1::WriteResponse response;
  auto writer = stub_->Write(&context, &response);
  bool ok = writer->Write(first);
  std::string chunk;
  while (ok && next(&chunk)) {
    v1::WriteRequest more;
    more.set_data(std::move(chunk));
    chunk.clear();
    ok = writer->Write(more);
  }
  writer->WritesDone();
  absl::Status s = FromGrpc(writer->Finish());
  if (!s.ok()) return s;
  return response;
}

std::unique_ptr<AttachStream> Client::Attach(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  Prepare(context.get(), timeout > absl::ZeroDuration() ? timeout : options_.stream_timeout);
  auto stream = stub_->Attach(context.get());
  return std::make_unique<AttachStream>(std::move(context), std::move(stream));
}

}  // namespace client
}  // namespace xenchan
