#include "backend/sim/guest/frontend_ring.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

class FrontendRingTest : public ::testing::Test {
 protected:
  void SetUp() override { memset(&page_, 0, sizeof(page_)); }
  xencons_interface page_;
};

TEST_F(FrontendRingTest, WritesOnlyFreeSpaceAndPublishesProd) {
  EXPECT_EQ(*OutRingFree(&page_), 2048u);
  std::string data(3000, 'x');
  EXPECT_EQ(*WriteOutRing(&page_, data.data(), data.size()), 2048u);
  EXPECT_EQ(page_.out_prod, 2048u);
  EXPECT_EQ(*OutRingFree(&page_), 0u);
  EXPECT_EQ(*WriteOutRing(&page_, "y", 1), 0u);
  page_.out_cons = 100;  // the backend consumed 100 bytes
  EXPECT_EQ(*OutRingFree(&page_), 100u);
  EXPECT_EQ(*WriteOutRing(&page_, "abc", 3), 3u);
  EXPECT_EQ(page_.out[0], 'a');  // wrapped, masked
  EXPECT_EQ(page_.out[2], 'c');
}

TEST_F(FrontendRingTest, IndicesWrapAround) {
  page_.out_cons = page_.out_prod = 0xFFFFFFFEu;
  EXPECT_EQ(*WriteOutRing(&page_, "wxyz", 4), 4u);
  EXPECT_EQ(page_.out_prod, 2u);
  EXPECT_EQ(page_.out[2046], 'w');
  EXPECT_EQ(page_.out[1], 'z');
}

TEST_F(FrontendRingTest, IllegalOutIndicesWriteNothing) {
  page_.out_prod = 5000;
  EXPECT_FALSE(OutRingFree(&page_).ok());
  EXPECT_FALSE(WriteOutRing(&page_, "a", 1).ok());
  EXPECT_EQ(page_.out_prod, 5000u);
}

TEST_F(FrontendRingTest, InRingPeekCopyConsume) {
  memcpy(page_.in + 1020, "abcdefgh", 4);
  memcpy(page_.in, "efgh", 4);
  page_.in_cons = 1020;
  page_.in_prod = 1028;
  absl::StatusOr<InRingView> view = PeekInRing(&page_);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->available, 8u);
  char buf[16];
  EXPECT_EQ(CopyFromInRing(&page_, *view, 0, buf, 3), 3u);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(CopyFromInRing(&page_, *view, 3, buf, sizeof(buf)), 5u);
  EXPECT_EQ(std::string(buf, 5), "defgh");
  ConsumeInRing(&page_, *view, 6);
  EXPECT_EQ(page_.in_cons, 1026u);
  // Consuming more than was there is clamped.
  ConsumeInRing(&page_, *view, 100);
  EXPECT_EQ(page_.in_cons, 1028u);
}

TEST_F(FrontendRingTest, IllegalInIndicesAreRefused) {
  page_.in_prod = 1025;
  EXPECT_FALSE(PeekInRing(&page_).ok());
  page_.in_cons = 10;
  page_.in_prod = 5;  // prod behind cons: huge unsigned difference
  EXPECT_FALSE(PeekInRing(&page_).ok());
}

}  // namespace
}  // namespace guest
}  // namespace sim
}  // namespace xenchan
