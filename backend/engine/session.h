// Session: a caller's handle on one channel (DESIGN §4 "Sessions"): a reader
// with its own cursor into the guest-to-host stream, and for writers the
// channel's single write lease.
//
// Notification: an optional on_ready callback fires whenever something new
// may be available to Read() or the write offsets moved, and notify_fd()
// gives an eventfd that becomes readable at the same moments. A session
// opened with ProgressWakeups::kAsked is not woken by every movement of the
// write offsets, only by what it waits for (WakeOnProgress; room after a
// Write found the queue full): a reader has nothing to send when a writer's
// bytes reach the guest. The eventfd is
// made on the first call of notify_fd() (readable at once if a wake-up is
// pending), so sessions whose owner only uses on_ready (xenchand's streams)
// hold no file descriptor: open sessions are bounded by the engine's limits
// and memory, not by RLIMIT_NOFILE. A session that does not read only delays
// itself: the engine never waits for it (under BLOCK a full buffer stalls the
// guest, which is the documented policy; see output_buffer.h).
#ifndef XENCHAN_BACKEND_ENGINE_SESSION_H_
#define XENCHAN_BACKEND_ENGINE_SESSION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/engine/channel.h"
#include "backend/engine/types.h"
#include "backend/engine/write_queue.h"
#include "backend/util/api_limits.h"

namespace xenchan {

// Where a session's guest-to-host stream starts.
struct ReadStart {
  enum class Anchor { kEarliest, kNext };
  Anchor anchor = Anchor::kNext;
  std::optional<Position> position;  // if set, overrides anchor
};

struct SessionOptions {
  SessionRole role = SessionRole::kObserver;
  SessionKind kind = SessionKind::kAttach;
  std::string identity;  // who, for LeaseHolder and errors
  ReadStart start;
  // Writers: take the lease over from its holder (who gets a kLeaseLost
  // record, then ABORTED).
  bool takeover = false;
  // Writers: if the lease is held, wait for it in arrival order (Calls)
  // instead of failing; has_lease() turns true and the session is notified
  // when it is granted.
  bool queue_for_lease = false;
  // kAll (the default) for owners that poll write_status() on every wake-up.
  ProgressWakeups progress_wakeups = ProgressWakeups::kAll;
  // Optional; called (never with engine locks held, on an engine or another
  // caller's thread) whenever notify_fd() is signalled. Must not block.
  std::function<void()> on_ready;
};

// Host-to-guest progress of the channel, for acknowledgements.
struct WriteStatus {
  bool connected = false;
  uint64_t epoch = 0;
  uint64_t accepted_offset = 0;
  uint64_t delivered_offset = 0;
  uint64_t consumed_offset = 0;
  size_t room = 0;  // bytes a write may have now without RESOURCE_EXHAUSTED
};

// Thread-safe: any thread may call any method, but one stream should be
// read by one thread at a time. Never blocks on the guest or the engine
// thread. Destroying the session closes it.
class Session {
 public:
  // Opens a session on `channel`. Errors: RESOURCE_EXHAUSTED (too many
  // readers), FAILED_PRECONDITION (the lease is held by another session and
  // neither takeover nor queue_for_lease was asked; the message names the
  // holder; or the channel is CLOSING), OUT_OF_RANGE (start position no
  // longer retained; the message names the earliest), NOT_FOUND/UNAVAILABLE
  // (the channel was removed).
  static absl::StatusOr<std::unique_ptr<Session>> Open(std::shared_ptr<Channel> channel,
                                                       SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& id() const { return id_; }
  SessionRole role() const { return role_; }
  // The session's eventfd (see above), made on first use; -1 if no eventfd
  // can be made (EMFILE): use on_ready then. Owned by the session.
  int notify_fd() const;
  // Position of the first byte the stream will deliver (as of opening).
  const Position& start_position() const { return start_position_; }
  // The channel as it was at open.
  const ChannelInfo& info_at_open() const { return info_at_open_; }

  // Takes what is available: notices (state, stall, lease lost) and up to
  // `max_bytes` of data with its gap and epoch records, in stream order.
  // Clears the pending wake-up (and notify_fd()). Empty when caught up. After a kLeaseLost record,
  // ABORTED. Once the channel is removed and everything buffered has been
  // read: NOT_FOUND (deleted) or UNAVAILABLE (domain gone).
  absl::StatusOr<std::vector<SessionRecord>> Read(size_t max_bytes);

  // Writers holding the lease: appends `data` (at most 64 KiB) to the
  // host-to-guest stream; returns its range. INVALID_ARGUMENT (too large),
  // FAILED_PRECONDITION (no lease, or the channel is not CONNECTED), ABORTED
  // (lease taken over, or `expected_epoch` is non-zero and not the current
  // epoch), RESOURCE_EXHAUSTED (no room in the write queue: wait for
  // notify_fd() and retry; a kAsked session is woken at the next
  // delivery), NOT_FOUND/UNAVAILABLE (channel removed).
  absl::StatusOr<WriteQueue::Range> Write(absl::string_view data, uint64_t expected_epoch = 0);

  WriteStatus write_status() const;

  // kAsked sessions: wake (on_ready, notify_fd) once the host-to-guest
  // stream of `epoch` is delivered up to `delivered` or consumed up to
  // `consumed` (0: not asked). Replaces the previous request; it is used up
  // when it fires, and an epoch change (which wakes every session) drops
  // it. Returns false, arming nothing, if either is reached already: the
  // caller observes write_status() again instead of waiting.
  bool WakeOnProgress(uint64_t epoch, uint64_t delivered, uint64_t consumed);
  bool has_lease() const;
  // Current snapshot of the channel.
  ChannelInfo info() const;

  // Releases the lease (granting it to the next waiter) and leaves the
  // channel. Idempotent.
  void Close();

  static constexpr size_t kMaxWrite = kMaxStreamMessageBytes;

 private:
  Session(std::shared_ptr<Channel> channel, uint64_t slot, std::string id, SessionRole role)
      : channel_(std::move(channel)), slot_(slot), id_(std::move(id)), role_(role) {}

  const std::shared_ptr<Channel> channel_;
  const uint64_t slot_;
  const std::string id_;
  const SessionRole role_;
  // -1 until notify_fd() makes it; set under the channel's lock.
  mutable std::atomic<int> notify_fd_{-1};
  Position start_position_;
  ChannelInfo info_at_open_;
  std::atomic<bool> closed_{false};  // Close may race with itself on other threads
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_SESSION_H_
