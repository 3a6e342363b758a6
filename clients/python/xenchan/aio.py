"""The asyncio xenchan client (grpc.aio): the same methods as xenchan.Client, as coroutines, async
iterators and async context managers.

    import xenchan.aio
    async with xenchan.aio.connect() as client:
        ch = await client.create_channel("vm1", "org.xenchan.agent.0", wait=True)
        print(await client.call(ch.name, b'{"op":"ping"}'))
        async for event in client.read(ch.name, follow=True):
            ...
        async with client.writer(ch.name) as w:
            await w.write(b"hello\\n")
        async with client.attach(ch.name, role="observer") as session:
            async for event in session: ...

Method arguments, defaults and errors are those of xenchan.client.Client (documented there).
In a fleet, xenchan.aio.connect_fleet gives an asyncio xenchan.aio.Fleet (xenchan._aio_fleet).
"""

import asyncio
import json
from typing import Any, AsyncIterator, Callable, Iterable, Optional, Sequence, Union

import grpc
from grpc import aio as grpc_aio

from xenchan import _common, connection, names
from xenchan._aio_streams import AttachSession, ReadStream, WatchStream, Writer
from xenchan._common import AckSpec, FramingSpec, RetryPolicy, StartSpec
from xenchan.errors import from_rpc_error
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import channel_service_pb2_grpc as pb_grpc
from xenchan.v1 import resources_pb2 as res

_ROLES = {"writer": pb.SESSION_ROLE_WRITER, "observer": pb.SESSION_ROLE_OBSERVER}


