// The `declarations` row format; see declaration_row.h.
#include "backend/store/declaration_row.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace {

// A value for an error message: text C-escaped and quoted, with as many
// leading bytes as fit in 80 escaped characters ("..." after the quote if
// some were left out), or the type.
std::string Describe(const StoredValue& value) {
  constexpr size_t kMaxShown = 80;
  switch (value.type) {
    case StoredValue::Type::kNull:
      return "NULL";
    case StoredValue::Type::kInteger:
      return absl::StrCat(value.integer);
    case StoredValue::Type::kReal:
      return "a REAL";
    case StoredValue::Type::kBlob:
      return absl::StrCat("a BLOB of ", value.bytes.size(), " bytes");
    case StoredValue::Type::kText:
      break;
  }
  const absl::string_view text(value.bytes);
  size_t shown = std::min(text.size(), kMaxShown);
  std::string escaped = absl::CHexEscape(text.substr(0, shown));
  while (escaped.size() > kMaxShown) escaped = absl::CHexEscape(text.substr(0, --shown));
  return absl::StrCat("'", escaped, shown < text.size() ? "'..." : "'");
}

absl::Status Bad(DeclarationColumn column, absl::string_view problem) {
  return absl::DataLossError(
      absl::StrCat("column ", DeclarationColumnNames()[column], ": ", problem));
}

absl::StatusOr<std::string> Text(const StoredRow& row, DeclarationColumn column) {
  const StoredValue& value = row[column];
  if (value.type != StoredValue::Type::kText) {
    return Bad(column, absl::StrCat("expected TEXT, found ", Describe(value)));
  }
  return value.bytes;
}

absl::StatusOr<int64_t> Integer(const StoredRow& row, DeclarationColumn column) {
  const StoredValue& value = row[column];
  if (value.type != StoredValue::Type::kInteger) {
    return Bad(column, absl::StrCat("expected INTEGER, found ", Describe(value)));
  }
  return value.integer;
}

// An INTEGER column's value if it lies in min..max.
absl::StatusOr<int64_t> IntegerIn(const StoredRow& row, DeclarationColumn column, int64_t min,
                                  int64_t max) {
  absl::StatusOr<int64_t> value = Integer(row, column);
  if (!value.ok()) return value.status();
  if (*value < min || *value > max) {
    return Bad(column, absl::StrCat(*value, " is outside ", min, "..", max));
  }
  return value;
}

}  // namespace

const std::array<const char*, kDeclarationColumnCount>& DeclarationColumnNames() {
  static constexpr std::array<const char*, kDeclarationColumnCount> kNames = {
      "domain_uuid",        "channel_id",      "uid",
      "buffer_limit_bytes", "overflow_policy", "write_queue_limit_bytes",
      "default_framing",    "last_devid",      "create_time_unix_nanos",
      "generation",         "domain_name",
  };
  return kNames;
}

StoredRow EncodeDeclarationRow(const ChannelDeclaration& declaration) {
  StoredRow row;
  row[kColumnDomainUuid] = StoredValue::Text(declaration.domain_uuid);
  row[kColumnChannelId] = StoredValue::Text(declaration.channel_id);
  row[kColumnUid] = StoredValue::Text(declaration.uid);
  row[kColumnBufferLimitBytes] =
      StoredValue::Integer(static_cast<int64_t>(declaration.config.buffer_limit_bytes));
  row[kColumnOverflowPolicy] = StoredValue::Text(OverflowName(declaration.config.overflow));
  row[kColumnWriteQueueLimitBytes] =
      StoredValue::Integer(static_cast<int64_t>(declaration.config.write_queue_limit_bytes));
  row[kColumnDefaultFraming] = StoredValue::Text(declaration.config.default_framing);
  row[kColumnLastDevid] = declaration.last_devid.has_value()
                              ? StoredValue::Integer(*declaration.last_devid)
                              : StoredValue::Null();
  row[kColumnCreateTimeUnixNanos] =
      StoredValue::Integer(absl::ToUnixNanos(declaration.create_time));
  row[kColumnGeneration] = StoredValue::Integer(declaration.generation);
  row[kColumnDomainName] = StoredValue::Text(declaration.domain_name);
  return row;
}

absl::StatusOr<ChannelDeclaration> DecodeDeclarationRow(const StoredRow& row) {
  ChannelDeclaration d;
  // Each field is read with its column's type and range; the values whose
  // checks are more than a range (UUIDs, the channel id, the framing) go
  // through ValidateDeclaration below, whose message then names the field.
  absl::StatusOr<std::string> text = Text(row, kColumnDomainUuid);
  if (!text.ok()) return text.status();
  d.domain_uuid = *std::move(text);
  text = Text(row, kColumnChannelId);
  if (!text.ok()) return text.status();
  d.channel_id = *std::move(text);
  text = Text(row, kColumnUid);
  if (!text.ok()) return text.status();
  d.uid = *std::move(text);

  absl::StatusOr<int64_t> number =
      IntegerIn(row, kColumnBufferLimitBytes, kMinBufferLimitBytes, kMaxBufferLimitBytes);
  if (!number.ok()) return number.status();
  d.config.buffer_limit_bytes = static_cast<uint64_t>(*number);
  text = Text(row, kColumnOverflowPolicy);
  if (!text.ok()) return text.status();
  const std::optional<DeclaredChannelConfig::Overflow> overflow = ParseOverflowName(*text);
  if (!overflow.has_value()) {
    return Bad(kColumnOverflowPolicy, absl::StrCat(Describe(row[kColumnOverflowPolicy]),
                                                   " is neither BLOCK nor DROP_OLDEST"));
  }
  d.config.overflow = *overflow;
  number = IntegerIn(row, kColumnWriteQueueLimitBytes, kMinWriteQueueLimitBytes,
                     kMaxWriteQueueLimitBytes);
  if (!number.ok()) return number.status();
  d.config.write_queue_limit_bytes = static_cast<uint64_t>(*number);
  text = Text(row, kColumnDefaultFraming);
  if (!text.ok()) return text.status();
  d.config.default_framing = *std::move(text);

  if (row[kColumnLastDevid].type != StoredValue::Type::kNull) {
    number = IntegerIn(row, kColumnLastDevid, 1, kMaxDevid);
    if (!number.ok()) return number.status();
    d.last_devid = static_cast<uint32_t>(*number);
  }
  // INT64_MAX is where ToUnixNanos saturates, so no valid time encodes to it.
  number = IntegerIn(row, kColumnCreateTimeUnixNanos, 1, INT64_MAX - 1);
  if (!number.ok()) return number.status();
  d.create_time = absl::FromUnixNanos(*number);
  number = IntegerIn(row, kColumnGeneration, 1, INT64_MAX);
  if (!number.ok()) return number.status();
  d.generation = *number;
  text = Text(row, kColumnDomainName);
  if (!text.ok()) return text.status();
  d.domain_name = *std::move(text);

  const absl::Status valid = ValidateDeclaration(d);
  if (!valid.ok()) return absl::DataLossError(valid.message());
  return d;
}

std::string DescribeRowKey(const StoredRow& row) {
  return absl::StrCat("domain ", Describe(row[kColumnDomainUuid]), " channel ",
                      Describe(row[kColumnChannelId]));
}

}  // namespace xenchan
