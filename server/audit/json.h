// JSON text for the audit log: a builder for the flat objects that make up
// audit records. String escaping, with the guarantees that keep a record on
// one line whatever the input, is backend/util/json_string.h.
//
// Thread safety: a JsonObject is not shared.
#ifndef XENCHAN_SERVER_AUDIT_JSON_H_
#define XENCHAN_SERVER_AUDIT_JSON_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "backend/util/json_string.h"

namespace xenchan {
namespace server {
namespace audit {

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
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_AUDIT_JSON_H_