def connect(target: str = connection.DEFAULT_TARGET, *,
            tls: Optional[connection.TlsFiles] = None,
            credentials: Optional[grpc.ChannelCredentials] = None,
            options: Optional[connection.ChannelOptions] = None,
            timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> "Client":
    """An asyncio Client for `target`; arguments as xenchan.connect. Call it inside a running
    event loop (grpc.aio channels belong to the loop that made them)."""
    creds = connection.resolve_credentials(tls, credentials)
    args = connection.channel_arguments(tls, options)
    channel = (grpc_aio.insecure_channel(target, options=args) if creds is None
               else grpc_aio.secure_channel(target, creds, options=args))
    return Client(channel, timeout=timeout, retry=retry)


class Client:
    """An asyncio xenchan client over one grpc.aio.Channel, which it owns (`await close()`).

    Use it from the event loop that created it; concurrent coroutines may share it.
    """

    def __init__(self, channel: grpc_aio.Channel, *, timeout: Optional[float] = 30.0,
                 retry: Optional[RetryPolicy] = None) -> None:
        self._channel = channel
        self.stub = pb_grpc.ChannelServiceStub(channel)
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any, timeout: Optional[float],
                     idempotent: bool = False) -> Any:
        deadline = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return await method(request, timeout=deadline)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
            attempt += 1
            delay = self.retry.delay(attempt, err) if idempotent and err.retryable else None
            if delay is None:
                raise err
            await asyncio.sleep(delay)

    async def list_domains(self, *, page_size: int = 0,
                           timeout: Optional[float] = None) -> AsyncIterator[res.Domain]:
        token = ""
        while True:
            resp = await self._unary(self.stub.ListDomains,
                                     pb.ListDomainsRequest(page_size=page_size, page_token=token),
                                     timeout, idempotent=True)
            for d in resp.domains:
                yield d
            token = resp.next_page_token
            if not token:
                return

    async def get_domain(self, domain: str, *, timeout: Optional[float] = None) -> res.Domain:
        return (await self._unary(self.stub.GetDomain,
                                  pb.GetDomainRequest(name=names.domain_name(domain)), timeout,
                                  idempotent=True)).domain

    async def list_channels(self, parent: str = names.ALL_DOMAINS, *,
                            channel_id_prefix: str = "", transports: Iterable[int] = (),
                            states: Iterable[int] = (), page_size: int = 0,
                            timeout: Optional[float] = None) -> AsyncIterator[res.Channel]:
        req = _common.list_channels_request(parent, channel_id_prefix, transports, states,
                                            page_size)
        while True:
            resp = await self._unary(self.stub.ListChannels, req, timeout, idempotent=True)
            for c in resp.channels:
                yield c
            if not resp.next_page_token:
                return
            req.page_token = resp.next_page_token

    async def get_channel(self, name: str, *, timeout: Optional[float] = None) -> res.Channel:
        return (await self._unary(self.stub.GetChannel,
                                  pb.GetChannelRequest(name=names.channel_name(name)), timeout,
                                  idempotent=True)).channel

    async def create_channel(self, domain: str, channel_id: str, *, durable: bool = False,
                             framing: FramingSpec = None, wait: bool = False,
                             connect_timeout: Optional[float] = None,
                             config: Optional[res.ChannelConfig] = None,
                             validate_only: bool = False, timeout: Optional[float] = None,
                             **config_fields: Any) -> res.Channel:
        req = _common.create_request(domain, channel_id, config, durable, framing, wait,
                                     connect_timeout, validate_only, **config_fields)
        if timeout is None and wait and self.timeout is not None:
            timeout = self.timeout + (connect_timeout or 30.0)
        return (await self._unary(self.stub.CreateChannel, req, timeout)).channel

    async def delete_channel(self, name: str, *, force_after: Optional[float] = None,
                             timeout: Optional[float] = None) -> pb.DeleteChannelResponse:
        req = pb.DeleteChannelRequest(name=names.channel_name(name))
        if force_after is not None:
            req.force_after.CopyFrom(_common.duration(force_after))
        if timeout is None and self.timeout is not None:
            timeout = self.timeout + (force_after if force_after is not None else 10.0)
        return await self._unary(self.stub.DeleteChannel, req, timeout)

    async def update_channel(self, name: str, *, config: Optional[res.ChannelConfig] = None,
                             update_mask: Optional[Sequence[str]] = None,
                             validate_only: bool = False, timeout: Optional[float] = None,
                             **fields: Any) -> res.Channel:
        req = _common.update_request(name, config, update_mask, validate_only, **fields)
        return (await self._unary(self.stub.UpdateChannel, req, timeout)).channel

    def watch_channels(self, parent: str = names.ALL_DOMAINS, *, channel_id_prefix: str = "",
                       transports: Iterable[int] = (), start_revision: int = 0,
                       relist: bool = True, retry: Optional[RetryPolicy] = None,
                       timeout: Optional[float] = None) -> WatchStream:
        req = pb.WatchChannelsRequest(
            parent=parent if parent == names.ALL_DOMAINS else names.domain_name(parent),
            start_revision=start_revision)
        req.filter.channel_id_prefix = channel_id_prefix
        req.filter.transports.extend(transports)
        return WatchStream(self.stub, req, retry or self.retry, relist, timeout)

    def read(self, channel: str, *, start: StartSpec = None, follow: bool = False,
             max_bytes: int = 0, skip_lost: bool = False, retry: Optional[RetryPolicy] = None,
             timeout: Optional[float] = None) -> ReadStream:
        req = pb.ReadRequest(channel=names.channel_name(channel), follow=follow,
                             max_bytes=max_bytes)
        s = _common.read_start(start)
        if s is not None:
            req.start.CopyFrom(s)
        return ReadStream(self.stub, req, retry or self.retry, skip_lost, timeout)

    async def read_bytes(self, channel: str, *, start: StartSpec = None,
                         timeout: Optional[float] = None) -> bytes:
        out = []
        async with self.read(channel, start=start, timeout=timeout) as stream:
            async for r in stream:
                if r.HasField("data"):
                    out.append(r.data.data)
        return b"".join(out)

    def writer(self, channel: str, *, ack_level: AckSpec = None, expected_epoch: int = 0,
               fail_fast: bool = False, takeover: bool = False,
               timeout: Optional[float] = None) -> Writer:
        """A Write stream; use as `async with client.writer(...) as w`."""
        first = pb.WriteRequest(channel=names.channel_name(channel),
                                ack_level=_common.ack_level(ack_level),
                                expected_epoch=expected_epoch, fail_fast=fail_fast,
                                takeover=takeover)
        return Writer(self.stub, first, timeout)

    async def write(self, channel: str, data: Union[bytes, str],
                    **kwargs: Any) -> res.WriteProgress:
        async with self.writer(channel, **kwargs) as w:
            await w.write(data.encode() if isinstance(data, str) else data)
        assert w.progress is not None
        return w.progress

    def attach(self, channel: str, *, role: Union[str, int] = "writer", start: StartSpec = None,
               ack_level: AckSpec = None, takeover: bool = False, fail_fast: bool = False,
               timeout: Optional[float] = None) -> AttachSession:
        """An Attach session; use as `async with client.attach(...) as session` (which opens it
        and raises the open's errors), or `session = await client.attach(...).open()`."""
        open_msg = pb.AttachOpen(channel=names.channel_name(channel),
                                 role=_ROLES.get(role, role) if isinstance(role, str) else role,
                                 ack_level=_common.ack_level(ack_level), takeover=takeover,
                                 fail_fast=fail_fast)
        s = _common.read_start(start)
        if s is not None:
            open_msg.start.CopyFrom(s)
        return AttachSession(self.stub, open_msg, timeout)

    async def call_response(self, channel: str, request: Union[bytes, str], *,
                            framing: FramingSpec = None,
                            timeout: Optional[float] = None) -> pb.CallResponse:
        return await self._unary(self.stub.Call,
                                 _common.call_request(channel, request, framing), timeout)

    async def call(self, channel: str, request: Union[bytes, str], *,
                   framing: FramingSpec = None, timeout: Optional[float] = None) -> bytes:
        return (await self.call_response(channel, request, framing=framing,
                                         timeout=timeout)).response

    async def call_json(self, channel: str, request: Any, *, framing: FramingSpec = None,
                        timeout: Optional[float] = None) -> Any:
        body = json.dumps(request, separators=(",", ":"))
        return json.loads(await self.call(channel, body, framing=framing, timeout=timeout))

    async def qga(self, channel: str, command: str, arguments: Optional[dict] = None, *,
                  timeout: Optional[float] = None) -> Any:
        reply = await self.call(channel, _common.qga_command(command, arguments),
                                framing="qga", timeout=timeout)
        return _common.qga_result(reply)


# The fleet client builds on Client and connect above, so it is imported once they exist.
from xenchan._aio_fleet import (DomainLocation, Fleet, FleetReadStream,  # noqa: E402
                                FleetWatchStream, connect_fleet)

__all__ = ["AttachSession", "Client", "DomainLocation", "Fleet", "FleetReadStream",
           "FleetWatchStream", "ReadStream", "WatchStream", "Writer", "connect", "connect_fleet"]
