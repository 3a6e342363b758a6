// Fuzzes what a hostile backend controls on the guest side: the ring indices
// and data of the shared page, and the xenstore values the guest parses.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "backend/sim/guest/frontend_ring.h"
#include "backend/sim/guest/xenbus_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xenchan::sim::guest;
  xencons_interface page;
  memset(&page, 0, sizeof(page));
  memcpy(&page, data, size < sizeof(page) ? size : sizeof(page));
  char buf[4096];
  if (auto free_bytes = OutRingFree(&page); free_bytes.ok() && *free_bytes > kOutRingSize) {
    __builtin_trap();
  }
  const uint32_t prod_before = page.out_prod;
  if (auto sent = WriteOutRing(&page, buf, sizeof(buf)); sent.ok()) {
    if (*sent > kOutRingSize || page.out_prod - prod_before != *sent) __builtin_trap();
  }
  if (auto view = PeekInRing(&page); view.ok()) {
    if (view->available > kInRingSize) __builtin_trap();
    const size_t n = CopyFromInRing(&page, *view, 0, buf, sizeof(buf));
    if (n != view->available) __builtin_trap();
    ConsumeInRing(&page, *view, n);
    if (page.in_cons != page.in_prod) __builtin_trap();
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)ScanStateValue(text);
  (void)DevidFromNodename(text);
  if (auto id = ParseBackendId(text); id.has_value() && *id >= 0x7FF0) __builtin_trap();
  (void)IsSaneBackendPath(text);
  (void)IsValidChannelName(text);
  return 0;
}
