// The `declarations` table's row format: which column holds which field, a
// declaration encoded as the values to write, and the values read back
// decoded and validated. The file on disk is treated as hostile (another
// program, a bad disk or an operator's hand may have changed it), so
// DecodeDeclarationRow accepts anything and checks every value: types, UUID
// forms, the channel id, limits from backend/util/api_limits.h, the framing
// spec, devid 1..kMaxDevid, generation > 0. It is fuzzed
// (//tests/store:declaration_row_fuzz_test).
//
// Pure functions; thread-safe.
#ifndef XENCHAN_BACKEND_STORE_DECLARATION_ROW_H_
#define XENCHAN_BACKEND_STORE_DECLARATION_ROW_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "backend/store/declaration.h"

namespace xenchan {

// One column value as SQLite stores it (its five storage classes).
struct StoredValue {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;  // kInteger
  double real = 0;      // kReal
  std::string bytes;    // kText (not necessarily UTF-8) and kBlob

  static StoredValue Null() { return StoredValue{}; }
  static StoredValue Integer(int64_t value) {
    StoredValue v;
    v.type = Type::kInteger;
    v.integer = value;
    return v;
  }
  static StoredValue Text(std::string text) {
    StoredValue v;
    v.type = Type::kText;
    v.bytes = std::move(text);
    return v;
  }
};

// The columns of `declarations`, in the order DeclarationColumnNames lists
// them and StoredRow holds them.
enum DeclarationColumn : size_t {
  kColumnDomainUuid,            // TEXT, canonical lower-case UUID
  kColumnChannelId,             // TEXT
  kColumnUid,                   // TEXT, canonical lower-case UUID
  kColumnBufferLimitBytes,      // INTEGER
  kColumnOverflowPolicy,        // TEXT, "BLOCK" or "DROP_OLDEST"
  kColumnWriteQueueLimitBytes,  // INTEGER
  kColumnDefaultFraming,        // TEXT, FramingSpec
  kColumnLastDevid,             // INTEGER 1..kMaxDevid, or NULL
  kColumnCreateTimeUnixNanos,   // INTEGER > 0
  kColumnGeneration,            // INTEGER > 0
  kColumnDomainName,            // TEXT, printable ASCII, may be empty (schema version 2)
  kDeclarationColumnCount,
};

// The SQL names of the columns, indexed by DeclarationColumn.
const std::array<const char*, kDeclarationColumnCount>& DeclarationColumnNames();

// One row: a value per DeclarationColumn.
using StoredRow = std::array<StoredValue, kDeclarationColumnCount>;

// The values that store `declaration` (assumed valid: ValidateDeclaration).
StoredRow EncodeDeclarationRow(const ChannelDeclaration& declaration);

// The declaration in `row`, or DATA_LOSS naming the first column that is the
// wrong type or holds a value no valid declaration has. Accepts any input.
absl::StatusOr<ChannelDeclaration> DecodeDeclarationRow(const StoredRow& row);

// The row's key for error messages: "domain <uuid> channel <id>", each value
// C-escaped, quoted and cut to 80 characters, or its type when it is not
// text. Printable ASCII, under 200 characters.
std::string DescribeRowKey(const StoredRow& row);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_DECLARATION_ROW_H_
