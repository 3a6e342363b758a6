// The channel engine against the simulated Xen host: an in-process xensim
// Host (xenstored + hypervisor), simulated guests as child processes (the
// Linux hvc_xen frontend), and the engine over LibXenStore, SimEventChannels
// and SimGrantTables. Guests are driven through their channel ttys.
//
// Covers every row of the backend state machine (XEN-CHANNELS §7): hot-add
// and connect, resume (new epoch), guest close (FE 5 -> BE 5, FE 6 -> BE 6),
// kexec reset (BE 6 + FE 1 -> BE 2, then reconnect), domain destroy while
// mapped, operator unplug (graceful and forced), restart recovery; plus the
// hot-add errors, data both ways with acknowledgements, kill -9 of a guest.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/engine/names.h"
#include "backend/util/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using ::testing::HasSubstr;
using testing_sim::EventWaiter;
using testing_sim::OpenRawTty;
using testing_sim::Pattern;
using testing_sim::ReadExactly;
using testing_sim::ReadSession;
using testing_sim::SimHost;
using testing_sim::WaitWriteStatus;
using testing_sim::WriteAll;

class EngineSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = SimHost::Start();
    ASSERT_TRUE(host.ok()) << host.status();
    sim_ = *std::move(host);
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    waiter_.reset();
    engine_.reset();
    sim_.reset();
  }

  void StartEngine(const std::function<void(EngineOptions&)>& tweak = nullptr) {
    auto options = sim_->EngineOptionsForHost();
    ASSERT_TRUE(options.ok()) << options.status();
    if (tweak) tweak(*options);
    auto engine = Engine::Create(*std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    waiter_ = std::make_unique<EventWaiter>(engine_.get());
  }

  void StopEngine() {
    waiter_.reset();
    engine_.reset();
  }

  uint32_t NewDomain(const std::string& name) {
    auto domid = sim_->CreateDomain(name);
    EXPECT_TRUE(domid.ok()) << domid.status();
    // The engine learns it from @introduceDomain.
    EXPECT_TRUE(waiter_->WaitUntil([&] { return engine_->GetDomain(name).ok(); }));
    return domid.ok() ? *domid : 0;
  }

  absl::StatusOr<ChannelInfo> Create(const std::string& domain, const std::string& id,
                                     bool wait = true, ChannelConfig config = {}) {
    CreateChannelRequest req;
    req.domain = domain;
    req.channel_id = id;
    req.config = config;
    req.wait_until_connected = wait;
    req.connect_timeout = absl::Seconds(20);
    return engine_->CreateChannelAndWait(req);
  }

  int GuestTty(const std::string& domain, const std::string& channel) {
    const int fd = OpenRawTty(sim_->GuestChannelPath(domain, channel));
    EXPECT_GE(fd, 0) << sim_->GuestChannelPath(domain, channel);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  std::unique_ptr<Session> Open(const std::string& domain, const std::string& id,
                                SessionRole role = SessionRole::kObserver,
                                ReadStart::Anchor anchor = ReadStart::Anchor::kEarliest) {
    SessionOptions o;
    o.role = role;
    o.identity = "test";
    o.start.anchor = anchor;
    auto s = engine_->OpenSession({domain, id}, std::move(o));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  std::string Read(const std::string& path) {
    auto v = sim_->xs().Read(kNoTransaction, path);
    return v.ok() ? *v : "<" + std::string(absl::StatusCodeToString(v.status().code())) + ">";
  }

  bool WaitState(const std::string& domain, const std::string& id, ChannelState state) {
    return waiter_->WaitUntil([&] {
      auto c = engine_->GetChannel({domain, id});
      return c.ok() && c->state == state;
    });
  }

  std::string DumpEvents() {
    std::string out;
    uint64_t rev = engine_->revision();
    while (rev > 0 && engine_->EventsAfter(rev - 1, 1).ok()) --rev;
    auto events = engine_->EventsAfter(rev, 1000);
    if (!events.ok()) return out;
    for (const auto& e : *events) {
      absl::StrAppend(&out, "\n", ToString(e.type), " ", e.channel.channel_id, " ",
                      ToString(e.channel.state), " fe=", static_cast<int>(e.channel.frontend_state),
                      " be=", static_cast<int>(e.channel.backend_state), " epoch=", e.channel.epoch,
                      " err=", e.channel.last_error.message);
    }
    return out;
  }

  // Reads (notices, data) until the session reports an error.
  static absl::Status DrainToError(Session& session) {
    for (int i = 0; i < 1000; ++i) {
      auto recs = session.Read(1 << 20);
      if (!recs.ok()) return recs.status();
      if (recs->empty()) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  // Round trip of a fresh message both ways on a connected channel.
  void ExpectDataFlows(const std::string& domain, const std::string& id, int tty, Session& writer,
                       const std::string& tag) {
    const std::string up = "up:" + tag;
    ASSERT_TRUE(WriteAll(tty, up));
    EXPECT_EQ(ReadSession(writer, up.size()), up);
    const std::string down = "down:" + tag;
    ASSERT_TRUE(writer.Write(down).ok());
    EXPECT_EQ(ReadExactly(tty, down.size()), down);
  }

  std::unique_ptr<SimHost> sim_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EventWaiter> waiter_;
  std::vector<int> fds_;
};

TEST_F(EngineSimTest, HotAddWritesLibxlShapedNodesAndConnects) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  auto ch = Create("vm1", "org.example.agent.1");
  ASSERT_TRUE(ch.ok()) << ch.status();
  EXPECT_EQ(ch->state, ChannelState::kConnected);
  EXPECT_EQ(ch->devid, 1u);
  EXPECT_EQ(ch->domid, D);
  EXPECT_GE(ch->epoch, 1u);
  EXPECT_TRUE(IsUuid(ch->uid));
  EXPECT_EQ(ch->backend_state, XenbusState::kConnected);
  // The guest answers our Connected with its own.
  EXPECT_TRUE(waiter_->WaitUntil([&] {
    auto c = engine_->GetChannel({"vm1", "org.example.agent.1"});
    return c.ok() && c->frontend_state == XenbusState::kConnected;
  }));

  const std::string fe = absl::StrCat("/local/domain/", D, "/device/console/1");
  const std::string be = absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1");
  EXPECT_EQ(Read(fe + "/backend"), be);
  EXPECT_EQ(Read(fe + "/backend-id"), "0");
  EXPECT_EQ(Read(fe + "/protocol"), "vt100");
  EXPECT_EQ(Read(fe + "/name"), "org.example.agent.1");
  EXPECT_EQ(Read(fe + "/type"), "xenchan");
  EXPECT_EQ(Read(fe + "/tty"), "");
  EXPECT_EQ(Read(be + "/frontend"), fe);
  EXPECT_EQ(Read(be + "/frontend-id"), absl::StrCat(D));
  EXPECT_EQ(Read(be + "/online"), "1");
  EXPECT_EQ(Read(be + "/state"), "4");
  EXPECT_EQ(Read(be + "/name"), "org.example.agent.1");
  EXPECT_EQ(Read(be + "/xenchan-uid"), ch->uid);
  const std::vector<XsPermission> fe_perms = {{D, XsPermission::kNone}, {0, XsPermission::kRead}};
  const std::vector<XsPermission> ro_perms = {{0, XsPermission::kNone}, {D, XsPermission::kRead}};
  EXPECT_EQ(*sim_->xs().GetPermissions(kNoTransaction, fe), fe_perms);
  EXPECT_EQ(*sim_->xs().GetPermissions(kNoTransaction, fe + "/backend-id"), fe_perms);
  EXPECT_EQ(*sim_->xs().GetPermissions(kNoTransaction, fe + "/name"), ro_perms);
  EXPECT_EQ(*sim_->xs().GetPermissions(kNoTransaction, fe + "/type"), ro_perms);
  EXPECT_EQ(*sim_->xs().GetPermissions(kNoTransaction, be), ro_perms);

  // Events: APPEARED then CONNECTED with the epoch change.
  auto connected = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(connected.has_value());
  ASSERT_TRUE(connected->epoch_change.has_value());
  EXPECT_EQ(connected->epoch_change->previous_epoch, 0u);
  EXPECT_EQ(connected->epoch_change->reason, EpochChangeReason::kGuestConnected);

  auto snap = engine_->Snapshot();
  ASSERT_EQ(snap.channels.size(), 1u);
  EXPECT_EQ(snap.channels[0].channel_id, "org.example.agent.1");
  ASSERT_EQ(snap.domains.size(), 1u);
  EXPECT_EQ(snap.domains[0].channel_count, 1u);
  EXPECT_EQ(snap.domains[0].name, "vm1");
  EXPECT_TRUE(IsUuid(snap.domains[0].uuid));
  // Found by UUID as well as by name.
  EXPECT_TRUE(engine_->GetChannel({snap.domains[0].uuid, "org.example.agent.1"}).ok());
}

TEST_F(EngineSimTest, BytesBothWaysWithThreeAckLevels) {
  StartEngine();
  NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  const int tty = GuestTty("vm1", "chan");
  ASSERT_GE(tty, 0);
  auto writer = Open("vm1", "chan", SessionRole::kWriter);
  ASSERT_NE(writer, nullptr);
  EXPECT_TRUE(writer->has_lease());

  // Guest -> host, much more than one ring.
  const std::string up = Pattern(20000, 1);
  std::thread guest_writer([&] { WriteAll(tty, up); });
  EXPECT_EQ(ReadSession(*writer, up.size()), up);
  guest_writer.join();

  // Host -> guest, more than the in ring, in 4 KiB writes.
  const std::string down = Pattern(12000, 2);
  std::string got;
  std::thread guest_reader([&] { got = ReadExactly(tty, down.size()); });
  uint64_t end = 0;
  for (size_t off = 0; off < down.size(); off += 4096) {
    auto r = writer->Write(down.substr(off, 4096));
    ASSERT_TRUE(r.ok()) << r.status();
    end = r->end;
  }
  EXPECT_EQ(end, down.size());
  // Delivered and then consumed: the guest moved in_cons past every byte.
  EXPECT_TRUE(WaitWriteStatus(*writer, [&](const WriteStatus& s) {
    return s.delivered_offset == end && s.consumed_offset == end;
  })) << writer->write_status().consumed_offset;
  guest_reader.join();
  EXPECT_EQ(got, down);
  auto info = engine_->GetChannel({"vm1", "chan"});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->counters.bytes_from_guest, up.size());
  EXPECT_EQ(info->counters.bytes_to_guest, down.size());
  EXPECT_EQ(info->to_guest.consumed_offset, down.size());
  EXPECT_GT(info->counters.events_from_guest, 0u);
  EXPECT_GT(info->counters.events_to_guest, 0u);
  EXPECT_EQ(info->counters.bad_ring_rounds, 0u);
}

TEST_F(EngineSimTest, HotAddErrors) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  EXPECT_EQ(Create("vm1", "bad name", false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("vm1", "", false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("vm1", std::string(65, 'a'), false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create("nosuchvm", "a", false).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Create("vm1", "dup", false).ok());
  EXPECT_EQ(Create("vm1", "dup", false).status().code(), absl::StatusCode::kAlreadyExists);

  // validate_only changes nothing.
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "preview";
  req.validate_only = true;
  auto preview = engine_->CreateChannelAndWait(req);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->state, ChannelState::kCreating);
  EXPECT_EQ(engine_->GetChannel({"vm1", "preview"}).status().code(), absl::StatusCode::kNotFound);

  // Seven channels per guest at most (hvc has 8 ttys, hvc0 is the console).
  for (int i = 1; i < 7; ++i) ASSERT_TRUE(Create("vm1", absl::StrCat("c", i), false).ok()) << i;
  EXPECT_EQ(Create("vm1", "c7", false).status().code(), absl::StatusCode::kResourceExhausted);
  std::set<uint32_t> devids;
  for (const auto& c : engine_->ListChannels()) devids.insert(c.devid);
  EXPECT_EQ(devids, (std::set<uint32_t>{1, 2, 3, 4, 5, 6, 7}));

  // A dying domain (its toolstack entries already gone) is UNAVAILABLE.
  ASSERT_TRUE(sim_->xs().Remove(kNoTransaction, absl::StrCat("/local/domain/", D, "/name")).ok());
  EXPECT_EQ(Create("vm1", "late", false).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(EngineSimTest, NoFreeDevidWhenAllNineAreTaken) {
  StartEngine([](EngineOptions& o) { o.max_channels_per_domain = 100; });
  const uint32_t D = NewDomain("vm1");
  // Devids taken by someone else (libxl's record of toolstack consoles).
  for (int n : {1, 3, 5, 7, 9}) {
    ASSERT_TRUE(sim_->xs()
                    .Write(kNoTransaction,
                           absl::StrCat("/libxl/", D, "/device/console/", n, "/frontend"), "x")
                    .ok());
  }
  std::set<uint32_t> devids;
  for (int i = 0; i < 4; ++i) {
    auto c = Create("vm1", absl::StrCat("c", i), false);
    ASSERT_TRUE(c.ok()) << c.status();
    devids.insert(c->devid);
  }
  EXPECT_EQ(devids, (std::set<uint32_t>{2, 4, 6, 8}));
  EXPECT_EQ(Create("vm1", "c5", false).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(EngineSimTest, GracefulUnplugInTeardownOrder) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  const int tty = GuestTty("vm1", "chan");
  auto reader = Open("vm1", "chan");
  ASSERT_TRUE(WriteAll(tty, "last words"));
  EXPECT_EQ(ReadSession(*reader, 10), "last words");
  ASSERT_TRUE(WriteAll(tty, "unread"));
  ASSERT_TRUE(waiter_->WaitUntil([&] {
    auto c = engine_->GetChannel({"vm1", "chan"});
    return c.ok() && c->counters.bytes_from_guest == 16;
  }));

  auto result = engine_->DeleteChannelAndWait({"vm1", "chan"}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->forced);
  EXPECT_EQ(result->channel.state, ChannelState::kClosed);
  EXPECT_EQ(result->channel.frontend_state, XenbusState::kClosed);  // the guest closed first
  EXPECT_EQ(result->channel.backend_state, XenbusState::kClosed);
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", D, "/device/console/1")), "<NOT_FOUND>");
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1")), "<NOT_FOUND>");
  auto removed =
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kRemoved; });
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->removal_reason, RemovalReason::kDeleted);
  // The session drains what was buffered, then learns of the removal.
  EXPECT_EQ(ReadSession(*reader, 6), "unread");
  EXPECT_EQ(DrainToError(*reader).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->GetChannel({"vm1", "chan"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->DeleteChannelAndWait({"vm1", "chan"}, absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);

  // The released devid is not reused at once; a new channel connects.
  auto again = Create("vm1", "chan");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->devid, 2u);
  EXPECT_NE(again->uid, result->channel.uid);
}

TEST_F(EngineSimTest, RecentlyReleasedDevidsSurviveARestart) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  auto first = Create("vm1", "chan");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->devid, 1u);
  auto deleted = engine_->DeleteChannelAndWait({"vm1", "chan"}, absl::Seconds(10));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  // The release is recorded where only dom0 can read it.
  const std::string released =
      absl::StrCat("/local/domain/0/backend/xenchan/", D, "/xenchan-released");
  EXPECT_NE(Read(released + "/1"), "<NOT_FOUND>");
  for (const std::string& path : {released, released + "/1"}) {
    auto perms = sim_->xs().GetPermissions(kNoTransaction, path);
    ASSERT_TRUE(perms.ok()) << perms.status();
    EXPECT_EQ(*perms, (std::vector<XsPermission>{{0, XsPermission::kNone}})) << path;
  }

  // A new engine (default reuse delay, 10 s) does not hand devid 1 out again.
  StopEngine();
  StartEngine();
  auto second = Create("vm1", "again");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->devid, 2u);

  // One whose reuse delay has passed (0 here) forgets the release and
  // removes its record.
  StopEngine();
  StartEngine([](EngineOptions& o) { o.devid_reuse_delay = absl::ZeroDuration(); });
  EXPECT_EQ(Read(released + "/1"), "<NOT_FOUND>");
  auto third = Create("vm1", "third");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->devid, 1u);
}

TEST_F(EngineSimTest, RecoveryParsesItsOwnKeysStrictly) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ChannelConfig config;
  config.buffer_limit_bytes = 4096;
  config.write_queue_limit_bytes = 8192;
  auto c = Create("vm1", "chan", true, config);
  ASSERT_TRUE(c.ok()) << c.status();
  StopEngine();
  // Values a create would never have written: a sign, and above 1 GiB.
  const std::string be = absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1");
  ASSERT_TRUE(sim_->xs().Write(kNoTransaction, be + "/xenchan-buffer-limit", "+4096").ok());
  ASSERT_TRUE(
      sim_->xs().Write(kNoTransaction, be + "/xenchan-write-queue-limit", "99999999999").ok());
  StartEngine();
  ASSERT_TRUE(WaitState("vm1", "chan", ChannelState::kConnected));
  auto r = engine_->GetChannel({"vm1", "chan"});
  ASSERT_TRUE(r.ok());
  const EngineOptions defaults;
  EXPECT_EQ(r->config.buffer_limit_bytes, defaults.buffer_limit_bytes);
  EXPECT_EQ(r->config.write_queue_limit_bytes, defaults.write_queue_limit_bytes);
}

