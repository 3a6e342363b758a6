// EngineDurableTest: the fake-platform engine fixture with a declaration
// store, for the durable-channel tests (engine_durable_test.cc) and the
// domain-hold tests (engine_hold_test.cc): a domain with a fixed UUID that
// boots, is destroyed, asks to suspend, and a durable channel in it.
#ifndef XENCHAN_TESTS_ENGINE_DURABLE_FIXTURE_H_
#define XENCHAN_TESTS_ENGINE_DURABLE_FIXTURE_H_

#include <functional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "backend/store/declaration_store.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/engine/fake_engine_fixture.h"

namespace xenchan {
namespace testing_fake {

constexpr char kUuid[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";
constexpr char kAgent[] = "org.example.agent.1";

class EngineDurableTest : public FakeEngineTest {
 protected:
  void SetUp() override {
    FakeEngineTest::SetUp();
    dir_ = testcommon::MakeTempDir("durable");
  }
  void TearDown() override {
    FakeEngineTest::TearDown();
    testcommon::RemoveTree(dir_);
  }

  std::string StorePath() const { return dir_ + "/declarations.db"; }

  // `tweak` sets further options.
  void StartWithStore(absl::Duration resume_probe_timeout = absl::Seconds(5),
                      const std::function<void(EngineOptions&)>& tweak = nullptr) {
    StartEngine([this, resume_probe_timeout, tweak](EngineOptions& o) {
      o.resume_probe_timeout = resume_probe_timeout;
      auto store = DeclarationStore::Open(StorePath());
      ASSERT_TRUE(store.ok()) << store.status();
      o.declarations = *std::move(store);
      if (tweak) tweak(o);
    });
  }

  // A domain with the test's UUID; returns its domid once the engine knows it.
  uint32_t Boot() {
    auto d = host_->CreateDomain("vm1", kUuid);
    EXPECT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(Until([&] {
      auto dom = engine_->GetDomain(kUuid);
      return dom.ok() && dom->state == DomainState::kRunning;
    }));
    return d.ok() ? d->domid : 0;
  }

  void Destroy(uint32_t domid) {
    ASSERT_TRUE(host_->DestroyDomain(domid).ok());
    ASSERT_TRUE(WaitState(kUuid, kAgent, ChannelState::kDomainDown));
  }

  absl::StatusOr<ChannelInfo> CreateDurable(const std::string& id = kAgent) {
    ChannelConfig config;
    config.lifetime = ChannelLifetime::kDurable;
    return Create(kUuid, id, config);
  }

  // The guest of incarnation `domid` probes the channel's device.
  Frontend& Reconnect(uint32_t domid) {
    EXPECT_TRUE(Until([&] {
      ChannelInfo info = Info(kUuid, kAgent);
      return info.domid == domid && info.state == ChannelState::kWaitingForGuest;
    }));
    Frontend& fe = Probe(domid, Info(kUuid, kAgent).devid);
    EXPECT_TRUE(fe.FollowUntil(Frontend::kConnected).ok());
    EXPECT_TRUE(WaitState(kUuid, kAgent, ChannelState::kConnected));
    return fe;
  }

  // xl save: libxl asks the guest through control/shutdown; waits until
  // the engine has seen the request.
  void RequestSuspend(uint32_t domid) {
    ASSERT_TRUE(host_->xs()
                    .Write(kNoTransaction,
                           absl::StrCat("/local/domain/", domid, "/control/shutdown"), "suspend")
                    .ok());
    ASSERT_TRUE(Until([&] {
      auto d = engine_->GetDomain(kUuid);
      return d.ok() && d->shutdown_request == "suspend";
    }));
  }

  std::string dir_;
};

}  // namespace testing_fake
}  // namespace xenchan

#endif  // XENCHAN_TESTS_ENGINE_DURABLE_FIXTURE_H_
