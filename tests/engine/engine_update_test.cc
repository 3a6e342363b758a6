// Engine::UpdateChannel on the in-memory Xen platform: each mutable setting
// takes effect at once (a bigger buffer lets a stalled guest write on,
// DROP_OLDEST after BLOCK drains the guest, a smaller buffer evicts with a
// gap), the backend record and the declaration store keep the new settings
// across engine restarts, lifetime changes declare and undeclare the channel
// (INCARNATION -> DURABLE comes back after a reboot, DURABLE -> INCARNATION
// goes with its domain), and what cannot change is refused.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/store/declaration_store.h"
#include "backend/util/api_limits.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/engine/fake_engine_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_fake::Frontend;
using testing_sim::Pattern;
using testing_sim::ReadSession;

constexpr char kUuid[] = "3f0c1c7e-8d1b-4c55-9b3a-6a2d1e4f5a60";
constexpr char kChan[] = "org.example.agent.1";

class EngineUpdateTest : public testing_fake::FakeEngineTest {
 protected:
  void SetUp() override {
    FakeEngineTest::SetUp();
    dir_ = testcommon::MakeTempDir("update");
  }
  void TearDown() override {
    FakeEngineTest::TearDown();
    testcommon::RemoveTree(dir_);
  }

  void StartWithStore() {
    StartEngine([this](EngineOptions& o) {
      auto store = DeclarationStore::Open(dir_ + "/declarations.db");
      ASSERT_TRUE(store.ok()) << store.status();
      o.declarations = *std::move(store);
    });
  }

  // A domain with the test's UUID; its domid once the engine knows it.
  uint32_t Boot() {
    auto d = host_->CreateDomain("vm1", kUuid);
    EXPECT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(Until([&] {
      auto dom = engine_->GetDomain(kUuid);
      return dom.ok() && dom->state == DomainState::kRunning;
    }));
    return d.ok() ? d->domid : 0;
  }

  absl::StatusOr<ChannelInfo> Update(ChannelUpdate update, bool validate_only = false) {
    return engine_->UpdateChannelAndWait(ChannelRef{kUuid, kChan}, std::move(update),
                                         validate_only);
  }

  // A backend record node of the channel (xenchan-*).
  std::string Record(const ChannelInfo& info, const char* node) {
    return Read(
        absl::StrCat("/local/domain/0/backend/xenchan/", info.domid, "/", info.devid, "/", node));
  }

  // Connects a BLOCK channel with a 100-byte buffer and has the guest fill
  // its out ring (2048 bytes): the channel stalls with 100 buffered.
  Frontend& ConnectStalled(const std::string& data) {
    ChannelConfig config;
    config.buffer_limit_bytes = 100;
    config.overflow_policy = OverflowPolicy::kBlock;
    Frontend& fe = Connect(kUuid, kChan, config);
    EXPECT_EQ(*fe.Write(data), 2048u);
    EXPECT_TRUE(waiter_->WaitFor(
        [](const ChannelEvent& e) { return e.type == ChannelEventType::kStalled; }));
    EXPECT_EQ(Info(kUuid, kChan).from_guest.buffered_bytes, 100u);
    return fe;
  }

  std::string dir_;
};

TEST_F(EngineUpdateTest, ABiggerBufferLetsAStalledGuestWriteOn) {
  StartEngine();
  Boot();
  const std::string data = Pattern(3000, 1);
  ConnectStalled(data);
  auto reader = Open(kUuid, kChan);
  ChannelUpdate update;
  update.buffer_limit_bytes = 1000;
  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.buffer_limit_bytes, 1000u);
  // The engine drained at once, up to the new limit, without a guest event.
  EXPECT_TRUE(Until([&] { return Info(kUuid, kChan).from_guest.buffered_bytes == 1000; }));
  EXPECT_TRUE(Info(kUuid, kChan).stalled);
  EXPECT_EQ(ReadSession(*reader, 1000), data.substr(0, 1000));
  EXPECT_EQ(Record(*updated, kBufferLimitNode), "1000");
  EXPECT_TRUE(waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kStateChanged && e.channel.config.buffer_limit_bytes == 1000;
  }));
}

TEST_F(EngineUpdateTest, DropOldestAfterBlockDrainsTheGuestAndReportsTheGap) {
  StartEngine();
  Boot();
  Frontend& fe = ConnectStalled(Pattern(3000, 2));
  ChannelUpdate update;
  update.overflow_policy = OverflowPolicy::kDropOldest;
  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.overflow_policy, OverflowPolicy::kDropOldest);
  // The engine drains a bounded amount per look; the guest kicks it on.
  EXPECT_TRUE(Until([&] {
    (void)fe.Notify();
    ChannelInfo info = Info(kUuid, kChan);
    return info.from_guest.next.offset == 2048 && !info.stalled;
  }));
  ChannelInfo info = Info(kUuid, kChan);
  EXPECT_EQ(info.from_guest.buffered_bytes, 100u);
  EXPECT_EQ(info.counters.bytes_dropped, 2048u - 100u);
  EXPECT_EQ(Record(info, kOverflowNode), kOverflowDropOldest);
}