TEST_F(EngineSimTest, UnplugIsForcedWhenTheGuestDoesNotAnswer) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());  // frozen guest
  const absl::Time start = absl::Now();
  auto result = engine_->DeleteChannelAndWait({"vm1", "chan"}, absl::Milliseconds(300));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->forced);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(result->channel.last_error.kind, ChannelErrorKind::kUnplugForced);
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", D, "/device/console/1")), "<NOT_FOUND>");
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1")), "<NOT_FOUND>");
}

TEST_F(EngineSimTest, UnplugOfAChannelThatNeverConnectedDoesNotWait) {
  StartEngine();
  NewDomain("vm1");
  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());
  auto c = Create("vm1", "chan", /*wait=*/false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->state, ChannelState::kWaitingForGuest);
  EXPECT_EQ(c->backend_state, XenbusState::kInitWait);
  auto result = engine_->DeleteChannelAndWait({"vm1", "chan"}, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->forced);
}

TEST_F(EngineSimTest, ConnectTimeoutIsReportedAndTheChannelKeepsWaiting) {
  StartEngine([](EngineOptions& o) { o.connect_timeout = absl::Milliseconds(200); });
  NewDomain("vm1");
  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "chan";
  req.wait_until_connected = true;
  req.connect_timeout = absl::Milliseconds(300);
  EXPECT_EQ(engine_->CreateChannelAndWait(req).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  auto c = engine_->GetChannel({"vm1", "chan"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->last_error.kind, ChannelErrorKind::kGuestNotConnecting);
  ASSERT_TRUE(sim_->host().ResumeDomain("vm1").ok());
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kConnected));
}

