// Unit tests for ConsoleRing against a page laid out as xen/io/console.h.
#include "backend/ring/console_ring.h"

#include <xen/io/console.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

// A guest's view of the page: the producer of `out`, consumer of `in`.
class FakeGuest {
 public:
  explicit FakeGuest(xencons_interface* intf) : intf_(intf) {}
  size_t Write(const std::string& data) {
    size_t n = 0;
    while (n < data.size() && intf_->out_prod - intf_->out_cons < sizeof(intf_->out)) {
      intf_->out[MASK_XENCONS_IDX(intf_->out_prod, intf_->out)] = data[n++];
      ++intf_->out_prod;
    }
    return n;
  }
  std::string Read(size_t max) {
    std::string got;
    while (got.size() < max && intf_->in_cons != intf_->in_prod) {
      got.push_back(intf_->in[MASK_XENCONS_IDX(intf_->in_cons, intf_->in)]);
      ++intf_->in_cons;
    }
    return got;
  }

 private:
  xencons_interface* intf_;
};

class ConsoleRingTest : public ::testing::Test {
 protected:
  ConsoleRingTest() { std::memset(page_, 0, sizeof(page_)); }
  xencons_interface* intf() { return reinterpret_cast<xencons_interface*>(page_); }
  alignas(4096) unsigned char page_[4096];
};

