// Tests of the shared JSON string escaper (backend/util/json_string.h).
#include "backend/util/json_string.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(JsonStringTest, PlainTextUnchanged) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("domains/web-1/channels/org.example.agent"),
            "\"domains/web-1/channels/org.example.agent\"");
}

TEST(JsonStringTest, QuotesAndBackslashes) {
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("\"},{\"event\":\"forged"), "\"\\\"},{\\\"event\\\":\\\"forged\"");
}

TEST(JsonStringTest, ControlCharacters) {
  EXPECT_EQ(JsonString("a\nb\rc\td\be\ff"), "\"a\\nb\\rc\\td\\be\\ff\"");
  EXPECT_EQ(JsonString(std::string("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
}

TEST(JsonStringTest, ValidUtf8Kept) {
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");            // U+00E9
  EXPECT_EQ(JsonString("\xe2\x82\xac"), "\"\xe2\x82\xac\"");          // U+20AC
  EXPECT_EQ(JsonString("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // U+1F600
  EXPECT_EQ(JsonString("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
  EXPECT_EQ(JsonString("\xed\x9f\xbf"), "\"\xed\x9f\xbf\"");          // U+D7FF
}

TEST(JsonStringTest, LineSeparatorsEscaped) {
  EXPECT_EQ(JsonString("a\xe2\x80\xa8z\xe2\x80\xa9"), "\"a\\u2028z\\u2029\"");
}

TEST(JsonStringTest, InvalidUtf8Replaced) {
  const std::string r = "\\ufffd";
  EXPECT_EQ(JsonString("\x80"), "\"" + r + "\"");                          // stray continuation
  EXPECT_EQ(JsonString("\xc3"), "\"" + r + "\"");                          // truncated
  EXPECT_EQ(JsonString("\xc3x"), "\"" + r + "x\"");                        // broken sequence
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(JsonString("\xe0\x80\xaf"), "\"" + r + r + r + "\"");          // overlong
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"" + r + r + r + "\"");          // surrogate D800
  EXPECT_EQ(JsonString("\xf4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // > U+10FFFF
  EXPECT_EQ(JsonString("\xff\xfe"), "\"" + r + r + "\"");
  EXPECT_EQ(JsonString("ok\xe2\x82"), "\"ok" + r + r + "\"");  // truncated at the end
}

TEST(JsonStringTest, AppendsAfterExistingText) {
  std::string out = "{\"k\":";
  AppendJsonString("v\n", &out);
  EXPECT_EQ(out, "{\"k\":\"v\\n\"");
}

// xensim's listings: paths, names, states and uuids come out as they did
// from the simulator's own escapers, which differed only for control
// characters (same meaning, shorter form) and bytes >= 0x80 (which they
// escaped one by one as if Latin-1).
TEST(JsonStringTest, SimulatorListingValues) {
  EXPECT_EQ(JsonString("/tmp/xensim.1/guests/web-1/dev/xen-channel/org.qemu.guest_agent.0"),
            "\"/tmp/xensim.1/guests/web-1/dev/xen-channel/org.qemu.guest_agent.0\"");
  EXPECT_EQ(JsonString("00000000-0000-4000-8000-000000000001"),
            "\"00000000-0000-4000-8000-000000000001\"");
  EXPECT_EQ(JsonString("~!@#$%^&*()_+{}|:<>?`-=[];',./"), "\"~!@#$%^&*()_+{}|:<>?`-=[];',./\"");
  EXPECT_EQ(JsonString("\x7f"), "\"\\u007f\"");
  EXPECT_EQ(JsonString("/home/ren\xc3\xa9"), "\"/home/ren\xc3\xa9\"");  // not \u00c3\u00a9
}

}  // namespace
}  // namespace xenchan
