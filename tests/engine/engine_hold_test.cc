// Holding a returning domain (engine_hold.cc) on the in-memory Xen platform:
// a domain with durable channels that is introduced again stays paused past
// the toolstack's unpause until its channels' devices are written; an
// incoming migration is held until the outgoing domain goes, or at most the
// hold limit; a restarted engine ends the holds a dead one recorded, and only
// those of the incarnation it paused.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/mutex.h"
#include "gtest/gtest.h"
#include "tests/engine/durable_fixture.h"

namespace xenchan {
namespace {

using testing_fake::EngineDurableTest;
using testing_fake::kAgent;
using testing_fake::kUuid;

class EngineHoldTest : public EngineDurableTest {
 protected:
  void StartHolding(absl::Duration limit = absl::Seconds(30)) {
    StartWithStore(absl::Seconds(5), [this, limit](EngineOptions& o) {
      o.domain_control = host_->OpenDomainControl();
      o.domain_hold_limit = limit;
    });
  }

  uint32_t PauseCount(uint32_t domid) { return host_->hypervisor().Info(domid).pause_count; }

  std::string HeldRecord(uint32_t domid) { return Read(HeldDomainPath(0, "xenchan", domid)); }

  // Starts an engine that holds domains and records every arrival it offers
  // the fleet; `accept` is the fleet's answer to each offer.
  void StartRecordingArrivals(bool accept) {
    StartWithStore(absl::Seconds(5), [this, accept](EngineOptions& o) {
      o.domain_control = host_->OpenDomainControl();
      o.on_domain_arrival = [this, accept](uint32_t domid, const std::string&) {
        MutexLock lock(&arrivals_mu_);
        arrivals_.push_back(domid);
        return accept;
      };
    });
  }
  std::vector<uint32_t> Arrivals() {
    MutexLock lock(&arrivals_mu_);
    return arrivals_;
  }

  Mutex arrivals_mu_;
  std::vector<uint32_t> arrivals_ ABSL_GUARDED_BY(arrivals_mu_);