TEST_F(EngineSimTest, ResumeWithANewRingStartsANewEpoch) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  auto c = Create("vm1", "chan");
  ASSERT_TRUE(c.ok());
  const uint64_t epoch1 = c->epoch;
  int tty = GuestTty("vm1", "chan");
  auto writer = Open("vm1", "chan", SessionRole::kWriter);
  ExpectDataFlows("vm1", "chan", tty, *writer, "before");
  const std::string old_ref = Read(absl::StrCat("/local/domain/", D, "/device/console/1/ring-ref"));

  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());
  ASSERT_TRUE(sim_->host().ResumeDomain("vm1").ok());
  auto changed = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kEpochChanged; });
  ASSERT_TRUE(changed.has_value());
  ASSERT_TRUE(changed->epoch_change.has_value());
  EXPECT_EQ(changed->epoch_change->reason, EpochChangeReason::kGuestResumed);
  EXPECT_EQ(changed->epoch_change->previous_epoch, epoch1);
  EXPECT_GT(changed->epoch_change->epoch, epoch1);
  EXPECT_EQ(changed->epoch_change->previous_end_offset, 9u);  // "up:before"
  EXPECT_NE(Read(absl::StrCat("/local/domain/", D, "/device/console/1/ring-ref")), old_ref);
  EXPECT_EQ(changed->channel.state, ChannelState::kConnected);

  // The reader sees the epoch change in its stream; data flows again on a
  // fresh tty (the old one was hung up).
  std::vector<SessionRecord> others;
  tty = GuestTty("vm1", "chan");
  ASSERT_TRUE(WriteAll(tty, "after"));
  EXPECT_EQ(ReadSession(*writer, 5, absl::Seconds(20), &others), "after");
  bool saw = false;
  for (const auto& r : others) {
    saw = saw || (r.kind == SessionRecord::Kind::kEpochChange &&
                  r.epoch_change.reason == EpochChangeReason::kGuestResumed);
  }
  EXPECT_TRUE(saw);
  auto w = writer->Write("down-after", changed->epoch_change->epoch);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->start, 0u);  // offsets count from 0 in each epoch
  EXPECT_EQ(ReadExactly(tty, 10), "down-after");
  EXPECT_EQ(writer->Write("x", epoch1).status().code(), absl::StatusCode::kAborted);
}

