// Fuzz target for what a hostile guest controls on the engine's data path:
// the values it writes into xenstore (state, ring-ref, port, names), and the
// indices and contents of its ring page, fed through the engine's ring
// round (ConsoleRing drain into an OutputBuffer under BLOCK or DROP_OLDEST,
// fill from a WriteQueue, consumption tracking). Checks the invariants the
// engine relies on: strict parses round-trip, no round moves more than a
// ring's worth, retained bytes never exceed the limit, acknowledgement
// offsets never pass each other or go backwards.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"
#include "backend/engine/output_buffer.h"
#include "backend/engine/write_queue.h"
#include "backend/ring/console_ring.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

void FuzzValue(const std::string& text) {
  if (auto v = xenchan::ParseDecimal(text, 0x7fffffff)) Check(absl::StrCat(*v) == text);
  if (auto s = xenchan::ParseXenbusState(text)) {
    Check(static_cast<int>(*s) >= 0 && static_cast<int>(*s) <= 8);
  }
  if (xenchan::ValidateChannelId(text).ok()) {
    Check(!text.empty() && text.size() <= 64);
    for (char c : text)
      Check(c == '.' || c == '_' || c == '-' || isalnum(static_cast<unsigned char>(c)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t pos = 0;
  auto take = [&](size_t n) {
    std::string s;
    while (n-- > 0 && pos < size) s.push_back(static_cast<char>(data[pos++]));
    return s;
  };
  auto byte = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };

  alignas(4096) static unsigned char page[4096];
  std::memset(page, 0, sizeof(page));
  const bool drop = byte() & 1;
  xenchan::OutputBuffer buffer(
      1 + byte() * 64,
      drop ? xenchan::OverflowPolicy::kDropOldest : xenchan::OverflowPolicy::kBlock, 0);
  buffer.NewEpoch();
  xenchan::WriteQueue queue(4096);
  queue.Reset(buffer.epoch());
  xenchan::ConsoleRing ring(page);
  const uint64_t in_base = ring.in_produced();
  uint64_t last_consumed = 0;
  xenchan::ReadCursor reader = buffer.OldestCursor();

  while (pos < size) {
    switch (byte() % 6) {
      case 0:  // a xenstore value
        FuzzValue(take(byte() % 24));
        break;
      case 1: {  // the guest scribbles on the page (indices or data)
        const size_t at = (static_cast<size_t>(byte()) << 4 | (byte() & 0xf)) % sizeof(page);
        const std::string bytes = take(byte() % 16);
        std::memcpy(page + at, bytes.data(), std::min(bytes.size(), sizeof(page) - at));
        break;
      }
      case 2: {  // one drain round, as RingChannel::Service does it
        char buf[xenchan::ConsoleRing::kOutSize];
        const size_t want = std::min(buffer.Space(), sizeof(buf));
        auto n = ring.DrainOut(buf, want);
        if (n.ok()) {
          Check(*n <= want);
          Check(buffer.Append(absl::string_view(buf, *n)).ok());
        }
        Check(buffer.retained_bytes() <= buffer.limit());
        break;
      }
      case 3: {  // host input, then a fill round
        (void)queue.Append(take(byte()));
        char buf[xenchan::ConsoleRing::kInSize];
        const size_t n = queue.Peek(buf, sizeof(buf));
        auto put = ring.FillIn(buf, n);
        if (put.ok()) {
          Check(*put <= n);
          queue.MarkDelivered(*put);
        }
        auto consumed = ring.InConsumed();
        if (consumed.ok()) {
          queue.SetConsumed(*consumed > in_base ? *consumed - in_base : 0);
        }
        Check(queue.consumed_offset() <= queue.delivered_offset());
        Check(queue.delivered_offset() <= queue.accepted_offset());
        Check(queue.consumed_offset() >= last_consumed);
        last_consumed = queue.consumed_offset();
        break;
      }
      case 4: {  // a reader takes some bytes
        for (const auto& rec : buffer.Read(&reader, byte() * 16)) {
          Check(rec.kind != xenchan::OutputRecord::Kind::kData || !rec.data.empty());
        }
        break;
      }
      case 5:  // the guest reconnects
        buffer.NewEpoch();
        queue.Reset(buffer.epoch());
        last_consumed = 0;
        break;
    }
  }
  return 0;
}
