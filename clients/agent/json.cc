// Strict JSON parser and serializer of the agent protocol (see json.h).
#include "clients/agent/json.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenchan {
namespace agent {
namespace json {

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}

Value Value::Int(int64_t i) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = static_cast<double>(i);
  v.integral_ = true;
  v.int_ = i;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = d;
  // 2^63 is the first double above int64's range.
  if (std::isfinite(d) && d == std::floor(d) && d >= -9223372036854775808.0 &&
      d < 9223372036854775808.0) {
    v.integral_ = true;
    v.int_ = static_cast<int64_t>(d);
  }
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}

Value Value::MakeArray(Array a) {
  Value v;
  v.type_ = Type::kArray;
  v.array_ = std::move(a);
  return v;
}

Value Value::MakeObject(Object o) {
  Value v;
  v.type_ = Type::kObject;
  v.object_ = std::move(o);
  return v;
}

bool Value::is_integer() const { return type_ == Type::kNumber && integral_; }

int64_t Value::int_value() const { return integral_ ? int_ : 0; }

const Value* Value::Find(absl::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const auto& [k, v] : object_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value& Value::Set(std::string key, Value value) {
  if (type_ != Type::kObject) return *this;
  for (auto& [k, v] : object_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  object_.emplace_back(std::move(key), std::move(value));
  return *this;
}

bool Value::operator==(const Value& other) const {
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return bool_ == other.bool_;
    case Type::kNumber:
      if (integral_ && other.integral_) return int_ == other.int_;
      return number_ == other.number_;
    case Type::kString:
      return string_ == other.string_;
    case Type::kArray:
      return array_ == other.array_;
    case Type::kObject:
      return object_ == other.object_;
  }
  return false;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Parser {
 public:
  Parser(absl::string_view text, const ParseOptions& options) : s_(text), options_(options) {}

  absl::StatusOr<Value> ParseDocument() {
    SkipWhitespace();
    absl::StatusOr<Value> v = ParseValue(0);
    if (!v.ok()) return v;
    SkipWhitespace();
    if (pos_ != s_.size()) return Error("unexpected data after the value");
    return v;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: ", what, " at byte ", pos_));
  }

  void SkipWhitespace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(absl::string_view literal) {
    if (s_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  absl::StatusOr<Value> ParseValue(int depth) {
    if (pos_ >= s_.size()) return Error("unexpected end of input");
    switch (s_[pos_]) {
      case '{':
        return ParseObject(depth + 1);
      case '[':
        return ParseArray(depth + 1);
      case '"': {
        absl::StatusOr<std::string> str = ParseString();
        if (!str.ok()) return str.status();
        return Value::String(*std::move(str));
      }
      case 't':
        if (Consume("true")) return Value::Bool(true);
        return Error("invalid literal");
      case 'f':
        if (Consume("false")) return Value::Bool(false);
        return Error("invalid literal");
      case 'n':
        if (Consume("null")) return Value::Null();
        return Error("invalid literal");
      default:
        return ParseNumber();
    }
  }

  absl::StatusOr<Value> ParseObject(int depth) {
    if (depth > options_.max_depth) return Error("nesting too deep");
    ++pos_;  // '{'
    Value::Object members;
    SkipWhitespace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return Value::MakeObject(std::move(members));
    }
    while (true) {
      SkipWhitespace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a string key");
      absl::StatusOr<std::string> key = ParseString();
      if (!key.ok()) return key.status();
      for (const auto& m : members) {
        if (m.first == *key) return Error("duplicate key");
      }
      SkipWhitespace();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      SkipWhitespace();
      absl::StatusOr<Value> v = ParseValue(depth);
      if (!v.ok()) return v;
      members.emplace_back(*std::move(key), *std::move(v));
      SkipWhitespace();
      if (pos_ >= s_.size()) return Error("unexpected end of input");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return Value::MakeObject(std::move(members));
      }
      return Error("expected ',' or '}'");
    }
  }

  absl::StatusOr<Value> ParseArray(int depth) {
    if (depth > options_.max_depth) return Error("nesting too deep");
    ++pos_;  // '['
    Value::Array items;
    SkipWhitespace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return Value::MakeArray(std::move(items));
    }
    while (true) {
      SkipWhitespace();
      absl::StatusOr<Value> v = ParseValue(depth);
      if (!v.ok()) return v;
      items.push_back(*std::move(v));
      SkipWhitespace();
      if (pos_ >= s_.size()) return Error("unexpected end of input");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return Value::MakeArray(std::move(items));
      }
      return Error("expected ',' or ']'");
    }
  }

  // Reads 4 hex digits at pos_.
  absl::StatusOr<uint32_t> ParseHex4() {
    if (pos_ + 4 > s_.size()) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Error("invalid \\u escape");
      }
    }
    return v;
  }

  absl::StatusOr<std::string> ParseString() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) return Error("control character in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) return Error("unterminated string");
        const char e = s_[pos_++];
        switch (e) {
          case '"':
            out.push_back('"');
            break;
          case '\\':
            out.push_back('\\');
            break;
          case '/':
            out.push_back('/');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'u': {
            absl::StatusOr<uint32_t> hi = ParseHex4();
            if (!hi.ok()) return hi.status();
            uint32_t cp = *hi;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return Error("lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (!Consume("\\u")) return Error("lone high surrogate");
              absl::StatusOr<uint32_t> lo = ParseHex4();
              if (!lo.ok()) return lo.status();
              if (*lo < 0xDC00 || *lo > 0xDFFF) return Error("lone high surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
            }
            AppendUtf8(cp, &out);
            break;
          }
          default:
            return Error("invalid escape");
        }
        continue;
      }
      const size_t len = Utf8SequenceLength(s_, pos_);
      if (len == 0) return Error("invalid UTF-8");
      out.append(s_.data() + pos_, len);
      pos_ += len;
    }
  }

  absl::StatusOr<Value> ParseNumber() {
    const size_t start = pos_;
    const auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (!digit()) return Error("invalid value");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (digit()) ++pos_;
    }
    bool integral = true;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (!digit()) return Error("invalid number");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) return Error("invalid number");
      while (digit()) ++pos_;
    }
    const absl::string_view text = s_.substr(start, pos_ - start);
    if (integral) {
      int64_t i;
      if (absl::SimpleAtoi(text, &i)) return Value::Int(i);
    }
    double d;
    if (!absl::SimpleAtod(text, &d) || !std::isfinite(d)) return Error("number out of range");
    return Value::Double(d);
  }

  absl::string_view s_;
  const ParseOptions& options_;
  size_t pos_ = 0;
};

