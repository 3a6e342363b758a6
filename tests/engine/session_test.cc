// Unit tests of Channel + Session without any Xen: the engine thread's side
// is played by calling the Channel's engine-side methods directly.
#include "backend/engine/session.h"

#include <dirent.h>
#include <poll.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "backend/engine/channel.h"
#include "backend/engine/event_log.h"
#include "backend/engine/wakeup.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    wakeup_ = *Wakeup::Create();
    log_ = std::make_shared<EventLog>(0, 1000);
    ChannelIdentity id;
    id.serial = 7;
    id.uid = "u";
    id.channel_id = "org.example.t";
    id.domid = 3;
    id.devid = 1;
    ChannelConfig config;
    config.buffer_limit_bytes = 16;
    config.overflow_policy = OverflowPolicy::kBlock;
    config.write_queue_limit_bytes = 8;
    channel_ = std::make_shared<Channel>(id, config, "vm", 3, wakeup_, log_, absl::Now());
  }

  void Connect(uint64_t epoch) {
    channel_->BeginEpoch(epoch, EpochChangeReason::kGuestConnected, absl::Now());
    channel_->SetState(ChannelState::kConnected, XenbusState::kConnected, XenbusState::kConnected,
                       std::nullopt);
  }

  static bool Readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
  }

  static std::string Data(const std::vector<SessionRecord>& recs) {
    std::string s;
    for (const auto& r : recs) {
      if (r.kind == SessionRecord::Kind::kData) s += r.data;
    }
    return s;
  }

  std::shared_ptr<Wakeup> wakeup_;
  std::shared_ptr<EventLog> log_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(SessionTest, ReaderSeesEpochThenDataAndIsNotified) {
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  auto s = Session::Open(channel_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->start_position().epoch, 0u);
  Connect(5);
  channel_->AppendOutput("hello", 5);
  EXPECT_TRUE(Readable((*s)->notify_fd()));
  auto recs = (*s)->Read(100);
  ASSERT_TRUE(recs.ok());
  EXPECT_FALSE(Readable((*s)->notify_fd()));
  bool saw_epoch = false;
  for (const auto& r : *recs) {
    if (r.kind == SessionRecord::Kind::kEpochChange) {
      saw_epoch = true;
      EXPECT_EQ(r.epoch_change.previous_epoch, 0u);
      EXPECT_EQ(r.epoch_change.epoch, 5u);
      EXPECT_EQ(r.epoch_change.reason, EpochChangeReason::kGuestConnected);
    }
  }
  EXPECT_TRUE(saw_epoch);
  EXPECT_EQ(Data(*recs), "hello");
}

int OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// Sessions make their eventfd only when notify_fd() is asked for, so that a
// server notified through on_ready holds no descriptor per stream; a
// wake-up that came before the fd was made is not lost.
TEST_F(SessionTest, NoDescriptorUntilNotifyFdIsAskedForAndNoWakeUpIsLost) {
  Connect(1);
  const int fds0 = OpenFds();
  std::atomic<int> ready{0};
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  o.on_ready = [&ready] { ++ready; };
  auto a = Session::Open(channel_, o);
  auto b = Session::Open(channel_, o);
  auto c = Session::Open(channel_, o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(OpenFds(), fds0);  // three sessions, no descriptor
  channel_->AppendOutput("abc", 3);
  EXPECT_EQ(ready.load(), 3);
  EXPECT_EQ(OpenFds(), fds0);

  // Woken before its fd existed: the new fd is readable at once.
  const int fa = (*a)->notify_fd();
  ASSERT_GE(fa, 0);
  EXPECT_EQ(OpenFds(), fds0 + 1);
  EXPECT_EQ((*a)->notify_fd(), fa);  // made once
  EXPECT_TRUE(Readable(fa));
  auto recs = (*a)->Read(100);
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Data(*recs), "abc");
  EXPECT_FALSE(Readable(fa));
  channel_->AppendOutput("d", 1);
  EXPECT_TRUE(Readable(fa));

  // Read (clearing the wake-up) before asking: not readable until the next.
  EXPECT_EQ(Data(*(*b)->Read(100)), "abcd");
  const int fb = (*b)->notify_fd();
  ASSERT_GE(fb, 0);
  EXPECT_EQ(Data(*(*b)->Read(100)), "");
  EXPECT_FALSE(Readable(fb));
  channel_->AppendOutput("e", 1);
  EXPECT_TRUE(Readable(fb));
  EXPECT_EQ(Data(*(*b)->Read(100)), "e");

  // A closed session's fd is readable, and Read says why.
  (*c)->Close();
  const int fc = (*c)->notify_fd();
  ASSERT_GE(fc, 0);
  EXPECT_TRUE(Readable(fc));
  EXPECT_EQ((*c)->Read(100).status().code(), absl::StatusCode::kFailedPrecondition);

  // Destroying the sessions closes what they made.
  a->reset();
  b->reset();
  c->reset();
  EXPECT_EQ(OpenFds(), fds0);
}

