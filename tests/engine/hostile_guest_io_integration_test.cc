// Hostile guests that misuse the data path rather than the protocol, against
// the engine on a simulated host (issue 7, "a guest that never reads input,
// a guest that floods output under both overflow policies"):
//  - a guest that opens its channel and never reads it: host writes fill the
//    in ring, then the channel's write queue; further writes get
//    RESOURCE_EXHAUSTED (the queue's limit, or the memory budget's per-domain
//    cap when the queue's limit is above it), nothing accepted is dropped,
//    memory stays within the budget, and once the guest reads, the writer is
//    woken and every accepted byte arrives in order;
//  - guests that flood their output with no reader attached, one channel
//    BLOCK and one DROP_OLDEST: both buffers stay within their limit; BLOCK
//    stops draining the ring (the guest stalls, nothing is dropped) and a
//    late reader gets every byte; DROP_OLDEST keeps draining, counts exactly
//    the bytes it evicted, and a late reader gets the retained tail.
// A quiet guest does round trips all the while.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>
#include <xen/io/console.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/flood_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_sim::EventWaiter;
using testing_sim::OpenRawTty;
using testing_sim::Pattern;
using testing_sim::ReadExactly;
using testing_sim::ReadSession;
using testing_sim::SimHost;
using testing_sim::WaitWriteStatus;
using testing_sim::WriteAll;

constexpr size_t kBudget = size_t{8} << 20;
constexpr size_t kDomainLimit = size_t{2} << 20;
constexpr size_t kFloor = size_t{64} << 10;
constexpr size_t kInRing = sizeof(xencons_interface::in);

class HostileGuestIoTest : public testing_sim::FloodFixture {
 protected:
  void Configure(EngineOptions& options) override {
    options.memory_budget_bytes = kBudget;
    options.domain_memory_limit_bytes = kDomainLimit;
    options.channel_memory_reserve_bytes = kFloor;
  }

  uint32_t Domain(const std::string& name) {
    auto domid = sim_->CreateDomain(name);
    EXPECT_TRUE(domid.ok()) << domid.status();
    EXPECT_TRUE(waiter_->WaitUntil([&] { return engine_->GetDomain(name).ok(); }));
    return domid.ok() ? *domid : 0;
  }

  ChannelInfo Channel(const std::string& domain, const std::string& id, ChannelConfig config) {
    CreateChannelRequest req;
    req.domain = domain;
    req.channel_id = id;
    req.config = config;
    req.wait_until_connected = true;
    auto c = engine_->CreateChannelAndWait(req);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : ChannelInfo();
  }

  // The quiet guest's channel: one round trip each way.
  void QuietRoundTrip(const std::string& tag) {
    ASSERT_TRUE(WriteAll(quiet_tty_, "up:" + tag));
    EXPECT_EQ(ReadSession(*quiet_, 3 + tag.size()), "up:" + tag);
    ASSERT_TRUE(quiet_->Write("down:" + tag).ok());
    EXPECT_EQ(ReadExactly(quiet_tty_, 5 + tag.size()), "down:" + tag);
  }

  void StartQuiet() {
    Domain("quiet");
    Channel("quiet", "calm", ChannelConfig{});
    quiet_tty_ = Tty("quiet", "calm");
    quiet_ = Open("quiet", "calm", SessionRole::kWriter);
    ASSERT_NE(quiet_, nullptr);
    QuietRoundTrip("start");
  }

  // Writes chunks of `data` from `*at` on until the session refuses one;
  // returns the refusal (OK if all of `data` was accepted).
  static absl::Status WriteUntilRefused(Session& s, const std::string& data, size_t chunk,
                                        size_t* at) {
    while (*at < data.size()) {
      auto r = s.Write(absl::string_view(data).substr(*at, chunk));
      if (!r.ok()) return r.status();
      *at += std::min(chunk, data.size() - *at);
    }
    return absl::OkStatus();
  }

  static bool WaitReadable(int fd, absl::Duration timeout) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
  }

  void ExpectMemoryWithinCaps(const std::string& when) {
    const EngineMemory m = engine_->memory();
    EXPECT_LE(m.usage.peak, kBudget) << when;
    EXPECT_LE(m.usage.used, kBudget) << when;
    for (const auto& [domid, used] : m.by_domain) EXPECT_LE(used, kDomainLimit) << when;
  }

  std::atomic<size_t> sent_[2] = {};
  int quiet_tty_ = -1;
  std::unique_ptr<Session> quiet_;
};

