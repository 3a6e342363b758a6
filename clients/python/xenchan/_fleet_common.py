"""What the synchronous and the asyncio fleet clients share, free of I/O: where a domain runs
(DomainLocation), how to reach a host of the fleet with the caller's TLS settings and the host's
advertised identity, the cursor of a WatchFleet stream, and the decisions of a read that follows a
channel across hosts (docs/FLEET.md, "Following a channel across hosts"): which stream ends and
epoch changes make it re-resolve, which record ends the wait for the owner, and the one
EpochChange (plus a Gap if the new owner lost bytes) it delivers for a move.

Not part of the public API (DomainLocation is re-exported by the package).
"""

import dataclasses
import time
from typing import List, NamedTuple, Optional, Tuple

import grpc

from xenchan import connection
from xenchan.errors import XenchanError, error_class
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import fleet_service_pb2 as fpb

MOVE_TIMEOUT = 30.0
"""How long a following read waits for a domain that left its host to show up on its owner."""

FIRST_PAUSE, MAX_PAUSE = 0.1, 1.0
"""Pauses between look-ups while waiting for the owner: 100 ms doubling to 1 s."""

MIGRATED = pb.EPOCH_CHANGE_REASON_DOMAIN_MIGRATED


class DomainLocation(NamedTuple):
    """Where a domain runs, as LocateDomain answered."""

    domain: fpb.FleetDomain
    """The domain's record: UUID, display name, host (`hosts/{id}`), domid, state, revision."""
    host: fpb.Host
    """The host that runs it: talk to it at host.api_address, expecting host.identity."""
    revision: int
    """The etcd revision the answer reflects (a WatchFleet may resume after it)."""

    @classmethod
    def from_response(cls, resp: fpb.LocateDomainResponse) -> "DomainLocation":
        return cls(resp.domain, resp.host, resp.revision)


def is_unix(target: str) -> bool:
    return target.startswith("unix:")


def host_connection(host: fpb.Host, tls: Optional[connection.TlsFiles],
                    credentials: Optional[grpc.ChannelCredentials],
                    options: Optional[connection.ChannelOptions]
                    ) -> Tuple[str, Optional[connection.TlsFiles],
                               Optional[grpc.ChannelCredentials], List[Tuple[str, object]]]:
    """(target, tls, credentials, options) to reach `host` as the fleet entry was reached.

    A Unix socket address is dialled in plaintext (its xenchand knows the caller by uid). Over TCP
    the caller's TLS settings apply and the host's advertised identity is the name checked in its
    certificate (unless it advertises none: then the caller's server_name, as for the entry);
    without TLS settings the host is dialled in plaintext, as the entry was.
    """
    target = host.api_address
    if not target:
        raise ValueError("host %r advertises no API address" % host.host_id)
    opts = list(options or [])
    if is_unix(target):
        return target, None, None, opts
    if tls is not None and host.identity:
        tls = dataclasses.replace(tls, server_name=host.identity)
    if credentials is not None and host.identity:
        opts.append(("grpc.ssl_target_name_override", host.identity))
    return target, tls, credentials, opts


class FleetWatchCursor:
    """Where a WatchFleet stream got to: the revision it may resume after (SYNCED and live events;
    EXISTING events only once their SYNCED arrived)."""

    def __init__(self, start_revision: int) -> None:
        self.revision = start_revision
        self.relists = 0

    def update(self, event: fpb.WatchFleetResponse) -> None:
        if event.type != fpb.FLEET_EVENT_TYPE_EXISTING:
            self.revision = event.revision

    def resume_request(self) -> fpb.WatchFleetRequest:
        return fpb.WatchFleetRequest(start_revision=self.revision)

    def relist(self) -> None:
        """The revision is no longer retained: start over with a snapshot."""
        self.revision = 0
        self.relists += 1


