// The engine's global memory budget against flooding guests on a simulated
// host: six guests flood their channels (three BLOCK, three DROP_OLDEST)
// with nobody reading, far beyond the budget; the budget's use never goes
// above its cap, no guest holds more than its domain's cap, BLOCK channels
// stall (lossless: a late reader gets every byte in order) and DROP_OLDEST
// channels drop and report a gap, and a quiet guest keeps doing round trips
// all the while on its channel's reserved floor.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
using testing_sim::WriteAll;

constexpr size_t kBudget = size_t{4} << 20;
constexpr size_t kDomainLimit = size_t{1} << 20;
constexpr size_t kFloor = size_t{64} << 10;
constexpr int kFlooders = 6;
constexpr size_t kFloodBytes = size_t{3} << 20;  // per flooder: more than the budget can hold

class MemoryBudgetIntegrationTest : public testing_sim::FloodFixture {
 protected:
  void Configure(EngineOptions& options) override {
    options.memory_budget_bytes = kBudget;
    options.domain_memory_limit_bytes = kDomainLimit;
    options.channel_memory_reserve_bytes = kFloor;
    options.buffer_limit_bytes = size_t{2} << 20;  // above the domain cap
  }

  void Domain(const std::string& name) {
    auto domid = sim_->CreateDomain(name);
    ASSERT_TRUE(domid.ok()) << domid.status();
    ASSERT_TRUE(waiter_->WaitUntil([&] { return engine_->GetDomain(name).ok(); }));
  }

  void Channel(const std::string& domain, const std::string& id, OverflowPolicy policy) {
    CreateChannelRequest req;
    req.domain = domain;
    req.channel_id = id;
    req.config.overflow_policy = policy;
    req.wait_until_connected = true;
    auto c = engine_->CreateChannelAndWait(req);
    ASSERT_TRUE(c.ok()) << c.status();
  }

  std::vector<std::atomic<size_t>> sent_ = std::vector<std::atomic<size_t>>(kFlooders);
};

TEST_F(MemoryBudgetIntegrationTest, FloodingGuestsNeverTakeTheServerOverItsBudget) {
  Domain("quiet");
  Channel("quiet", "calm", OverflowPolicy::kBlock);
  std::vector<std::string> names;
  for (int i = 0; i < kFlooders; ++i) {
    names.push_back(absl::StrCat("flood", i));
    Domain(names.back());
    Channel(names.back(), "flood",
            i % 2 == 0 ? OverflowPolicy::kBlock : OverflowPolicy::kDropOldest);
  }
  const int calm_tty = Tty("quiet", "calm");
  auto calm = Open("quiet", "calm", SessionRole::kWriter, ReadStart::Anchor::kNext);
  ASSERT_NE(calm, nullptr);

  // The fixture's: flood threads run until TearDown joins them.
  std::vector<std::atomic<size_t>>& sent = sent_;
  for (int i = 0; i < kFlooders; ++i) {
    sent[i] = 0;
    Flood(Tty(names[i], "flood"), Pattern(kFloodBytes, static_cast<uint32_t>(i + 1)), &sent[i]);
  }

  // Every BLOCK flood stalls and every DROP_OLDEST flood drops: the budget
  // (or the guest's own cap) is full.
  ASSERT_TRUE(waiter_->WaitUntil(
      [&] {
        if (engine_->memory().usage.used < kBudget - kBudget / 8) return false;
        for (int i = 0; i < kFlooders; ++i) {
          auto c = engine_->GetChannel({names[i], "flood"});
          if (!c.ok()) return false;
          if (i % 2 == 0 && !c->stalled) return false;
          if (i % 2 == 1 && c->counters.bytes_dropped == 0) return false;
        }
        return true;
      },
      absl::Seconds(60)))
      << "floods did not reach the budget";
  EngineMemory full = engine_->memory();
  EXPECT_GT(full.usage.refused, 0u);
  EXPECT_LE(full.usage.used, kBudget);
  // More than any single domain may hold: the global cap, not only the
  // domains' caps, is what stopped them.
  EXPECT_GT(full.usage.used, kDomainLimit * 3);

  // The quiet guest keeps working on its reserved floor.
  for (int i = 0; i < 5; ++i) {
    const std::string tag = absl::StrCat("ping", i);
    ASSERT_TRUE(WriteAll(calm_tty, "up:" + tag));
    EXPECT_EQ(ReadSession(*calm, 3 + tag.size()), "up:" + tag);
    ASSERT_TRUE(calm->Write("down:" + tag).ok());
    EXPECT_EQ(ReadExactly(calm_tty, 5 + tag.size()), "down:" + tag);
  }

  // A late reader on a stalled BLOCK flood gets every byte, in order: the
  // stall was lossless, and reading lets the guest go on.
  auto late = Open(names[0], "flood", SessionRole::kObserver, ReadStart::Anchor::kEarliest);
  ASSERT_NE(late, nullptr);
  const size_t want = kFloodBytes;
  std::vector<SessionRecord> others;
  const std::string got = ReadSession(*late, want, absl::Seconds(60), &others);
  EXPECT_EQ(got.size(), want);
  EXPECT_TRUE(got == Pattern(kFloodBytes, 1)) << "BLOCK flood lost or reordered bytes";
  for (const SessionRecord& r : others) EXPECT_NE(r.kind, SessionRecord::Kind::kGap);

  // DROP_OLDEST floods report their losses.
  for (int i = 1; i < kFlooders; i += 2) {
    auto c = engine_->GetChannel({names[i], "flood"});
    ASSERT_TRUE(c.ok());
    EXPECT_GT(c->counters.bytes_dropped, 0u);
    EXPECT_LE(c->from_guest.buffered_bytes, kDomainLimit);
  }

  const EngineMemory end = engine_->memory();
  EXPECT_LE(end.usage.peak, kBudget);
  EXPECT_LE(end.usage.used, kBudget);
  size_t max_domain = 0;
  for (const auto& [domid, used] : end.by_domain) max_domain = std::max(max_domain, used);
  EXPECT_LE(max_domain, kDomainLimit);
  std::cout << "memory budget " << kBudget << " bytes (domain cap " << kDomainLimit << "): peak "
            << end.usage.peak << ", at saturation " << full.usage.used << ", largest domain "
            << max_domain << ", refused " << end.usage.refused << " (domain cap "
            << end.usage.domain_refused << "), reclaimed " << end.usage.reclaimed_bytes << "\n";
  for (int i = 0; i < kFlooders; ++i) {
    auto c = engine_->GetChannel({names[i], "flood"});
    if (!c.ok()) continue;
    std::cout << names[i] << (i % 2 == 0 ? " (block)" : " (drop-oldest)") << ": guest wrote "
              << sent[i].load() << ", buffered " << c->from_guest.buffered_bytes << ", dropped "
              << c->counters.bytes_dropped << ", stalls " << c->counters.stalls << "\n";
  }
}

}  // namespace
}  // namespace xenchan
