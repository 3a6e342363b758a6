// The simulated hypervisor across real processes: a grant made in one process
// is mapped in another and both see the same bytes; an event channel's binder
// is killed with SIGKILL and a new process binds again; a domain destroyed
// while another process maps its page stays dying until that process lets go.
#include <sys/mman.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/hypervisor.h"
#include "gtest/gtest.h"
#include "tests/sim/hv/hv_fixture.h"
#include "tests/sim/hv/peer_process.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

using HvIntegrationTest = HvTest;

std::unique_ptr<PeerProcess> StartPeer(const std::string& socket) {
  auto peer = PeerProcess::Start(socket);
  EXPECT_TRUE(peer.ok()) << peer.status();
  return peer.ok() ? *std::move(peer) : nullptr;
}

TEST_F(HvIntegrationTest, GuestProcessGrantsBackendMapsSameBytes) {
  auto guest = StartPeer(Socket(1));
  ASSERT_NE(guest, nullptr);
  auto ref = guest->Number("grant 0 0");
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(*guest->Command(absl::StrCat("poke ", *ref, " 100 171")), "ok");

  auto backend = Conn(0);
  auto mapping = backend->MapGrant(1, *ref, true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  auto* bytes = static_cast<volatile unsigned char*>((*mapping)->data());
  EXPECT_EQ(bytes[100], 171);
  bytes[200] = 33;
  EXPECT_EQ(*guest->Command(absl::StrCat("peek ", *ref, " 200")), "ok 33");
  // The grant is for dom0 only: a process of domain 2 is refused.
  auto intruder = StartPeer(Socket(2));
  ASSERT_NE(intruder, nullptr);
  auto denied = intruder->Command(absl::StrCat("map 1 ", *ref, " 0"));
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->rfind("err PERMISSION_DENIED", 0), 0u) << *denied;
}

TEST_F(HvIntegrationTest, BackendProcessMapsGuestPage) {
  // Here the mapper is the child, the granter the test.
  auto page_fd = CreateGrantablePage();
  ASSERT_TRUE(page_fd.ok());
  auto* page = static_cast<unsigned char*>(
      mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, page_fd->get(), 0));
  ASSERT_NE(page, MAP_FAILED);
  page[4095] = 9;
  auto guest = Conn(1);
  auto ref = guest->GrantPage(page_fd->get(), 0, /*readonly=*/true);
  ASSERT_TRUE(ref.ok());
  auto backend = StartPeer(Socket(0));
  ASSERT_NE(backend, nullptr);
  auto rw = backend->Command(absl::StrCat("map 1 ", *ref, " 1"));
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(rw->rfind("err PERMISSION_DENIED", 0), 0u) << *rw;
  auto index = backend->Number(absl::StrCat("map 1 ", *ref, " 0"));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(*backend->Command(absl::StrCat("mpeek ", *index, " 4095")), "ok 9");
  page[4095] = 10;
  EXPECT_EQ(*backend->Command(absl::StrCat("mpeek ", *index, " 4095")), "ok 10");
  munmap(page, kPageSize);
}