TEST_F(EngineSimTest, GuestShutdownClosesWithoutDelay) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  // Linux closes only frontends that reached Connected ("!= Connected,
  // skipping"): wait for the guest's answer to our Connected first.
  ASSERT_TRUE(waiter_->WaitUntil([&] {
    auto c = engine_->GetChannel({"vm1", "chan"});
    return c.ok() && c->frontend_state == XenbusState::kConnected;
  }));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(sim_->host().ShutdownDomain("vm1").ok());
  // A silent backend would cost the guest 5 s per device (§2.3).
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  ASSERT_TRUE(waiter_->WaitUntil([&] {
    auto c = engine_->GetChannel({"vm1", "chan"});
    return c.ok() && c->backend_state == XenbusState::kClosed;
  })) << DumpEvents();
  auto c = engine_->GetChannel({"vm1", "chan"});
  EXPECT_EQ(c->state, ChannelState::kDisconnected);
  EXPECT_EQ(c->frontend_state, XenbusState::kClosed);
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1/state")), "6");
  auto disc = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kDisconnected; });
  EXPECT_TRUE(disc.has_value());
}

TEST_F(EngineSimTest, KexecResetReturnsToInitWaitAndReconnects) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  auto c = Create("vm1", "chan");
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; })
          .has_value());
  const std::string fe = absl::StrCat("/local/domain/", D, "/device/console/1");
  const std::string be = absl::StrCat("/local/domain/0/backend/xenchan/", D, "/1");
  // The new kernel's xenbus_reset_frontend: FE 5, wait BE 5; FE 6, wait BE 6;
  // FE 1, wait BE 2. The test plays the new kernel (dom0 may write the
  // guest's nodes); the simulated guest, the "old kernel", is frozen so that
  // it does not answer our Closing itself.
  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());
  ASSERT_TRUE(sim_->xs().Write(kNoTransaction, fe + "/state", "5").ok());
  ASSERT_TRUE(waiter_->WaitUntil([&] { return Read(be + "/state") == "5"; }));
  ASSERT_TRUE(sim_->xs().Write(kNoTransaction, fe + "/state", "6").ok());
  ASSERT_TRUE(waiter_->WaitUntil([&] { return Read(be + "/state") == "6"; }));
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kDisconnected));
  ASSERT_TRUE(sim_->xs().Write(kNoTransaction, fe + "/state", "1").ok());
  ASSERT_TRUE(waiter_->WaitUntil([&] { return Read(be + "/state") == "2"; }));
  EXPECT_TRUE(WaitState("vm1", "chan", ChannelState::kWaitingForGuest));
  // The new kernel publishes its ring (here: the old grant and port, which
  // are still valid and unbound again) and goes to 3: we connect again.
  ASSERT_TRUE(sim_->xs().Write(kNoTransaction, fe + "/state", "3").ok());
  auto again = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(again.has_value()) << engine_->GetChannel({"vm1", "chan"})->last_error.message
                                 << " state "
                                 << ToString(engine_->GetChannel({"vm1", "chan"})->state)
                                 << DumpEvents();
  EXPECT_GT(again->channel.epoch, c->epoch);
  EXPECT_EQ(again->epoch_change->reason, EpochChangeReason::kGuestConnected);
  EXPECT_EQ(Read(be + "/state"), "4");
}

