// Where the engine's lifecycle event log can be resumed from. The log keeps
// the newest events only (EngineOptions::event_retention); a watcher asking
// to resume from an older revision gets OUT_OF_RANGE, and the API then tells
// it the earliest revision it could have resumed from.
//
// Thread safety: pure function.
#ifndef XENCHAN_BACKEND_ENGINE_RETAINED_REVISIONS_H_
#define XENCHAN_BACKEND_ENGINE_RETAINED_REVISIONS_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace xenchan {

// The smallest revision r in [0, current] with `resumable(r)`, where
// `resumable` is false below some revision and true from it on (as
// `Engine::EventsAfter(r, 0).ok()` is); `current` if it holds nowhere
// below. Asks `resumable` O(log current) times.
uint64_t EarliestResumableRevision(uint64_t current,
                                   absl::FunctionRef<bool(uint64_t revision)> resumable);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_RETAINED_REVISIONS_H_
