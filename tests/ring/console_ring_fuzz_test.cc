// Fuzzes ConsoleRing with a hostile guest: the input is a script of index
// scribbles, data scribbles and backend operations on one shared page. The
// ring must never read or write outside the page (ASan checks the guard
// areas around it) and its accounting must stay consistent.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/ring/console_ring.h"

namespace {

constexpr size_t kPage = 4096;

uint32_t Take32(const uint8_t*& data, size_t& size) {
  uint32_t v = 0;
  const size_t n = size < 4 ? size : 4;
  std::memcpy(&v, data, n);
  data += n;
  size -= n;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The page sits in the middle of a larger buffer so that any stray access
  // past it would show up as a changed guard byte even without ASan.
  std::vector<unsigned char> mem(3 * kPage, 0xA5);
  unsigned char* page = mem.data() + kPage;
  std::memset(page, 0, kPage);
  if (size >= 16) {  // initial index values (restart recovery path)
    std::memcpy(page + 3072, data, 16);
    data += 16;
    size -= 16;
  }
  xenchan::ConsoleRing ring(page);
  std::vector<char> buf(8192);
  uint64_t drained = 0;
  uint64_t consumed = 0;
  while (size > 0) {
    const uint8_t op = *data++;
    --size;
    const uint32_t arg = Take32(data, size);
    switch (op % 6) {
      case 0:  // guest scribbles an index (any of the four)
        std::memcpy(page + 3072 + 4 * (arg & 3), &arg, 4);
        break;
      case 1:  // guest scribbles data
        page[arg % 3072] = static_cast<unsigned char>(arg >> 24);
        break;
      case 2: {
        auto n = ring.DrainOut(buf.data(), arg % buf.size());
        if (n.ok()) {
          if (*n > 2048) abort();
          drained += *n;
        }
        break;
      }
      case 3: {
        auto n = ring.FillIn(buf.data(), arg % buf.size());
        if (n.ok() && *n > 1024) abort();
        break;
      }
      case 4: {
        auto n = ring.InConsumed();
        if (n.ok()) {
          // Never past what was produced, never back from what was reported.
          if (*n > ring.in_produced() || *n < consumed) abort();
          consumed = *n;
        }
        break;
      }
      case 5: {
        auto a = ring.OutAvailable();
        auto f = ring.InFree();
        if ((a.ok() && *a > 2048) || (f.ok() && *f > 1024)) abort();
        break;
      }
    }
  }
  if (drained != ring.out_consumed()) abort();
  for (size_t i = 0; i < kPage; ++i) {
    if (mem[i] != 0xA5 || mem[2 * kPage + i] != 0xA5) abort();
  }
  return 0;
}
