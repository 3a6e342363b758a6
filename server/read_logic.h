// ReadLogic: the state machine of one Read call, without gRPC: one observer
// session on a channel's guest-to-host stream, from a start point to its
// current end (or on, with `follow`), as data, gap and epoch-change
// messages; paced by the caller's read quota. Its gRPC shell is
// read_reactor.cc.
//
// Events in: Start, OnWriteDone, OnCancel, OnShutdown, Pump (engine
// wake-up or the end of read pacing), OnDone. Actions out, through the
// port: the next write, the finish status.
//
// Thread safety: as OutStreamLogic: any entry point from any thread; state
// guarded by `mu_`.
#ifndef XENCHAN_SERVER_READ_LOGIC_H_
#define XENCHAN_SERVER_READ_LOGIC_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/engine/session.h"
#include "server/call_state.h"
#include "server/out_stream_logic.h"
#include "server/stream_ports.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

class ReadLogic : public OutStreamLogic<v1::ReadResponse> {
 public:
  // `call` and `port` must outlive the logic.
  ReadLogic(CallState* call, OutStreamPort<v1::ReadResponse>* port, const v1::ReadRequest& request);

  // The call began: validate, authorize, open the session, send what there
  // is.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AtEnd() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeforeFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const v1::ReadRequest request_;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  Position end_ ABSL_GUARDED_BY(mu_);  // follow=false: stop here
  Position pos_ ABSL_GUARDED_BY(mu_);  // next position of the stream
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_READ_LOGIC_H_
