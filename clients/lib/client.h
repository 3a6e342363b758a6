// The xenchan C++ client library: a thin layer over the generated
// xenchan.v1.ChannelService stub (proto/xenchan/v1) that connects to a
// target, runs each RPC synchronously (streams through callbacks), and
// returns absl::Status errors that keep the server's google.rpc.Status, so
// callers can switch on the stable reason (ReasonOf) and read typed details
// (DetailOf). xenchanctl is built on it.
//
// Targets are gRPC target strings: `unix:///run/xenchan/xenchand.sock`,
// `127.0.0.1:7000`, `[::1]:7000`.
//
// Thread safety: a Client may be used from several threads at once (each
// call has its own context). An AttachStream is used by at most one reader
// thread and one writer thread at a time.
#ifndef XENCHAN_CLIENTS_LIB_CLIENT_H_
#define XENCHAN_CLIENTS_LIB_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "xenchan/v1/channel_service.grpc.pb.h"

namespace xenchan {
namespace client {

// Payload key under which errors carry the server's google.rpc.Status (the
// same key xenchand uses internally).
inline constexpr char kRpcStatusPayloadUrl[] = "type.googleapis.com/google.rpc.Status";

// The absl::Status of a finished call, with the google.rpc.Status from the
// `grpc-status-details-bin` trailer attached as a payload.
absl::Status FromGrpc(const grpc::Status& status);
// The google.rpc.Status of an error (code and message only if the server
// sent no details).
google::rpc::Status RpcStatusOf(const absl::Status& status);
// The stable xenchan reason ("LEASE_HELD"), or "" if none.
std::string ReasonOf(const absl::Status& status);
// ErrorInfo metadata of an error.
std::map<std::string, std::string> MetadataOf(const absl::Status& status);

// The first detail of type T (e.g. v1::LeaseHolder, v1::PartialResponse).
template <class T>
std::optional<T> DetailOf(const absl::Status& status) {
  const google::rpc::Status rpc = RpcStatusOf(status);
  for (const auto& any : rpc.details()) {
    T t;
    if (any.Is<T>() && any.UnpackTo(&t)) return t;
  }
  return std::nullopt;
}

// "dom/chan" -> "domains/dom/channels/chan"; full names pass through.
std::string ChannelName(const std::string& spec);
// "dom" -> "domains/dom"; "domains/..." passes through.
std::string DomainName(const std::string& spec);

struct ConnectOptions {
  // Client keepalive on idle connections (xenchand permits >= 30 s).
  absl::Duration keepalive_time = absl::Seconds(60);
  // Deadline of unary calls; zero: none.
  absl::Duration unary_timeout = absl::Seconds(30);
  // Deadline of Watch and Read streams run without a caller's context, and
  // of Attach and Write streams opened without a timeout; zero: none.
  absl::Duration stream_timeout = absl::ZeroDuration();
  // Mutual TLS (xenchand's TCP listeners): PEM files of the CA that signed
  // the server's certificate, and of this client's certificate and key. With
  // tls_ca_file set the connection uses TLS (cert and key then go together);
  // empty: plaintext (Unix socket, insecure-tcp://).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Name checked against the server certificate instead of the target's
  // host (e.g. a DNS SAN when dialling an IP address); empty: the host.
  std::string tls_server_name;
};

// A channel to `target` with `options` (keepalive, TLS), lazily connected.
// INVALID_ARGUMENT for an empty target or inconsistent TLS options,
// NOT_FOUND for TLS files that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ConnectOptions& options);

// An open Attach stream.
class AttachStream {
 public:
  AttachStream(
      std::unique_ptr<grpc::ClientContext> context,
      std::unique_ptr<grpc::ClientReaderWriter<v1::AttachRequest, v1::AttachResponse>> stream)
      : context_(std::move(context)), stream_(std::move(stream)) {}
  // Blocks until the message is sent; false once the stream is broken.
  bool Send(const v1::AttachRequest& request) { return stream_->Write(request); }
  // Blocks for the next message; false at the end of the stream (then Finish).
  bool Receive(v1::AttachResponse* response) { return stream_->Read(response); }
  // Half-closes: no more client messages.
  bool HalfClose() { return stream_->WritesDone(); }
  // The final status, once Receive returned false.
  absl::Status Finish() { return FromGrpc(stream_->Finish()); }
  // Cancels the call (Receive then returns false).
  void Cancel() { context_->TryCancel(); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AttachRequest, v1::AttachResponse>> stream_;
};

class Client {
 public:
  // Creates a channel to `target` (lazily connected; errors show on the
  // first call). INVALID_ARGUMENT for an empty target.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const std::string& target,
                                                         ConnectOptions options = {});

  v1::ChannelService::Stub& stub() { return *stub_; }
  // Waits until the channel is connected or `timeout` passes.
  bool WaitForConnected(absl::Duration timeout);

  // Every domain / channel (all pages). `parent` "domains/-" for all.
  absl::StatusOr<std::vector<v1::Domain>> ListDomains();
  absl::StatusOr<v1::Domain> GetDomain(const std::string& name);
  absl::StatusOr<std::vector<v1::Channel>> ListChannels(const v1::ListChannelsRequest& request);
  absl::StatusOr<v1::Channel> GetChannel(const std::string& name);
  // `timeout` bounds the call (zero: unary_timeout).
  absl::StatusOr<v1::Channel> CreateChannel(const v1::CreateChannelRequest& request,
                                            absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<v1::Channel> UpdateChannel(const v1::UpdateChannelRequest& request,
                                            absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<v1::DeleteChannelResponse> DeleteChannel(
      const v1::DeleteChannelRequest& request, absl::Duration timeout = absl::ZeroDuration());
  absl::StatusOr<v1::CallResponse> Call(const v1::CallRequest& request, absl::Duration timeout);

  // Server streams: `on_message` runs for every message; returning false
  // cancels the stream (the result is then OK). `context` may be given to
  // cancel from another thread; it must be fresh.
  absl::Status Watch(const v1::WatchChannelsRequest& request,
                     const std::function<bool(const v1::WatchChannelsResponse&)>& on_message,
                     grpc::ClientContext* context = nullptr);
  absl::Status Read(const v1::ReadRequest& request,
                    const std::function<bool(const v1::ReadResponse&)>& on_message,
                    grpc::ClientContext* context = nullptr);

  // A Write stream: `first` names the channel and options (its data is
  // sent too); then `next` is called for more data until it returns false.
  // Zero `timeout`: no deadline.
  absl::StatusOr<v1::WriteResponse> Write(const v1::WriteRequest& first,
                                          const std::function<bool(std::string*)>& next,
                                          absl::Duration timeout = absl::ZeroDuration());

  // Opens an Attach stream (send `open` first). Zero `timeout`: no deadline.
  std::unique_ptr<AttachStream> Attach(absl::Duration timeout = absl::ZeroDuration());

 private:
  Client(std::shared_ptr<grpc::Channel> channel, ConnectOptions options);
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ChannelService::Stub> stub_;
  ConnectOptions options_;
};

}  // namespace client
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_LIB_CLIENT_H_