TEST_F(EngineSimTest, DomainDestroyWhileMappedLeavesNoZombie) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  auto reader = Open("vm1", "chan");
  ASSERT_TRUE(sim_->host().DestroyDomain("vm1").ok());
  auto removed =
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kRemoved; });
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->removal_reason, RemovalReason::kDomainGone);
  // Unmapped at once: the hypervisor forgets the domain (no dying zombie).
  EXPECT_TRUE(waiter_->WaitUntil([&] { return !sim_->DomainExists(D); }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D)), "<NOT_FOUND>");
  EXPECT_TRUE(waiter_->WaitUntil([&] { return !engine_->GetDomain("vm1").ok(); }));
  EXPECT_EQ(DrainToError(*reader).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(engine_->ListChannels().empty());
}

TEST_F(EngineSimTest, KilledGuestDoesNotDisturbOthers) {
  StartEngine();
  const uint32_t D1 = NewDomain("vm1");
  NewDomain("vm2");
  ASSERT_TRUE(Create("vm1", "a").ok());
  ASSERT_TRUE(Create("vm2", "b").ok());
  const int tty1 = GuestTty("vm1", "a");
  ASSERT_TRUE(WriteAll(tty1, "pending output"));
  ASSERT_TRUE(sim_->host().KillDomain("vm1").ok());  // SIGKILL of the guest process
  const int tty2 = GuestTty("vm2", "b");
  auto w2 = Open("vm2", "b", SessionRole::kWriter);
  ExpectDataFlows("vm2", "b", tty2, *w2, "still fine");
  ASSERT_TRUE(sim_->host().DestroyDomain("vm1").ok());
  EXPECT_TRUE(waiter_
                  ->WaitFor([](const ChannelEvent& e) {
                    return e.type == ChannelEventType::kRemoved && e.channel.channel_id == "a";
                  })
                  .has_value());
  EXPECT_TRUE(waiter_->WaitUntil([&] { return !sim_->DomainExists(D1); }));
  ExpectDataFlows("vm2", "b", tty2, *w2, "after destroy");
}

