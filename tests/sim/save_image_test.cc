// Unit tests of the save image codec of `xensim domain save`/`restore`.
#include "backend/sim/save_image.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SaveImageTest, RoundTripsAnyBytes) {
  SaveImage image;
  image.name = "vm";
  image.uuid = "01234567-89ab-cdef-0123-456789abcdef";
  image.channels = {"name=a,connection=pty", "name=b,connection=socket,path=/tmp/x y"};
  image.guest_state = std::string("line\nwith \0 nul", 15);
  auto back = DecodeSaveImage(EncodeSaveImage(image));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, image.name);
  EXPECT_EQ(back->uuid, image.uuid);
  EXPECT_THAT(back->channels, ElementsAre(image.channels[0], image.channels[1]));
  EXPECT_EQ(back->guest_state, image.guest_state);
}

TEST(SaveImageTest, NoChannelsAndEmptyGuestState) {
  SaveImage image;
  image.name = "vm";
  image.uuid = "u";
  auto back = DecodeSaveImage(EncodeSaveImage(image));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->channels.empty());
  EXPECT_EQ(back->guest_state, "");
}

TEST(SaveImageTest, RejectsGarbageAndTruncation) {
  EXPECT_THAT(std::string(DecodeSaveImage("garbage\n").status().message()),
              HasSubstr("not a xensim save image"));
  SaveImage image;
  image.name = "vm";
  image.uuid = "u";
  const std::string text = EncodeSaveImage(image);
  EXPECT_FALSE(DecodeSaveImage(text.substr(0, text.size() - 4)).ok());  // no "end"
  EXPECT_FALSE(DecodeSaveImage("xensim-save 1\nname zz\n").ok());       // bad hex
  EXPECT_FALSE(DecodeSaveImage(text + "name 6162\n").ok());             // after end
  EXPECT_FALSE(DecodeSaveImage("xensim-save 2\n").ok());
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
