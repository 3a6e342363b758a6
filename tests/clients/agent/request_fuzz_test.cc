// Fuzz target for the agent's request parsing: bytes as they would arrive on
// the channel are cut into lines (LineBuffer, small limit so oversize lines
// are exercised), each line is parsed as strict JSON, and every accepted
// value must serialize to one line that parses back to an equal value. Error
// replies for every line must be valid one-line JSON too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "clients/agent/handler.h"
#include "clients/agent/json.h"
#include "clients/agent/line_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using xenchan::agent::LineBuffer;
  namespace json = xenchan::agent::json;
  LineBuffer lines(4096);
  std::vector<LineBuffer::Event> events;
  // Feed in two pieces to exercise reassembly.
  const absl::string_view all(reinterpret_cast<const char*>(data), size);
  lines.Append(all.substr(0, size / 2), &events);
  lines.Append(all.substr(size / 2), &events);
  for (const LineBuffer::Event& e : events) {
    if (e.kind != LineBuffer::Event::Kind::kLine) continue;
    if (e.line.size() > 4096 || e.line.find('\n') != std::string::npos) abort();
    absl::StatusOr<json::Value> v = json::Parse(e.line);
    if (!v.ok()) {
      const std::string reply =
          xenchan::agent::ErrorReply(xenchan::agent::kParseError, v.status().message());
      if (!json::Parse(reply).ok() || reply.find('\n') != std::string::npos) abort();
      continue;
    }
    const std::string text = json::Serialize(*v);
    if (text.find('\n') != std::string::npos) abort();
    absl::StatusOr<json::Value> back = json::Parse(text);
    if (!back.ok() || !(*back == *v)) abort();
  }
  return 0;
}