TEST_F(EngineSimTest, RestartRecoveryLosesNothingStillInTheRing) {
  // A tiny BLOCK buffer: the first engine takes 100 bytes, then stalls and
  // leaves the rest in the ring (and the guest's tty).
  ChannelConfig config;
  config.buffer_limit_bytes = 100;
  config.overflow_policy = OverflowPolicy::kBlock;
  StartEngine();
  NewDomain("vm1");
  auto c = Create("vm1", "chan", true, config);
  ASSERT_TRUE(c.ok()) << c.status();
  const int tty = GuestTty("vm1", "chan");
  const std::string data = Pattern(3000, 7);
  ASSERT_TRUE(WriteAll(tty, data));
  auto stalled =
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kStalled; });
  ASSERT_TRUE(stalled.has_value());
  EXPECT_TRUE(stalled->channel.stalled);
  EXPECT_EQ(stalled->channel.from_guest.buffered_bytes, 100u);
  const uint64_t epoch1 = stalled->channel.epoch;

  StopEngine();  // its 100 buffered bytes go with it; the ring keeps the rest
  StartEngine();
  auto recovered = waiter_->WaitFor(
      [](const ChannelEvent& e) { return e.type == ChannelEventType::kConnected; });
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->epoch_change->reason, EpochChangeReason::kServerRestarted);
  EXPECT_GT(recovered->channel.epoch, epoch1);
  EXPECT_EQ(recovered->channel.uid, c->uid);
  EXPECT_EQ(recovered->channel.devid, c->devid);
  EXPECT_EQ(recovered->channel.config.buffer_limit_bytes, 100u);
  auto reader = Open("vm1", "chan");
  EXPECT_EQ(ReadSession(*reader, data.size() - 100), data.substr(100));
  // And it is a fully working channel again.
  auto writer = Open("vm1", "chan", SessionRole::kWriter, ReadStart::Anchor::kNext);
  ExpectDataFlows("vm1", "chan", tty, *writer, "recovered");
}