TEST_F(EngineUpdateTest, AShrunkBufferEvictsTheOldestBytesWithAGap) {
  StartEngine();
  Boot();
  Frontend& fe = Connect(kUuid, kChan);
  auto reader = Open(kUuid, kChan);
  const std::string data = Pattern(500, 3);
  ASSERT_TRUE(fe.WriteAll(data).ok());
  ASSERT_TRUE(Until([&] { return Info(kUuid, kChan).from_guest.buffered_bytes == 500; }));
  ChannelUpdate update;
  update.buffer_limit_bytes = 100;
  ASSERT_TRUE(Update(update).ok());
  EXPECT_EQ(Info(kUuid, kChan).from_guest.buffered_bytes, 100u);
  std::vector<SessionRecord> others;
  EXPECT_EQ(ReadSession(*reader, 100, absl::Seconds(10), &others), data.substr(400));
  bool gap = false;
  for (const SessionRecord& r : others)
    gap = gap || (r.kind == SessionRecord::Kind::kGap && r.lost == 400);
  EXPECT_TRUE(gap);
  EXPECT_TRUE(waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kGap && e.drop_report->dropped_bytes == 400;
  }));
}

TEST_F(EngineUpdateTest, QueueLimitFramingAndValidateOnly) {
  StartEngine();
  Boot();
  Connect(kUuid, kChan);
  ChannelUpdate update;
  update.write_queue_limit_bytes = 1 << 20;
  Framing framing;
  framing.kind = Framing::Kind::kLengthPrefix;
  update.default_framing = framing;
  auto preview = Update(update, /*validate_only=*/true);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->config.write_queue_limit_bytes, 1u << 20);
  EXPECT_EQ(Info(kUuid, kChan).config.write_queue_limit_bytes, kDefaultWriteQueueLimitBytes);

  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.write_queue_limit_bytes, 1u << 20);
  EXPECT_EQ(updated->config.default_framing->kind, Framing::Kind::kLengthPrefix);
  EXPECT_EQ(Record(*updated, kFramingNode), "length-prefix");
  // A writer can queue what the new limit allows (the guest reads nothing).
  auto writer = Open(kUuid, kChan, SessionRole::kWriter);
  const std::string chunk(kMaxStreamMessageBytes, 'q');
  for (size_t queued = 0; queued <= kDefaultWriteQueueLimitBytes; queued += chunk.size()) {
    ASSERT_TRUE(writer->Write(chunk).ok());
  }

  // 0 means the engine default again; below the bytes queued is refused.
  ChannelUpdate shrink;
  shrink.write_queue_limit_bytes = 0;
  EXPECT_EQ(Update(shrink).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Info(kUuid, kChan).config.write_queue_limit_bytes, 1u << 20);
}

