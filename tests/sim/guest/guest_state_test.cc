// Unit tests of the simulated guest's saved-state codec (guest_state.h).
#include "backend/sim/guest/guest_state.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

SavedGuest Sample() {
  SavedGuest g;
  g.boot_id = "01234567-89ab-cdef-0123-456789abcdef";
  g.resumes = 3;
  SavedDevice bound;
  bound.nodename = "device/console/1";
  bound.type = "console";
  bound.seq = 1;
  bound.bound = true;
  bound.vtermno = 0x58656e + 1;
  bound.hvc_index = 1;
  bound.bytes_in = 10;
  bound.bytes_out = 20;
  bound.page = std::string(kSavedPageSize, '\0');
  bound.page[1024] = 'x';
  SavedDevice unbound;
  unbound.nodename = "device/vif/0";
  unbound.type = "vif";
  unbound.seq = 2;
  g.devices = {bound, unbound};
  return g;
}

TEST(GuestStateTest, RoundTrips) {
  const SavedGuest g = Sample();
  auto back = DecodeSavedGuest(EncodeSavedGuest(g));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->boot_id, g.boot_id);
  EXPECT_EQ(back->resumes, 3u);
  ASSERT_EQ(back->devices.size(), 2u);
  EXPECT_EQ(back->devices[0].nodename, "device/console/1");
  EXPECT_TRUE(back->devices[0].bound);
  EXPECT_EQ(back->devices[0].vtermno, g.devices[0].vtermno);
  EXPECT_EQ(back->devices[0].hvc_index, 1);
  EXPECT_EQ(back->devices[0].bytes_in, 10u);
  EXPECT_EQ(back->devices[0].bytes_out, 20u);
  EXPECT_EQ(back->devices[0].page, g.devices[0].page);
  EXPECT_FALSE(back->devices[1].bound);
  EXPECT_EQ(back->devices[1].type, "vif");
  EXPECT_EQ(back->devices[1].hvc_index, -1);
}

TEST(GuestStateTest, RejectsMalformed) {
  EXPECT_FALSE(DecodeSavedGuest("").ok());
  EXPECT_FALSE(DecodeSavedGuest("xensim-guest-state 2\nboot - 0\nend\n").ok());
  EXPECT_TRUE(DecodeSavedGuest("xensim-guest-state 1\nboot - 0\nend\n").ok());
  EXPECT_FALSE(DecodeSavedGuest("xensim-guest-state 1\nboot - 0\n").ok());  // truncated
  // A bound device whose page is not one page.
  EXPECT_FALSE(DecodeSavedGuest("xensim-guest-state 1\nboot - 0\n"
                                "device 6465 636f 1 1 5 1 0 0 00\nend\n")
                   .ok());
  // Garbage numbers.
  EXPECT_FALSE(DecodeSavedGuest("xensim-guest-state 1\nboot - x\nend\n").ok());
}

}  // namespace
}  // namespace guest
}  // namespace sim
}  // namespace xenchan
