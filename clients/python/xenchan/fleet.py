"""The synchronous fleet client: finding hosts and domains through any xenchand of a fleet
(xenchan.v1.FleetService, docs/FLEET.md) and talking to the host that runs a domain directly.

    import xenchan
    with xenchan.connect_fleet("unix:///run/xenchan/xenchand.sock") as fleet:
        for host in fleet.list_hosts():
            print(host.host_id, host.api_address)
        where = fleet.locate_domain("web-1")          # any host of the fleet knows
        with fleet.connect("web-1") as client:        # a Client for the host that runs it
            print(client.call_json("web-1/org.xenchan.agent.0", {"op": "ping"}))
        for event in fleet.read("web-1", "org.xenchan.agent.0", follow=True):
            ...                                       # follows the domain from host to host

Hosts are reached with the TLS settings the fleet was connected with, checking each host's
advertised certificate identity; a host that advertises a Unix socket is dialled in plaintext.
Errors are the SDK's typed errors (xenchan.errors), e.g. FailedPreconditionError with reason
FLEET_NOT_CONFIGURED from a xenchand outside a fleet, NotFoundError DOMAIN_NOT_FOUND.
"""

import time
from typing import Any, Callable, Iterator, Optional, Tuple

import grpc

from xenchan import _fleet_common, connection, names
from xenchan._common import RetryPolicy, StartSpec
from xenchan._fleet_common import DomainLocation
from xenchan._sync_fleet_read import FleetReadStream
from xenchan._sync_streams import _ResumingWatch
from xenchan.client import Client, connect as connect_client
from xenchan.errors import from_rpc_error
from xenchan.v1 import fleet_service_pb2 as fpb
from xenchan.v1 import fleet_service_pb2_grpc as fpb_grpc