// A guest that has its channel open and never reads: the in ring fills,
// then the write queue; writes are refused with RESOURCE_EXHAUSTED, nothing
// accepted is lost, and reading later wakes the writer and delivers it all.
TEST_F(HostileGuestIoTest, GuestThatNeverReadsFillsRingThenQueueAndWritersAreRefused) {
  StartQuiet();
  const uint32_t deaf = Domain("deaf");
  constexpr size_t kQueue = 64 << 10;
  constexpr size_t kChunk = 4096;
  ChannelConfig config;
  config.write_queue_limit_bytes = kQueue;
  Channel("deaf", "in", config);
  const int tty = Tty("deaf", "in");  // open (so the guest moves input to it), never read
  auto writer = Open("deaf", "in", SessionRole::kWriter);
  ASSERT_NE(writer, nullptr);

  // Far more than the guest can take while it does not read.
  const std::string data = Pattern(size_t{4} << 20, 7);
  // Keep writing while the engine moves what it can: the guest's tty takes
  // a little, then its in ring fills (the engine puts in only what the ring
  // has room for), then the write queue; from then on every write is
  // refused.
  size_t at = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::Status refused = WriteUntilRefused(*writer, data, kChunk, &at);
    ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted)
        << refused << " after " << at << " bytes";
    EXPECT_TRUE(absl::StrContains(refused.message(), "write queue")) << refused;
    writer->Read(1 << 20).IgnoreError();  // clear the wake-up, then look
    const WriteStatus ws = writer->write_status();
    if (ws.delivered_offset - ws.consumed_offset == kInRing && ws.room < kChunk) break;
    const absl::Duration left = deadline - absl::Now();
    ASSERT_GT(left, absl::ZeroDuration())
        << "in ring never filled: delivered " << ws.delivered_offset << ", consumed "
        << ws.consumed_offset;
    WaitReadable(writer->notify_fd(), left);  // an offset moved, or the deadline
  }
  // Whatever else is written is refused the same way; nothing is dropped.
  for (int i = 0; i < 50; ++i) {
    absl::Status again = WriteUntilRefused(*writer, data, kChunk, &at);
    ASSERT_EQ(again.code(), absl::StatusCode::kResourceExhausted) << again;
  }
  const WriteStatus full = writer->write_status();
  auto info = engine_->GetChannel({"deaf", "in"});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(full.accepted_offset, at);
  EXPECT_LE(full.accepted_offset - full.delivered_offset, kQueue);
  EXPECT_LE(info->to_guest.queued_bytes, kQueue);
  // At most a ring's worth delivered and not consumed (the guest may have
  // moved some more into its tty since the loop saw the ring full).
  EXPECT_LE(full.delivered_offset - full.consumed_offset, kInRing);
  EXPECT_EQ(info->counters.bytes_discarded_to_guest, 0u);
  // The deaf guest holds at most its queue and floor; the budget holds.
  EXPECT_LE(engine_->memory().by_domain[deaf], kFloor + kQueue + (64 << 10));
  ExpectMemoryWithinCaps("deaf guest full");
  std::cout << "guest that never reads: accepted " << full.accepted_offset << ", delivered "
            << full.delivered_offset << ", consumed by its tty " << full.consumed_offset
            << ", queued " << info->to_guest.queued_bytes << " (limit " << kQueue
            << "); domain memory " << engine_->memory().by_domain[deaf] << "\n";
  for (int i = 0; i < 3; ++i) QuietRoundTrip(absl::StrCat("while deaf ", i));

  // The guest starts reading: the writer is woken once room frees, and
  // everything accepted (and written after) arrives in order.
  writer->Read(1 << 20).IgnoreError();  // clear the pending wake-up
  std::string got;
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    char buf[65536];
    while (reading.load()) {
      pollfd p{tty, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;  // bounded so the stop is seen
      const ssize_t n = read(tty, buf, sizeof(buf));
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
  });
  ASSERT_TRUE(WaitReadable(writer->notify_fd(), absl::Seconds(30))) << "writer never woken";
  const size_t total = at + (256 << 10);
  while (at < total) {
    absl::Status s = WriteUntilRefused(*writer, data.substr(0, total), kChunk, &at);
    if (s.ok()) break;
    ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    writer->Read(1 << 20).IgnoreError();
    ASSERT_TRUE(WaitReadable(writer->notify_fd(), absl::Seconds(30)));
  }
  EXPECT_TRUE(WaitWriteStatus(
      *writer, [&](const WriteStatus& ws) { return ws.consumed_offset == total; },
      absl::Seconds(60)));
  reading = false;
  reader.join();
  got += ReadExactly(tty, total - std::min(total, got.size()), absl::Seconds(5));
  EXPECT_EQ(got.size(), total);
  EXPECT_TRUE(got == data.substr(0, total)) << "accepted input lost or reordered";
  ExpectMemoryWithinCaps("after");
  QuietRoundTrip("end");
}

