// A small strict JSON (RFC 8259) value, parser and serializer for the
// xenchan-agent's wire protocol. Requests come from the host through a Xen
// channel, so the parser treats its input as untrusted: it accepts exactly one
// JSON value with optional surrounding whitespace, validates UTF-8, refuses
// lone surrogates, control characters in strings, duplicate object keys,
// numbers that do not fit a double, and nesting deeper than a limit. It never
// crashes or loops on any input (fuzzed by tests/clients/agent).
//
// The serializer always produces valid JSON on one line: strings that are not
// valid UTF-8 (for example facts read from a file) get U+FFFD for each bad
// byte; non-finite numbers are written as null.
//
// Thread safety: values are plain data (thread-compatible); the functions are
// thread-safe.
#ifndef XENCHAN_CLIENTS_AGENT_JSON_H_
#define XENCHAN_CLIENTS_AGENT_JSON_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace agent {
namespace json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Value>;
  // Members in document (or insertion) order; keys are unique.
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;  // null
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Double(double d);
  static Value String(std::string s);
  static Value MakeArray(Array a = {});
  static Value MakeObject(Object o = {});

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors; calling one of the wrong type is a programming error (they
  // return a default value then, never crash).
  bool bool_value() const { return bool_; }
  double number_value() const { return number_; }
  // True if the number is integral and within int64 (as `1`, `1.0`, `1e3`).
  bool is_integer() const;
  int64_t int_value() const;
  const std::string& string_value() const { return string_; }
  const Array& array() const { return array_; }
  const Object& object() const { return object_; }
  Array& mutable_array() { return array_; }

  // For objects: the member named `key`, or nullptr.
  const Value* Find(absl::string_view key) const;
  // For objects: appends (or replaces) member `key`. Returns *this.
  Value& Set(std::string key, Value value);

  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  bool integral_ = false;  // number_ came from / stands for an exact int64
  int64_t int_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

struct ParseOptions {
  // Arrays and objects nested deeper than this are refused.
  int max_depth = 32;
};

// Parses `text` as exactly one JSON value. INVALID_ARGUMENT with a message
// naming the byte offset for anything that is not strict JSON.
absl::StatusOr<Value> Parse(absl::string_view text, const ParseOptions& options = {});

// Compact single-line JSON for `value` (no whitespace between tokens, no
// newline characters anywhere in the output).
std::string Serialize(const Value& value);

// Appends `s` as a JSON string literal (quoted, escaped, invalid UTF-8
// replaced by U+FFFD) to `out`.
void AppendQuoted(absl::string_view s, std::string* out);

}  // namespace json
}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_JSON_H_
