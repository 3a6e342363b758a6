// The audit log's JSON object builder; see json.h.
#include "server/audit/json.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace server {
namespace audit {

void JsonObject::Key(absl::string_view key) {
  if (!first_) text_.push_back(',');
  first_ = false;
  AppendJsonString(key, &text_);
  text_.push_back(':');
}

JsonObject& JsonObject::String(absl::string_view key, absl::string_view value) {
  Key(key);
  AppendJsonString(value, &text_);
  return *this;
}

JsonObject& JsonObject::Int(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&text_, value);
  return *this;
}

JsonObject& JsonObject::Uint(absl::string_view key, uint64_t value) {
  Key(key);
  absl::StrAppend(&text_, value);
  return *this;
}

JsonObject& JsonObject::Bool(absl::string_view key, bool value) {
  Key(key);
  text_.append(value ? "true" : "false");
  return *this;
}

std::string JsonObject::Finish() {
  text_.push_back('}');
  return std::move(text_);
}

}  // namespace audit
}  // namespace server
}  // namespace xenchan