def connect_fleet(target: str = connection.DEFAULT_TARGET, *,
                  tls: Optional[connection.TlsFiles] = None,
                  credentials: Optional[grpc.ChannelCredentials] = None,
                  options: Optional[connection.ChannelOptions] = None,
                  timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> "Fleet":
    """A Fleet through the xenchand at `target` (any host of the fleet); arguments as
    xenchan.connect, and used again for every host the fleet leads to. Connecting is lazy."""
    creds = connection.resolve_credentials(tls, credentials)
    args = connection.channel_arguments(tls, options)
    channel = (grpc.insecure_channel(target, options=args) if creds is None
               else grpc.secure_channel(target, creds, options=args))
    return Fleet(channel, tls=tls, credentials=credentials, options=options, timeout=timeout,
                 retry=retry)


class Fleet:
    """The fleet seen through one xenchand, over a grpc.Channel it owns (close() closes it; the
    Clients it hands out are the caller's to close).

    Thread-safe as Client. `timeout` is the default deadline of unary calls in seconds; `retry`
    the policy of idempotent look-ups, watches and reads. Every method raises XenchanError
    subclasses; a xenchand started without --fleet-etcd answers FailedPreconditionError
    (FLEET_NOT_CONFIGURED), one that has not read etcd yet UnavailableError (FLEET_UNAVAILABLE,
    retried like any UNAVAILABLE).
    """

    def __init__(self, channel: grpc.Channel, *, tls: Optional[connection.TlsFiles] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 options: Optional[connection.ChannelOptions] = None,
                 timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> None:
        self._channel = channel
        self.stub = fpb_grpc.FleetServiceStub(channel)
        """The generated FleetService stub."""
        self.tls = tls
        self.credentials = credentials
        self.options = options
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: Optional[float]) -> Any:
        deadline = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return method(request, timeout=deadline)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
            attempt += 1
            delay = self.retry.delay(attempt, err) if err.retryable else None
            if delay is None:
                raise err
            time.sleep(delay)

    def list_hosts(self, *, page_size: int = 0,
                   timeout: Optional[float] = None) -> Iterator[fpb.Host]:
        """Every registered host, in host id order, fetching pages as the iteration goes."""
        token = ""
        while True:
            resp = self._unary(self.stub.ListHosts,
                               fpb.ListHostsRequest(page_size=page_size, page_token=token),
                               timeout)
            yield from resp.hosts
            token = resp.next_page_token
            if not token:
                return

    def locate_domain(self, domain: str, *, timeout: Optional[float] = None) -> DomainLocation:
        """Where `domain` (a UUID, a display name or `domains/...`) runs. NotFoundError
        (DOMAIN_NOT_FOUND) if no host of the fleet runs it; FailedPreconditionError
        (DOMAIN_NAME_AMBIGUOUS) for a display name several hosts use (address it by UUID);
        UnavailableError (HOST_NOT_REGISTERED) if its host has no valid record."""
        resp = self._unary(self.stub.LocateDomain,
                           fpb.LocateDomainRequest(name=names.domain_name(domain)), timeout)
        return DomainLocation.from_response(resp)

    def connect_host(self, host: fpb.Host, *, timeout: Optional[float] = None,
                     retry: Optional[RetryPolicy] = None) -> Client:
        """A Client for `host`'s xenchand at its API address, with this fleet's TLS settings and
        the host's identity as the name checked in its certificate (see module doc)."""
        target, tls, creds, opts = _fleet_common.host_connection(host, self.tls,
                                                                 self.credentials, self.options)
        return connect_client(target, tls=tls, credentials=creds, options=opts,
                              timeout=self.timeout if timeout is None else timeout,
                              retry=retry or self.retry)

    def resolve(self, domain: str) -> Tuple[DomainLocation, Client]:
        """locate_domain, then connect_host: where `domain` runs and a Client for that host."""
        location = self.locate_domain(domain)
        return location, self.connect_host(location.host)

    def connect(self, domain: str) -> Client:
        """A Client for the host that runs `domain` (resolve without the location)."""
        return self.resolve(domain)[1]

    def watch_fleet(self, *, start_revision: int = 0, relist: bool = True,
                    retry: Optional[RetryPolicy] = None,
                    timeout: Optional[float] = None) -> "FleetWatchStream":
        """Hosts and domains appearing, changing and disappearing, as an iterator of
        WatchFleetResponse that reconnects and resumes after its revision (see FleetWatchStream).
        With start_revision 0: EXISTING events, SYNCED, then live events."""
        return FleetWatchStream(self.stub, start_revision, retry or self.retry, relist, timeout)

    def read(self, domain: str, channel_id: str, *, start: StartSpec = None,
             follow: bool = False, move_timeout: float = _fleet_common.MOVE_TIMEOUT,
             retry: Optional[RetryPolicy] = None,
             timeout: Optional[float] = None) -> FleetReadStream:
        """Reads channel `channel_id` of `domain` on the host that runs it.

        With follow=False it ends once what the owner retains was read (resuming there after a
        restart of its xenchand, as Client.read). With follow=True the stream moves with the
        domain: when the owner's stream says the domain left (an epoch
        change with reason DOMAIN_MIGRATED, the channel or domain gone there, the host
        unreachable), it finds the new owner (waiting at most `move_timeout` seconds) and
        continues there from the start of the channel's new epoch, delivering one EpochChange
        (reason DOMAIN_MIGRATED) for the move; nothing delivered is repeated, nothing retained is
        skipped (a loss shows as a Gap). See FleetReadStream.
        """
        location = self.locate_domain(domain)
        return FleetReadStream(self, location, channel_id, start, follow, retry or self.retry,
                               move_timeout, timeout)


class FleetWatchStream(_ResumingWatch):
    """Iterates over WatchFleetResponse events, reconnecting after a transient failure (the
    xenchand restarting, FLEET_UNAVAILABLE, SLOW_CONSUMER) and resuming after the last revision
    processed (`revision`). If that revision is no longer retained (REVISION_NOT_RETAINED), it
    starts over with a snapshot when relist=True (the default): EXISTING events again, then
    SYNCED; a cache should be replaced by that snapshot (`relists` counts them). A start revision
    is only ever a resumption point here, so one etcd compacted away relists too. A context
    manager: leaving it cancels the stream.
    """

    def __init__(self, stub: Any, start_revision: int, retry: RetryPolicy, relist: bool,
                 timeout: Optional[float]) -> None:
        self._stub = stub
        cursor = _fleet_common.FleetWatchCursor(start_revision)
        super().__init__(cursor, cursor.resume_request(), retry, relist, relist_first=True,
                         timeout=timeout)

    def _open(self, request: fpb.WatchFleetRequest) -> Any:
        return self._stub.WatchFleet(request, timeout=self._timeout)


__all__ = ["DomainLocation", "Fleet", "FleetReadStream", "FleetWatchStream", "connect_fleet"]
