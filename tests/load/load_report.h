// xenchan_load's report: per stream kind and in all, messages, throughput
// and latency percentiles, the stream ends and errors, xenchand's CPU per
// message and memory; then one `RESULT name=value` line per figure (what
// the smoke test parses).
#ifndef XENCHAN_TESTS_LOAD_LOAD_REPORT_H_
#define XENCHAN_TESTS_LOAD_LOAD_REPORT_H_

#include <map>

#include "absl/time/time.h"
#include "tests/load/load_server.h"
#include "tests/load/load_streams.h"

namespace xenchan {
namespace load {

// Prints the report of a run of `elapsed` over `channels` channels with
// `streams` streams (`stream_kinds`: how many of each kind; a kind with
// none is left out), `fig` its figures, `before` and `after` xenchand's
// usage around the load. Call once every stream thread has ended.
void PrintReport(Figures& fig, std::map<Kind, int> stream_kinds, int channels, int streams,
                 absl::Duration elapsed, const ServerUsage& before, const ServerUsage& after);

}  // namespace load
}  // namespace xenchan

#endif  // XENCHAN_TESTS_LOAD_LOAD_REPORT_H_
