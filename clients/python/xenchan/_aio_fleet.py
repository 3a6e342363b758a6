"""The asyncio fleet client (xenchan.aio.connect_fleet, xenchan.aio.Fleet): the methods of
xenchan.fleet.Fleet as coroutines and async iterators.

    import xenchan.aio
    async with xenchan.aio.connect_fleet("unix:///run/xenchan/xenchand.sock") as fleet:
        async for host in fleet.list_hosts():
            print(host.host_id)
        async with await fleet.connect("web-1") as client:
            print(await client.call_json("web-1/org.xenchan.agent.0", {"op": "ping"}))
        async with fleet.read("web-1", "org.xenchan.agent.0", follow=True) as stream:
            async for event in stream: ...

Arguments, defaults, errors and the rules of the following read are those of the synchronous
client (xenchan.fleet, xenchan._sync_fleet_read), documented there.
"""

import asyncio
from typing import Any, AsyncIterator, Callable, Optional, Tuple

import grpc
from grpc import aio as grpc_aio

from xenchan import _fleet_common, connection, names
from xenchan._aio_fleet_read import FleetReadStream
from xenchan._aio_streams import _ResumingWatch
from xenchan._common import RetryPolicy, StartSpec
from xenchan._fleet_common import DomainLocation
from xenchan.aio import Client, connect as connect_client
from xenchan.errors import from_rpc_error
from xenchan.v1 import fleet_service_pb2 as fpb
from xenchan.v1 import fleet_service_pb2_grpc as fpb_grpc


def connect_fleet(target: str = connection.DEFAULT_TARGET, *,
                  tls: Optional[connection.TlsFiles] = None,
                  credentials: Optional[grpc.ChannelCredentials] = None,
                  options: Optional[connection.ChannelOptions] = None,
                  timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> "Fleet":
    """An asyncio Fleet through the xenchand at `target`; arguments as xenchan.connect_fleet.
    Call it inside a running event loop."""
    creds = connection.resolve_credentials(tls, credentials)
    args = connection.channel_arguments(tls, options)
    channel = (grpc_aio.insecure_channel(target, options=args) if creds is None
               else grpc_aio.secure_channel(target, creds, options=args))
    return Fleet(channel, tls=tls, credentials=credentials, options=options, timeout=timeout,
                 retry=retry)


class Fleet:
    """The fleet seen through one xenchand, over a grpc.aio.Channel it owns (`await close()`);
    see xenchan.fleet.Fleet. Use it from the event loop that created it."""

    def __init__(self, channel: grpc_aio.Channel, *,
                 tls: Optional[connection.TlsFiles] = None,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 options: Optional[connection.ChannelOptions] = None,
                 timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> None:
        self._channel = channel
        self.stub = fpb_grpc.FleetServiceStub(channel)
        self.tls = tls
        self.credentials = credentials
        self.options = options
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "Fleet":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any,
                     timeout: Optional[float]) -> Any:
        deadline = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return await method(request, timeout=deadline)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
            attempt += 1
            delay = self.retry.delay(attempt, err) if err.retryable else None
            if delay is None:
                raise err
            await asyncio.sleep(delay)

    async def list_hosts(self, *, page_size: int = 0,
                         timeout: Optional[float] = None) -> AsyncIterator[fpb.Host]:
        """Every registered host, in host id order."""
        token = ""
        while True:
            resp = await self._unary(self.stub.ListHosts,
                                     fpb.ListHostsRequest(page_size=page_size, page_token=token),
                                     timeout)
            for host in resp.hosts:
                yield host
            token = resp.next_page_token
            if not token:
                return

    async def locate_domain(self, domain: str, *,
                            timeout: Optional[float] = None) -> DomainLocation:
        """Where `domain` runs (see xenchan.fleet.Fleet.locate_domain)."""
        resp = await self._unary(self.stub.LocateDomain,
                                 fpb.LocateDomainRequest(name=names.domain_name(domain)),
                                 timeout)
        return DomainLocation.from_response(resp)

    def connect_host(self, host: fpb.Host, *, timeout: Optional[float] = None,
                     retry: Optional[RetryPolicy] = None) -> Client:
        """An asyncio Client for `host`, with this fleet's TLS settings and the host's identity."""
        target, tls, creds, opts = _fleet_common.host_connection(host, self.tls,
                                                                 self.credentials, self.options)
        return connect_client(target, tls=tls, credentials=creds, options=opts,
                              timeout=self.timeout if timeout is None else timeout,
                              retry=retry or self.retry)

    async def resolve(self, domain: str) -> Tuple[DomainLocation, Client]:
        """Where `domain` runs and an asyncio Client for that host."""
        location = await self.locate_domain(domain)
        return location, self.connect_host(location.host)

    async def connect(self, domain: str) -> Client:
        """An asyncio Client for the host that runs `domain`."""
        return (await self.resolve(domain))[1]

    def watch_fleet(self, *, start_revision: int = 0, relist: bool = True,
                    retry: Optional[RetryPolicy] = None,
                    timeout: Optional[float] = None) -> "FleetWatchStream":
        """WatchFleet events as an async iterator that resumes after its revision."""
        return FleetWatchStream(self.stub, start_revision, retry or self.retry, relist, timeout)

    async def read(self, domain: str, channel_id: str, *, start: StartSpec = None,
                   follow: bool = False, move_timeout: float = _fleet_common.MOVE_TIMEOUT,
                   retry: Optional[RetryPolicy] = None,
                   timeout: Optional[float] = None) -> FleetReadStream:
        """Reads a channel of `domain` on whichever host runs it, following the domain from host
        to host with follow=True (see xenchan.fleet.Fleet.read)."""
        location = await self.locate_domain(domain)
        return FleetReadStream(self, location, channel_id, start, follow, retry or self.retry,
                               move_timeout, timeout)


class FleetWatchStream(_ResumingWatch):
    """Async iterator over WatchFleetResponse events; see xenchan.fleet.FleetWatchStream."""

    def __init__(self, stub: Any, start_revision: int, retry: RetryPolicy, relist: bool,
                 timeout: Optional[float]) -> None:
        self._stub = stub
        cursor = _fleet_common.FleetWatchCursor(start_revision)
        super().__init__(cursor, cursor.resume_request(), retry, relist, relist_first=True,
                         timeout=timeout)

    def _open(self, request: fpb.WatchFleetRequest) -> Any:
        return self._stub.WatchFleet(request, timeout=self._timeout)


__all__ = ["DomainLocation", "Fleet", "FleetReadStream", "FleetWatchStream", "connect_fleet"]
