// Durable channels (issue 12) on the in-memory Xen platform: a channel
// declared for a domain's UUID waits DOMAIN_DOWN while the domain is gone
// and is re-created, with the same uid and devid, in its next incarnation;
// a reader opened before keeps reading across every incarnation, in order;
// declarations survive engine restarts in the SQLite store; deleting a
// waiting channel removes its declaration.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/store/declaration_store.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/engine/durable_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_fake::EngineDurableTest;
using testing_fake::Frontend;
using testing_fake::kAgent;
using testing_fake::kUuid;
using testing_sim::Pattern;
using testing_sim::ReadSession;

TEST_F(EngineDurableTest, RebootKeepsUidDevidAndTheReaderReadsOnInTheNewEpoch) {
  StartWithStore();
  const uint32_t first = Boot();
  auto created = CreateDurable();
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config.lifetime, ChannelLifetime::kDurable);
  Frontend& fe1 = Probe(first, created->devid);
  ASSERT_TRUE(fe1.FollowUntil(Frontend::kConnected).ok());
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  auto reader = Open(kUuid, kAgent);
  ASSERT_NE(reader, nullptr);
  const std::string before = Pattern(3000, 1);
  ASSERT_TRUE(fe1.WriteAll(before).ok());
  EXPECT_EQ(ReadSession(*reader, before.size()), before);
  const uint64_t first_epoch = Info(kUuid, kAgent).epoch;

  Destroy(first);
  // Not running, still listed and gettable by UUID and by its last name.
  ChannelInfo down = Info(kUuid, kAgent);
  EXPECT_EQ(down.uid, created->uid);
  auto dom = engine_->GetDomain("vm1");
  ASSERT_TRUE(dom.ok()) << dom.status();
  EXPECT_EQ(dom->state, DomainState::kNotRunning);
  EXPECT_EQ(dom->channel_count, 1u);
  CreateChannelRequest refused;
  refused.domain = kUuid;
  refused.channel_id = "org.example.other";
  EXPECT_EQ(engine_->CreateChannelAndWait(refused).status().code(), absl::StatusCode::kUnavailable);

  const uint32_t second = Boot();
  ASSERT_NE(second, first);
  Frontend& fe2 = Reconnect(second);
  ChannelInfo back = Info(kUuid, kAgent);
  EXPECT_EQ(back.uid, created->uid);
  EXPECT_EQ(back.devid, created->devid);
  EXPECT_EQ(back.domid, second);
  EXPECT_GT(back.epoch, first_epoch);
  const std::string after = Pattern(2000, 2);
  ASSERT_TRUE(fe2.WriteAll(after).ok());
  std::vector<SessionRecord> others;
  EXPECT_EQ(ReadSession(*reader, after.size(), absl::Seconds(20), &others), after);
  bool saw_reboot = false;
  for (const SessionRecord& r : others) {
    if (r.kind == SessionRecord::Kind::kEpochChange) {
      saw_reboot = r.epoch_change.reason == EpochChangeReason::kDomainRebooted &&
                   r.epoch_change.previous_epoch == first_epoch &&
                   r.epoch_change.previous_end_offset == before.size();
    }
  }
  EXPECT_TRUE(saw_reboot);
}

TEST_F(EngineDurableTest, ASuspendRequestMakesTheNextIncarnationARestore) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Probe(first, Info(kUuid, kAgent).devid);
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  ASSERT_NO_FATAL_FAILURE(RequestSuspend(first));
  Destroy(first);
  const uint32_t second = Boot();
  Reconnect(second);
  auto change = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kConnected && e.epoch_change.has_value() &&
           e.epoch_change->reason == EpochChangeReason::kDomainRestored;
  });
  EXPECT_TRUE(change.has_value());
}

