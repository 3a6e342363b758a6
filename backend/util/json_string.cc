// JSON string escaping; see json_string.h for the guarantees.
#include "backend/util/json_string.h"

namespace xenchan {
namespace {

constexpr char kHex[] = "0123456789abcdef";

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629,
// Unicode table 3-7), or 0 if its first byte does not start one.
size_t Utf8SequenceLength(absl::string_view s) {
  const unsigned char c0 = static_cast<unsigned char>(s[0]);
  size_t len;
  unsigned char lo = 0x80;  // range of the second byte
  unsigned char hi = 0xBF;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    len = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    len = 3;
    if (c0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (c0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    len = 4;
    if (c0 == 0xF0) lo = 0x90;  // no overlong forms
    if (c0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  const unsigned char c1 = static_cast<unsigned char>(s[1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if (!IsContinuation(static_cast<unsigned char>(s[i]))) return 0;
  }
  return len;
}

void AppendUnicodeEscape(unsigned int code, std::string* out) {
  out->append("\\u");
  out->push_back(kHex[(code >> 12) & 0xF]);
  out->push_back(kHex[(code >> 8) & 0xF]);
  out->push_back(kHex[(code >> 4) & 0xF]);
  out->push_back(kHex[code & 0xF]);
}

}  // namespace

void AppendJsonString(absl::string_view value, std::string* out) {
  out->reserve(out->size() + value.size() + 2);
  out->push_back('"');
  size_t i = 0;
  while (i < value.size()) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\f':
          out->append("\\f");
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
        default:
          if (c < 0x20 || c == 0x7F) {
            AppendUnicodeEscape(c, out);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const size_t len = Utf8SequenceLength(value.substr(i));
    if (len == 0) {
      AppendUnicodeEscape(0xFFFD, out);
      ++i;
      continue;
    }
    // U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: E2 80 A8/A9.
    if (len == 3 && c == 0xE2 && static_cast<unsigned char>(value[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(value[i + 2]) == 0xA8 ||
         static_cast<unsigned char>(value[i + 2]) == 0xA9)) {
      AppendUnicodeEscape(static_cast<unsigned char>(value[i + 2]) == 0xA8 ? 0x2028 : 0x2029, out);
    } else {
      out->append(value.data() + i, len);
    }
    i += len;
  }
  out->push_back('"');
}

std::string JsonString(absl::string_view value) {
  std::string out;
  AppendJsonString(value, &out);
  return out;
}

}  // namespace xenchan
