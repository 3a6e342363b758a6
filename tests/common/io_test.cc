// Tests of the fd and tty helpers over pipes and a pseudo-terminal.
#include "tests/common/io.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace testcommon {
namespace {

class Pipe {
 public:
  Pipe() { EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  int r() const { return fds_[0]; }
  int w() const { return fds_[1]; }
  void CloseWriter() {
    close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(IoTest, ReadExactlyStopsAtNAndLeavesTheRest) {
  Pipe p;
  ASSERT_TRUE(WriteAll(p.w(), "hello world"));
  EXPECT_EQ(ReadExactly(p.r(), 5), "hello");
  EXPECT_EQ(ReadExactly(p.r(), 6), " world");
}

TEST(IoTest, ReadExactlyReturnsWhatArrivedByTheDeadline) {
  Pipe p;
  ASSERT_TRUE(WriteAll(p.w(), "abc"));
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadExactly(p.r(), 10, absl::Milliseconds(100)), "abc");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_EQ(ReadExactly(p.r(), 1, absl::ZeroDuration()), "");
}

TEST(IoTest, ReadExactlyStopsAtEof) {
  Pipe p;
  ASSERT_TRUE(WriteAll(p.w(), "ab"));
  p.CloseWriter();
  EXPECT_EQ(ReadExactly(p.r(), 10), "ab");
}

TEST(IoTest, ReadExactlyCollectsPiecesWrittenLater) {
  Pipe p;
  std::thread writer([&] {
    for (char c : std::string("slow")) {
      // Each write wakes the reader separately.
      WriteAll(p.w(), std::string(1, c));
      WaitReadable(p.w(), absl::Now() + absl::Milliseconds(5));
    }
  });
  EXPECT_EQ(ReadExactly(p.r(), 4), "slow");
  writer.join();
}

TEST(IoTest, ReadUntilIncludesTheDelimiter) {
  Pipe p;
  ASSERT_TRUE(WriteAll(p.w(), "line one\n"));
  EXPECT_EQ(ReadUntil(p.r(), "\n"), "line one\n");
  EXPECT_EQ(ReadUntil(p.r(), "\n", absl::Milliseconds(50)), "");
}

TEST(IoTest, ReadUntilFindsADelimiterSplitAcrossReads) {
  Pipe p;
  ASSERT_TRUE(WriteAll(p.w(), "ab<"));
  std::thread writer([&] { WriteAll(p.w(), "END>"); });
  const std::string got = ReadUntil(p.r(), "<END>");
  writer.join();
  EXPECT_EQ(got.substr(0, 3), "ab<");
  const std::string rest = got.size() >= 7 ? got : got + ReadUntil(p.r(), "<END>");
  EXPECT_EQ(rest, "ab<END>");
}

TEST(IoTest, WriteAllWaitsOnAFullNonBlockingPipe) {
  Pipe p;
  fcntl(p.w(), F_SETFL, fcntl(p.w(), F_GETFL) | O_NONBLOCK);
  const std::string big(1 << 20, 'x');  // far more than the pipe holds
  std::string got;
  std::thread reader([&] { got = ReadExactly(p.r(), big.size(), absl::Seconds(30)); });
  EXPECT_TRUE(WriteAll(p.w(), big));
  reader.join();
  EXPECT_EQ(got.size(), big.size());
}

TEST(IoTest, WriteAllFailsOnAClosedReader) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  EXPECT_FALSE(WriteAll(fds[1], "nobody reads"));
  close(fds[1]);
}

TEST(IoTest, WaitReadableHonoursTheDeadline) {
  Pipe p;
  EXPECT_FALSE(WaitReadable(p.r(), absl::Now() + absl::Milliseconds(20)));
  ASSERT_TRUE(WriteAll(p.w(), "x"));
  EXPECT_TRUE(WaitReadable(p.r(), absl::Now() + absl::Seconds(5)));
}

TEST(IoTest, AnswerOneLineEchoesTheRequestAfterAPrefix) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  std::thread agent([fd = fds[1]] { AnswerOneLine(fd, "re:"); });
  ASSERT_TRUE(WriteAll(fds[0], "status\n"));
  EXPECT_EQ(ReadUntil(fds[0], "\n"), "re:status\n");
  agent.join();
  close(fds[0]);
  close(fds[1]);
}

TEST(IoTest, OpenRawTtyMakesAPtyRaw) {
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  const std::string path = ptsname(master);
  const int fd = OpenRawTty(path);
  ASSERT_GE(fd, 0);
  termios t;
  ASSERT_EQ(tcgetattr(fd, &t), 0);
  EXPECT_EQ(t.c_lflag & (ICANON | ECHO), 0u);
  // Raw: a line ending is not translated and the data comes through at once.
  ASSERT_TRUE(WriteAll(master, "a\rb"));
  EXPECT_EQ(ReadExactly(fd, 3), "a\rb");
  close(fd);
  close(master);
}

TEST(IoTest, OpenGuestTtyWaitsForThePathAndGivesUp) {
  const std::string dir = MakeTempDir("io");
  ASSERT_FALSE(dir.empty());
  const absl::Time start = absl::Now();
  EXPECT_EQ(OpenGuestTty(dir + "/missing", absl::Milliseconds(100)), -1);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  const std::string path = dir + "/late";
  std::thread creator([&] {
    WaitReadable(-1, absl::Now() + absl::Milliseconds(50));  // a bounded pause
    close(open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  });
  const int fd = OpenGuestTty(path, absl::Seconds(10));
  creator.join();
  EXPECT_GE(fd, 0);
  if (fd >= 0) close(fd);
  RemoveTree(dir);
}

}  // namespace
}  // namespace testcommon
}  // namespace xenchan