TEST_F(EngineUpdateTest, RefusesBadValuesEmptyUpdatesAndUnknownChannels) {
  StartEngine();
  Boot();
  Connect(kUuid, kChan);
  EXPECT_EQ(Update(ChannelUpdate{}).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelUpdate big;
  big.buffer_limit_bytes = kMaxBufferLimitBytes + 1;
  EXPECT_EQ(Update(big).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelUpdate queue;
  queue.write_queue_limit_bytes = kMaxWriteQueueLimitBytes + 1;
  EXPECT_EQ(Update(queue).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelUpdate framing;
  framing.default_framing = Framing{};
  framing.default_framing->kind = Framing::Kind::kDelimiter;  // without a delimiter
  EXPECT_EQ(Update(framing).status().code(), absl::StatusCode::kInvalidArgument);
  ChannelUpdate ok;
  ok.buffer_limit_bytes = 8192;
  EXPECT_EQ(engine_->UpdateChannelAndWait(ChannelRef{kUuid, "nope"}, ok).status().code(),
            absl::StatusCode::kNotFound);
  // Durable needs a declaration store.
  ChannelUpdate durable;
  durable.lifetime = ChannelLifetime::kDurable;
  EXPECT_EQ(Update(durable).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Info(kUuid, kChan).config.buffer_limit_bytes, kDefaultBufferLimitBytes);
}

TEST_F(EngineUpdateTest, ARestartedEngineServesTheUpdatedSettings) {
  StartEngine();
  Boot();
  Connect(kUuid, kChan);
  ChannelUpdate update;
  update.buffer_limit_bytes = 200000;
  update.overflow_policy = OverflowPolicy::kDropOldest;
  update.write_queue_limit_bytes = 100000;
  Framing framing;
  framing.kind = Framing::Kind::kQemuGuestAgent;
  update.default_framing = framing;
  ASSERT_TRUE(Update(update).ok());
  StopEngine();
  StartEngine();
  ASSERT_TRUE(WaitState(kUuid, kChan, ChannelState::kConnected));
  const ChannelConfig c = Info(kUuid, kChan).config;
  EXPECT_EQ(c.buffer_limit_bytes, 200000u);
  EXPECT_EQ(c.overflow_policy, OverflowPolicy::kDropOldest);
  EXPECT_EQ(c.write_queue_limit_bytes, 100000u);
  EXPECT_EQ(c.default_framing->kind, Framing::Kind::kQemuGuestAgent);
}

TEST_F(EngineUpdateTest, IncarnationToDurableComesBackAfterAReboot) {
  StartWithStore();
  const uint32_t first = Boot();
  auto created = Create(kUuid, kChan);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config.lifetime.value_or(ChannelLifetime::kIncarnation),
            ChannelLifetime::kIncarnation);
  ChannelUpdate update;
  update.lifetime = ChannelLifetime::kDurable;
  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.lifetime, ChannelLifetime::kDurable);
  ASSERT_TRUE(host_->DestroyDomain(first).ok());
  ASSERT_TRUE(WaitState(kUuid, kChan, ChannelState::kDomainDown));
  const uint32_t second = Boot();
  ASSERT_TRUE(Until([&] {
    ChannelInfo info = Info(kUuid, kChan);
    return info.domid == second && info.state == ChannelState::kWaitingForGuest;
  }));
  ChannelInfo back = Info(kUuid, kChan);
  EXPECT_EQ(back.uid, created->uid);
  EXPECT_EQ(back.devid, created->devid);
}

TEST_F(EngineUpdateTest, DurableToIncarnationGoesWithItsDomain) {
  StartWithStore();
  const uint32_t first = Boot();
  ChannelConfig config;
  config.lifetime = ChannelLifetime::kDurable;
  ASSERT_TRUE(Create(kUuid, kChan, config).ok());
  ChannelUpdate update;
  update.lifetime = ChannelLifetime::kIncarnation;
  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.lifetime, ChannelLifetime::kIncarnation);
  ASSERT_TRUE(host_->DestroyDomain(first).ok());
  EXPECT_TRUE(Until([&] { return !engine_->GetChannel(ChannelRef{kUuid, kChan}).ok(); }));
  EXPECT_EQ(engine_->GetDomain(kUuid).status().code(), absl::StatusCode::kNotFound);
  // Nothing declared any more: a restarted engine does not bring it back.
  StopEngine();
  StartWithStore();
  EXPECT_EQ(engine_->GetChannel(ChannelRef{kUuid, kChan}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineUpdateTest, ADomainDownChannelTakesSettingsForItsNextIncarnation) {
  StartWithStore();
  const uint32_t first = Boot();
  ChannelConfig config;
  config.lifetime = ChannelLifetime::kDurable;
  ASSERT_TRUE(Create(kUuid, kChan, config).ok());
  ASSERT_TRUE(host_->DestroyDomain(first).ok());
  ASSERT_TRUE(WaitState(kUuid, kChan, ChannelState::kDomainDown));

  ChannelUpdate update;
  update.buffer_limit_bytes = 300000;
  auto updated = Update(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.buffer_limit_bytes, 300000u);
  EXPECT_EQ(updated->state, ChannelState::kDomainDown);
  // Without an incarnation it would be nowhere: DeleteChannel does that.
  ChannelUpdate incarnation;
  incarnation.lifetime = ChannelLifetime::kIncarnation;
  EXPECT_EQ(Update(incarnation).status().code(), absl::StatusCode::kFailedPrecondition);

  // The store has it: a restarted engine, then the next incarnation.
  StopEngine();
  StartWithStore();
  ASSERT_TRUE(WaitState(kUuid, kChan, ChannelState::kDomainDown));
  EXPECT_EQ(Info(kUuid, kChan).config.buffer_limit_bytes, 300000u);
  const uint32_t second = Boot();
  ASSERT_TRUE(Until([&] {
    ChannelInfo info = Info(kUuid, kChan);
    return info.domid == second && info.state == ChannelState::kWaitingForGuest;
  }));
  const ChannelInfo back = Info(kUuid, kChan);
  EXPECT_EQ(back.config.buffer_limit_bytes, 300000u);
  EXPECT_EQ(Record(back, kBufferLimitNode), "300000");
}

}  // namespace
}  // namespace xenchan