TEST_F(EngineDurableTest, AGuestThatResumedBeforeTheDeviceGetsItAtAnotherDevid) {
  StartWithStore(absl::Milliseconds(200));
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  const uint32_t old_devid = Info(kUuid, kAgent).devid;
  Probe(first, old_devid);
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  ASSERT_NO_FATAL_FAILURE(RequestSuspend(first));
  Destroy(first);
  // The restored guest never probes the device at the old devid (it holds a
  // stale one there), and reports that one and the devid after it (another
  // channel's, say) broken: the engine moves the channel to neither.
  const uint32_t second = Boot();
  for (uint32_t stale : {old_devid, old_devid + 1}) {
    ASSERT_TRUE(host_->xs()
                    .Write(kNoTransaction,
                           absl::StrCat("/local/domain/", second, "/error/device/console/", stale,
                                        "/error"),
                           "2 reading other end details")
                    .ok());
  }
  ASSERT_TRUE(Until([&] {
    ChannelInfo info = Info(kUuid, kAgent);
    return info.domid == second && info.devid != old_devid &&
           info.state == ChannelState::kWaitingForGuest;
  }));
  EXPECT_NE(Info(kUuid, kAgent).devid, old_devid + 1);
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", second, "/device/console/", old_devid)),
            "<NOT_FOUND>");
  Frontend& fe = Probe(second, Info(kUuid, kAgent).devid);
  ASSERT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  auto change = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kConnected && e.epoch_change.has_value() &&
           e.epoch_change->reason == EpochChangeReason::kDomainRestored;
  });
  EXPECT_TRUE(change.has_value());
}

TEST_F(EngineDurableTest, AReaderFollowsThreeRebootsReadingEveryByteInOrder) {
  StartWithStore();
  uint32_t domid = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Frontend* fe = &Probe(domid, Info(kUuid, kAgent).devid);
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  auto reader = Open(kUuid, kAgent);
  ASSERT_NE(reader, nullptr);
  std::string expected;
  for (int round = 0; round < 4; ++round) {
    const std::string part = Pattern(1500 + 100 * round, 10 + round);
    ASSERT_TRUE(fe->WriteAll(part).ok());
    expected += part;
    if (round == 3) break;
    // The reader is handed the bytes before the domain goes (nothing is
    // lost if it is not: they stay buffered, as the first test shows).
    Destroy(domid);
    domid = Boot();
    fe = &Reconnect(domid);
  }
  std::vector<SessionRecord> others;
  const std::string got = ReadSession(*reader, expected.size(), absl::Seconds(20), &others);
  for (const SessionRecord& r : others) {
    if (r.kind == SessionRecord::Kind::kGap) ADD_FAILURE() << "gap of " << r.lost;
  }
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "the bytes differ (sizes " << got.size() << ", "
                               << expected.size() << ")";
}

TEST_F(EngineDurableTest, DeclarationsSurviveAnEngineRestartWhileTheDomainIsDown) {
  StartWithStore();
  const uint32_t first = Boot();
  auto created = CreateDurable();
  ASSERT_TRUE(created.ok()) << created.status();
  Destroy(first);
  StopEngine();
  StartWithStore();
  ChannelInfo waiting = Info(kUuid, kAgent);
  EXPECT_EQ(waiting.state, ChannelState::kDomainDown);
  EXPECT_EQ(waiting.uid, created->uid);
  const uint32_t second = Boot();
  Reconnect(second);
  ChannelInfo back = Info(kUuid, kAgent);
  EXPECT_EQ(back.uid, created->uid);
  EXPECT_EQ(back.devid, created->devid);
  EXPECT_EQ(back.config.lifetime, ChannelLifetime::kDurable);
}

TEST_F(EngineDurableTest, ARestartedEngineKnowsARunningDurableChannelAndItsEpochsGrow) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Probe(first, Info(kUuid, kAgent).devid);
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  const uint64_t epoch = Info(kUuid, kAgent).epoch;
  StopEngine();
  StartWithStore();
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  EXPECT_EQ(Info(kUuid, kAgent).config.lifetime, ChannelLifetime::kDurable);
  EXPECT_GT(Info(kUuid, kAgent).epoch, epoch);
  // Still durable: the next incarnation gets it back.
  Destroy(first);
  Reconnect(Boot());
}

