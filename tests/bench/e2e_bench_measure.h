// e2e_bench's measurements (see e2e_bench.cc for what each means): the
// echo round trips through plain gRPC, xenchand's Attach, the engine and
// the sim floor, each run --repeats times; and Write throughput through
// xenchand and through the engine. Each Dies on a failure.
#ifndef XENCHAN_TESTS_BENCH_E2E_BENCH_MEASURE_H_
#define XENCHAN_TESTS_BENCH_E2E_BENCH_MEASURE_H_

#include <stddef.h>

#include <map>
#include <string>

#include "backend/engine/engine.h"
#include "clients/lib/client.h"
#include "tests/bench/sim_floor.h"
#include "xenchan/v1/resources.pb.h"

namespace xenchan {
namespace bench {

// The guest and its two channels: the echo agent's and the draining one's.
inline constexpr char kGuest[] = "bench0";
inline constexpr char kEcho[] = "org.bench.echo";
inline constexpr char kSink[] = "org.bench.sink";

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
};

// The figures of --repeats echo runs: the median run's p50 and p99 (each
// run's min/median/max are printed), with per-round-trip process figures.
struct EchoFigures {
  Latency median;
  double switches_per_rt = 0;         // whole system
  std::map<std::string, double> own;  // context switches per round trip, by process
};

// 1a. The plain gRPC reference: an in-process echo server on `socket`.
EchoFigures GrpcEcho(const std::string& socket, int repeats, int warmup, int pings, size_t size);
// 1b. Attach through xenchand to `channel` (a resource name).
EchoFigures AttachEcho(client::Client& client, const std::string& channel, int repeats, int warmup,
                       int pings, size_t size);
// 1c. The engine directly, on kGuest/kEcho.
EchoFigures EngineEcho(Engine& engine, int repeats, int warmup, int pings, size_t size);
// 1d. The sim-floor echo: the same guest and agent, a minimal backend.
EchoFigures FloorEcho(SimFloor& floor, int repeats, int warmup, int pings, size_t size);

// 2a. Write through xenchand; MB/s until the Write RPC returned.
double GrpcWrite(client::Client& client, const std::string& channel, size_t total,
                 v1::AckLevel level);
// 2b. Engine writes to kGuest/kSink until `level` is reached for all of
// them; MB/s.
double EngineWrite(Engine& engine, size_t total, AckLevel level);

}  // namespace bench
}  // namespace xenchan

#endif  // XENCHAN_TESTS_BENCH_E2E_BENCH_MEASURE_H_
