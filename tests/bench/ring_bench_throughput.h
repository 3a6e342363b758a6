// ring_bench's throughput runs, each timed over `total` bytes and
// returning MB/s:
//  1. the baseline: the same ring layout between two threads of this
//     process (the guest's frontend ring code against ConsoleRing), woken by
//     eventfds;
//  2. the composite floor: the guest's tty on one side, SimFloor on the
//     other;
//  3. one channel through the engine: the guest's tty on one side, an
//     engine session on the other.
// Each Dies on a failure (a bench, not a library).
#ifndef XENCHAN_TESTS_BENCH_RING_BENCH_THROUGHPUT_H_
#define XENCHAN_TESTS_BENCH_RING_BENCH_THROUGHPUT_H_

#include <stddef.h>

#include <string>

#include "backend/engine/engine.h"
#include "tests/bench/ring_bench_host.h"
#include "tests/bench/sim_floor.h"

namespace xenchan {
namespace bench {

double BaselineGuestToHost(size_t total);
double BaselineHostToGuest(size_t total);

double FloorGuestToHost(SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total);
double FloorHostToGuest(SimFloor& floor, Xensim& sim, const std::string& dom,
                        const std::string& chan, size_t total);

double GuestToHost(Engine& engine, Xensim& sim, const std::string& dom, const std::string& chan,
                   size_t total);
double HostToGuest(Engine& engine, Xensim& sim, const std::string& dom, const std::string& chan,
                   size_t total);

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_RING_BENCH_THROUGHPUT_H_