class Trigger:
    """Why a following read re-resolves its domain, and what record ends the wait.

    kind: "migrated" (a DOMAIN_MIGRATED epoch change; `epoch_change` is it), "unavailable" (the
    host is unreachable or restarting), "not_found" (the channel or domain is gone from the host),
    or "departed" (the fleet says the domain runs elsewhere and its copy here is down: the signal
    of xenchands that do not yet end a moved channel's epoch themselves).
    """

    def __init__(self, kind: str, error: Optional[XenchanError] = None,
                 epoch_change: Optional[pb.EpochChange] = None) -> None:
        self.kind = kind
        self.error = error
        self.epoch_change = epoch_change

    def satisfied_by(self, domain: fpb.FleetDomain, current_host: str, domid: int) -> bool:
        """Whether the record `domain` ends the wait (current_host: `hosts/{id}`)."""
        if self.kind == "migrated":
            return domain.host != current_host or domain.domid != domid
        if self.kind == "unavailable":
            return True
        return domain.host != current_host


def classify(error: XenchanError) -> Optional[Trigger]:
    """The trigger a stream's end is, or None if the error is the caller's."""
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return Trigger("unavailable", error)
    if error.code == grpc.StatusCode.NOT_FOUND:
        return Trigger("not_found", error)
    return None


class OwnerWait:
    """The bounded wait for a domain's owner after a trigger: the deadline, the pauses between
    look-ups, and the error when time runs out."""

    def __init__(self, domain: str, timeout: float) -> None:
        self.domain = domain
        self.deadline = time.monotonic() + timeout
        self.last: Optional[fpb.FleetDomain] = None
        self._pause = FIRST_PAUSE

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def next_pause(self) -> Optional[float]:
        """Seconds to pause before the next look-up, or None once the bound is reached."""
        left = self.remaining()
        if left <= 0:
            return None
        pause = min(self._pause, left)
        self._pause = min(MAX_PAUSE, self._pause * 2)
        return pause

    def timeout_error(self, cause: Optional[XenchanError] = None) -> XenchanError:
        last = ("last record: host %s, domid %d, state %d" %
                (self.last.host, self.last.domid, self.last.state)) if self.last else \
            "no record seen"
        message = "domain %s did not appear on its owner in time (%s)" % (self.domain, last)
        if cause is not None:
            message += "; last error: %s" % cause
        code = grpc.StatusCode.DEADLINE_EXCEEDED
        return error_class(code)(code, message)


class MoveSplice:
    """Turns the first message a new owner sends into what the caller gets for the move: one
    EpochChange (reason DOMAIN_MIGRATED, from the epoch that ended to the first epoch there), and a
    Gap from offset 0 if the new owner no longer holds the start of that epoch.

    `previous` is the source's DOMAIN_MIGRATED EpochChange if there was one, else None and
    `position` (where the follower got to) gives the epoch that ended and its length.
    """

    def __init__(self, previous: Optional[pb.EpochChange], position: Optional[object]) -> None:
        self.change = pb.EpochChange(reason=MIGRATED)
        if previous is not None:
            self.change.previous_epoch = previous.previous_epoch
            self.change.previous_end_offset = previous.previous_end_offset
            self.change.time.CopyFrom(previous.time)
        elif position is not None:
            self.change.previous_epoch = position.epoch  # type: ignore[attr-defined]
            self.change.previous_end_offset = position.offset  # type: ignore[attr-defined]
        self._has_time = previous is not None

    def first(self, resp: pb.ReadResponse) -> List[pb.ReadResponse]:
        """The messages to deliver for the new owner's first message `resp`."""
        kind = resp.WhichOneof("event")
        out: List[pb.ReadResponse] = []
        if kind == "epoch_change":
            ec = resp.epoch_change
            if ec.previous_epoch == 0:  # the channel connected there: fold it into the move
                self.change.epoch = ec.epoch
                if not self._has_time:
                    self.change.time.CopyFrom(ec.time)
                return [pb.ReadResponse(epoch_change=self.change)]
            self.change.epoch = ec.previous_epoch
            return [pb.ReadResponse(epoch_change=self.change), resp]
        if kind == "data":
            epoch, offset = resp.data.epoch, resp.data.offset
        elif kind == "gap":
            epoch, offset = resp.gap.epoch, resp.gap.offset
        else:
            return [resp]
        self.change.epoch = epoch
        out.append(pb.ReadResponse(epoch_change=self.change))
        if offset > 0:
            out.append(pb.ReadResponse(gap=pb.Gap(epoch=epoch, offset=0, length=offset)))
        out.append(resp)
        return out
