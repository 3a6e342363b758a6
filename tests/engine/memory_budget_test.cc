// Unit tests of the engine's memory budget: MemoryBudget and MemoryAccount on
// their own, the budget-aware OutputBuffer calls, and Channel / Session /
// EventLog charging a budget (the engine thread's side played by calling
// the Channel's engine-side methods directly).
#include "backend/engine/memory_budget.h"

#include <poll.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/engine/channel.h"
#include "backend/engine/event_log.h"
#include "backend/engine/output_buffer.h"
#include "backend/engine/session.h"
#include "backend/engine/wakeup.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace {

constexpr MemoryTier kControl = MemoryTier::kControl;

TEST(MemoryBudgetTest, ChargesWithinBothCapsAndTracksPeak) {
  MemoryBudget b(100, 60);
  EXPECT_TRUE(b.TryCharge(1, 50, 0, kControl));
  EXPECT_EQ(b.Headroom(1, kControl), 10u);  // the domain cap
  EXPECT_EQ(b.Headroom(2, kControl), 50u);  // the global cap
  EXPECT_FALSE(b.TryCharge(1, 11, 0, kControl));
  EXPECT_TRUE(b.TryCharge(1, 10, 0, kControl));
  EXPECT_TRUE(b.TryCharge(2, 40, 0, kControl));
  EXPECT_FALSE(b.TryCharge(2, 1, 0, kControl));
  EXPECT_FALSE(b.TryCharge(MemoryBudget::kHostWide, 1, 0, kControl));
  MemoryUsage u = b.usage();
  EXPECT_EQ(u.used, 100u);
  EXPECT_EQ(u.peak, 100u);
  EXPECT_EQ(u.refused, 3u);
  EXPECT_EQ(u.domain_refused, 1u);  // only the first refusal was the domain's cap
  b.Release(1, 60);
  b.Release(2, 5);
  EXPECT_EQ(b.usage().used, 35u);
  EXPECT_EQ(b.usage().peak, 100u);
  EXPECT_EQ(b.domain_used(1), 0u);
  EXPECT_EQ(b.domain_used(2), 35u);
  // Host-wide charges have no domain cap.
  EXPECT_TRUE(b.TryCharge(MemoryBudget::kHostWide, 65, 0, kControl));
  EXPECT_EQ(b.usage().used, 100u);
}

TEST(MemoryBudgetTest, DataLeavesAnEighthOfEachCapToControlState) {
  MemoryBudget b(800, 400);
  EXPECT_EQ(b.Headroom(1), 350u);
  EXPECT_EQ(b.Headroom(1, kControl), 400u);
  EXPECT_TRUE(b.TryCharge(1, 350));
  EXPECT_FALSE(b.TryCharge(1, 1));
  EXPECT_TRUE(b.TryCharge(1, 50, 0, kControl));
  EXPECT_FALSE(b.TryCharge(2, 350));  // 750 of 800 would be over 7/8
  EXPECT_TRUE(b.TryCharge(2, 300));
  EXPECT_EQ(b.Headroom(3), 0u);
  EXPECT_EQ(b.Headroom(3, kControl), 100u);
  EXPECT_LE(b.usage().used, 800u);
}

TEST(MemoryBudgetTest, ReleasingMoreThanChargedIsClamped) {
  MemoryBudget b(100, MemoryBudget::kUnlimited);
  ASSERT_TRUE(b.TryCharge(1, 10));
  b.Release(1, 50);
  b.Release(9, 50);  // never charged
  EXPECT_EQ(b.usage().used, 0u);
  EXPECT_TRUE(b.TryCharge(1, 100, 0, kControl));
}

TEST(MemoryBudgetTest, RefusedWaitersAreNotifiedOnceOnRelease) {
  MemoryBudget b(10, MemoryBudget::kUnlimited);
  std::vector<uint64_t> notified;
  b.SetNotify([&](uint64_t w) { notified.push_back(w); });
  ASSERT_TRUE(b.TryCharge(1, 10, 0, kControl));
  EXPECT_FALSE(b.TryCharge(2, 1, /*waiter=*/7));
  b.Starved(3, 4, /*waiter=*/8);
  EXPECT_TRUE(notified.empty());
  EXPECT_TRUE(b.TakeReclaimRequest());
  EXPECT_FALSE(b.TakeReclaimRequest());
  b.Release(1, 1);
  EXPECT_EQ(notified, (std::vector<uint64_t>{7, 8}));
  b.Release(1, 1);  // they must ask again
  EXPECT_EQ(notified.size(), 2u);
}

