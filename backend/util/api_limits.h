// The xenchan.v1 API's limits, one constant each. Request validation
// (server/validate.cc), the engine, error details (LimitExceeded,
// PAYLOAD_TOO_LARGE messages) and the configuration file's bounds all use
// these; the proto comments (proto/xenchan/v1) state the same numbers, and
// //tests/proto:api_limits_test checks that they do. Change a limit here and
// that test tells you which comment to update.
#ifndef XENCHAN_BACKEND_UTIL_API_LIMITS_H_
#define XENCHAN_BACKEND_UTIL_API_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace xenchan {

// Data in one stream message (Read chunk, Write and Attach writes) and a Call
// request, in bytes: 64 KiB.
inline constexpr size_t kMaxStreamMessageBytes = 64 * 1024;
inline constexpr size_t kMaxCallRequestBytes = kMaxStreamMessageBytes;
// A Call response: 1 MiB.
inline constexpr size_t kMaxCallResponseBytes = 1024 * 1024;

// A channel's retention buffer (guest to host): 4 KiB..64 MiB, default 1 MiB.
inline constexpr size_t kMinBufferLimitBytes = 4096;
inline constexpr size_t kMaxBufferLimitBytes = size_t{64} << 20;
inline constexpr size_t kDefaultBufferLimitBytes = size_t{1} << 20;
// A channel's write queue (host to guest): 64 KiB..16 MiB, default 256 KiB.
inline constexpr size_t kMinWriteQueueLimitBytes = size_t{64} << 10;
inline constexpr size_t kMaxWriteQueueLimitBytes = size_t{16} << 20;
inline constexpr size_t kDefaultWriteQueueLimitBytes = size_t{256} << 10;

// A channel id (the xenstore `name`): at most 64 bytes.
inline constexpr size_t kMaxChannelIdBytes = 64;
// Channels a Linux guest handles besides its primary console (hvc_xen):
// 7, on devids 1..9.
inline constexpr uint32_t kMaxChannelsPerDomain = 7;
inline constexpr uint32_t kMaxDevid = 9;

// List page sizes: 0 means the default; larger ones are capped.
inline constexpr int32_t kDefaultPageSize = 100;
inline constexpr int32_t kMaxPageSize = 1000;

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_API_LIMITS_H_