TEST_F(SessionTest, BlockStallsAndReadingUnstallsAndKicksEngine) {
  Connect(1);
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  auto s = Session::Open(channel_, o);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(channel_->BufferSpace(), 16u);
  channel_->AppendOutput("0123456789abcdef", 16);
  EXPECT_EQ(channel_->BufferSpace(), 0u);
  EXPECT_EQ(channel_->UpdateStall(absl::Now(), true), 1);
  EXPECT_TRUE(channel_->Info().stalled);
  std::vector<uint64_t> kicked;
  wakeup_->Take(&kicked);
  auto recs = (*s)->Read(4);
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Data(*recs), "0123");
  wakeup_->Take(&kicked);
  EXPECT_EQ(kicked, std::vector<uint64_t>{7});  // the engine is asked to drain again
  EXPECT_EQ(channel_->BufferSpace(), 4u);
  EXPECT_EQ(channel_->UpdateStall(absl::Now(), true), -1);
  EXPECT_EQ(channel_->Info().counters.stalls, 1u);
}

TEST_F(SessionTest, ResumeFromPositionAndOutOfRange) {
  Connect(2);
  channel_->AppendOutput("abcdef", 6);
  SessionOptions o;
  o.start.position = Position{2, 3};
  auto s = Session::Open(channel_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  auto recs = (*s)->Read(100);
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Data(*recs), "def");
  o.start.position = Position{2, 99};
  EXPECT_EQ(Session::Open(channel_, o).status().code(), absl::StatusCode::kOutOfRange);
  o.start.position = Position{1, 0};
  auto old = Session::Open(channel_, o);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(SessionTest, OneWriteLeaseNamedHolderTakeoverAndQueue) {
  Connect(1);
  SessionOptions w;
  w.role = SessionRole::kWriter;
  w.identity = "alice";
  auto a = Session::Open(channel_, w);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE((*a)->has_lease());
  w.identity = "bob";
  auto b = Session::Open(channel_, w);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(b.status().message().find("alice"), std::string::npos) << b.status();

  // A call queues for the lease.
  SessionOptions c = w;
  c.identity = "carol";
  c.kind = SessionKind::kCall;
  c.queue_for_lease = true;
  auto carol = Session::Open(channel_, c);
  ASSERT_TRUE(carol.ok());
  EXPECT_FALSE((*carol)->has_lease());

  // Takeover: alice loses it.
  w.identity = "admin";
  w.takeover = true;
  auto admin = Session::Open(channel_, w);
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_TRUE((*admin)->has_lease());
  EXPECT_EQ((*a)->Write("x").status().code(), absl::StatusCode::kAborted);
  auto recs = (*a)->Read(10);
  ASSERT_TRUE(recs.ok());
  ASSERT_FALSE(recs->empty());
  EXPECT_EQ(recs->back().kind, SessionRecord::Kind::kLeaseLost);
  EXPECT_EQ(recs->back().new_holder->identity, "admin");
  EXPECT_EQ((*a)->Read(10).status().code(), absl::StatusCode::kAborted);

  // Releasing hands the lease to the queued call.
  (*admin)->Close();
  EXPECT_TRUE((*carol)->has_lease());
  EXPECT_EQ(channel_->Info().write_lease->identity, "carol");
}

TEST_F(SessionTest, WritesNeedConnectionRoomAndEpoch) {
  SessionOptions w;
  w.role = SessionRole::kWriter;
  auto s = Session::Open(channel_, w);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Write("x").status().code(), absl::StatusCode::kFailedPrecondition);
  Connect(4);
  auto r = (*s)->Write("abcde", 4);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->start, 0u);
  EXPECT_EQ(r->end, 5u);
  EXPECT_EQ((*s)->Write("abcd").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*s)->Write("a", 3).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ((*s)->Write(std::string(65537, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  char buf[8];
  EXPECT_EQ(channel_->PeekInput(buf, 8), 5u);
  channel_->InputProgress(5, 2);
  WriteStatus ws = (*s)->write_status();
  EXPECT_EQ(ws.accepted_offset, 5u);
  EXPECT_EQ(ws.delivered_offset, 5u);
  EXPECT_EQ(ws.consumed_offset, 2u);
  EXPECT_EQ(ws.room, 8u);
}

// kAsked sessions: write progress wakes only the session that asked for it
// (WakeOnProgress, or room after a full queue); kAll sessions see every move.
TEST_F(SessionTest, ProgressWakesOnlyWhatTheSessionAskedFor) {
  Connect(4);
  std::atomic<int> reader_wakes{0}, writer_wakes{0}, all_wakes{0};
  SessionOptions r;
  r.progress_wakeups = ProgressWakeups::kAsked;
  r.on_ready = [&] { ++reader_wakes; };
  auto reader = Session::Open(channel_, r);
  ASSERT_TRUE(reader.ok());
  SessionOptions legacy;
  legacy.on_ready = [&] { ++all_wakes; };
  auto watcher = Session::Open(channel_, legacy);
  ASSERT_TRUE(watcher.ok());
  SessionOptions w;
  w.role = SessionRole::kWriter;
  w.progress_wakeups = ProgressWakeups::kAsked;
  w.on_ready = [&] { ++writer_wakes; };
  auto writer = Session::Open(channel_, w);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("abcdef").ok());
  // Consumed to 6 asked for; delivery alone does not wake.
  EXPECT_TRUE((*writer)->WakeOnProgress(4, 0, 6));
  channel_->InputProgress(6, 0);
  EXPECT_EQ(writer_wakes.load(), 0);
  EXPECT_EQ(all_wakes.load(), 1);
  EXPECT_FALSE(Readable((*writer)->notify_fd()));
  channel_->InputProgress(0, 3);
  EXPECT_EQ(writer_wakes.load(), 0);
  channel_->InputProgress(0, 6);
  EXPECT_EQ(writer_wakes.load(), 1);
  EXPECT_TRUE(Readable((*writer)->notify_fd()));
  EXPECT_EQ(all_wakes.load(), 3);
  EXPECT_EQ(reader_wakes.load(), 0);  // the reader has nothing to read
  // Used up: more progress does not wake again.
  ASSERT_TRUE((*writer)->Write("gh").ok());
  channel_->InputProgress(2, 8);
  EXPECT_EQ(writer_wakes.load(), 1);
  // Already reached: nothing armed, the caller looks again.
  EXPECT_FALSE((*writer)->WakeOnProgress(4, 8, 0));
  // Another epoch's offsets: nothing armed.
  EXPECT_FALSE((*writer)->WakeOnProgress(3, 100, 0));
  // A full queue: the next delivery wakes the writer.
  ASSERT_TRUE((*writer)->Write("12345678").ok());
  EXPECT_EQ((*writer)->Write("9").status().code(), absl::StatusCode::kResourceExhausted);
  channel_->InputProgress(1, 0);
  EXPECT_EQ(writer_wakes.load(), 2);
  channel_->InputProgress(1, 0);  // room was taken note of: not again
  EXPECT_EQ(writer_wakes.load(), 2);
  // New data still wakes the reader at once.
  channel_->AppendOutput("out", 3);
  EXPECT_EQ(reader_wakes.load(), 1);
}

TEST_F(SessionTest, ReaderLimitAndRemoval) {
  Connect(1);
  std::vector<std::unique_ptr<Session>> readers;
  for (int i = 0; i < 3; ++i) readers.push_back(*Session::Open(channel_, SessionOptions()));
  EXPECT_EQ(Session::Open(channel_, SessionOptions()).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(channel_->Info().observer_count, 3u);
  channel_->AppendOutput("tail", 4);
  channel_->MarkRemoved(absl::NotFoundError("deleted"));
  auto recs = readers[0]->Read(100);  // buffered data first
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Data(*recs), "tail");
  EXPECT_EQ(readers[0]->Read(100).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SessionTest, LeaseEventsExceptForCalls) {
  Connect(1);
  const uint64_t before = log_->revision();
  SessionOptions w;
  w.role = SessionRole::kWriter;
  w.identity = "x";
  { auto s = Session::Open(channel_, w); }
  w.kind = SessionKind::kCall;
  { auto s = Session::Open(channel_, w); }
  auto events = log_->After(before, 100);
  ASSERT_TRUE(events.ok());
  int lease_events = 0;
  for (const auto& e : *events) lease_events += e.type == ChannelEventType::kLeaseChanged;
  EXPECT_EQ(lease_events, 2);  // acquired and released by the attach writer only
}

}  // namespace
}  // namespace xenchan
