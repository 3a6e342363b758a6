// Fuzz target: the xenstored frame parser and payload helpers on arbitrary
// bytes, fed in arbitrary chunk sizes. Checks that chunking does not change
// what is parsed, that every message round-trips, and that the payload
// splitters account for every byte.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/sim/xenstore/wire.h"

namespace {

using xenchan::sim::xenstore::AtoiLike;
using xenchan::sim::xenstore::DecodeMessage;
using xenchan::sim::xenstore::EncodeMessage;
using xenchan::sim::xenstore::ErrnoFromName;
using xenchan::sim::xenstore::ErrnoName;
using xenchan::sim::xenstore::FrameParser;
using xenchan::sim::xenstore::kPayloadMax;
using xenchan::sim::xenstore::Message;
using xenchan::sim::xenstore::OneArg;
using xenchan::sim::xenstore::SplitStrings;

void Check(bool ok) {
  if (!ok) std::abort();
}

// Parses `bytes` in chunks of `chunk`; returns the messages and whether the
// stream broke.
std::vector<Message> ParseAll(const std::string& bytes, size_t chunk, bool* broken) {
  FrameParser parser;
  std::vector<Message> out;
  *broken = false;
  for (size_t off = 0; off < bytes.size() && !*broken; off += chunk) {
    parser.Append(absl::string_view(bytes).substr(off, chunk));
    Check(parser.buffered() <= bytes.size());
    while (true) {
      auto next = parser.Next();
      if (!next.ok()) {
        *broken = true;
        break;
      }
      if (!next->has_value()) break;
      out.push_back(**next);
    }
  }
  return out;
}

void CheckPayload(const Message& m) {
  Check(m.payload.size() <= kPayloadMax);
  const std::string frame = EncodeMessage(m.type, m.req_id, m.tx_id, m.payload);
  auto back = DecodeMessage(frame);
  Check(back.ok());
  Check(back->type == m.type && back->req_id == m.req_id && back->tx_id == m.tx_id &&
        back->payload == m.payload);
  auto split = SplitStrings(m.payload);
  size_t total = split.rest.size();
  for (auto s : split.strings) {
    Check(s.find('\0') == absl::string_view::npos);
    total += s.size() + 1;
  }
  Check(total == m.payload.size());
  Check(split.rest.find('\0') == absl::string_view::npos);
  auto one = OneArg(m.payload);
  Check(one.has_value() == (split.strings.size() == 1 && split.rest.empty()));
  (void)AtoiLike(m.payload);
  auto name = ErrnoName(static_cast<int>(m.type));
  Check(ErrnoFromName(name).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = data[0] % 23 + 1;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool broken_chunked = false;
  bool broken_whole = false;
  const std::vector<Message> chunked = ParseAll(bytes, chunk, &broken_chunked);
  const std::vector<Message> whole = ParseAll(bytes, bytes.size() + 1, &broken_whole);
  Check(broken_chunked == broken_whole);
  Check(chunked.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    Check(chunked[i].type == whole[i].type);
    Check(chunked[i].req_id == whole[i].req_id);
    Check(chunked[i].tx_id == whole[i].tx_id);
    Check(chunked[i].payload == whole[i].payload);
    CheckPayload(whole[i]);
  }
  return 0;
}
