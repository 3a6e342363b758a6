// The agent's provisioned.json record (see provision_record.h).
#include "clients/agent/provision_record.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace agent {
namespace {

constexpr char kTimeFormat[] = "%Y-%m-%dT%H:%M:%SZ";
constexpr size_t kTimeBytes = 20;  // "2024-05-01T12:00:00Z"

}  // namespace

bool IsValidSpecId(absl::string_view spec_id) {
  if (spec_id.empty() || spec_id.size() > kMaxSpecIdBytes) return false;
  for (char c : spec_id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string FormatRecordTime(absl::Time t) {
  return absl::FormatTime(kTimeFormat, t, absl::UTCTimeZone());
}

json::Value RecordToJson(const ProvisionRecord& record) {
  json::Value v = json::Value::MakeObject();
  v.Set("spec_id", json::Value::String(record.spec_id));
  v.Set("at", json::Value::String(record.at));
  return v;
}

absl::StatusOr<ProvisionRecord> ParseProvisionRecord(absl::string_view text) {
  if (text.size() > kMaxProvisionRecordBytes) {
    return absl::InvalidArgumentError("provision record too large");
  }
  absl::StatusOr<json::Value> v = json::Parse(text);
  if (!v.ok()) return absl::InvalidArgumentError(v.status().message());
  if (!v->is_object() || v->object().size() != 2) {
    return absl::InvalidArgumentError("provision record must be {\"spec_id\":...,\"at\":...}");
  }
  const json::Value* spec_id = v->Find("spec_id");
  const json::Value* at = v->Find("at");
  if (spec_id == nullptr || !spec_id->is_string() || !IsValidSpecId(spec_id->string_value())) {
    return absl::InvalidArgumentError("provision record: invalid spec_id");
  }
  absl::Time parsed;
  std::string error;
  if (at == nullptr || !at->is_string() || at->string_value().size() != kTimeBytes ||
      !absl::ParseTime(kTimeFormat, at->string_value(), absl::UTCTimeZone(), &parsed, &error)) {
    return absl::InvalidArgumentError("provision record: invalid at");
  }
  return ProvisionRecord{spec_id->string_value(), at->string_value()};
}

std::optional<ProvisionRecord> ReadProvisionRecord(const TargetRoot& target) {
  absl::StatusOr<std::string> text =
      target.ReadFile(kProvisionRecordPath, kMaxProvisionRecordBytes);
  if (!text.ok()) return std::nullopt;
  absl::StatusOr<ProvisionRecord> record = ParseProvisionRecord(*text);
  if (!record.ok()) return std::nullopt;
  return *std::move(record);
}

absl::Status WriteProvisionRecord(TargetRoot& target, const ProvisionRecord& record) {
  return target.WriteFile(kProvisionRecordPath,
                          absl::StrCat(json::Serialize(RecordToJson(record)), "\n"), 0644);
}

absl::Status ClearProvisionRecord(TargetRoot& target) {
  absl::Status s = target.RemoveFile(kProvisionRecordPath);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
}

}  // namespace agent
}  // namespace xenchan
