// Request validation of xenchan.v1.ChannelService: pure functions over the
// request messages, run by every handler before it authorizes or touches the
// engine. They check what can be checked without server state: resource
// names, options and their ranges, enum values, payload sizes, page tokens.
// Errors are API errors (server/status.h): INVALID_ARGUMENT with
// INVALID_NAME, INVALID_CHANNEL_ID, INVALID_OPTION, INVALID_PAGE_TOKEN or
// PAYLOAD_TOO_LARGE and a BadRequest naming the field. The requests come from
// untrusted clients: these functions accept any message and never crash
// (tests/server/validate_fuzz_test.cc).
//
// Thread safety: pure functions.
#ifndef XENCHAN_SERVER_VALIDATE_H_
#define XENCHAN_SERVER_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/util/api_limits.h"
#include "server/status.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

// The limits checked here are the API's, one constant each, in
// backend/util/api_limits.h.

// --- Parts shared by several requests.

// INVALID_ARGUMENT (PAYLOAD_TOO_LARGE) for `field` of `size` bytes, more than
// kMaxStreamMessageBytes.
ApiError PayloadTooLarge(const std::string& field, size_t size);

// The page size to use: 0 -> default, capped at the maximum; negative is
// INVALID_OPTION.
absl::StatusOr<int32_t> PageSize(int32_t page_size);
absl::Status ValidateFilter(const v1::ChannelFilter& filter, const std::string& field);
absl::Status ValidateFraming(const v1::Framing& framing, const std::string& field);
// The ranges of every field of `config`, named `prefix`.<field> in errors.
absl::Status ValidateConfig(const v1::ChannelConfig& config, const std::string& prefix);

// UpdateChannel's update_mask paths (relative to Channel): the fields that
// change in place, and "config" for all of them.
inline constexpr const char* kUpdatableChannelPaths[] = {
    "config",
    "config.lifetime",
    "config.buffer_limit_bytes",
    "config.overflow_policy",
    "config.write_queue_limit_bytes",
    "config.default_framing",
};
bool IsUpdatableChannelPath(const std::string& path);
absl::Status ValidateStart(const v1::ReadStart& start, const std::string& field);
// The fingerprint binding a ListChannels page token to its request.
std::string ListFingerprint(const v1::ListChannelsRequest& request);

// --- Whole requests (the first message, for client streams).

absl::Status ValidateRequest(const v1::ListDomainsRequest& request);
absl::Status ValidateRequest(const v1::GetDomainRequest& request);
absl::Status ValidateRequest(const v1::ListChannelsRequest& request);
absl::Status ValidateRequest(const v1::GetChannelRequest& request);
absl::Status ValidateRequest(const v1::CreateChannelRequest& request);
absl::Status ValidateRequest(const v1::UpdateChannelRequest& request);
absl::Status ValidateRequest(const v1::DeleteChannelRequest& request);
absl::Status ValidateRequest(const v1::WatchChannelsRequest& request);
absl::Status ValidateRequest(const v1::ReadRequest& request);
absl::Status ValidateRequest(const v1::CallRequest& request);
// Attach's `open` message.
absl::Status ValidateAttachOpen(const v1::AttachOpen& open);
// A Write stream's first message (`first`) or a later one (only data).
absl::Status ValidateWriteMessage(const v1::WriteRequest& message, bool first);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_VALIDATE_H_
