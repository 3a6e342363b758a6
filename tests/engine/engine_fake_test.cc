// The channel engine's backend state machine (XEN-CHANNELS §7) on the
// in-memory Xen platform: the hot-add recipe end to end, bytes both ways,
// restart recovery with nothing in the rings lost, devid reuse after an
// unplug, the §2.3 unplug order, guest close, resume, and domain destroy
// while connected. The same behaviours as engine_integration_test (which
// runs them against xensim's processes), in milliseconds.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/util/uuid.h"
#include "gtest/gtest.h"
#include "tests/engine/fake_engine_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_fake::Frontend;
using testing_sim::Pattern;
using testing_sim::ReadSession;
using testing_sim::WaitWriteStatus;

class EngineFakeTest : public testing_fake::FakeEngineTest {};

TEST_F(EngineFakeTest, HotAddThenTheFrontendConnectsAndBytesFlowBothWays) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  // The hot-add recipe: the create waits while the guest probes.
  auto result = std::make_shared<absl::StatusOr<ChannelInfo>>(absl::UnknownError("pending"));
  auto done = std::make_shared<std::atomic<bool>>(false);
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "org.example.agent.1";
  req.wait_until_connected = true;
  req.connect_timeout = absl::Seconds(20);
  engine_->CreateChannel(req, [result, done](absl::StatusOr<ChannelInfo> r) {
    *result = std::move(r);
    done->store(true);
  });
  ASSERT_TRUE(
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kAppeared; })
          .has_value());
  EXPECT_FALSE(done->load());
  const std::string fe_path = absl::StrCat("/local/domain/", D, "/device/console/1");
  const std::string be_path = absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1");
  EXPECT_EQ(Read(fe_path + "/backend"), be_path);
  EXPECT_EQ(Read(fe_path + "/state"), "1");
  EXPECT_EQ(Read(fe_path + "/name"), "org.example.agent.1");
  EXPECT_TRUE(Until([&] { return Read(be_path + "/state") == "2"; }));

  Frontend& fe = Probe(D, 1);
  ASSERT_TRUE(Until([&] { return done->load(); }));
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->state, ChannelState::kConnected);
  EXPECT_EQ((*result)->devid, 1u);
  EXPECT_TRUE(IsUuid((*result)->uid));
  ASSERT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  EXPECT_TRUE(Until([&] {
    return Info("vm1", "org.example.agent.1").frontend_state == XenbusState::kConnected;
  }));
  EXPECT_EQ(Read(be_path + "/state"), "4");
  auto connected = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(connected.has_value());
  ASSERT_TRUE(connected->epoch_change.has_value());
  EXPECT_EQ(connected->epoch_change->reason, EpochChangeReason::kGuestConnected);
  // dom0 maps the guest's page and binds its port.
  EXPECT_EQ(host_->hypervisor().MapCount(D, fe.ring_ref()), 1u);
  EXPECT_TRUE(host_->hypervisor().Port(D, fe.port()).interdomain);

  auto writer = Open("vm1", "org.example.agent.1", SessionRole::kWriter);
  ASSERT_NE(writer, nullptr);
  // Guest -> host: ten rings' worth.
  const std::string up = Pattern(20000, 1);
  ASSERT_TRUE(fe.WriteAll(up).ok());
  EXPECT_EQ(ReadSession(*writer, up.size(), absl::Seconds(10)), up);
  // Host -> guest: more than the in ring, consumed by the guest.
  const std::string down = Pattern(12000, 2);
  uint64_t end = 0;
  for (size_t off = 0; off < down.size(); off += 4096) {
    auto w = writer->Write(down.substr(off, 4096));
    ASSERT_TRUE(w.ok()) << w.status();
    end = w->end;
  }
  EXPECT_EQ(fe.ReadExactly(down.size()), down);
  EXPECT_TRUE(WaitWriteStatus(*writer, [&](const WriteStatus& s) {
    return s.delivered_offset == end && s.consumed_offset == end;
  }));
  const ChannelInfo info = Info("vm1", "org.example.agent.1");
  EXPECT_EQ(info.counters.bytes_from_guest, up.size());
  EXPECT_EQ(info.counters.bytes_to_guest, down.size());
  EXPECT_EQ(info.counters.bad_ring_rounds, 0u);
  EXPECT_GT(info.counters.events_from_guest, 0u);
  EXPECT_GT(info.counters.events_to_guest, 0u);
}