TEST_F(ConsoleRingTest, DrainsWhatTheGuestWrote) {
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  ASSERT_EQ(guest.Write("hello"), 5u);
  EXPECT_EQ(*ring.OutAvailable(), 5u);
  char buf[16];
  ASSERT_EQ(*ring.DrainOut(buf, sizeof(buf)), 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(intf()->out_cons, 5u);
  EXPECT_EQ(*ring.DrainOut(buf, sizeof(buf)), 0u);
}

TEST_F(ConsoleRingTest, DrainWrapsAroundAndHonoursMax) {
  intf()->out_prod = intf()->out_cons = 0xfffffff0u;  // indices about to wrap
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  const std::string data(2048, 'x');
  ASSERT_EQ(guest.Write(data), 2048u);
  ASSERT_EQ(guest.Write("more"), 0u);  // full
  std::string got(3000, '\0');
  ASSERT_EQ(*ring.DrainOut(got.data(), 100), 100u);
  ASSERT_EQ(*ring.DrainOut(got.data() + 100, 3000), 1948u);
  EXPECT_EQ(got.substr(0, 2048), data);
  EXPECT_EQ(ring.out_consumed(), 2048u);
}

// Only a drain that found `out` full may have a guest waiting for room.
TEST_F(ConsoleRingTest, SaysWhetherTheDrainFoundTheRingFull) {
  intf()->out_prod = intf()->out_cons = 0xfffffff0u;  // fullness across the wrap
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  char buf[2048];
  ASSERT_EQ(guest.Write(std::string(2047, 'a')), 2047u);
  ASSERT_EQ(*ring.DrainOut(buf, 10), 10u);
  EXPECT_FALSE(ring.out_was_full());
  ASSERT_EQ(guest.Write(std::string(20, 'b')), 11u);  // full again
  ASSERT_EQ(*ring.DrainOut(buf, 10), 10u);
  EXPECT_TRUE(ring.out_was_full());
  ASSERT_EQ(*ring.DrainOut(buf, sizeof(buf)), 2038u);
  EXPECT_FALSE(ring.out_was_full());
  EXPECT_EQ(*ring.DrainOut(buf, sizeof(buf)), 0u);
  EXPECT_FALSE(ring.out_was_full());
  intf()->out_prod = intf()->out_cons + 4096;  // scribbled: not full, corrupt
  EXPECT_FALSE(ring.DrainOut(buf, sizeof(buf)).ok());
  EXPECT_FALSE(ring.out_was_full());
}

TEST_F(ConsoleRingTest, FillsOnlyFreeSpaceAndCountsConsumption) {
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  const std::string data(1500, 'y');
  ASSERT_EQ(*ring.FillIn(data.data(), data.size()), 1024u);
  EXPECT_EQ(*ring.InFree(), 0u);
  EXPECT_EQ(*ring.InConsumed(), 0u);
  EXPECT_EQ(guest.Read(600), std::string(600, 'y'));
  EXPECT_EQ(*ring.InConsumed(), 600u);
  ASSERT_EQ(*ring.FillIn(data.data(), 476), 476u);
  EXPECT_EQ(ring.in_produced(), 1500u);
}

TEST_F(ConsoleRingTest, CorruptOutIndicesAreRefusedWithoutTouchingTheRing) {
  ConsoleRing ring(page_);
  intf()->out_prod = 5000;  // 5000 bytes "available" in a 2048-byte ring
  char buf[4096];
  EXPECT_EQ(ring.DrainOut(buf, sizeof(buf)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(intf()->out_cons, 0u);
}

TEST_F(ConsoleRingTest, GuestScribblingOnOurIndexCannotSteerUs) {
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  guest.Write("abc");
  intf()->out_cons = 0x7fffffffu;  // the guest rewrites the index we own
  char buf[8];
  ASSERT_EQ(*ring.DrainOut(buf, sizeof(buf)), 3u);  // the shadow wins
  EXPECT_EQ(std::string(buf, 3), "abc");
  EXPECT_EQ(intf()->out_cons, 3u);
}

TEST_F(ConsoleRingTest, CorruptInIndicesAreRefused) {
  ConsoleRing ring(page_);
  intf()->in_cons = 2000;  // consumer ahead of the producer
  EXPECT_EQ(ring.FillIn("x", 1).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ring.InFree().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(intf()->in_prod, 0u);
}

TEST_F(ConsoleRingTest, ConsumptionNeverGoesBackNorPastWhatWasProduced) {
  FakeGuest guest(intf());
  ConsoleRing ring(page_);
  ASSERT_EQ(*ring.FillIn("0123456789", 10), 10u);
  EXPECT_EQ(guest.Read(6), "012345");
  EXPECT_EQ(*ring.InConsumed(), 6u);
  intf()->in_cons -= 4;  // the guest "un-reads" 4 bytes: progress stays
  EXPECT_EQ(*ring.InConsumed(), 6u);
  intf()->in_cons -= 100;  // claims more unread than we ever produced
  EXPECT_EQ(*ring.InConsumed(), 6u);
  EXPECT_LE(*ring.InConsumed(), ring.in_produced());
  intf()->in_cons = intf()->in_prod;  // and then reads everything
  EXPECT_EQ(*ring.InConsumed(), 10u);
}

TEST_F(ConsoleRingTest, GarbageInIndicesAtAttachCountNothingAsConsumed) {
  intf()->in_prod = 10;
  intf()->in_cons = 0xfffffff0u;  // 26 bytes "in use": plausible, but never ours
  ConsoleRing ring(page_);
  EXPECT_EQ(ring.in_produced(), 26u);
  EXPECT_EQ(*ring.InConsumed(), 0u);
  intf()->in_cons = 0xffffff00u;  // 266 bytes in use: more than produced
  EXPECT_EQ(*ring.InConsumed(), 0u);
}

TEST_F(ConsoleRingTest, ReattachResumesWhereThePreviousBackendStopped) {
  FakeGuest guest(intf());
  {
    ConsoleRing first(page_);
    guest.Write("0123456789");
    char buf[4];
    ASSERT_EQ(*first.DrainOut(buf, 4), 4u);
    ASSERT_EQ(*first.FillIn("in", 2), 2u);
  }  // the backend "crashes" here with 6 bytes left in out
  ConsoleRing second(page_);
  char buf[16];
  ASSERT_EQ(*second.DrainOut(buf, sizeof(buf)), 6u);
  EXPECT_EQ(std::string(buf, 6), "456789");
  EXPECT_EQ(second.in_produced(), 2u);  // still unconsumed by the guest
  EXPECT_EQ(guest.Read(10), "in");
  EXPECT_EQ(*second.InConsumed(), 2u);
}

// An event channel's pending bit between two threads: Notify sets it,
// Wait takes it (false if none came by the deadline).
class PendingBit {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
    cv_.notify_one();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return pending_; })) return false;
    pending_ = false;
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
};

// A guest that, as Linux's hvc_xen, writes what fits and waits for an event
// only when it finds no room, against a backend that notifies after a drain
// only if out_was_full(): the guest must never be left waiting. It may fill
// the ring against the old out_cons while a drain that snapped a ring with
// room is under way; the drain must then still wake it.
TEST_F(ConsoleRingTest, AGuestThatWaitsForRoomIsAlwaysWoken) {
  constexpr size_t kTotal = 4 << 20;
  xencons_interface* const page = intf();
  PendingBit to_guest;
  PendingBit to_backend;
  std::atomic<bool> guest_stuck{false};
  std::thread guest([&] {
    std::mt19937 rng(7);
    uint32_t prod = 0;
    size_t sent = 0;
    while (sent < kTotal) {
      const uint32_t cons = __atomic_load_n(&page->out_cons, __ATOMIC_ACQUIRE);
      const uint32_t space = ConsoleRing::kOutSize - (prod - cons);
      if (space == 0) {
        if (!to_guest.Wait()) {
          guest_stuck = true;
          to_backend.Notify();  // let the backend see it too
          return;
        }
        continue;
      }
      const uint32_t n = std::min<uint32_t>(
          {space, static_cast<uint32_t>(1 + rng() % 300), static_cast<uint32_t>(kTotal - sent)});
      for (uint32_t i = 0; i < n; ++i) {
        page->out[MASK_XENCONS_IDX(prod + i, page->out)] = static_cast<char>((sent + i) % 251);
      }
      __atomic_store_n(&page->out_prod, prod + n, __ATOMIC_RELEASE);
      prod += n;
      sent += n;
      std::atomic_thread_fence(std::memory_order_seq_cst);  // out_prod before out_cons
      to_backend.Notify();
    }
  });
  ConsoleRing ring(page_);
  std::mt19937 rng(11);
  char buf[ConsoleRing::kOutSize];
  size_t got = 0;
  bool bytes_ok = true;
  while (got < kTotal && !guest_stuck) {
    absl::StatusOr<size_t> n = ring.DrainOut(buf, 1 + rng() % ConsoleRing::kOutSize);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n > 0) {
      for (size_t i = 0; i < *n; ++i) bytes_ok &= buf[i] == static_cast<char>((got + i) % 251);
      got += *n;
      if (ring.out_was_full()) to_guest.Notify();
      continue;
    }
    if (!to_backend.Wait()) break;
  }
  guest.join();
  EXPECT_FALSE(guest_stuck) << "the guest waited for room that was freed silently, after " << got
                            << " bytes";
  EXPECT_EQ(got, kTotal);
  EXPECT_TRUE(bytes_ok);
}

}  // namespace
}  // namespace xenchan
