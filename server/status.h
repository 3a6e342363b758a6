// The one place where xenchand turns an error into what goes on the wire
// (DESIGN §5; proto/xenchan/v1/errors.proto).
//
// Inside the server an error is an absl::Status. An API error additionally
// carries its full google.rpc.Status (ErrorInfo with domain "xenchan.dev" and
// a stable reason, BadRequest field violations, RetryInfo, typed xenchan.v1
// details) as an absl::Status payload under kRpcStatusPayloadUrl. Handlers
// build such statuses with ApiError and never touch grpc::Status; the
// reactors call ToGrpcStatus() exactly once, when they finish a call, which
// puts the serialized google.rpc.Status into grpc::Status's binary error
// details (gRPC sends it as the `grpc-status-details-bin` trailer).
//
// A status without the payload (an unexpected failure deep inside) is sent
// with its code and message and, for the codes that have a natural reason,
// an ErrorInfo with that reason; INTERNAL and UNKNOWN carry no ErrorInfo
// (they are server bugs, not part of the contract).
//
// Thread safety: pure functions and value types.
#ifndef XENCHAN_SERVER_STATUS_H_
#define XENCHAN_SERVER_STATUS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/error_info.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"
#include "xenchan/v1/errors.pb.h"

namespace xenchan {
namespace server {

// Payload key of the google.rpc.Status attached to an absl::Status.
inline constexpr char kRpcStatusPayloadUrl[] = "type.googleapis.com/google.rpc.Status";
// ErrorInfo.domain of every xenchan error.
inline constexpr char kErrorDomain[] = "xenchan.dev";

// "LEASE_HELD" for ERROR_REASON_LEASE_HELD.
std::string ReasonName(v1::ErrorReason reason);

// Builds an API error. Example:
//   return ApiError(absl::StatusCode::kFailedPrecondition, v1::ERROR_REASON_LEASE_HELD,
//                   "write lease held by s1-2")
//       .Metadata("channel", name).Detail(holder).Build();
class ApiError {
 public:
  ApiError(absl::StatusCode code, v1::ErrorReason reason, absl::string_view message);

  // ErrorInfo metadata ("domain", "channel", "session_id", "verb", "limit").
  ApiError& Metadata(const std::string& key, const std::string& value);
  // A google.rpc.BadRequest field violation (INVALID_ARGUMENT).
  ApiError& Field(const std::string& field, const std::string& description);
  // A typed detail, packed in a google.protobuf.Any.
  ApiError& Detail(const google::protobuf::Message& detail);
  // A google.rpc.RetryInfo with `delay`.
  ApiError& RetryAfter(absl::Duration delay);

  absl::Status Build() const;
  operator absl::Status() const { return Build(); }  // NOLINT: builder

 private:
  absl::StatusCode code_;
  std::string message_;
  google::rpc::ErrorInfo info_;
  google::rpc::BadRequest bad_request_;
  google::rpc::Status extra_;  // details other than ErrorInfo/BadRequest
};

// Shorthands for the common INVALID_ARGUMENT errors.
absl::Status InvalidName(const std::string& field, const std::string& why);
absl::Status InvalidOption(const std::string& field, const std::string& why);

// The google.rpc.Status attached to `status`, or one synthesised from its
// code and message (see the file comment).
google::rpc::Status ToRpcStatus(const absl::Status& status);

// The wire form of `status`: code, message and, for errors, the serialized
// google.rpc.Status as binary error details.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reason of `status` (ERROR_REASON_UNSPECIFIED if none is attached).
v1::ErrorReason ReasonOf(const absl::Status& status);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_STATUS_H_