// The guest hears from the backend when it has input, or when it found its
// `out` ring full and waits for room; a drain that freed part of a ring the
// guest could still write to wakes it for nothing (one such wake-up per
// reply was half of an echo's events to the guest).
TEST_F(EngineFakeTest, ADrainNotifiesTheGuestOnlyIfItFoundTheRingFull) {
  StartEngine();
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "org.example.agent.1");
  auto reader = Open("vm1", "org.example.agent.1", SessionRole::kObserver);
  ASSERT_NE(reader, nullptr);
  const uint64_t before = Info("vm1", "org.example.agent.1").counters.events_to_guest;
  const std::string small = Pattern(100, 3);
  ASSERT_TRUE(fe.WriteAll(small).ok());
  EXPECT_EQ(ReadSession(*reader, small.size(), absl::Seconds(10)), small);
  EXPECT_EQ(Info("vm1", "org.example.agent.1").counters.events_to_guest, before);
  // Exactly a ring's worth: the drain finds it full and wakes the guest.
  const std::string full = Pattern(2048, 4);
  ASSERT_EQ(*fe.Write(full), full.size());
  EXPECT_EQ(ReadSession(*reader, full.size(), absl::Seconds(10)), full);
  EXPECT_TRUE(Until(
      [&] { return Info("vm1", "org.example.agent.1").counters.events_to_guest == before + 1; }));
}
TEST_F(EngineFakeTest, HotAddErrors) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  EXPECT_EQ(Create("vm1", "bad name").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("nosuchvm", "a").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Create("vm1", "dup").ok());
  EXPECT_EQ(Create("vm1", "dup").status().code(), absl::StatusCode::kAlreadyExists);
  // Seven channels per guest at most (hvc has 8 ttys, hvc0 is the console).
  for (int i = 1; i < 7; ++i) ASSERT_TRUE(Create("vm1", absl::StrCat("c", i)).ok()) << i;
  EXPECT_EQ(Create("vm1", "c7").status().code(), absl::StatusCode::kResourceExhausted);
  // A dying domain (its toolstack entries already gone) is UNAVAILABLE.
  ASSERT_TRUE(host_->xs().Remove(kNoTransaction, absl::StrCat("/local/domain/", D, "/name")).ok());
  EXPECT_EQ(Create("vm1", "late").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(EngineFakeTest, ConnectTimeoutIsReportedAndALateGuestStillConnects) {
  StartEngine([](EngineOptions& o) { o.connect_timeout = absl::Milliseconds(20); });
  const uint32_t D = NewDomain("vm1");
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "chan";
  req.wait_until_connected = true;
  req.connect_timeout = absl::Milliseconds(40);
  EXPECT_EQ(engine_->CreateChannelAndWait(req).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Until([&] {
    return Info("vm1", "chan").last_error.kind == ChannelErrorKind::kGuestNotConnecting;
  }));
  Frontend& fe = Probe(D, 1);  // the guest comes up late
  ASSERT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kConnected));
}

