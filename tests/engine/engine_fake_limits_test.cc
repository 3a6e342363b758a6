// The per-channel event limits (ring_channel.h, "Event rate limits") on the
// in-memory Xen platform: events that move data are not held like events
// that move nothing, a guest's progress between its events counts for the
// next one even when a pass in between already moved the data, and a guest
// that moves a byte per event is still held to the cap. The storm of events
// without data is in engine_fake_hostile_test.
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <xen/io/console.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/fake_engine_fixture.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_fake::Frontend;
using testing_sim::ReadSession;

// Waits up to `timeout` for a session's notify_fd and clears it.
void WaitFd(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  uint64_t v;
  [[maybe_unused]] ssize_t n = read(fd, &v, sizeof(v));
}

class EngineFakeLimitsTest : public testing_fake::FakeEngineTest {
 protected:
  // xenconsoled's strict allowance for both limits (30 per 200 ms): any
  // event the limits wrongly charged would show at once.
  void StartStrict() {
    StartEngine([](EngineOptions& o) {
      o.event_allowance = 30;
      o.event_period = absl::Milliseconds(200);
      o.event_cap = 30;
      o.event_cap_period = absl::Milliseconds(200);
    });
  }
  // Waits until the engine handled `n` more events of the channel than
  // `before` shows.
  ChannelInfo WaitEvents(const std::string& domain, const std::string& id,
                         const ChannelInfo& before, uint64_t n) {
    EXPECT_TRUE(Until([&] {
      return Info(domain, id).counters.events_from_guest >= before.counters.events_from_guest + n;
    }));
    return Info(domain, id);
  }
  // Guest-owned and backend-owned indices of `out`, as the guest sees them.
  static uint32_t OutUsed(xencons_interface* page) {
    const uint32_t prod = __atomic_load_n(&page->out_prod, __ATOMIC_ACQUIRE);
    const uint32_t cons = __atomic_load_n(&page->out_cons, __ATOMIC_ACQUIRE);
    return prod - cons;
  }
};

// Guest to host and back, 256 KiB each way, every event carrying at least
// 64 bytes, under limits of 30 events per 200 ms: at that rate the transfer
// would take seconds and be masked hundreds of times; it is never masked.
TEST_F(EngineFakeLimitsTest, BulkTransferWhoseEveryEventMovesDataIsNeverMasked) {
  StartStrict();
  NewDomain("bulk");
  Frontend& fe = Connect("bulk", "data");
  auto writer = Open("bulk", "data", SessionRole::kWriter, ReadStart::Anchor::kNext);
  const ChannelInfo before = Info("bulk", "data");
  constexpr size_t kTotal = 256 * 1024;
  constexpr size_t kChunk = 64;

  // Up: the guest writes 64 bytes only when they fit (each Write notifies).
  std::thread guest([&] {
    const std::string chunk(kChunk, 'u');
    xencons_interface* page = fe.ring();
    for (size_t sent = 0; sent < kTotal;) {
      if (sizeof(page->out) - OutUsed(page) < kChunk) {
        fe.WaitEvent(absl::Milliseconds(100));
        continue;
      }
      auto n = fe.Write(chunk);
      ASSERT_TRUE(n.ok()) << n.status();
      ASSERT_EQ(*n, kChunk);
      sent += *n;
    }
  });
  EXPECT_EQ(ReadSession(*writer, kTotal, absl::Seconds(60)).size(), kTotal);
  guest.join();

  // Down: the guest takes input only 64 bytes at a time or more.
  const std::string down(kTotal, 'd');
  std::thread host([&] {
    for (size_t sent = 0; sent < kTotal;) {
      const size_t n = std::min<size_t>(Session::kMaxWrite, kTotal - sent);
      auto w = writer->Write(absl::string_view(down.data() + sent, n));
      if (w.ok()) {
        sent += n;
      } else {
        ASSERT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
        WaitFd(writer->notify_fd(), absl::Milliseconds(100));
      }
    }
  });
  xencons_interface* page = fe.ring();
  size_t got = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (got < kTotal && absl::Now() < deadline) {
    const uint32_t avail = __atomic_load_n(&page->in_prod, __ATOMIC_ACQUIRE) -
                           __atomic_load_n(&page->in_cons, __ATOMIC_ACQUIRE);
    if (avail < kChunk && kTotal - got > avail) {
      fe.WaitEvent(absl::Milliseconds(100));
      continue;
    }
    auto r = fe.Read(sizeof(page->in));
    ASSERT_TRUE(r.ok()) << r.status();
    got += r->size();
  }
  host.join();
  EXPECT_EQ(got, kTotal);

  const ChannelInfo after = Info("bulk", "data");
  const uint64_t events = after.counters.events_from_guest - before.counters.events_from_guest;
  std::cout << "bulk: " << events << " events, "
            << after.counters.spurious_events_from_guest -
                   before.counters.spurious_events_from_guest
            << " spurious\n";
  EXPECT_GT(events, 2u * 30);  // far more than the limits would let through
  EXPECT_EQ(after.counters.rate_limited_periods, before.counters.rate_limited_periods);
}