TEST_F(HvIntegrationTest, KilledBinderRevertsGuestPortAndNewProcessRebinds) {
  auto guest = Evtchn(1);
  auto gport = guest->AllocUnbound(0);
  ASSERT_TRUE(gport.ok());

  auto backend = StartPeer(Socket(0));
  ASSERT_NE(backend, nullptr);
  auto bport = backend->Number(absl::StrCat("bind 1 ", *gport));
  ASSERT_TRUE(bport.ok()) << bport.status();
  EXPECT_EQ(*backend->Command("wait 10000"), absl::StrCat("ok ", *bport));  // spurious
  ASSERT_EQ(*backend->Command(absl::StrCat("unmask ", *bport)), "ok");
  ASSERT_TRUE(guest->Notify(*gport).ok());
  EXPECT_EQ(*backend->Command("wait 10000"), absl::StrCat("ok ", *bport));
  ASSERT_EQ(*backend->Command(absl::StrCat("notify ", *bport)), "ok");
  EXPECT_EQ(WaitEvent(*guest), *gport);
  ASSERT_TRUE(guest->Unmask(*gport).ok());

  // While bound, a second process cannot take the port.
  auto rival = StartPeer(Socket(0));
  ASSERT_NE(rival, nullptr);
  auto refused = rival->Command(absl::StrCat("bind 1 ", *gport));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->rfind("err INVALID_ARGUMENT", 0), 0u) << *refused;

  backend->KillAndReap();
  // The kernel has closed the dead process's sockets; the server notices on
  // its own schedule, so retry until the port is unbound again.
  auto restarted = StartPeer(Socket(0));
  ASSERT_NE(restarted, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string answer;
  do {
    auto result = restarted->Command(absl::StrCat("bind 1 ", *gport));
    ASSERT_TRUE(result.ok()) << result.status();
    answer = *result;
  } while (answer.rfind("ok ", 0) != 0 && absl::Now() < deadline);
  ASSERT_EQ(answer.rfind("ok ", 0), 0u) << answer;
  const std::string new_port = answer.substr(3);
  EXPECT_EQ(*restarted->Command("wait 10000"), "ok " + new_port);  // spurious again
  ASSERT_EQ(*restarted->Command("unmask " + new_port), "ok");
  // The guest never noticed: its port works with the new binder.
  ASSERT_TRUE(guest->Notify(*gport).ok());
  EXPECT_EQ(*restarted->Command("wait 10000"), "ok " + new_port);
  ASSERT_EQ(*restarted->Command("notify " + new_port), "ok");
  EXPECT_EQ(WaitEvent(*guest), *gport);
}

TEST_F(HvIntegrationTest, DestroyWhileMappedByAnotherProcessLeavesZombie) {
  auto guest = StartPeer(Socket(1));
  ASSERT_NE(guest, nullptr);
  auto ref = guest->Number("grant 0 0");
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(*guest->Command(absl::StrCat("poke ", *ref, " 0 77")), "ok");
  auto backend = StartPeer(Socket(0));
  ASSERT_NE(backend, nullptr);
  auto index = backend->Number(absl::StrCat("map 1 ", *ref, " 1"));
  ASSERT_TRUE(index.ok()) << index.status();

  ASSERT_TRUE(hv_->DestroyDomain(1).ok());
  Hypervisor::DomainInfo info = hv_->Info(1);
  EXPECT_TRUE(info.exists);
  EXPECT_TRUE(info.dying);
  EXPECT_EQ(info.mapped_pages_by_others, 1u);
  // The guest's connection is gone, its memory lives on in the mapping.
  EXPECT_EQ(*backend->Command(absl::StrCat("mpeek ", *index, " 0")), "ok 77");
  EXPECT_FALSE(HasGone(1));
  ASSERT_EQ(*backend->Command(absl::StrCat("unmap ", *index)), "ok");
  EXPECT_TRUE(WaitGone(1));
  EXPECT_FALSE(hv_->Info(1).exists);
}

TEST_F(HvIntegrationTest, ZombieGoesWhenMapperProcessIsKilled) {
  auto page_fd = CreateGrantablePage();
  ASSERT_TRUE(page_fd.ok());
  auto guest = Conn(2);
  auto ref = guest->GrantPage(page_fd->get(), 0, false);
  ASSERT_TRUE(ref.ok());
  auto backend = StartPeer(Socket(0));
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Number(absl::StrCat("map 2 ", *ref, " 1")).ok());
  ASSERT_TRUE(hv_->DestroyDomain(2).ok());
  EXPECT_TRUE(hv_->Info(2).dying);
  backend->KillAndReap();
  EXPECT_TRUE(WaitGone(2));
  EXPECT_FALSE(hv_->Info(2).exists);
}

}  // namespace
}  // namespace hv
}  // namespace sim
}  // namespace xenchan
