// The single absl::Status -> grpc::Status conversion (see the header).
#include "server/status.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/duration.pb.h"

namespace xenchan {
namespace server {
namespace {

constexpr absl::string_view kReasonPrefix = "ERROR_REASON_";

// Reasons for statuses built without ApiError (see the header).
std::optional<v1::ErrorReason> FallbackReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return v1::ERROR_REASON_INVALID_OPTION;
    case absl::StatusCode::kUnavailable:
      return v1::ERROR_REASON_TRANSPORT_UNAVAILABLE;
    case absl::StatusCode::kDeadlineExceeded:
      return v1::ERROR_REASON_GUEST_TIMEOUT;
    case absl::StatusCode::kUnauthenticated:
      return v1::ERROR_REASON_UNAUTHENTICATED;
    case absl::StatusCode::kPermissionDenied:
      return v1::ERROR_REASON_PERMISSION_DENIED;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string ReasonName(v1::ErrorReason reason) {
  std::string name = v1::ErrorReason_Name(reason);
  if (absl::StartsWith(name, kReasonPrefix)) name = name.substr(kReasonPrefix.size());
  return name;
}

ApiError::ApiError(absl::StatusCode code, v1::ErrorReason reason, absl::string_view message)
    : code_(code), message_(message) {
  info_.set_domain(kErrorDomain);
  info_.set_reason(ReasonName(reason));
}

ApiError& ApiError::Metadata(const std::string& key, const std::string& value) {
  (*info_.mutable_metadata())[key] = value;
  return *this;
}

ApiError& ApiError::Field(const std::string& field, const std::string& description) {
  auto* v = bad_request_.add_field_violations();
  v->set_field(field);
  v->set_description(description);
  return *this;
}

ApiError& ApiError::Detail(const google::protobuf::Message& detail) {
  extra_.add_details()->PackFrom(detail);
  return *this;
}

ApiError& ApiError::RetryAfter(absl::Duration delay) {
  google::rpc::RetryInfo retry;
  const int64_t nanos = absl::ToInt64Nanoseconds(delay);
  retry.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return Detail(retry);
}

absl::Status ApiError::Build() const {
  if (code_ == absl::StatusCode::kOk) return absl::OkStatus();
  google::rpc::Status rpc;
  rpc.set_code(static_cast<int>(code_));
  rpc.set_message(message_);
  rpc.add_details()->PackFrom(info_);
  if (bad_request_.field_violations_size() > 0) rpc.add_details()->PackFrom(bad_request_);
  for (const auto& d : extra_.details()) *rpc.add_details() = d;
  absl::Status status(code_, message_);
  status.SetPayload(kRpcStatusPayloadUrl, absl::Cord(rpc.SerializeAsString()));
  return status;
}

absl::Status InvalidName(const std::string& field, const std::string& why) {
  return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_INVALID_NAME,
                  field + ": " + why)
      .Field(field, why);
}

absl::Status InvalidOption(const std::string& field, const std::string& why) {
  return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_INVALID_OPTION,
                  field + ": " + why)
      .Field(field, why);
}

google::rpc::Status ToRpcStatus(const absl::Status& status) {
  google::rpc::Status rpc;
  absl::optional<absl::Cord> payload = status.GetPayload(kRpcStatusPayloadUrl);
  if (payload.has_value() && rpc.ParseFromString(std::string(*payload))) {
    // The status's own code and message win if someone rewrapped it.
    rpc.set_code(static_cast<int>(status.code()));
    rpc.set_message(std::string(status.message()));
    return rpc;
  }
  rpc.Clear();
  rpc.set_code(static_cast<int>(status.code()));
  rpc.set_message(std::string(status.message()));
  if (std::optional<v1::ErrorReason> reason = FallbackReason(status.code())) {
    google::rpc::ErrorInfo info;
    info.set_domain(kErrorDomain);
    info.set_reason(ReasonName(*reason));
    rpc.add_details()->PackFrom(info);
  }
  return rpc;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const google::rpc::Status rpc = ToRpcStatus(status);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()),
                      rpc.SerializeAsString());
}

v1::ErrorReason ReasonOf(const absl::Status& status) {
  const google::rpc::Status rpc = ToRpcStatus(status);
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info) && info.domain() == kErrorDomain) {
      v1::ErrorReason reason;
      if (v1::ErrorReason_Parse(std::string(kReasonPrefix) + info.reason(), &reason)) return reason;
    }
  }
  return v1::ERROR_REASON_UNSPECIFIED;
}

}  // namespace server
}  // namespace xenchan
