// Unit tests of xenchanctl's terminal helpers (//clients/cli:terminal).
#include "clients/cli/terminal.h"

#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace cli {
namespace {

TEST(CutAtQuitKeyTest, CutsBeforeTheFirstCtrlBracket) {
  std::string data = "ls\r\x1dmore\x1d";
  EXPECT_TRUE(CutAtQuitKey(&data));
  EXPECT_EQ(data, "ls\r");
  data = "\x1d";
  EXPECT_TRUE(CutAtQuitKey(&data));
  EXPECT_EQ(data, "");
}

TEST(CutAtQuitKeyTest, LeavesOtherDataAlone) {
  std::string data = std::string("a\0b\x1b[A", 6);
  EXPECT_FALSE(CutAtQuitKey(&data));
  EXPECT_EQ(data, std::string("a\0b\x1b[A", 6));
}

TEST(ReadRetryingOnEintrTest, ReadsWhatIsThereThenEof) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "abc", 3), 3);
  close(fds[1]);
  char buf[8];
  EXPECT_EQ(ReadRetryingOnEintr(fds[0], buf, sizeof(buf)), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(ReadRetryingOnEintr(fds[0], buf, sizeof(buf)), 0);
  close(fds[0]);
}

TEST(RawTerminalTest, NotATerminalIsLeftAlone) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  RawTerminal raw;
  EXPECT_FALSE(raw.Enter(fds[0]));
  raw.Restore();  // Nothing to restore: a no-op.
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace cli
}  // namespace xenchan
