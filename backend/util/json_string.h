// JSON string literals that no input can break: the one escaper shared by
// xenchand (the audit log) and xensim (its JSON listings). The in-guest agent
// keeps its own (clients/agent/json.h): it builds without this tree.
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
// Thread safety: pure functions.
#ifndef XENCHAN_BACKEND_UTIL_JSON_STRING_H_
#define XENCHAN_BACKEND_UTIL_JSON_STRING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace xenchan {

// Appends `value` as a quoted JSON string literal to `*out`.
void AppendJsonString(absl::string_view value, std::string* out);
// `value` as a quoted JSON string literal.
std::string JsonString(absl::string_view value);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_JSON_STRING_H_