TEST(MemoryAccountTest, FloorIsChargedUpFrontAndUsableWhenTheBudgetIsFull) {
  auto b = std::make_shared<MemoryBudget>(800, MemoryBudget::kUnlimited);  // data: 700
  MemoryAccount quiet(b, 1, 1);
  ASSERT_TRUE(quiet.Reserve(160));
  EXPECT_EQ(b->usage().used, 160u);
  {
    MemoryAccount flood(b, 2, 2);
    EXPECT_TRUE(flood.Charge(540));
    EXPECT_FALSE(flood.Charge(1));
    EXPECT_EQ(quiet.Headroom(), 160u);
    EXPECT_TRUE(quiet.Charge(120));
    EXPECT_TRUE(quiet.Charge(40));
    EXPECT_FALSE(quiet.Charge(1));
    EXPECT_EQ(b->usage().used, 700u);
    quiet.Release(160);
    EXPECT_EQ(b->usage().used, 700u);  // the floor stays charged
    EXPECT_TRUE(quiet.Resize(80));
    EXPECT_EQ(quiet.used(), 80u);
  }
  // The flood's account released everything.
  EXPECT_EQ(b->usage().used, 160u);
  EXPECT_TRUE(quiet.Charge(400));  // beyond the floor: from the pool
  EXPECT_EQ(b->usage().used, 480u);
  EXPECT_EQ(b->usage().peak, 700u);
}

TEST(MemoryAccountTest, FloorThatDoesNotFitIsRefused) {
  auto b = std::make_shared<MemoryBudget>(10, MemoryBudget::kUnlimited);
  MemoryAccount a(b, 1, 1);
  EXPECT_FALSE(a.Reserve(11));
  EXPECT_EQ(a.floor(), 0u);
  EXPECT_EQ(b->usage().used, 0u);
}

