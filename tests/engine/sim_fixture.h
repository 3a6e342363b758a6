// Test helpers for running the channel engine against a simulated Xen host:
// an in-process xensim Host (xenstored + hypervisor; guests are child
// processes of the xensim binary), engines connected to it, and bounded
// waits on engine events, sessions and guest ttys. No sleeps: every wait is
// on a condition with a deadline.
#ifndef XENCHAN_TESTS_ENGINE_SIM_FIXTURE_H_
#define XENCHAN_TESTS_ENGINE_SIM_FIXTURE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/host.h"
#include "tests/common/bytes.h"
#include "tests/common/io.h"

namespace xenchan {
namespace testing_sim {

// Path of the xensim binary in the test's runfiles.
std::string XensimPath();

// A simulated host for one test.
class SimHost {
 public:
  static absl::StatusOr<std::unique_ptr<SimHost>> Start();
  ~SimHost();

  sim::Host& host() { return *host_; }
  const std::string& state_dir() const { return state_dir_; }
  std::string xenstore_socket() const { return state_dir_ + "/xenstored.sock"; }
  std::string hypervisor_socket() const { return state_dir_ + "/hypervisor.sock"; }
  // A dom0 xenstore connection for the test's own reads and scribbles.
  LibXenStore& xs() { return *xs_; }

  // Creates a domain without xl.cfg channels; returns its domid.
  absl::StatusOr<uint32_t> CreateDomain(const std::string& name);
  // Where the guest's channel tty appears.
  std::string GuestChannelPath(const std::string& domain, const std::string& channel) const;
  // True while the hypervisor still lists `domid` (running or dying).
  bool DomainExists(uint32_t domid);

  // Engine options connected to this host (platform objects filled in).
  absl::StatusOr<EngineOptions> EngineOptionsForHost();

 private:
  std::string dir_;
  std::string state_dir_;
  std::unique_ptr<sim::Host> host_;
  std::unique_ptr<LibXenStore> xs_;
};

// Waits on an engine's event log.
class EventWaiter {
 public:
  explicit EventWaiter(Engine* engine);
  ~EventWaiter();
  // Waits until an event after the last one consumed satisfies `pred`;
  // returns it (events before it are consumed). nullopt on timeout.
  std::optional<ChannelEvent> WaitFor(const std::function<bool(const ChannelEvent&)>& pred,
                                      absl::Duration timeout = absl::Seconds(20));
  // Waits until `cond` holds, re-checking after every engine event and at
  // least every `tick` (for conditions outside the engine, e.g. the
  // hypervisor's domain list).
  bool WaitUntil(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20),
                 absl::Duration tick = absl::Milliseconds(20));

 private:
  Engine* const engine_;
  uint64_t next_ = 0;  // consume events after this revision
  uint64_t sub_ = 0;
  int fd_ = -1;  // eventfd signalled by the subscription
};

// The tty helpers live in tests/common; these names stay here for the engine
// tests that reach them through this header.
using testcommon::OpenRawTty;
using testcommon::ReadExactly;
using testcommon::WriteAll;

// Reads data records of `session` until `n` bytes arrived or the deadline;
// records of other kinds are appended to `others` if given.
std::string ReadSession(Session& session, size_t n, absl::Duration timeout = absl::Seconds(20),
                        std::vector<SessionRecord>* others = nullptr);
// Waits until the session's write status satisfies `pred`.
bool WaitWriteStatus(Session& session, const std::function<bool(const WriteStatus&)>& pred,
                     absl::Duration timeout = absl::Seconds(20));

// A pattern of `n` bytes that makes misplaced or lost bytes visible: the
// engine tests' alphabet is every printable character from '!' to 'z'.
inline std::string Pattern(size_t n, uint32_t seed = 0) {
  return testcommon::Pattern(n, seed, testcommon::PatternAlphabet::kPrintable);
}

}  // namespace testing_sim
}  // namespace xenchan

#endif  // XENCHAN_TESTS_ENGINE_SIM_FIXTURE_H_