// An echo round trip as the engine may see it: the guest consumed its input
// and published its answer, but a pass the engine made for another reason
// (a session wrote) drained the answer and saw the input consumed before
// the guest's notify arrived. That notify is not spurious: the guest moved
// both rings since its previous event. Neither is one more notify right
// after it (a guest notifies once per move, and one pass may have covered
// two of them); a kick after that, with nothing new, is.
TEST_F(EngineFakeLimitsTest, ProgressDrainedBetweenEventsStillCountsForTheNextEvent) {
  StartStrict();
  NewDomain("echo");
  Frontend& fe = Connect("echo", "e");
  auto writer = Open("echo", "e", SessionRole::kWriter, ReadStart::Anchor::kNext);
  ExpectRoundTrip(fe, *writer, "warm");
  // Bare kicks until one counts as spurious: whatever credit the round
  // trip left is used up then. (How many it takes depends on how the round
  // trip's own notifies were grouped into passes, which the scheduler
  // decides: one or two.)
  ChannelInfo before = Info("echo", "e");
  bool exhausted = false;
  for (int kick = 0; kick < 4 && !exhausted; ++kick) {
    ASSERT_TRUE(fe.Notify().ok());
    const ChannelInfo next = WaitEvents("echo", "e", before, 1);
    exhausted =
        next.counters.spurious_events_from_guest > before.counters.spurious_events_from_guest;
    before = next;
  }
  ASSERT_TRUE(exhausted) << "no bare kick counted as spurious";

  ASSERT_TRUE(writer->Write("ping").ok());
  xencons_interface* page = fe.ring();
  // The engine writes in_prod while this thread reads: atomic loads, as a
  // guest reads shared memory.
  ASSERT_TRUE(Until([&] {
    return __atomic_load_n(&page->in_prod, __ATOMIC_ACQUIRE) -
               __atomic_load_n(&page->in_cons, __ATOMIC_ACQUIRE) ==
           4;
  }));
  // The guest takes the input and publishes its answer, notifying nobody yet.
  const uint32_t in_cons = __atomic_load_n(&page->in_prod, __ATOMIC_ACQUIRE);
  Frontend::GuestWritePage(page, offsetof(xencons_interface, in_cons), &in_cons, sizeof(in_cons));
  const std::string answer = "answer";
  const uint32_t prod = __atomic_load_n(&page->out_prod, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < answer.size(); ++i) {
    const uint32_t idx = (prod + i) % sizeof(page->out);
    Frontend::GuestWritePage(page, offsetof(xencons_interface, out) + idx, &answer[i], 1);
  }
  __atomic_thread_fence(__ATOMIC_RELEASE);
  const uint32_t new_prod = prod + static_cast<uint32_t>(answer.size());
  Frontend::GuestWritePage(page, offsetof(xencons_interface, out_prod), &new_prod,
                           sizeof(new_prod));
  // A session write makes the engine pass over the ring: it drains the
  // answer before the guest's event arrives.
  ASSERT_TRUE(writer->Write("next").ok());
  EXPECT_EQ(ReadSession(*writer, answer.size()), answer);

  ASSERT_TRUE(fe.Notify().ok());  // the guest's notify for both moves
  const ChannelInfo first = WaitEvents("echo", "e", before, 1);
  EXPECT_EQ(first.counters.spurious_events_from_guest, before.counters.spurious_events_from_guest);
  ASSERT_TRUE(fe.Notify().ok());  // its second notify, already covered
  const ChannelInfo second = WaitEvents("echo", "e", first, 1);
  EXPECT_EQ(second.counters.spurious_events_from_guest, before.counters.spurious_events_from_guest);
  ASSERT_TRUE(fe.Notify().ok());  // nothing moved since: spurious
  const ChannelInfo third = WaitEvents("echo", "e", second, 1);
  EXPECT_EQ(third.counters.spurious_events_from_guest,
            before.counters.spurious_events_from_guest + 1);
  EXPECT_EQ(third.counters.rate_limited_periods, 0u);
}

