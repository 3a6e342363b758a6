// Fuzz target for the declaration store's row decoder, the code that reads
// a hostile file's values back (backend/store/declaration_row.h).
//
// Input: up to ten fields separated by '\n', one per column in
// DeclarationColumn order; a field's first byte is its storage class and the
// rest its value: 'n' NULL, 'i' INTEGER (decimal; anything unparsable is
// its length), 'r' REAL, 'b' BLOB, 't' TEXT; any other first byte makes the
// whole field TEXT. Missing fields are NULL.
//
// For any input: decoding does not crash; the key description is short
// printable ASCII; a row that decodes is a valid declaration with a
// positive generation, and encoding it gives back exactly the input row.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "backend/store/declaration_row.h"

namespace {

using xenchan::StoredRow;
using xenchan::StoredValue;

void Check(bool ok) {
  if (!ok) std::abort();
}

StoredValue ParseField(absl::string_view field) {
  StoredValue value;
  if (field.empty()) return value;
  const absl::string_view rest = field.substr(1);
  switch (field[0]) {
    case 'n':
      break;
    case 'i':
      value.type = StoredValue::Type::kInteger;
      if (!absl::SimpleAtoi(rest, &value.integer))
        value.integer = static_cast<int64_t>(rest.size());
      break;
    case 'r':
      value.type = StoredValue::Type::kReal;
      if (!absl::SimpleAtod(rest, &value.real)) value.real = 0;
      break;
    case 'b':
      value.type = StoredValue::Type::kBlob;
      value.bytes = std::string(rest);
      break;
    case 't':
      value.type = StoredValue::Type::kText;
      value.bytes = std::string(rest);
      break;
    default:
      value.type = StoredValue::Type::kText;
      value.bytes = std::string(field);
      break;
  }
  return value;
}

bool SameValue(const StoredValue& a, const StoredValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case StoredValue::Type::kNull:
      return true;
    case StoredValue::Type::kInteger:
      return a.integer == b.integer;
    case StoredValue::Type::kReal:
      return false;  // no column of a valid row is REAL
    case StoredValue::Type::kText:
    case StoredValue::Type::kBlob:
      return a.bytes == b.bytes;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  StoredRow row;
  size_t column = 0;
  for (absl::string_view field : absl::StrSplit(input, '\n')) {
    if (column == row.size()) break;
    row[column++] = ParseField(field);
  }

  const std::string key = xenchan::DescribeRowKey(row);
  Check(key.size() < 200);
  for (char c : key) Check(c >= 0x20 && c < 0x7f);

  const absl::StatusOr<xenchan::ChannelDeclaration> decoded = xenchan::DecodeDeclarationRow(row);
  if (!decoded.ok()) {
    Check(decoded.status().code() == absl::StatusCode::kDataLoss);
    return 0;
  }
  Check(xenchan::ValidateDeclaration(*decoded).ok());
  Check(decoded->generation > 0);
  const StoredRow encoded = xenchan::EncodeDeclarationRow(*decoded);
  for (size_t i = 0; i < row.size(); ++i) Check(SameValue(encoded[i], row[i]));
  const absl::StatusOr<xenchan::ChannelDeclaration> again = xenchan::DecodeDeclarationRow(encoded);
  Check(again.ok() && *again == *decoded);
  return 0;
}