TEST_F(EngineFakeTest, RestartRecoveryLosesNothingInEitherRing) {
  // A tiny BLOCK buffer: the first engine takes 100 bytes, then stalls and
  // leaves the rest in the out ring.
  ChannelConfig config;
  config.buffer_limit_bytes = 100;
  config.overflow_policy = OverflowPolicy::kBlock;
  StartEngine();
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "chan", config);
  const ChannelInfo before = Info("vm1", "chan");
  // Host -> guest bytes the guest has not read yet stay in the in ring.
  auto writer = Open("vm1", "chan", SessionRole::kWriter);
  ASSERT_TRUE(writer->Write("unread input").ok());
  ASSERT_TRUE(
      WaitWriteStatus(*writer, [](const WriteStatus& s) { return s.delivered_offset == 12; }));
  writer.reset();
  const std::string data = Pattern(3000, 7);
  ASSERT_EQ(*fe.Write(data), 2048u);  // a full out ring
  auto stalled =
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kStalled; });
  ASSERT_TRUE(stalled.has_value());
  EXPECT_EQ(stalled->channel.from_guest.buffered_bytes, 100u);

  StopEngine();  // its 100 buffered bytes go with it; the rings keep the rest
  EXPECT_FALSE(host_->hypervisor().Port(fe.domid(), fe.port()).interdomain);
  EXPECT_EQ(host_->hypervisor().MapCount(fe.domid(), fe.ring_ref()), 0u);
  StartEngine();
  auto recovered = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->epoch_change->reason, EpochChangeReason::kServerRestarted);
  EXPECT_GT(recovered->channel.epoch, before.epoch);
  EXPECT_EQ(recovered->channel.uid, before.uid);
  EXPECT_EQ(recovered->channel.devid, before.devid);
  EXPECT_EQ(recovered->channel.config.buffer_limit_bytes, 100u);
  EXPECT_EQ(fe.state(), Frontend::kConnected);  // the guest never noticed

  auto reader = Open("vm1", "chan");
  std::string got;
  std::thread guest([&] { (void)fe.WriteAll(data.substr(2048), absl::Seconds(10)); });
  got = ReadSession(*reader, data.size() - 100, absl::Seconds(10));
  guest.join();
  EXPECT_EQ(got, data.substr(100));
  EXPECT_EQ(fe.ReadExactly(12), "unread input");
  auto w2 = Open("vm1", "chan", SessionRole::kWriter, ReadStart::Anchor::kNext);
  ExpectRoundTrip(fe, *w2, "recovered");
}

// A server killed between freeing room in `out` (publishing out_cons) and
// notifying leaves a guest that found the ring full waiting for an event
// that never comes; nothing is left to drain, so only a kick at the new
// epoch wakes it (CI saw a channel stay silent after a kill -9).
TEST_F(EngineFakeTest, ARecoveredChannelKicksTheGuestEvenWithNothingToMove) {
  StartEngine();
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "chan");
  StopEngine();
  while (fe.WaitEvent(absl::ZeroDuration())) {
  }
  StartEngine();
  auto recovered = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->epoch_change->reason, EpochChangeReason::kServerRestarted);
  EXPECT_TRUE(fe.WaitEvent(absl::Seconds(10)));
}

TEST_F(EngineFakeTest, ReleasedDevidIsHeldBackThenReusedAndTheNewDeviceConnects) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  Frontend& first = Connect("vm1", "chan");
  auto deleted = Unplug("vm1", "chan", &first);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(deleted->forced);
  EXPECT_TRUE(first.removed());
  const std::string released =
      absl::StrCat("/local/domain/0/backend/xenchan/", D, "/xenchan-released/1");
  EXPECT_NE(Read(released), "<NOT_FOUND>");
  // Held back (default 10 s), also by a restarted engine.
  auto second = Create("vm1", "second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->devid, 2u);
  StopEngine();
  StartEngine();
  auto third = Create("vm1", "third");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->devid, 3u);

  // An engine whose reuse delay has passed hands devid 1 out again, and the
  // guest's fresh probe of the same nodename connects with a new ring.
  StopEngine();
  StartEngine([](EngineOptions& o) { o.devid_reuse_delay = absl::ZeroDuration(); });
  EXPECT_EQ(Read(released), "<NOT_FOUND>");
  Frontend& again = Connect("vm1", "again");
  EXPECT_EQ(Info("vm1", "again").devid, 1u);
  EXPECT_NE(again.ring_ref(), first.ring_ref());
  auto writer = Open("vm1", "again", SessionRole::kWriter);
  ExpectRoundTrip(again, *writer, "reused");
}

