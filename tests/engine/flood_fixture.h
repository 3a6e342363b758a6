// Test fixture shared by the engine tests that flood simulated guests against
// the memory budget: a simulated host, an engine on it configured by the test
// (Configure), guest ttys closed at the end, and flood threads that stop at
// TearDown. Counters the threads write must live in the fixture (they outlive
// the test body).
#ifndef XENCHAN_TESTS_ENGINE_FLOOD_FIXTURE_H_
#define XENCHAN_TESTS_ENGINE_FLOOD_FIXTURE_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace testing_sim {

class FloodFixture : public ::testing::Test {
 protected:
  // Sets the engine options of the test (budget, caps, limits).
  virtual void Configure(EngineOptions& options) = 0;

  void SetUp() override {
    auto host = SimHost::Start();
    ASSERT_TRUE(host.ok()) << host.status();
    sim_ = *std::move(host);
    auto options = sim_->EngineOptionsForHost();
    ASSERT_TRUE(options.ok()) << options.status();
    Configure(*options);
    auto engine = Engine::Create(*std::move(options));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    waiter_ = std::make_unique<EventWaiter>(engine_.get());
  }

  void TearDown() override {
    stop_ = true;
    for (auto& t : threads_) t.join();
    for (int fd : fds_) close(fd);
    waiter_.reset();
    engine_.reset();
    sim_.reset();
  }

  // Opens the guest side of a channel raw; closed at TearDown.
  int Tty(const std::string& domain, const std::string& id) {
    const int fd = OpenRawTty(sim_->GuestChannelPath(domain, id));
    EXPECT_GE(fd, 0);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  std::unique_ptr<Session> Open(const std::string& domain, const std::string& id, SessionRole role,
                                ReadStart::Anchor anchor = ReadStart::Anchor::kNext) {
    SessionOptions o;
    o.role = role;
    o.start.anchor = anchor;
    auto s = engine_->OpenSession({domain, id}, std::move(o));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // Writes `data` into a guest tty from a thread, never blocking for long (a
  // stalled guest must not keep the test from stopping it); `*sent` follows
  // the bytes written and must outlive the thread (a fixture member).
  void Flood(int fd, std::string data, std::atomic<size_t>* sent) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    threads_.emplace_back([this, fd, data = std::move(data), sent] {
      size_t off = 0;
      while (!stop_ && off < data.size()) {
        const ssize_t n = write(fd, data.data() + off, std::min<size_t>(4096, data.size() - off));
        if (n > 0) {
          off += static_cast<size_t>(n);
          sent->store(off);
          continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return;
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 50);  // re-checks stop_ at least every 50 ms
      }
    });
  }

  std::unique_ptr<SimHost> sim_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<EventWaiter> waiter_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace testing_sim
}  // namespace xenchan

#endif  // XENCHAN_TESTS_ENGINE_FLOOD_FIXTURE_H_
