// SimEventChannels and SimGrantTables against a real simulated hypervisor,
// with the guest side played by the hv client library: the platform
// interfaces' semantics and status codes as the channel engine sees them.
#include <poll.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/sim/hv/client.h"
#include "gtest/gtest.h"
#include "tests/sim/hv/hv_fixture.h"

namespace xenchan {
namespace {

using sim::hv::HvTest;
using SimPlatformTest = HvTest;

// Waits up to 10 s for a port from `evtchn`.
std::optional<EvtchnPort> WaitPending(EventChannels& evtchn) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    auto port = evtchn.Pending();
    if (!port.ok()) return std::nullopt;
    if (port->has_value()) return *port;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    struct pollfd pfd = {evtchn.fd(), POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
  }
}

struct GuestPage {
  sim::hv::UniqueFd fd;
  unsigned char* data = nullptr;
  ~GuestPage() {
    if (data != nullptr) munmap(data, sim::hv::kPageSize);
  }
};

std::unique_ptr<GuestPage> NewPage() {
  auto page = std::make_unique<GuestPage>();
  auto fd = sim::hv::CreateGrantablePage();
  EXPECT_TRUE(fd.ok());
  page->fd = *std::move(fd);
  page->data = static_cast<unsigned char*>(
      mmap(nullptr, sim::hv::kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, page->fd.get(), 0));
  EXPECT_NE(page->data, MAP_FAILED);
  return page;
}

TEST_F(SimPlatformTest, CreateWithoutHypervisorIsUnavailable) {
  EXPECT_EQ(SimGrantTables::Create(dir_ + "/nothing.sock").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(SimEventChannels::Create(dir_ + "/nothing.sock").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(SimPlatformTest, GrantTablesMapSharedPage) {
  auto guest = Conn(1);
  auto page = NewPage();
  page->data[0] = 'x';
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto tables = SimGrantTables::Create(Socket(0));
  ASSERT_TRUE(tables.ok()) << tables.status();
  auto mapping = (*tables)->Map(1, *ref, true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  auto* bytes = static_cast<unsigned char*>((*mapping)->data());
  EXPECT_EQ(bytes[0], 'x');
  bytes[kXenPageSize - 1] = 'y';
  EXPECT_EQ(page->data[kXenPageSize - 1], 'y');
  // The mapping outlives the GrantTables object.
  tables->reset();
  bytes[1] = 'z';
  EXPECT_EQ(page->data[1], 'z');
  EXPECT_EQ(hv_->Info(1).mapped_pages_by_others, 1u);
  mapping->reset();
  EXPECT_EQ(guest->EndAccess(*ref).code(), absl::StatusCode::kOk);
}

TEST_F(SimPlatformTest, GrantTablesStatusCodes) {
  auto guest = Conn(1);
  auto page = NewPage();
  auto for_two = guest->GrantPage(page->fd.get(), 2, false);
  auto read_only = guest->GrantPage(page->fd.get(), 0, true);
  ASSERT_TRUE(for_two.ok());
  ASSERT_TRUE(read_only.ok());
  auto tables = SimGrantTables::Create(Socket(0));
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ((*tables)->Map(1, *for_two, false).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*tables)->Map(1, *read_only, true).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*tables)->Map(1, *read_only, false).ok());
  EXPECT_EQ((*tables)->Map(1, 5000, false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*tables)->Map(42, *for_two, false).status().code(), absl::StatusCode::kNotFound);
  // Once the hypervisor is gone: UNAVAILABLE.
  hv_.reset();
  EXPECT_EQ((*tables)->Map(1, *read_only, false).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SimPlatformTest, GrantTablesMapFromManyThreads) {
  auto guest = Conn(1);
  auto page = NewPage();
  auto ref = guest->GrantPage(page->fd.get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto tables = SimGrantTables::Create(Socket(0));
  ASSERT_TRUE(tables.ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto mapping = (*tables)->Map(1, *ref, true);
        if (!mapping.ok()) {
          ++failures;
          continue;
        }
        static_cast<volatile unsigned char*>((*mapping)->data())[16 + t] = 1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(hv_->Info(1).mapped_pages_by_others, 0u);
  EXPECT_EQ(page->data[16], 1);
}

TEST_F(SimPlatformTest, EventChannelsBindNotifyUnmaskAndRebind) {
  auto guest = Evtchn(1);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());
  auto evtchn = SimEventChannels::Create(Socket(0));
  ASSERT_TRUE(evtchn.ok()) << evtchn.status();
  EventChannels& backend = **evtchn;
  auto none = backend.Pending();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto port = backend.BindInterdomain(1, *gport);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(WaitPending(backend), *port);  // the spurious event after bind
  ASSERT_TRUE(backend.Unmask(*port).ok());
  ASSERT_TRUE(guest->Notify(*gport).ok());
  EXPECT_EQ(WaitPending(backend), *port);
  ASSERT_TRUE(backend.Unmask(*port).ok());
  ASSERT_TRUE(backend.Notify(*port).ok());
  EXPECT_EQ(sim::hv::WaitEvent(*guest), *gport);

  EXPECT_EQ(backend.BindInterdomain(1, *gport).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.BindInterdomain(9, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(backend.Unbind(999).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.Notify(999).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend.Unmask(999).code(), absl::StatusCode::kInvalidArgument);

  // A restarted backend (a new handle) binds the same guest port again.
  evtchn->reset();
  auto restarted = SimEventChannels::Create(Socket(0));
  ASSERT_TRUE(restarted.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<EvtchnPort> again = (*restarted)->BindInterdomain(1, *gport);
  while (!again.ok() && absl::Now() < deadline) {
    again = (*restarted)->BindInterdomain(1, *gport);
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(WaitPending(**restarted), *again);
}

TEST_F(SimPlatformTest, EventChannelsUnavailableWhenHypervisorGoes) {
  auto evtchn = SimEventChannels::Create(Socket(0));
  ASSERT_TRUE(evtchn.ok());
  hv_.reset();
  EXPECT_EQ((*evtchn)->BindInterdomain(1, 1).status().code(), absl::StatusCode::kUnavailable);
  // The event socket reports the loss too, instead of looking idle forever.
  struct pollfd pfd = {(*evtchn)->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 10000), 1);
  EXPECT_EQ((*evtchn)->Pending().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace xenchan
