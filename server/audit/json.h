// JSON text for the audit log: string escaping that no input can break, and
// a builder for the flat objects that make up audit records.
//
// AppendJsonString's guarantees, whatever the input bytes:
//   - the output is one JSON string literal, all of it on one line: control
//     characters (U+0000..U+001F, U+007F) are escaped (\n, \t, ... or
//     \u00XX), and so are U+2028 and U+2029, which some tools treat as line
//     breaks;
//   - the output is valid UTF-8: each byte that is not part of a well-formed
//     UTF-8 sequence (stray continuation bytes, overlong forms, surrogates,
//     code points above U+10FFFF, truncated sequences) becomes \ufffd, the
//     replacement character;
//   - well-formed UTF-8 text is otherwise kept as is, so decoding the literal
//     gives the input back exactly when the input is valid UTF-8.
//
// Thread safety: pure functions; a JsonObject is not shared.
#ifndef XENCHAN_SERVER_AUDIT_JSON_H_
#define XENCHAN_SERVER_AUDIT_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace xenchan {
namespace audit {

// Appends `value` as a quoted JSON string literal to `*out`.
void AppendJsonString(absl::string_view value, std::string* out);
// `value` as a quoted JSON string literal.
std::string JsonString(absl::string_view value);

// Builds one JSON object, `{"k":v,...}`, keys in the order added. Keys are
// escaped like values. Example:
//   std::string line = JsonObject().String("event", "x").Uint("n", 3).Finish();
class JsonObject {
 public:
  JsonObject() : text_("{") {}
  JsonObject& String(absl::string_view key, absl::string_view value);
  JsonObject& Int(absl::string_view key, int64_t value);
  JsonObject& Uint(absl::string_view key, uint64_t value);
  JsonObject& Bool(absl::string_view key, bool value);
  // The object text (no newline). The builder is spent afterwards.
  std::string Finish();

 private:
  void Key(absl::string_view key);
  std::string text_;
  bool first_ = true;
};

}  // namespace audit
}  // namespace xenchan

#endif  // XENCHAN_SERVER_AUDIT_JSON_H_