TEST(MemoryBudgetTest, ConcurrentChargesNeverExceedTheLimit) {
  constexpr size_t kLimit = 10000;
  auto b = std::make_shared<MemoryBudget>(kLimit, 4000);
  std::atomic<uint64_t> notified{0};
  b->SetNotify([&](uint64_t) { notified.fetch_add(1, std::memory_order_relaxed); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([b, t] {
      MemoryAccount acct(b, static_cast<uint32_t>(t % 3), static_cast<uint64_t>(t + 1));
      for (int i = 0; i < 20000; ++i) {
        const size_t n = static_cast<size_t>((i * 7 + t * 13) % 97 + 1);
        if (i % 3 == 2) {
          acct.Release(n);
        } else {
          (void)acct.Charge(n);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const MemoryUsage u = b->usage();
  EXPECT_EQ(u.used, 0u);
  EXPECT_LE(u.peak, kLimit);
  EXPECT_GT(u.refused, 0u);  // the caps were reached
  EXPECT_GT(notified.load(), 0u);
}

TEST(OutputBufferBudgetTest, BlockStallsAtTheCapacity) {
  OutputBuffer buf(100, OverflowPolicy::kBlock);
  EXPECT_EQ(buf.Space(30), 30u);
  ASSERT_TRUE(buf.Append(std::string(30, 'a'), 30).ok());
  EXPECT_TRUE(buf.stalled(30));
  EXPECT_FALSE(buf.stalled());
  EXPECT_FALSE(buf.Append("b", 30).ok());
  // Handed bytes count as room: they are evicted for new ones.
  ReadCursor c = buf.OldestCursor();
  EXPECT_EQ(buf.Read(&c, 10).back().data.size(), 10u);
  EXPECT_EQ(buf.Space(30), 10u);
  ASSERT_TRUE(buf.Append(std::string(10, 'b'), 30).ok());
  EXPECT_EQ(buf.retained_bytes(), 30u);
  EXPECT_EQ(buf.bytes_dropped(), 0u);
}

TEST(OutputBufferBudgetTest, DropOldestDropsDownToTheCapacity) {
  OutputBuffer buf(100, OverflowPolicy::kDropOldest);
  ASSERT_TRUE(buf.Append(std::string(30, 'a'), 30).ok());
  EXPECT_EQ(buf.Space(30), 100u);  // never stalls
  ASSERT_TRUE(buf.Append(std::string(10, 'b'), 30).ok());
  EXPECT_EQ(buf.retained_bytes(), 30u);
  EXPECT_EQ(buf.bytes_dropped(), 10u);
  // No capacity at all: everything is dropped, and counted.
  ASSERT_TRUE(buf.Append(std::string(5, 'c'), 0).ok());
  EXPECT_EQ(buf.retained_bytes(), 0u);
  EXPECT_EQ(buf.bytes_dropped(), 45u);
  EXPECT_EQ(buf.end().offset, 45u);
}

TEST(OutputBufferBudgetTest, TrimHandedKeepsUnreadBytes) {
  OutputBuffer buf(100, OverflowPolicy::kBlock);
  ASSERT_TRUE(buf.Append(std::string(40, 'a')).ok());
  ReadCursor fast = buf.OldestCursor();
  ReadCursor slow = buf.OldestCursor();
  buf.Read(&fast, 25);
  EXPECT_EQ(buf.TrimHanded(1000), 25u);
  EXPECT_EQ(buf.retained_bytes(), 15u);
  EXPECT_EQ(buf.TrimHanded(1000), 0u);
  auto recs = buf.Read(&slow, 100);
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(recs.front().kind, OutputRecord::Kind::kGap);
  EXPECT_EQ(recs.front().lost, 25u);
  EXPECT_EQ(buf.bytes_dropped(), 0u);  // the fastest reader had them
}

class ChannelBudgetTest : public ::testing::Test {
 protected:
  std::shared_ptr<Channel> MakeChannel(uint64_t serial, uint32_t domid, OverflowPolicy policy,
                                       size_t floor, size_t limit = 4 << 20) {
    ChannelIdentity id;
    id.serial = serial;
    id.uid = "u";
    id.channel_id = "org.example.t";
    id.domid = domid;
    id.devid = 1;
    ChannelConfig config;
    config.buffer_limit_bytes = limit;
    config.overflow_policy = policy;
    config.write_queue_limit_bytes = 64 << 10;
    auto ch =
        std::make_shared<Channel>(id, config, "vm", 4, wakeup_, log_, absl::Now(), budget_, floor);
    ch->BeginEpoch(1, EpochChangeReason::kGuestConnected, absl::Now());
    ch->SetState(ChannelState::kConnected, XenbusState::kConnected, XenbusState::kConnected,
                 std::nullopt);
    return ch;
  }

  // Plays the engine: reserve, "drain" `n` bytes, append. Returns the bytes
  // appended.
  static size_t Drain(Channel& ch, size_t n) {
    const size_t want = ch.ReserveOutput(n);
    const std::string data(want, 'x');
    ch.AppendOutput(data.data(), want);
    return want;
  }

  static std::string ReadAll(Session& s) {
    std::string out;
    auto recs = s.Read(1 << 20);
    if (!recs.ok()) return "";
    for (const auto& r : *recs) {
      if (r.kind == SessionRecord::Kind::kData) out += r.data;
    }
    return out;
  }

  std::shared_ptr<Wakeup> wakeup_ = *Wakeup::Create();
  std::shared_ptr<EventLog> log_ = std::make_shared<EventLog>(0, 1000);
  // What buffered data may use of the budget (7/8).
  size_t DataCap() const { return budget_->limit() - budget_->limit() / 8; }

  std::shared_ptr<MemoryBudget> budget_ =
      std::make_shared<MemoryBudget>(size_t{1} << 20, MemoryBudget::kUnlimited);
};

TEST_F(ChannelBudgetTest, BlockChannelStallsAtTheBudgetAndResumesWhenRead) {
  std::vector<uint64_t> kicked;
  budget_->SetNotify([&](uint64_t w) { kicked.push_back(w); });
  auto quiet = MakeChannel(1, 1, OverflowPolicy::kBlock, 64 << 10);
  auto flood = MakeChannel(2, 2, OverflowPolicy::kBlock, 0);
  size_t total = 0;
  while (size_t n = Drain(*flood, 2048)) total += n;
  // The flood holds what the quiet channel's floor leaves of the data tier.
  EXPECT_EQ(total, DataCap() - (64 << 10));
  EXPECT_EQ(flood->BufferSpace(), 0u);
  EXPECT_EQ(flood->UpdateStall(absl::Now(), true), 1);  // reported like any stall
  EXPECT_EQ(budget_->usage().used, DataCap());
  EXPECT_TRUE(kicked.empty());
  // The quiet channel still has its floor.
  EXPECT_EQ(Drain(*quiet, 100), 100u);
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  auto quiet_reader = Session::Open(quiet, o);
  ASSERT_TRUE(quiet_reader.ok()) << quiet_reader.status();
  EXPECT_EQ(ReadAll(**quiet_reader), std::string(100, 'x'));
  // A reader can still open on the flood (sessions are control state) and
  // what it reads becomes room for the flood's guest.
  auto flood_reader = Session::Open(flood, o);
  ASSERT_TRUE(flood_reader.ok()) << flood_reader.status();
  EXPECT_EQ(ReadAll(**flood_reader).size(), total);
  EXPECT_EQ(flood->UpdateStall(absl::Now(), true), -1);
  EXPECT_EQ(Drain(*flood, 2048), 2048u);
  EXPECT_EQ(flood->Info().counters.bytes_dropped, 0u);
  EXPECT_LE(budget_->usage().peak, budget_->limit());
  // The quiet channel goes (its floor with it): the starved flood, refused
  // since, is kicked.
  while (Drain(*flood, 2048) > 0) {
  }
  quiet_reader->reset();
  quiet.reset();
  EXPECT_EQ(kicked, std::vector<uint64_t>{2});
  EXPECT_TRUE(budget_->TakeReclaimRequest());
  EXPECT_EQ(Drain(*flood, 2048), 2048u);
}

TEST_F(ChannelBudgetTest, ReadingFreesRoomForTheSameChannel) {
  auto ch = MakeChannel(1, 1, OverflowPolicy::kBlock, 0);
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  auto reader = Session::Open(ch, o);
  ASSERT_TRUE(reader.ok());
  // Another consumer holds all but 10 KiB of the data tier.
  MemoryAccount other(budget_, 9, 0);
  ASSERT_TRUE(other.Charge(budget_->Headroom(9) - (10 << 10)));
  size_t total = 0;
  while (size_t n = Drain(*ch, 2048)) total += n;
  EXPECT_EQ(total, size_t{10} << 10);
  auto recs = (*reader)->Read(4096);
  ASSERT_TRUE(recs.ok());
  EXPECT_EQ(Drain(*ch, 8192), 4096u);
  EXPECT_EQ(ch->Info().counters.bytes_dropped, 0u);
  EXPECT_LE(budget_->usage().peak, budget_->limit());
}

TEST_F(ChannelBudgetTest, DropChannelKeepsDrainingAndCountsWhatTheBudgetCannotHold) {
  MemoryAccount other(budget_, 9, 0);
  ASSERT_TRUE(other.Charge(budget_->Headroom(9) - (4 << 10)));
  auto ch = MakeChannel(1, 1, OverflowPolicy::kDropOldest, 0);
  size_t total = 0;
  for (int i = 0; i < 10; ++i) total += Drain(*ch, 2048);
  EXPECT_EQ(total, 20480u);  // never stalls
  const ChannelInfo info = ch->Info();
  EXPECT_EQ(info.from_guest.buffered_bytes, 4096u);
  EXPECT_EQ(info.counters.bytes_dropped, 20480u - 4096u);
  auto report = ch->TakeDropReport();
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->dropped_bytes, 20480u - 4096u);
  EXPECT_EQ(budget_->usage().used, DataCap());
  EXPECT_LE(budget_->usage().peak, budget_->limit());
}

TEST_F(ChannelBudgetTest, PerDomainCapHoldsOneGuest) {
  budget_ = std::make_shared<MemoryBudget>(size_t{1} << 20, size_t{256} << 10);
  auto a = MakeChannel(1, 1, OverflowPolicy::kBlock, 0);
  auto b = MakeChannel(2, 1, OverflowPolicy::kBlock, 0);
  auto c = MakeChannel(3, 2, OverflowPolicy::kBlock, 0);
  size_t total = 0;
  while (size_t n = Drain(*a, 2048)) total += n;
  EXPECT_EQ(total, size_t{224} << 10);  // 7/8 of the domain's cap
  EXPECT_EQ(Drain(*b, 2048), 0u);       // same domain: nothing left
  EXPECT_EQ(Drain(*c, 2048), 2048u);    // another domain is unaffected
  EXPECT_EQ(budget_->domain_used(1), size_t{224} << 10);
  EXPECT_GT(budget_->usage().domain_refused, 0u);
}

TEST_F(ChannelBudgetTest, WriteRefusedByTheBudgetWakesTheWriterWhenMemoryFrees) {
  auto ch = MakeChannel(1, 1, OverflowPolicy::kBlock, 0);
  std::vector<uint64_t> kicked;
  budget_->SetNotify([&](uint64_t w) { kicked.push_back(w); });
  SessionOptions o;
  o.role = SessionRole::kWriter;
  auto writer = Session::Open(ch, o);
  ASSERT_TRUE(writer.ok()) << writer.status();
  (*writer)->Read(1 << 20).IgnoreError();  // clear notify_fd
  MemoryAccount other(budget_, 9, 0);
  ASSERT_TRUE(other.Charge(budget_->Headroom(9) - 100));
  auto w = (*writer)->Write(std::string(200, 'w'));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ch->Info().to_guest.queued_bytes, 0u);
  ASSERT_TRUE((*writer)->Write(std::string(100, 'w')).ok());
  EXPECT_EQ(budget_->usage().used, DataCap());
  // Memory freed elsewhere: the budget kicks the channel, the engine tells it.
  other.Release(1000);
  EXPECT_EQ(kicked, (std::vector<uint64_t>{1}));
  ch->OnMemoryReleased();
  pollfd p{(*writer)->notify_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 1);
  ASSERT_TRUE((*writer)->Write(std::string(200, 'w')).ok());
  // Delivered bytes leave the queue and the budget.
  const size_t before = budget_->usage().used;
  ch->InputProgress(300, 0);
  EXPECT_EQ(budget_->usage().used, before - 300);
}

TEST_F(ChannelBudgetTest, ClosingTheChannelReleasesEverything) {
  {
    auto ch = MakeChannel(1, 1, OverflowPolicy::kBlock, 8 << 10);
    EXPECT_EQ(Drain(*ch, 20000), 20000u);
    SessionOptions o;
    auto s = Session::Open(ch, o);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(ch->memory_used(), 20000u + Channel::kSessionMemory);
    EXPECT_EQ(budget_->usage().used, 20000u + Channel::kSessionMemory);
    s->reset();
    EXPECT_EQ(budget_->usage().used, 20000u);
  }
  EXPECT_EQ(budget_->usage().used, 0u);
}

TEST_F(ChannelBudgetTest, TrimReplayGivesBackOnlyHandedBytes) {
  auto ch = MakeChannel(1, 1, OverflowPolicy::kBlock, 0);
  SessionOptions o;
  o.start.anchor = ReadStart::Anchor::kEarliest;
  auto s = Session::Open(ch, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Drain(*ch, 2000), 2000u);
  ASSERT_TRUE((*s)->Read(500).ok());
  const size_t before = budget_->usage().used;
  EXPECT_EQ(ch->TrimReplay(), 500u);
  EXPECT_EQ(budget_->usage().used, before - 500);
  EXPECT_EQ(ch->TrimReplay(), 0u);
}

TEST(EventLogBudgetTest, RetainsFewerEventsWhenTheBudgetIsShort) {
  ChannelEvent e;
  e.channel.uid = std::string(100, 'u');
  const size_t cost = EventLog::MemoryCost(e);
  auto budget = std::make_shared<MemoryBudget>(cost * 5, MemoryBudget::kUnlimited);
  EventLog log(0, 100, budget, cost * 2);     // events are control state: all 5 * cost
  EXPECT_EQ(budget->usage().used, cost * 2);  // the floor
  for (int i = 0; i < 10; ++i) log.Append(e);
  EXPECT_EQ(log.revision(), 10u);
  EXPECT_EQ(budget->usage().used, cost * 5);
  auto retained = log.After(5, 100);
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_EQ(retained->size(), 5u);
  EXPECT_FALSE(log.After(4, 100).ok());  // OUT_OF_RANGE: no longer retained
  EXPECT_LE(budget->usage().peak, budget->limit());
}

}  // namespace
}  // namespace xenchan
