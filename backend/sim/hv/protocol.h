// Wire protocol between xensim's simulated hypervisor (hypervisor.h) and the
// processes that play domains (client.h): grant tables and event channels.
//
// Socket layout
//   <dom0_socket>                          e.g. <state_dir>/hypervisor.sock;
//                                          every connection acts as domain 0.
//   <domain_socket_dir>/<domid>/hypervisor.sock
//                                          created by Hypervisor::CreateDomain,
//                                          removed by DestroyDomain; every
//                                          connection acts as <domid>.
//   The domid of a connection is fixed by the socket it came through; nothing
//   a client sends can change it.
//
// Transport
//   AF_UNIX SOCK_SEQPACKET: one datagram is one message. Every message from a
//   client is exactly one Request (sizeof(Request) bytes); every message from
//   the server is exactly one Reply. File descriptors travel as SCM_RIGHTS
//   ancillary data, at most one per message. Integers are host byte order
//   (both ends run on the same host).
//
// Requests and replies
//   Every request gets one Reply carrying the same request_id, except
//   kNotify, which is fire-and-forget. Reply.error is 0 or a positive errno;
//   Reply.value is the result (a port, a grant ref, a mapping id) when
//   error == 0. Requests are served in order, so a client that waits for each
//   reply before sending the next request (client.h does) never needs to match
//   ids across requests; ids exist to detect a confused stream.
//
//   type                 args                                fd in     reply value      fd out
//   kGrant               [0]=to_domid [1]=readonly (0/1)     memfd     grant ref        -
//   kEndAccess           [0]=ref                             -         0                -
//   kMap                 [0]=domid [1]=ref [2]=writable      -         mapping id       page fd
//   kUnmap               [0]=mapping id                      -         0                -
//   kEvtchnOpen          -                                   -         0                event
//                                                                                        socket
//   kAllocUnbound        [0]=remote_domid                    -         local port       -
//   kBindInterdomain     [0]=remote_domid [1]=remote_port    -         local port       binding
//   kUnbind              [0]=port                            -         0                -
//   kNotify              [0]=port                            -         (no reply)       -
//   kPauseDomain         [0]=domid                           -         0                -
//   kUnpauseDomain       [0]=domid                           -         0                -
//
//   Unused args must be zero (EINVAL otherwise).
//
// Grants
//   A grant is a page of the granting domain: a memfd of exactly kPageSize
//   bytes created with MFD_ALLOW_SEALING and opened read-write. The server
//   seals it against shrinking and growing (so a mapper can never take SIGBUS)
//   and keeps it until kEndAccess or until the domain is gone. Grants belong
//   to the domain, not to the connection: they outlive the granting process,
//   as a real guest's grant table outlives any one of its drivers. Refs are
//   chosen by the server (next-fit from kFirstGrantRef), at most
//   kMaxGrantsPerDomain live per domain. kEndAccess fails with EBUSY while
//   the page is mapped.
//   kMap succeeds only if the domain exists and is not dying (ESRCH), the
//   grant exists (EINVAL), it was made to the caller's domid (EACCES), and it
//   is not read-only when writable is asked (EACCES). The reply carries a
//   fresh file description of the page (O_RDWR or O_RDONLY) to mmap
//   MAP_SHARED, and a mapping id. kUnmap releases it; so does closing the
//   connection (the process died and the kernel tore its mappings down). A
//   destroyed domain whose pages are still mapped stays "dying" until the
//   last of those mappings is released.
//
// Event channels
//   Ports are numbered per domain from 1; at most kMaxPortsPerDomain. A port
//   belongs to the connection that created it, which must have sent
//   kEvtchnOpen first (EBADF otherwise). kAllocUnbound makes a port UNBOUND
//   earmarked for remote_domid. kBindInterdomain needs a remote port that is
//   UNBOUND and earmarked for the caller's domid (EINVAL otherwise; ESRCH if
//   the remote domain does not exist); it links both ends and marks the new
//   local port pending. kUnbind, or closing the connection, closes ports: the
//   remote end of an interdomain port reverts to UNBOUND earmarked for the
//   closer's domid, so a restarted peer can bind it again.
//
//   The data path does not go through the server. For every bound pair the
//   server makes a "binding": a sealed memfd page holding EvtchnSharedWords
//   (evtchn_shared.h: the pending and mask word of each end and a closed
//   flag) and one wake-up socket per end: a stream socketpair whose first
//   end ("read end") only that end's owner holds and whose second ("write
//   end") only the peer and the server hold; a byte sent into it means
//   "woken", and every send and receive is MSG_DONTWAIT (sends
//   MSG_NOSIGNAL), so no peer can block or kill another. Side 0 is the port
//   allocated unbound, side 1 the binder's port. An end receives its binding
//   as three fds, in this order: the page, its own read end, the peer's
//   write end. The binder gets it in the
//   kBindInterdomain reply; the other end's owner in a notice on its event
//   socket. Then, as Xen's 2-level ABI does with shared_info:
//     notify   = pending[peer] := 1; if mask[peer] is 0, send one byte into
//                the peer's write end; then, if closed is set, kNotify instead
//                (the binding ended under the notifier: the server applies
//                the notify to whatever the port is bound to now, or drops
//                it if it is unbound). A port whose binding the client does
//                not know yet notifies with kNotify too.
//     deliver  = the owner's read end turned readable: drain it, mask the port
//                (its own private mask, published in mask[side]) and take
//                pending[side] := 0; the port is returned by Pending.
//     unmask   = mask[side] := 0, then if pending[side] is 1 (a notify came
//                while masked, whose notifier skipped the send), deliver
//                again. Both ends use sequentially consistent atomics, so a
//                notify racing an unmask is seen by at least one of them.
//   kNotify (the relay) marks the peer pending and wakes it the same
//   way; it is ignored for ports that are not the caller's or not bound.
//   The server itself keeps every port's state (owner, peer, binding) in its
//   own memory; the shared page is only hints (see evtchn_shared.h).
//
//   The event socket (one end of a SOCK_SEQPACKET socketpair, carried by the
//   kEvtchnOpen reply) carries EvtchnNotice messages about the caller's
//   ports whose binding changed without the caller asking: kNoticeBound with
//   the binding's three fds when a peer bound one of its unbound ports,
//   kNoticeUnbound when the peer of one of its ports closed it (the port is
//   unbound again). Each notice states the port's state when it was sent;
//   notices are sent in order. When the server ends a binding it sets its
//   closed flag and closes its own socket ends (a read end whose writers
//   have all gone reads end of file). If the event socket is full,
//   notices wait in the server (one per port, rebuilt from the port's state
//   when sent) and go out when the socket drains.
//
// Domain pause
//   As Xen's XEN_DOMCTL_pausedomain/unpausedomain (xc_domain_pause/unpause):
//   a controller pause count per domain, which starts at 1 (a domain is
//   created paused; the toolstack unpauses it when it has built it). The
//   domain runs only while the count is 0. Only domain 0 may pause or
//   unpause (EPERM for others); domain 0 itself cannot be (EINVAL); ESRCH if
//   the domain does not exist or is dying; kUnpauseDomain of a domain whose
//   count is 0 is EINVAL; the count is bounded by kMaxControllerPauses
//   (EOVERFLOW beyond it). Every controller shares the one count, as in Xen:
//   a daemon that pauses a domain the toolstack is still building keeps it
//   paused after the toolstack's unpause, until its own.
//
// Hostile clients
//   A message of the wrong size, a truncated message or truncated ancillary
//   data closes the connection. Unknown types, bad args, an fd where none is
//   expected or a missing fd get EINVAL (any fd received is closed). A client
//   that does not read its replies (the reply cannot be queued) is closed.
#ifndef XENCHAN_BACKEND_SIM_HV_PROTOCOL_H_
#define XENCHAN_BACKEND_SIM_HV_PROTOCOL_H_