// XEN-CHANNELS §2.3, backend-initiated: BE 5; wait for FE 6; unmap and
// unbind; BE 6; rm the frontend dir; rm the backend dir. The guest keeps its
// grant and port until its directory goes.
TEST_F(EngineFakeTest, UnplugTearsDownInTheSection23Order) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  Frontend& fe = Connect("vm1", "chan");
  const std::string fe_path = fe.path();
  const std::string be_path = fe.backend_path();
  auto result = Unplug("vm1", "chan", &fe);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->forced);
  EXPECT_EQ(result->channel.state, ChannelState::kClosed);
  EXPECT_EQ(result->channel.frontend_state, XenbusState::kClosed);

  const FakeTrace& trace = host_->trace();
  const int be5 = trace.Find("xs 0 write " + be_path + "/state 5");
  const int fe6 = trace.Find(absl::StrCat("xs ", D, " write ", fe_path, "/state 6"), be5);
  const int unmap = trace.Find(absl::StrCat("gnttab unmap ", D, ":", fe.ring_ref(), " by 0"), fe6);
  int unbind = -1;
  const std::vector<std::string> entries = trace.entries();
  for (int i = fe6 < 0 ? 0 : fe6; i < static_cast<int>(entries.size()); ++i) {
    if (absl::StartsWith(entries[i], "evtchn close 0:")) {
      unbind = i;
      break;
    }
  }
  const int be6 = trace.Find("xs 0 write " + be_path + "/state 6", std::max(unmap, unbind));
  const int rm_fe = trace.Find("xs 0 rm " + fe_path, be6);
  const int rm_be = trace.Find("xs 0 rm " + be_path, rm_fe);
  const int guest_close = trace.Find(absl::StrCat("evtchn close ", D, ":", fe.port()), rm_fe);
  std::string all;
  for (const std::string& e : entries) absl::StrAppend(&all, "\n  ", e);
  EXPECT_GE(be5, 0) << all;
  EXPECT_GT(fe6, be5) << all;
  EXPECT_GT(unmap, fe6) << all;  // step 3, in either order
  EXPECT_GT(unbind, fe6) << all;
  EXPECT_GT(be6, std::max(unmap, unbind)) << all;
  EXPECT_GT(rm_fe, be6) << all;
  EXPECT_GT(rm_be, rm_fe) << all;
  EXPECT_GT(guest_close, rm_fe) << all;  // the guest's port outlived our mapping
  EXPECT_EQ(Read(fe_path), "<NOT_FOUND>");
  EXPECT_EQ(Read(be_path), "<NOT_FOUND>");
}

TEST_F(EngineFakeTest, UnplugIsForcedWhenTheGuestDoesNotAnswer) {
  StartEngine();
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "chan");
  const absl::Time start = absl::Now();
  auto result = Unplug("vm1", "chan", /*fe=*/nullptr, absl::Milliseconds(50));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->forced);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_EQ(result->channel.last_error.kind, ChannelErrorKind::kUnplugForced);
  EXPECT_EQ(host_->hypervisor().MapCount(fe.domid(), fe.ring_ref()), 0u);
  EXPECT_EQ(Read(fe.path()), "<NOT_FOUND>");
}

// An unplug the engine could not finish (it stopped after BE 5) is finished
// by the next engine: when the guest answers late, or forced at the first
// engine's persisted deadline when it never does.
TEST_F(EngineFakeTest, UnplugInterruptedByARestartIsFinishedByTheNextEngine) {
  StartEngine();
  NewDomain("vm1");
  Frontend& late = Connect("vm1", "late");
  Frontend& silent = Connect("vm1", "silent");
  auto answered = std::make_shared<std::atomic<int>>(0);
  auto unavailable = std::make_shared<std::atomic<int>>(0);
  auto count = [answered, unavailable](absl::StatusOr<DeleteResult> r) {
    answered->fetch_add(1);
    if (absl::IsUnavailable(r.status())) unavailable->fetch_add(1);
  };
  engine_->DeleteChannel({"vm1", "late"}, absl::Seconds(30), count);
  engine_->DeleteChannel({"vm1", "silent"}, absl::Milliseconds(60), count);
  ASSERT_TRUE(Until([&] {
    return Read(late.backend_path() + "/state") == "5" &&
           Read(silent.backend_path() + "/state") == "5";
  }));
  StopEngine();  // neither guest has answered yet
  EXPECT_EQ(answered->load(), 2);
  EXPECT_EQ(unavailable->load(), 2);

  StartEngine();
  EXPECT_TRUE(WaitState("vm1", "late", ChannelState::kClosing));
  ASSERT_TRUE(late.FollowUntil([&] { return late.removed(); }).ok());
  // The engine removes the backend dir right after the frontend dir.
  EXPECT_TRUE(Until([&] { return Read(late.backend_path()) == "<NOT_FOUND>"; }));
  auto forced = waiter_->WaitFor([](const ChannelEvent& e) {
    return e.type == ChannelEventType::kRemoved && e.channel.channel_id == "silent";
  });
  ASSERT_TRUE(forced.has_value());
  EXPECT_EQ(forced->channel.last_error.kind, ChannelErrorKind::kUnplugForced);
  EXPECT_EQ(Read(silent.path()), "<NOT_FOUND>");
  EXPECT_TRUE(Until([&] { return engine_->ListChannels().empty(); }));
}

