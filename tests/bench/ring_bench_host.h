// ring_bench's simulated host: `xensim serve` as a child process, its
// domains, an engine's options over it, the guests' channel ttys, and
// hot-adding a channel through the engine.
#ifndef XENCHAN_TESTS_BENCH_RING_BENCH_HOST_H_
#define XENCHAN_TESTS_BENCH_RING_BENCH_HOST_H_

#include <sys/types.h>

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "backend/engine/engine.h"

namespace xenchan {
namespace bench {

// The simulated host as a child process. Not thread-safe.
class Xensim {
 public:
  explicit Xensim(std::string bin) : bin_(std::move(bin)) {}
  // Starts `xensim serve` on a fresh state directory; Die if it does not.
  void Start();
  // Stops it (SIGTERM, waited for) and removes the state directory; again
  // is a no-op.
  void Stop();
  ~Xensim() { Stop(); }
  void CreateDomain(const std::string& name);
  EngineOptions Options();
  std::string Tty(const std::string& domain, const std::string& channel) const {
    return state_ + "/guests/" + domain + "/root/dev/xen-channel/" + channel;
  }

 private:
  const std::string bin_;  // the xensim binary
  std::string dir_;
  std::string state_;
  pid_t pid_ = -1;
};

// The guest's channel tty in raw mode; Die if it cannot be opened.
int OpenRaw(const std::string& path);

// Creates channel `id` on `domain` and waits until it is connected.
absl::StatusOr<ChannelInfo> HotAdd(Engine& engine, const std::string& domain,
                                   const std::string& id);

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_RING_BENCH_HOST_H_