// With a write queue limit above the domain's memory cap, the budget is what
// refuses: one guest's unread input never holds more than its domain's cap,
// and another guest's writer is unaffected.
TEST_F(HostileGuestIoTest, GuestThatNeverReadsIsHeldToItsDomainsMemoryCap) {
  StartQuiet();
  const uint32_t deaf = Domain("deaf");
  ChannelConfig config;
  config.write_queue_limit_bytes = size_t{16} << 20;  // more than the domain may hold
  Channel("deaf", "big", config);
  Tty("deaf", "big");  // open, never read
  auto writer = Open("deaf", "big", SessionRole::kWriter);
  ASSERT_NE(writer, nullptr);
  const std::string data = Pattern(size_t{8} << 20, 9);
  size_t at = 0;
  absl::Status refused = WriteUntilRefused(*writer, data, Session::kMaxWrite, &at);
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "memory budget")) << refused;
  const EngineMemory m = engine_->memory();
  EXPECT_LE(m.by_domain.at(deaf), kDomainLimit);
  EXPECT_GT(m.usage.domain_refused, 0u);
  EXPECT_LT(at, kDomainLimit + (64 << 10));
  ExpectMemoryWithinCaps("deaf guest at its cap");
  std::cout << "guest that never reads, 16 MiB queue limit: accepted " << at
            << " bytes, domain memory " << m.by_domain.at(deaf) << " (cap " << kDomainLimit
            << "), refusals " << m.usage.domain_refused << "\n";
  // Another guest's writer writes as much as it likes.
  for (int i = 0; i < 3; ++i) QuietRoundTrip(absl::StrCat("next to a full domain ", i));
  const std::string big(Session::kMaxWrite, 'q');
  ASSERT_TRUE(quiet_->Write(big).ok());
  EXPECT_EQ(ReadExactly(quiet_tty_, big.size()), big);
}

