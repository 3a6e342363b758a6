// A test base for the channel engine on the in-memory Xen platform
// (backend/platform/fake): a FakeHost, engines over its dom0 objects, and
// scripted guest frontends the test drives itself. Everything runs in the
// test process (no xensim, no guests as children), so each state-machine
// test takes milliseconds. Waits are bounded, on conditions (the helpers of
// sim_fixture.h), never sleeps.
#ifndef XENCHAN_TESTS_ENGINE_FAKE_ENGINE_FIXTURE_H_
#define XENCHAN_TESTS_ENGINE_FAKE_ENGINE_FIXTURE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/platform/fake/console_frontend.h"
#include "backend/platform/fake/host.h"
#include "gtest/gtest.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace testing_fake {

using Frontend = FakeConsoleFrontend;

class FakeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts an engine on the host's dom0 objects (options as `tweak` says).
  void StartEngine(const std::function<void(EngineOptions&)>& tweak = nullptr);
  // Destroys the engine (its handles close, xenstore stays for recovery).
  void StopEngine();

  // Creates a domain and waits until the engine knows it; returns its domid.
  uint32_t NewDomain(const std::string& name);
  // Hot-adds a channel without waiting for the guest.
  absl::StatusOr<ChannelInfo> Create(const std::string& domain, const std::string& id,
                                     ChannelConfig config = {});
  // A scripted frontend for `devid` of `domid`, probed (ring published,
  // state 3). Owned by the fixture unless taken.
  Frontend& Probe(uint32_t domid, uint32_t devid);
  // Hot-add, probe, and wait until both ends are Connected.
  Frontend& Connect(const std::string& domain, const std::string& id, ChannelConfig config = {});
  // Waits until `cond` holds, re-checking after every engine event and every
  // millisecond (nothing here is slow to poll: it is all in memory).
  bool Until(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(10));
  // Waits until the engine reports `state` for the channel.
  bool WaitState(const std::string& domain, const std::string& id, ChannelState state);
  // Runs an unplug while `fe` (if any) answers its backend as hvc_xen does;
  // returns the unplug's result.
  absl::StatusOr<DeleteResult> Unplug(const std::string& domain, const std::string& id,
                                      Frontend* fe, absl::Duration force_after = absl::Seconds(10));

  std::unique_ptr<Session> Open(const std::string& domain, const std::string& id,
                                SessionRole role = SessionRole::kObserver,
                                ReadStart::Anchor anchor = ReadStart::Anchor::kEarliest);
  // Round trip of a fresh message both ways on a connected channel.
  void ExpectRoundTrip(Frontend& fe, Session& writer, const std::string& tag);
  // Reads (notices, data) until the session reports an error.
  static absl::Status DrainToError(Session& session);
  // A node's value, or "<CODE>" (dom0's view).
  std::string Read(const std::string& path);
  ChannelInfo Info(const std::string& domain, const std::string& id);

  std::unique_ptr<FakeHost> host_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<testing_sim::EventWaiter> waiter_;
  std::vector<std::unique_ptr<Frontend>> frontends_;
};

}  // namespace testing_fake
}  // namespace xenchan

#endif  // XENCHAN_TESTS_ENGINE_FAKE_ENGINE_FIXTURE_H_
