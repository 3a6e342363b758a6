// Fuzz target for the shared JSON string escaping (the audit log's and
// xensim's). For any input:
// the literal is one line of printable ASCII or valid UTF-8 (no raw control
// characters, U+2028 or U+2029), it decodes (with an independent decoder
// written here) to the input when the input is valid UTF-8, and the decoded
// text (invalid bytes replaced by U+FFFD) survives another round unchanged.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "backend/util/json_string.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// Decodes one code point at s[*i]; nullopt if not well-formed UTF-8.
std::optional<uint32_t> DecodeUtf8(const std::string& s, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(*i);
  int len;
  uint32_t cp;
  if (c < 0x80) {
    len = 1;
    cp = c;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return std::nullopt;
  }
  if (*i + len > s.size()) return std::nullopt;
  for (int k = 1; k < len; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  *i += len;
  return cp;
}

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (!DecodeUtf8(s, &i)) return false;
  }
  return true;
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

// Decodes a JSON string literal (RFC 8259 section 7); aborts if malformed.
std::string DecodeJsonString(const std::string& lit) {
  Check(lit.size() >= 2 && lit.front() == '"' && lit.back() == '"');
  std::string out;
  for (size_t i = 1; i + 1 < lit.size();) {
    const unsigned char c = static_cast<unsigned char>(lit[i]);
    Check(c >= 0x20 && c != 0x7F && c != '"');
    if (c != '\\') {
      const size_t start = i;
      const std::optional<uint32_t> cp = DecodeUtf8(lit, &i);
      Check(cp.has_value() && *cp != 0x2028 && *cp != 0x2029);
      out.append(lit, start, i - start);
      continue;
    }
    Check(i + 2 < lit.size());
    const char e = lit[i + 1];
    i += 2;
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
        Check(i + 4 < lit.size());
        const std::string hex = lit.substr(i, 4);
        for (char h : hex) Check(std::isxdigit(static_cast<unsigned char>(h)));
        const uint32_t cp = static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));
        Check(cp < 0xD800 || cp > 0xDFFF);  // the escaper never needs surrogates
        AppendUtf8(cp, &out);
        i += 4;
        break;
      }
      default:
        Check(false);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string literal = xenchan::JsonString(input);
  Check(literal.find('\n') == std::string::npos);
  Check(IsValidUtf8(literal));
  const std::string decoded = DecodeJsonString(literal);
  Check(IsValidUtf8(decoded));
  if (IsValidUtf8(input)) Check(decoded == input);
  // Sanitising is done once: the decoded text survives another round.
  Check(DecodeJsonString(xenchan::JsonString(decoded)) == decoded);
  return 0;
}