TEST_F(EngineSimTest, RecoveryRemovesBackendDirsOfVanishedDomains) {
  StartEngine();
  const uint32_t D = NewDomain("vm1");
  ASSERT_TRUE(Create("vm1", "chan").ok());
  StopEngine();
  ASSERT_TRUE(sim_->host().DestroyDomain("vm1").ok());
  // Nobody served @releaseDomain meanwhile: the mapping died with the engine.
  StartEngine();
  EXPECT_EQ(Read(absl::StrCat("/local/domain/0/backend/xenchan/", D)), "<NOT_FOUND>");
  EXPECT_TRUE(engine_->ListChannels().empty());
}

}  // namespace
}  // namespace xenchan

namespace xenchan {
namespace {

TEST_F(EngineSimTest, EngineShutdownAnswersEveryWaitingCaller) {
  StartEngine();
  NewDomain("vm1");
  ASSERT_TRUE(sim_->host().SuspendDomain("vm1").ok());  // never connects
  auto waiter = std::make_shared<absl::StatusOr<ChannelInfo>>();
  auto done = std::make_shared<std::atomic<bool>>(false);
  CreateChannelRequest req;
  req.domain = "vm1";
  req.channel_id = "chan";
  req.wait_until_connected = true;
  req.connect_timeout = absl::Minutes(5);
  engine_->CreateChannel(req, [waiter, done](absl::StatusOr<ChannelInfo> r) {
    *waiter = std::move(r);
    done->store(true);
  });
  ASSERT_TRUE(
      waiter_->WaitFor([](const ChannelEvent& e) { return e.type == ChannelEventType::kAppeared; })
          .has_value());
  StopEngine();
  EXPECT_TRUE(done->load());
  EXPECT_EQ(waiter->status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace xenchan