#include <cstddef>
#include <cstdint>

namespace xenchan {
namespace sim {
namespace hv {

inline constexpr size_t kPageSize = 4096;
inline constexpr uint32_t kFirstGrantRef = 8;      // 0..7 are reserved in Xen.
inline constexpr uint32_t kGrantRefLimit = 65536;  // refs are < this.
inline constexpr size_t kMaxGrantsPerDomain = 1024;
inline constexpr size_t kMaxPortsPerDomain = 4096;
inline constexpr size_t kMaxMappingsPerConnection = 4096;
inline constexpr size_t kMaxConnectionsPerDomain = 256;
// Domain ids at or above this are reserved by Xen (DOMID_FIRST_RESERVED).
inline constexpr uint32_t kDomidLimit = 0x7FF0;
// Bound of a domain's controller pause count (Xen refuses to wrap it too).
inline constexpr uint32_t kMaxControllerPauses = 255;

enum MsgType : uint32_t {
  kGrant = 1,
  kEndAccess = 2,
  kMap = 3,
  kUnmap = 4,
  kEvtchnOpen = 5,
  kAllocUnbound = 6,
  kBindInterdomain = 7,
  kUnbind = 8,
  kNotify = 9,
  // 10 was kUnmask: unmasking is local now (see "Event channels").
  kPauseDomain = 11,
  kUnpauseDomain = 12,
  kReply = 100,
};

struct Request {
  uint32_t type;        // MsgType
  uint32_t request_id;  // echoed in the reply
  uint32_t args[4];
};

struct Reply {
  uint32_t type;        // kReply
  uint32_t request_id;  // of the request answered
  int32_t error;        // 0 or a positive errno
  uint32_t value;
};

// A message on the event socket (see "Event channels").
enum NoticeType : uint32_t {
  kNoticeBound = 1,    // with 3 fds: page, own read end, peer's write end
  kNoticeUnbound = 2,  // no fds
};

struct EvtchnNotice {
  uint32_t type;  // NoticeType
  uint32_t port;  // the receiver's local port
  uint32_t side;  // kNoticeBound: the receiver's side in the binding (always 0)
  uint32_t reserved;
};

static_assert(sizeof(Request) == 24, "wire format");
static_assert(sizeof(EvtchnNotice) == 16, "wire format");
static_assert(sizeof(Reply) == 16, "wire format");

}  // namespace hv
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_HV_PROTOCOL_H_