void AppendValue(const Value& v, std::string* out) {
  switch (v.type()) {
    case Value::Type::kNull:
      out->append("null");
      return;
    case Value::Type::kBool:
      out->append(v.bool_value() ? "true" : "false");
      return;
    case Value::Type::kNumber: {
      if (v.is_integer()) {
        absl::StrAppend(out, v.int_value());
      } else if (!std::isfinite(v.number_value())) {
        out->append("null");
      } else {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.17g", v.number_value());
        out->append(buf);
      }
      return;
    }
    case Value::Type::kString:
      AppendQuoted(v.string_value(), out);
      return;
    case Value::Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const Value& item : v.array()) {
        if (!first) out->push_back(',');
        first = false;
        AppendValue(item, out);
      }
      out->push_back(']');
      return;
    }
    case Value::Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, item] : v.object()) {
        if (!first) out->push_back(',');
        first = false;
        AppendQuoted(k, out);
        out->push_back(':');
        AppendValue(item, out);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

absl::StatusOr<Value> Parse(absl::string_view text, const ParseOptions& options) {
  return Parser(text, options).ParseDocument();
}

std::string Serialize(const Value& value) {
  std::string out;
  AppendValue(value, &out);
  return out;
}

void AppendQuoted(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for one bad byte
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

}  // namespace json
}  // namespace agent
}  // namespace xenchan
