// FakeEngineTest: the engine on the in-memory Xen platform.
#include "tests/engine/fake_engine_fixture.h"

#include <atomic>
#include <memory>
#include <utility>

namespace xenchan {
namespace testing_fake {

using testing_sim::ReadSession;

void FakeEngineTest::SetUp() {
  auto host = FakeHost::Create();
  ASSERT_TRUE(host.ok()) << host.status();
  host_ = *std::move(host);
}

void FakeEngineTest::TearDown() {
  StopEngine();
  frontends_.clear();
  host_.reset();
}

void FakeEngineTest::StartEngine(const std::function<void(EngineOptions&)>& tweak) {
  EngineOptions o;
  auto xs = host_->OpenXenStore(0);
  ASSERT_TRUE(xs.ok()) << xs.status();
  auto evtchn = host_->OpenEventChannels(0);
  ASSERT_TRUE(evtchn.ok()) << evtchn.status();
  o.xenstore = *std::move(xs);
  o.event_channels = *std::move(evtchn);
  o.grant_tables = host_->OpenGrantTables(0);
  if (tweak) tweak(o);
  auto engine = Engine::Create(std::move(o));
  ASSERT_TRUE(engine.ok()) << engine.status();
  engine_ = *std::move(engine);
  waiter_ = std::make_unique<testing_sim::EventWaiter>(engine_.get());
}

void FakeEngineTest::StopEngine() {
  waiter_.reset();
  engine_.reset();
}

uint32_t FakeEngineTest::NewDomain(const std::string& name) {
  auto d = host_->CreateDomain(name);
  EXPECT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(Until([&] { return engine_->GetDomain(name).ok(); }));
  return d.ok() ? d->domid : 0;
}

absl::StatusOr<ChannelInfo> FakeEngineTest::Create(const std::string& domain, const std::string& id,
                                                   ChannelConfig config) {
  CreateChannelRequest req;
  req.domain = domain;
  req.channel_id = id;
  req.config = config;
  return engine_->CreateChannelAndWait(req);
}

Frontend& FakeEngineTest::Probe(uint32_t domid, uint32_t devid) {
  auto fe = Frontend::Create(*host_, domid, devid);
  EXPECT_TRUE(fe.ok()) << fe.status();
  frontends_.push_back(*std::move(fe));
  absl::Status s = frontends_.back()->Probe();
  EXPECT_TRUE(s.ok()) << s;
  return *frontends_.back();
}

Frontend& FakeEngineTest::Connect(const std::string& domain, const std::string& id,
                                  ChannelConfig config) {
  auto c = Create(domain, id, config);
  EXPECT_TRUE(c.ok()) << c.status();
  Frontend& fe = Probe(c.ok() ? c->domid : 0, c.ok() ? c->devid : 0);
  EXPECT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
  EXPECT_TRUE(WaitState(domain, id, ChannelState::kConnected));
  return fe;
}

bool FakeEngineTest::Until(const std::function<bool()>& cond, absl::Duration timeout) {
  return waiter_->WaitUntil(cond, timeout, absl::Milliseconds(1));
}

bool FakeEngineTest::WaitState(const std::string& domain, const std::string& id,
                               ChannelState state) {
  return Until([&] {
    auto c = engine_->GetChannel({domain, id});
    return c.ok() && c->state == state;
  });
}

absl::StatusOr<DeleteResult> FakeEngineTest::Unplug(const std::string& domain,
                                                    const std::string& id, Frontend* fe,
                                                    absl::Duration force_after) {
  auto result = std::make_shared<absl::StatusOr<DeleteResult>>(absl::UnknownError("not done"));
  auto done = std::make_shared<std::atomic<bool>>(false);
  engine_->DeleteChannel({domain, id}, force_after, [result, done](absl::StatusOr<DeleteResult> r) {
    *result = std::move(r);
    done->store(true);
  });
  if (fe != nullptr) {
    absl::Status s = fe->FollowUntil([&] { return done->load(); }, absl::Seconds(20));
    if (!s.ok()) return s;
    fe->Follow();  // notices its directory went
  } else if (!Until([&] { return done->load(); })) {
    return absl::DeadlineExceededError("unplug did not finish");
  }
  return *result;
}

std::unique_ptr<Session> FakeEngineTest::Open(const std::string& domain, const std::string& id,
                                              SessionRole role, ReadStart::Anchor anchor) {
  SessionOptions o;
  o.role = role;
  o.identity = "test";
  o.start.anchor = anchor;
  auto s = engine_->OpenSession({domain, id}, std::move(o));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

void FakeEngineTest::ExpectRoundTrip(Frontend& fe, Session& writer, const std::string& tag) {
  const std::string up = "up:" + tag;
  ASSERT_TRUE(fe.WriteAll(up).ok());
  EXPECT_EQ(ReadSession(writer, up.size(), absl::Seconds(10)), up);
  const std::string down = "down:" + tag;
  ASSERT_TRUE(writer.Write(down).ok());
  EXPECT_EQ(fe.ReadExactly(down.size()), down);
}

absl::Status FakeEngineTest::DrainToError(Session& session) {
  for (int i = 0; i < 1000; ++i) {
    auto recs = session.Read(1 << 20);
    if (!recs.ok()) return recs.status();
    if (recs->empty()) return absl::OkStatus();
  }
  return absl::OkStatus();
}

std::string FakeEngineTest::Read(const std::string& path) {
  auto v = host_->xs().Read(kNoTransaction, path);
  return v.ok() ? *v : "<" + std::string(absl::StatusCodeToString(v.status().code())) + ">";
}

ChannelInfo FakeEngineTest::Info(const std::string& domain, const std::string& id) {
  auto c = engine_->GetChannel({domain, id});
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ChannelInfo();
}

}  // namespace testing_fake
}  // namespace xenchan
