// What a call's logic asks of its gRPC shell: start the next read or write,
// finish the call. The logic classes (call_state.h lists them) call these
// with their own lock held, exactly where the reactors used to call gRPC, so
// "one read and one write in flight, Finish last" is kept by that lock; the
// shells (*_reactor.cc) forward to grpc::Server*Reactor, tests record.
//
// Thread safety: implementations must be callable from any thread and must
// not call back into the logic (its lock is held).
#ifndef XENCHAN_SERVER_STREAM_PORTS_H_
#define XENCHAN_SERVER_STREAM_PORTS_H_

#include "absl/status/status.h"

namespace xenchan {
namespace server {

// Ends the call with `status` (converted to the wire once, by the shell).
// Called at most once; no other operation follows.
class FinishPort {
 public:
  virtual ~FinishPort() = default;
  virtual void FinishWith(const absl::Status& status) = 0;
};

// A stream of client messages: the next one is read into `*into`, which the
// logic leaves alone until the shell reports the read done.
template <class Req>
class ReadPort {
 public:
  virtual ~ReadPort() = default;
  virtual void ReadNext(Req* into) = 0;
};

// A stream of server messages: `*message` is written; the logic keeps it
// unchanged until the shell reports the write done.
template <class Resp>
class WritePort {
 public:
  virtual ~WritePort() = default;
  virtual void WriteNext(const Resp* message) = 0;
};

// The ports of each kind of call.
template <class Resp>
class OutStreamPort : public WritePort<Resp>, public FinishPort {};
template <class Req, class Resp>
class BidiStreamPort : public OutStreamPort<Resp>, public ReadPort<Req> {};
template <class Req>
class InStreamPort : public ReadPort<Req>, public FinishPort {};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_STREAM_PORTS_H_
