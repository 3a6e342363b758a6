// Unit tests of the agent's bounded line splitting.
#include "clients/agent/line_buffer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace xenchan {
namespace agent {
namespace {

using Kind = LineBuffer::Event::Kind;

std::vector<std::string> Describe(const std::vector<LineBuffer::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.kind == Kind::kLine ? e.line : "<too long>");
  return out;
}

TEST(LineBufferTest, SplitsAcrossReadsAndDropsCrAndEmptyLines) {
  LineBuffer b(100);
  std::vector<LineBuffer::Event> ev;
  b.Append("ab", &ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(b.pending(), 2u);
  b.Append("c\r\n\n\r\nde", &ev);
  b.Append("f\nx", &ev);
  EXPECT_EQ(Describe(ev), (std::vector<std::string>{"abc", "def"}));
  EXPECT_EQ(b.pending(), 1u);
  b.Reset();
  EXPECT_EQ(b.pending(), 0u);
  ev.clear();
  b.Append("y\n", &ev);
  EXPECT_EQ(Describe(ev), (std::vector<std::string>{"y"}));
}

TEST(LineBufferTest, OversizeLineReportedOnceThenResynchronises) {
  LineBuffer b(8);
  std::vector<LineBuffer::Event> ev;
  b.Append("12345678\n", &ev);  // exactly the limit: fine
  b.Append("123456", &ev);
  b.Append("789", &ev);  // crosses the limit: reported now
  EXPECT_EQ(Describe(ev), (std::vector<std::string>{"12345678", "<too long>"}));
  b.Append(std::string(1000, 'x'), &ev);  // still the same line: discarded
  EXPECT_EQ(ev.size(), 2u);
  EXPECT_EQ(b.pending(), 0u);
  b.Append("yyy\nok\n", &ev);
  EXPECT_EQ(Describe(ev), (std::vector<std::string>{"12345678", "<too long>", "ok"}));
  ev.clear();
  b.Append(std::string(20, 'z') + "\nnext\n", &ev);  // long line in one piece
  EXPECT_EQ(Describe(ev), (std::vector<std::string>{"<too long>", "next"}));
}

}  // namespace
}  // namespace agent
}  // namespace xenchan