TEST_F(EngineDurableTest, DeletingAWaitingChannelRemovesItsDeclaration) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Destroy(first);
  auto deleted = engine_->DeleteChannelAndWait(ChannelRef{kUuid, kAgent}, absl::Seconds(1));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(engine_->GetChannel(ChannelRef{kUuid, kAgent}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetDomain(kUuid).status().code(), absl::StatusCode::kNotFound);
  StopEngine();
  auto store = DeclarationStore::Open(StorePath());
  ASSERT_TRUE(store.ok()) << store.status();
  auto all = (*store)->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(EngineDurableTest, DeletingARunningDurableChannelUnplugsItForGood) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Frontend& fe = Probe(first, Info(kUuid, kAgent).devid);
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
  ASSERT_TRUE(Unplug(kUuid, kAgent, &fe).ok());
  ASSERT_TRUE(host_->DestroyDomain(first).ok());
  ASSERT_TRUE(Until([&] { return !engine_->GetDomain(kUuid).ok(); }));
  Boot();
  EXPECT_EQ(engine_->GetChannel(ChannelRef{kUuid, kAgent}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineDurableTest, WithoutAStoreADurableCreateIsRefused) {
  StartEngine();
  Boot();
  auto created = CreateDurable();
  EXPECT_EQ(created.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineDurableTest, ChannelsOfDomainsThatNeverReturnHoldNoMoreThanTheirBudget) {
  // Room for the event log and three channels' reserves, not a fourth.
  StartEngine([this](EngineOptions& o) {
    auto store = DeclarationStore::Open(StorePath());
    ASSERT_TRUE(store.ok()) << store.status();
    o.declarations = *std::move(store);
    o.event_retention = 16;
    o.channel_memory_reserve_bytes = size_t{1} << 20;
    o.memory_budget_bytes = (size_t{3} << 20) + (size_t{1} << 19);
  });
  std::vector<std::string> uuids;
  for (int i = 0; i < 3; ++i) {
    const std::string uuid = absl::StrCat("6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b2", i);
    auto d = host_->CreateDomain(absl::StrCat("gone", i), uuid);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(Until([&] { return engine_->GetDomain(uuid).ok(); }));
    ChannelConfig config;
    config.lifetime = ChannelLifetime::kDurable;
    ASSERT_TRUE(Create(uuid, kAgent, config).ok());
    ASSERT_TRUE(host_->DestroyDomain(d->domid).ok());
    ASSERT_TRUE(WaitState(uuid, kAgent, ChannelState::kDomainDown));
    uuids.push_back(uuid);
  }
  // The waiting channels keep their reserves: a fourth channel anywhere is
  // refused rather than over-committing memory.
  const uint32_t live = Boot();
  ASSERT_NE(live, 0u);
  EXPECT_EQ(Create(kUuid, kAgent).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LE(engine_->memory().usage.used, (size_t{3} << 20) + (size_t{1} << 19));
  // Deleting one declaration gives its memory back.
  ASSERT_TRUE(engine_->DeleteChannelAndWait(ChannelRef{uuids[0], kAgent}, absl::Seconds(1)).ok());
  EXPECT_TRUE(Create(kUuid, kAgent).ok());
}

TEST_F(EngineDurableTest, AnIncarnationChannelGoesWithItsDomain) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(Create(kUuid, kAgent).ok());
  ASSERT_TRUE(host_->DestroyDomain(first).ok());
  ASSERT_TRUE(Until([&] { return !engine_->GetDomain(kUuid).ok(); }));
  Boot();
  EXPECT_EQ(engine_->GetChannel(ChannelRef{kUuid, kAgent}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineDurableTest, AGuestThatRemovesTheRecreatedDeviceCausesNoLoop) {
  StartWithStore();
  const uint32_t first = Boot();
  ASSERT_TRUE(CreateDurable().ok());
  Destroy(first);
  const uint32_t second = Boot();
  ASSERT_TRUE(Until([&] { return Info(kUuid, kAgent).domid == second; }));
  const uint64_t revision = engine_->revision();
  // The hostile guest deletes its frontend directory, then scribbles it.
  const std::string fe =
      absl::StrCat("/local/domain/", second, "/device/console/", Info(kUuid, kAgent).devid);
  ASSERT_TRUE(host_->xs().Remove(kNoTransaction, fe).ok());
  ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kDisconnected));
  for (int i = 0; i < 50; ++i) {
    (void)host_->xs().Write(kNoTransaction, fe + "/state", absl::StrCat(i % 9));
  }
  // It is not re-created again: only a new incarnation does that.
  CreateChannelRequest sync;  // a round trip through the engine thread
  sync.domain = kUuid;
  sync.channel_id = "org.example.sync";
  ASSERT_TRUE(engine_->CreateChannelAndWait(sync).ok());
  EXPECT_EQ(Info(kUuid, kAgent).domid, second);
  EXPECT_LT(engine_->revision() - revision, 60u);
}

}  // namespace
}  // namespace xenchan