// Output floods with nobody reading, one channel per overflow policy.
TEST_F(HostileGuestIoTest, OutputFloodWithNoReaderUnderBlockAndDropOldest) {
  StartQuiet();
  constexpr size_t kLimit = 64 << 10;
  constexpr size_t kFlood = size_t{1} << 20;
  Domain("blocker");
  Domain("dropper");
  ChannelConfig block;
  block.buffer_limit_bytes = kLimit;
  block.overflow_policy = OverflowPolicy::kBlock;
  ChannelConfig drop = block;
  drop.overflow_policy = OverflowPolicy::kDropOldest;
  Channel("blocker", "out", block);
  Channel("dropper", "out", drop);
  const std::string block_data = Pattern(kFlood, 11);
  const std::string drop_data = Pattern(kFlood, 12);
  // The fixture's: flood threads run until TearDown joins them.
  std::atomic<size_t>& block_sent = sent_[0];
  std::atomic<size_t>& drop_sent = sent_[1];
  Flood(Tty("blocker", "out"), block_data, &block_sent);
  Flood(Tty("dropper", "out"), drop_data, &drop_sent);

  // DROP_OLDEST keeps draining: the guest writes everything, the engine
  // takes it all and keeps the newest kLimit bytes.
  ASSERT_TRUE(waiter_->WaitUntil(
      [&] {
        auto c = engine_->GetChannel({"dropper", "out"});
        return c.ok() && c->counters.bytes_from_guest == kFlood;
      },
      absl::Seconds(60)))
      << "drop-oldest flood not drained: guest sent " << drop_sent.load();
  // BLOCK stops draining once its buffer is full: the guest stalls.
  ASSERT_TRUE(waiter_->WaitUntil(
      [&] {
        auto c = engine_->GetChannel({"blocker", "out"});
        return c.ok() && c->stalled;
      },
      absl::Seconds(60)));
  for (int i = 0; i < 3; ++i) QuietRoundTrip(absl::StrCat("during floods ", i));

  auto b = engine_->GetChannel({"blocker", "out"});
  auto d = engine_->GetChannel({"dropper", "out"});
  ASSERT_TRUE(b.ok() && d.ok());
  EXPECT_EQ(b->from_guest.buffered_bytes, kLimit);
  EXPECT_EQ(b->counters.bytes_from_guest, kLimit);  // drained no more than it could keep
  EXPECT_EQ(b->counters.bytes_dropped, 0u);
  EXPECT_GE(b->counters.stalls, 1u);
  EXPECT_LT(block_sent.load(), kFlood);  // the guest is held up, not its bytes dropped
  EXPECT_EQ(d->from_guest.buffered_bytes, kLimit);
  EXPECT_EQ(d->counters.bytes_dropped, kFlood - kLimit);  // every evicted byte counted
  EXPECT_FALSE(d->stalled);
  EXPECT_EQ(d->from_guest.earliest.offset, kFlood - kLimit);
  ExpectMemoryWithinCaps("floods");
  // The drops are reported as a GAP event with the count.
  auto gap = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kGap && e.channel.channel_id == "out" &&
           e.channel.domain_name == "dropper";
  });
  ASSERT_TRUE(gap.has_value());
  ASSERT_TRUE(gap->drop_report.has_value());
  EXPECT_GT(gap->drop_report->dropped_bytes, 0u);
  EXPECT_LE(gap->drop_report->dropped_bytes, kFlood - kLimit);
  std::cout << "flood of " << kFlood << " bytes, buffer limit " << kLimit << ": BLOCK guest sent "
            << block_sent.load() << ", drained " << b->counters.bytes_from_guest
            << ", dropped 0; DROP_OLDEST guest sent " << drop_sent.load() << ", drained "
            << d->counters.bytes_from_guest << ", dropped " << d->counters.bytes_dropped
            << "; memory peak " << engine_->memory().usage.peak << "\n";

  // A reader attaching to DROP_OLDEST gets the retained tail: the newest
  // kLimit bytes, starting where the drops ended.
  auto late_drop = Open("dropper", "out", SessionRole::kObserver, ReadStart::Anchor::kEarliest);
  ASSERT_NE(late_drop, nullptr);
  EXPECT_EQ(late_drop->start_position().offset, kFlood - kLimit);
  std::vector<SessionRecord> others;
  const std::string tail = ReadSession(*late_drop, kLimit, absl::Seconds(20), &others);
  EXPECT_TRUE(tail == drop_data.substr(kFlood - kLimit)) << "retained tail wrong";
  for (const SessionRecord& r : others) EXPECT_NE(r.kind, SessionRecord::Kind::kGap);

  // A reader attaching to BLOCK gets everything, in order: reading lets the
  // stalled guest go on.
  auto late_block = Open("blocker", "out", SessionRole::kObserver, ReadStart::Anchor::kEarliest);
  ASSERT_NE(late_block, nullptr);
  EXPECT_EQ(late_block->start_position().offset, 0u);
  others.clear();
  const std::string all = ReadSession(*late_block, kFlood, absl::Seconds(60), &others);
  EXPECT_EQ(all.size(), kFlood);
  EXPECT_TRUE(all == block_data) << "BLOCK lost or reordered bytes";
  for (const SessionRecord& r : others) EXPECT_NE(r.kind, SessionRecord::Kind::kGap);
  b = engine_->GetChannel({"blocker", "out"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->counters.bytes_dropped, 0u);
  EXPECT_LE(b->from_guest.buffered_bytes, kLimit);
  ExpectMemoryWithinCaps("end");
  QuietRoundTrip("end");
}

}  // namespace
}  // namespace xenchan
