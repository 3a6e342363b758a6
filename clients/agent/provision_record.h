// The agent's record of what was provisioned: after a `provision` request
// that carried a `spec_id` succeeded, the agent stores that id (an opaque
// string chosen by the host, typically a digest of its spec) and the time in
// <target>/var/lib/xenchan-agent/provisioned.json, and `facts` reports it.
// That makes the guest the source of truth for "is this spec applied?": a
// host controller that lost its own state, or a new one, asks `facts` and
// provisions only when the id differs.
//
// The record is written with TargetRoot's atomic write (confined, temporary
// file, fsync, rename, directory fsync) only after every file of the request
// was written, and removed before a provision starts writing, so it never
// names a spec whose application was interrupted. The file is read back as
// untrusted bytes (anything in the guest may have changed it): a record that
// does not parse or validate is reported as absent.
//
// Thread safety: the functions are thread-compatible (they write one path).
#ifndef XENCHAN_CLIENTS_AGENT_PROVISION_RECORD_H_
#define XENCHAN_CLIENTS_AGENT_PROVISION_RECORD_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clients/agent/json.h"
#include "clients/agent/target_root.h"

namespace xenchan {
namespace agent {

// Where the record lives, below the target root.
inline constexpr char kProvisionRecordPath[] = "/var/lib/xenchan-agent/provisioned.json";
// The longest spec_id, in bytes.
inline constexpr size_t kMaxSpecIdBytes = 128;
// The largest record file read back.
inline constexpr size_t kMaxProvisionRecordBytes = 4096;

// True for a spec_id: 1 to kMaxSpecIdBytes bytes of printable ASCII other
// than space (0x21-0x7e).
bool IsValidSpecId(absl::string_view spec_id);

struct ProvisionRecord {
  // The spec_id of the provision request (valid per IsValidSpecId).
  std::string spec_id;
  // When it was applied, RFC 3339 in UTC to the second
  // ("2024-05-01T12:00:00Z").
  std::string at;
};

// `t` as ProvisionRecord::at.
std::string FormatRecordTime(absl::Time t);

// The record as a JSON object {"spec_id":...,"at":...}.
json::Value RecordToJson(const ProvisionRecord& record);

// Parses and validates a record file's bytes: a JSON object with exactly the
// members spec_id (valid) and at (FormatRecordTime's format).
// INVALID_ARGUMENT otherwise.
absl::StatusOr<ProvisionRecord> ParseProvisionRecord(absl::string_view text);

// The record in `target`, or nullopt if there is none or it is not valid
// (missing, unreadable, too large, malformed: the caller then knows nothing
// was recorded). Blocks on disk I/O.
std::optional<ProvisionRecord> ReadProvisionRecord(const TargetRoot& target);

// Atomically replaces the record (creating /var/lib/xenchan-agent, 0755).
// Blocks on disk I/O, fsync included. The errors of TargetRoot::WriteFile.
absl::Status WriteProvisionRecord(TargetRoot& target, const ProvisionRecord& record);

// Removes the record; OK if there was none. The errors of
// TargetRoot::RemoveFile other than NOT_FOUND.
absl::Status ClearProvisionRecord(TargetRoot& target);

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_PROVISION_RECORD_H_