  // A running domain with a connected durable channel; returns its domid.
  uint32_t BootWithChannel() {
    const uint32_t domid = Boot();
    EXPECT_TRUE(CreateDurable().ok());
    Probe(domid, Info(kUuid, kAgent).devid);
    EXPECT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
    return domid;
  }
};

TEST_F(EngineHoldTest, AReturningDomainStaysPausedUntilItsChannelIsWritten) {
  StartHolding();
  const uint32_t first = BootWithChannel();
  const uint32_t devid = Info(kUuid, kAgent).devid;
  ASSERT_NO_FATAL_FAILURE(RequestSuspend(first));
  Destroy(first);
  // The restore: libxl introduces the domain and is still adding devices.
  auto second = host_->CreateDomain("vm1", kUuid, /*paused=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  const uint32_t domid = second->domid;
  FakeTrace& trace = host_->trace();
  ASSERT_TRUE(Until([&] {
    ChannelInfo info = Info(kUuid, kAgent);
    return info.domid == domid && info.state == ChannelState::kWaitingForGuest &&
           trace.Find(absl::StrCat("domain unpause ", domid)) >= 0;
  }));
  // Our pause came before the device's transaction, our unpause after it.
  const int pause = trace.Find(absl::StrCat("domain pause ", domid));
  ASSERT_GE(pause, 0);
  const int commit = trace.Find("xs 0 commit", pause);
  const int unpause = trace.Find(absl::StrCat("domain unpause ", domid), pause);
  ASSERT_GE(commit, 0);
  EXPECT_GT(unpause, commit);
  EXPECT_EQ(Info(kUuid, kAgent).devid, devid);
  EXPECT_EQ(HeldRecord(domid), "<NOT_FOUND>");
  // Only the toolstack's own pause is left; its unpause lets the guest run.
  EXPECT_EQ(PauseCount(domid), 1u);
  ASSERT_TRUE(host_->hypervisor().Unpause(domid).ok());
  EXPECT_EQ(PauseCount(domid), 0u);
  Reconnect(domid);
}

TEST_F(EngineHoldTest, ADomainWithoutDurableChannelsIsNeverPaused) {
  StartHolding();
  auto d = host_->CreateDomain("plain", "", /*paused=*/true);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(Until([&] { return engine_->GetDomain("plain").ok(); }));
  EXPECT_EQ(host_->trace().Find(absl::StrCat("domain pause ", d->domid)), -1);
  EXPECT_EQ(PauseCount(d->domid), 1u);
}

TEST_F(EngineHoldTest, AnIncomingMigrationIsHeldUntilTheOutgoingDomainGoes) {
  StartHolding();
  const uint32_t source = BootWithChannel();
  auto incoming = host_->CreateDomain("vm1--incoming", kUuid, /*paused=*/true);
  ASSERT_TRUE(incoming.ok()) << incoming.status();
  const uint32_t target = incoming->domid;
  ASSERT_TRUE(Until([&] { return PauseCount(target) == 2; }));
  EXPECT_EQ(HeldRecord(target), kUuid);
  // The receiver's unpause does not start it while the channel is behind.
  ASSERT_TRUE(host_->hypervisor().Unpause(target).ok());
  EXPECT_EQ(PauseCount(target), 1u);
  ASSERT_TRUE(host_->DestroyDomain(source).ok());
  ASSERT_TRUE(Until([&] {
    ChannelInfo info = Info(kUuid, kAgent);
    return info.domid == target && info.state == ChannelState::kWaitingForGuest &&
           PauseCount(target) == 0;
  }));
  EXPECT_EQ(HeldRecord(target), "<NOT_FOUND>");
}

TEST_F(EngineHoldTest, AHoldEndsAtItsLimit) {
  StartHolding(absl::Milliseconds(100));
  BootWithChannel();
  auto incoming = host_->CreateDomain("vm1--incoming", kUuid, /*paused=*/true);
  ASSERT_TRUE(incoming.ok()) << incoming.status();
  const uint32_t target = incoming->domid;
  ASSERT_TRUE(
      Until([&] { return host_->trace().Find(absl::StrCat("domain pause ", target)) >= 0; }));
  // The outgoing domain never goes: the hold ends anyway.
  ASSERT_TRUE(Until([&] { return PauseCount(target) == 1; }));
  EXPECT_EQ(HeldRecord(target), "<NOT_FOUND>");
}

TEST_F(EngineHoldTest, StoppingTheEngineEndsItsHolds) {
  StartHolding();
  BootWithChannel();
  auto incoming = host_->CreateDomain("vm1--incoming", kUuid, /*paused=*/true);
  ASSERT_TRUE(incoming.ok()) << incoming.status();
  const uint32_t target = incoming->domid;
  ASSERT_TRUE(Until([&] { return PauseCount(target) == 2; }));
  StopEngine();
  EXPECT_EQ(PauseCount(target), 1u);
  EXPECT_EQ(HeldRecord(target), "<NOT_FOUND>");
}

TEST_F(EngineHoldTest, ARestartedEngineEndsOnlyTheHoldsItsPredecessorRecorded) {
  // What an engine that died holding two domains leaves: its pauses and its
  // records; the second record names another UUID than the domain now at
  // that domid, which the dead engine therefore never paused.
  auto held = host_->CreateDomain("held", kUuid);
  auto other = host_->CreateDomain("other");
  ASSERT_TRUE(held.ok() && other.ok());
  ASSERT_TRUE(host_->hypervisor().Pause(held->domid).ok());
  ASSERT_TRUE(host_->hypervisor().Pause(other->domid).ok());
  for (const auto& [domid, uuid] :
       {std::pair<uint32_t, std::string>{held->domid, kUuid},
        std::pair<uint32_t, std::string>{other->domid, "00000000-0000-4000-8000-000000000001"},
        std::pair<uint32_t, std::string>{999, "not a uuid"}}) {
    ASSERT_TRUE(host_->xs().Write(kNoTransaction, HeldDomainPath(0, "xenchan", domid), uuid).ok());
  }
  StartHolding();
  EXPECT_EQ(PauseCount(held->domid), 0u);
  EXPECT_EQ(PauseCount(other->domid), 1u);
  auto left = host_->xs().Directory(kNoTransaction, HeldDomainsDir(0, "xenchan"));
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(EngineHoldTest, ADomainFromAnotherHostIsHeldUntilTheFleetAnswersAndGetsItsChannels) {
  Mutex mu;
  std::vector<std::pair<uint32_t, std::string>> arrivals;
  StartWithStore(absl::Seconds(5), [&](EngineOptions& o) {
    o.domain_control = host_->OpenDomainControl();
    o.on_domain_arrival = [&](uint32_t domid, const std::string& uuid) {
      MutexLock lock(&mu);
      arrivals.emplace_back(domid, uuid);
      return true;
    };
  });
  // Introduced after start with a UUID no channel is declared for here.
  auto incoming = host_->CreateDomain("vm1", kUuid, /*paused=*/true);
  ASSERT_TRUE(incoming.ok()) << incoming.status();
  const uint32_t domid = incoming->domid;
  ASSERT_TRUE(Until([&] {
    MutexLock lock(&mu);
    return arrivals.size() == 1;
  }));
  {
    MutexLock lock(&mu);
    EXPECT_EQ(arrivals[0], std::make_pair(domid, std::string(kUuid)));
  }
  ASSERT_TRUE(Until([&] { return PauseCount(domid) == 2; }));  // the toolstack's and ours
  // What the fleet found for the UUID, declared on the host it came from.
  ChannelDeclaration d;
  d.domain_uuid = kUuid;
  d.channel_id = kAgent;
  d.uid = "0b1e2c4d-1111-4222-8333-444455556666";
  d.last_devid = 3;
  ChannelDeclaration foreign = d;  // another domain's: ignored
  foreign.domain_uuid = "00000000-0000-4000-8000-000000000001";
  engine_->AdoptDeclarations(domid, kUuid, {d, foreign});
  ASSERT_TRUE(Until([&] {
    auto info = engine_->GetChannel(ChannelRef{kUuid, kAgent});
    return info.ok() && info->domid == domid && info->state == ChannelState::kWaitingForGuest &&
           PauseCount(domid) == 1;
  }));
  ChannelInfo info = Info(kUuid, kAgent);
  EXPECT_EQ(info.uid, d.uid);
  EXPECT_EQ(info.devid, 3u);
  EXPECT_EQ(info.config.lifetime, ChannelLifetime::kDurable);
  EXPECT_EQ(HeldRecord(domid), "<NOT_FOUND>");
  // Declared here now: it survives this engine's restart.
  ASSERT_TRUE(host_->hypervisor().Unpause(domid).ok());
  Reconnect(domid);
  auto change = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kConnected && e.epoch_change.has_value() &&
           e.epoch_change->reason == EpochChangeReason::kDomainMigrated;
  });
  EXPECT_TRUE(change.has_value());
  StopEngine();
  StartWithStore();
  EXPECT_EQ(Info(kUuid, kAgent).uid, d.uid);
}

// libxl writes a domain's nodes before it introduces it. A scan that saw
// such a domain took it in, @releaseDomain dropped it (not introduced yet),
// and its introduction made it a second arrival (a CI failure under TSan).
TEST_F(EngineHoldTest, AHalfBuiltDomainIsNoArrivalUntilItIsIntroduced) {
  StartRecordingArrivals(/*accept=*/false);
  const uint32_t half = 77;
  const std::string vm = absl::StrCat("/vm/", kUuid);
  const std::string dom = absl::StrCat("/local/domain/", half);
  ASSERT_TRUE(host_->xs().Write(kNoTransaction, vm + "/uuid", kUuid).ok());
  ASSERT_TRUE(host_->xs().Write(kNoTransaction, dom + "/vm", vm).ok());
  ASSERT_TRUE(host_->xs().Write(kNoTransaction, dom + "/name", "vm1").ok());
  // Another domain's introduction scans them all; its release then checks
  // every known domain, after that scan.
  auto other = host_->CreateDomain("other", "");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE(Until([&] { return engine_->GetDomain("other").ok(); }));
  ASSERT_TRUE(host_->DestroyDomain(other->domid).ok());
  ASSERT_TRUE(Until([&] { return !engine_->GetDomain("other").ok(); }));
  EXPECT_FALSE(engine_->GetDomain("vm1").ok());
  EXPECT_EQ(Arrivals(), std::vector<uint32_t>{other->domid});
  ASSERT_TRUE(host_->xs().IntroduceDomain(half).ok());
  ASSERT_TRUE(Until([&] { return engine_->GetDomain("vm1").ok(); }));
  EXPECT_EQ(Arrivals(), (std::vector<uint32_t>{other->domid, half}));
}

TEST_F(EngineHoldTest, AnEmptyAnswerEndsTheHoldAndKnownDomainsAreNoArrivals) {
  auto before = host_->CreateDomain("before", "00000000-0000-4000-8000-0000000000aa");
  ASSERT_TRUE(before.ok());
  StartRecordingArrivals(/*accept=*/true);
  auto fresh = host_->CreateDomain("fresh", "", /*paused=*/true);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(Until([&] { return PauseCount(fresh->domid) == 2; }));
  engine_->AdoptDeclarations(fresh->domid, engine_->GetDomain("fresh")->uuid, {});
  ASSERT_TRUE(Until([&] { return PauseCount(fresh->domid) == 1; }));
  EXPECT_EQ(Arrivals(), std::vector<uint32_t>{fresh->domid});
}

}  // namespace
}  // namespace xenchan