// A guest that moves one byte per event, as fast as the engine drains it:
// its events are not spurious, but each costs the cap nearly a whole event,
// so the engine handles about event_cap per period and no more.
TEST_F(EngineFakeLimitsTest, ByteAtATimeGuestIsHeldToTheCap) {
  StartEngine([](EngineOptions& o) {
    o.event_cap = 20;
    o.event_cap_period = absl::Milliseconds(20);
  });
  NewDomain("trickle");
  NewDomain("quiet");
  Frontend& fe = Connect("trickle", "bytes");
  Frontend& quiet = Connect("quiet", "calm");
  auto reader = Open("trickle", "bytes", SessionRole::kWriter, ReadStart::Anchor::kNext);
  auto calm = Open("quiet", "calm", SessionRole::kWriter, ReadStart::Anchor::kNext);
  const ChannelInfo before = Info("trickle", "bytes");

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0};
  xencons_interface* page = fe.ring();
  const absl::Time start = absl::Now();
  std::thread trickler([&] {
    while (!stop.load()) {
      if (OutUsed(page) != 0) continue;  // wait for the engine to drain it
      auto n = fe.Write("x");
      if (!n.ok()) break;
      bytes.fetch_add(*n);
    }
  });
  std::thread drainer([&] {
    while (!stop.load()) {
      auto recs = reader->Read(1 << 16);
      if (!recs.ok()) break;
      if (recs->empty()) WaitFd(reader->notify_fd(), absl::Milliseconds(10));
    }
  });
  for (int i = 0; i < 3; ++i) ExpectRoundTrip(quiet, *calm, absl::StrCat("ping", i));
  ASSERT_TRUE(Until([&] { return absl::Now() - start >= absl::Milliseconds(300); }));
  stop = true;
  trickler.join();
  drainer.join();
  const absl::Duration elapsed = absl::Now() - start;

  const ChannelInfo after = Info("trickle", "bytes");
  const uint64_t handled = after.counters.events_from_guest - before.counters.events_from_guest;
  // An event costs the cap 32 units less one per byte it moved, and one
  // event without progress after it costs the same: the events handled cost
  // at least 32 * handled - 2 * bytes units, and the cap refills 20 * 32 a
  // period (plus its burst, and the event that went into debt).
  const uint64_t periods = static_cast<uint64_t>(elapsed / absl::Milliseconds(20)) + 2;
  const uint64_t bound = periods * 20 + (2 * bytes.load()) / 32 + 1;
  std::cout << "trickle: " << bytes.load() << " bytes in " << elapsed << ", " << handled
            << " events handled, rate-limited " << after.counters.rate_limited_periods << "\n";
  EXPECT_GT(bytes.load(), 0u);
  EXPECT_LE(handled, bound) << periods;
  EXPECT_LT(bytes.load(), handled * 32);  // the events moved less than 32 bytes each
  EXPECT_GT(after.counters.rate_limited_periods, before.counters.rate_limited_periods);
  EXPECT_EQ(Info("quiet", "calm").counters.rate_limited_periods, 0u);
}

}  // namespace
}  // namespace xenchan