TEST_F(EngineFakeTest, GuestCloseAndResumeFollowTheStateMachine) {
  StartEngine();
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "chan");
  auto writer = Open("vm1", "chan", SessionRole::kWriter);
  ExpectRoundTrip(fe, *writer, "before");
  const uint64_t epoch1 = Info("vm1", "chan").epoch;

  // Resume: same nodename, zeroed page, new grant and port, FE 3.
  const uint32_t old_ref = fe.ring_ref();
  ASSERT_TRUE(fe.Resume().ok());
  auto changed = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kEpochChanged; });
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->epoch_change->reason, EpochChangeReason::kGuestResumed);
  EXPECT_EQ(changed->epoch_change->previous_epoch, epoch1);
  EXPECT_EQ(changed->epoch_change->previous_end_offset, 9u);  // "up:before"
  EXPECT_NE(fe.ring_ref(), old_ref);
  ASSERT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  EXPECT_EQ(host_->hypervisor().MapCount(fe.domid(), old_ref), 0u);
  ExpectRoundTrip(fe, *writer, "after");

  // Guest shutdown: FE 5 -> BE 5; the frontend answers with FE 6 (as
  // xenbus_frontend_dev_shutdown does) -> BE 6, without delay.
  const int mark = static_cast<int>(host_->trace().entries().size());
  ASSERT_TRUE(fe.SetState(Frontend::kClosing).ok());
  ASSERT_TRUE(fe.FollowUntil(Frontend::kClosed).ok()) << [&] {
    std::string all;
    for (const std::string& e : host_->trace().entries()) absl::StrAppend(&all, "\n  ", e);
    return all;
  }();
  const int be5 = host_->trace().Find("xs 0 write " + fe.backend_path() + "/state 5", mark);
  const int fe6 =
      host_->trace().Find(absl::StrCat("xs ", fe.domid(), " write ", fe.path(), "/state 6"), be5);
  EXPECT_GE(be5, 0);
  EXPECT_GT(fe6, be5);
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kDisconnected));
  EXPECT_EQ(host_->hypervisor().MapCount(fe.domid(), fe.ring_ref()), 0u);
  // kexec reset: FE 1 -> BE 2, then a fresh ring connects again.
  ASSERT_TRUE(fe.SetState(Frontend::kInitialising).ok());
  ASSERT_TRUE(fe.FollowUntil(Frontend::kInitWait).ok());
  ASSERT_TRUE(fe.Resume().ok());
  ASSERT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kConnected));
}

TEST_F(EngineFakeTest, DomainDestroyWhileConnectedUnmapsAtOnceAndLeavesNoZombie) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  NewDomain("vm2");
  Connect("vm1", "chan");
  Frontend& other = Connect("vm2", "other");
  auto reader = Open("vm1", "chan");
  auto w2 = Open("vm2", "other", SessionRole::kWriter);
  ASSERT_TRUE(host_->DestroyDomain(D).ok());
  auto removed =
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kRemoved; });
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->removal_reason, RemovalReason::kDomainGone);
  EXPECT_TRUE(Until([&] { return !host_->hypervisor().Info(D).exists; }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D)), "<NOT_FOUND>");
  EXPECT_TRUE(Until([&] { return !engine_->GetDomain("vm1").ok(); }));
  EXPECT_EQ(DrainToError(*reader).code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(engine_->ListChannels().size(), 1u);
  ExpectRoundTrip(other, *w2, "still fine");
}

}  // namespace
}  // namespace xenchan
