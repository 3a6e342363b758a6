"""The synchronous xenchan client: every RPC of xenchan.v1.ChannelService, with pythonic arguments,
typed errors (xenchan.errors) and resumable streams (xenchan._sync_streams).

    import xenchan
    with xenchan.connect() as client:                       # unix:///run/xenchan/xenchand.sock
        ch = client.create_channel("vm1", "org.xenchan.agent.0", wait=True)
        print(client.call(ch.name, b'{"op":"ping"}'))
        for event in client.read(ch.name, follow=True):     # resumes after a server restart
            ...
"""

import json
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import grpc

from xenchan import _common, connection, names
from xenchan._common import AckSpec, FramingSpec, RetryPolicy, StartSpec
from xenchan._sync_streams import AttachSession, ReadStream, WatchStream, Writer
from xenchan.errors import XenchanError, from_rpc_error
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import channel_service_pb2_grpc as pb_grpc
from xenchan.v1 import resources_pb2 as res

DEFAULT_TARGET = connection.DEFAULT_TARGET
channel_name = names.channel_name  # kept importable from here, where it used to live

_ROLES = {"writer": pb.SESSION_ROLE_WRITER, "observer": pb.SESSION_ROLE_OBSERVER}


def connect(target: str = DEFAULT_TARGET, *, tls: Optional[connection.TlsFiles] = None,
            credentials: Optional[grpc.ChannelCredentials] = None,
            options: Optional[connection.ChannelOptions] = None,
            timeout: Optional[float] = 30.0, retry: Optional[RetryPolicy] = None) -> "Client":
    """A Client for `target`: "unix:///path" (see connection.unix_target) or "host:port".

    Plaintext unless `tls` (connection.TlsFiles, for mTLS) or grpc `credentials` are given.
    `timeout` is the default deadline of unary calls in seconds (None: none); `retry` the policy
    for resuming streams and retrying reads. Connecting is lazy: an unreachable target shows up as
    UnavailableError on the first call.
    """
    creds = connection.resolve_credentials(tls, credentials)
    args = connection.channel_arguments(tls, options)
    channel = (grpc.insecure_channel(target, options=args) if creds is None
               else grpc.secure_channel(target, creds, options=args))
    return Client(channel, timeout=timeout, retry=retry)


class Client:
    """A synchronous xenchan client over one grpc.Channel, which it owns (close() closes it).

    Thread-safe: gRPC channels and stubs are, and every call has its own state; each stream object
    it returns belongs to one thread at a time. Every method raises a subclass of XenchanError.
    `timeout` arguments are seconds; the default is the client's `timeout` for unary calls and no
    deadline for streams. Names may be given in short form ("vm1", "vm1/org.x.0") or in full.
    """

    def __init__(self, channel: grpc.Channel, *, timeout: Optional[float] = 30.0,
                 retry: Optional[RetryPolicy] = None) -> None:
        self._channel = channel
        self.stub = pb_grpc.ChannelServiceStub(channel)
        """The generated stub, for anything the wrappers do not cover."""
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: Optional[float],
               idempotent: bool = False) -> Any:
        deadline = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return method(request, timeout=deadline)
            except grpc.RpcError as e:
                err = from_rpc_error(e)
            attempt += 1
            delay = self.retry.delay(attempt, err) if idempotent and err.retryable else None
            if delay is None:
                raise err
            time.sleep(delay)

    # Domains.

    def list_domains(self, *, page_size: int = 0,
                     timeout: Optional[float] = None) -> Iterator[res.Domain]:
        """Every domain the caller may see, fetching pages as the iteration goes."""
        token = ""
        while True:
            resp = self._unary(self.stub.ListDomains,
                               pb.ListDomainsRequest(page_size=page_size, page_token=token),
                               timeout, idempotent=True)
            yield from resp.domains
            token = resp.next_page_token
            if not token:
                return

    def get_domain(self, domain: str, *, timeout: Optional[float] = None) -> res.Domain:
        """One domain, by UUID or display name (or its resource name)."""
        return self._unary(self.stub.GetDomain,
                           pb.GetDomainRequest(name=names.domain_name(domain)), timeout,
                           idempotent=True).domain

    # Channels.

    def list_channels(self, parent: str = names.ALL_DOMAINS, *, channel_id_prefix: str = "",
                      transports: Iterable[int] = (), states: Iterable[int] = (),
                      page_size: int = 0, timeout: Optional[float] = None
                      ) -> Iterator[res.Channel]:
        """Channels of one domain (or of all, the default), fetching pages as it goes, filtered by
        channel-id prefix, transports (res.TRANSPORT_*) and states (res.CHANNEL_STATE_*)."""
        req = _common.list_channels_request(parent, channel_id_prefix, transports, states,
                                            page_size)
        while True:
            resp = self._unary(self.stub.ListChannels, req, timeout, idempotent=True)
            yield from resp.channels
            if not resp.next_page_token:
                return
            req.page_token = resp.next_page_token

    def get_channel(self, name: str, *, timeout: Optional[float] = None) -> res.Channel:
        """One channel with its current state and counters."""
        return self._unary(self.stub.GetChannel,
                           pb.GetChannelRequest(name=names.channel_name(name)), timeout,
                           idempotent=True).channel

    def create_channel(self, domain: str, channel_id: str, *, durable: bool = False,
                       framing: FramingSpec = None, wait: bool = False,
                       connect_timeout: Optional[float] = None,
                       config: Optional[res.ChannelConfig] = None, validate_only: bool = False,
                       timeout: Optional[float] = None, **config_fields: Any) -> res.Channel:
        """Hot-adds a RING channel to a running domain and returns it.

        `durable` declares it for the domain's UUID (re-created in every incarnation); `framing`
        is its default Call framing; `config_fields` are other ChannelConfig fields
        (buffer_limit_bytes, overflow_policy, write_queue_limit_bytes). `wait` returns only once
        the guest connected (at most `connect_timeout` seconds, server default 30), and the
        deadline is then stretched to cover that wait.
        """
        req = _common.create_request(domain, channel_id, config, durable, framing, wait,
                                     connect_timeout, validate_only, **config_fields)
        if timeout is None and wait and self.timeout is not None:
            timeout = self.timeout + (connect_timeout or 30.0)
        return self._unary(self.stub.CreateChannel, req, timeout).channel

    def delete_channel(self, name: str, *, force_after: Optional[float] = None,
                       timeout: Optional[float] = None) -> pb.DeleteChannelResponse:
        """Unplugs and removes a RING channel (and a durable one's declaration). Waits for the
        guest to close its end for at most `force_after` seconds (server default 10), then forces.
        Returns the final channel and whether the unplug was forced."""
        req = pb.DeleteChannelRequest(name=names.channel_name(name))
        if force_after is not None:
            req.force_after.CopyFrom(_common.duration(force_after))
        if timeout is None and self.timeout is not None:
            timeout = self.timeout + (force_after if force_after is not None else 10.0)
        return self._unary(self.stub.DeleteChannel, req, timeout)

    def update_channel(self, name: str, *, config: Optional[res.ChannelConfig] = None,
                       update_mask: Optional[Sequence[str]] = None, validate_only: bool = False,
                       timeout: Optional[float] = None, **fields: Any) -> res.Channel:
        """Changes a RING channel's settings in place; only the named fields change.

            client.update_channel(name, buffer_limit_bytes=4 << 20, lifetime=res.CHANNEL_LIFETIME_DURABLE)
            client.update_channel(name, default_framing="qga")
            client.update_channel(name, config=cfg, update_mask=["config.overflow_policy"])

        The field mask is built from the keyword fields given (lifetime, buffer_limit_bytes,
        overflow_policy, write_queue_limit_bytes, default_framing), plus `update_mask` paths whose
        values come from `config`. Returns the updated channel.
        """
        req = _common.update_request(name, config, update_mask, validate_only, **fields)
        return self._unary(self.stub.UpdateChannel, req, timeout).channel

    # Streams.

    def watch_channels(self, parent: str = names.ALL_DOMAINS, *, channel_id_prefix: str = "",
                       transports: Iterable[int] = (), start_revision: int = 0,
                       relist: bool = True, retry: Optional[RetryPolicy] = None,
                       timeout: Optional[float] = None) -> WatchStream:
        """Channel lifecycle events as an iterator that reconnects and resumes from its revision
        (see WatchStream). With start_revision 0: EXISTING events, SYNCED, then live events."""
        req = pb.WatchChannelsRequest(
            parent=parent if parent == names.ALL_DOMAINS else names.domain_name(parent),
            start_revision=start_revision)
        req.filter.channel_id_prefix = channel_id_prefix
        req.filter.transports.extend(transports)
        return WatchStream(self.stub, req, retry or self.retry, relist, timeout)

    def read(self, channel: str, *, start: StartSpec = None, follow: bool = False,
             max_bytes: int = 0, skip_lost: bool = False, retry: Optional[RetryPolicy] = None,
             timeout: Optional[float] = None) -> ReadStream:
        """Guest-to-host data as an iterator of ReadResponse (data, gap, epoch_change) that resumes
        from the last position after a transient failure (see ReadStream).

        `start`: "earliest" (the default), "next", a Position or (epoch, offset). `follow` keeps
        streaming new data; `max_bytes` stops after that many data bytes (0: no limit).
        """
        req = pb.ReadRequest(channel=names.channel_name(channel), follow=follow,
                             max_bytes=max_bytes)
        s = _common.read_start(start)
        if s is not None:
            req.start.CopyFrom(s)
        return ReadStream(self.stub, req, retry or self.retry, skip_lost, timeout)

    def read_bytes(self, channel: str, *, start: StartSpec = None,
                   timeout: Optional[float] = None) -> bytes:
        """Everything retained from `start` (default earliest) up to now, as one bytes object."""
        with self.read(channel, start=start, timeout=timeout) as stream:
            return b"".join(r.data.data for r in stream if r.HasField("data"))

    def writer(self, channel: str, *, ack_level: AckSpec = None, expected_epoch: int = 0,
               fail_fast: bool = False, takeover: bool = False,
               timeout: Optional[float] = None) -> Writer:
        """Opens a Write stream (a context manager, see Writer). `ack_level` ("accepted",
        "delivered", "consumed") is what closing waits for; set a `timeout` when waiting for
        delivered or consumed, since a guest that does not read never consumes."""
        first = pb.WriteRequest(channel=names.channel_name(channel),
                                ack_level=_common.ack_level(ack_level),
                                expected_epoch=expected_epoch, fail_fast=fail_fast,
                                takeover=takeover)
        return Writer(self.stub, first, timeout)

    def write(self, channel: str, data: Union[bytes, str], **kwargs: Any) -> res.WriteProgress:
        """Writes `data` in one Write stream and returns its WriteProgress (kwargs as writer())."""
        with self.writer(channel, **kwargs) as w:
            w.write(data.encode() if isinstance(data, str) else data)
        assert w.progress is not None
        return w.progress

    def attach(self, channel: str, *, role: Union[str, int] = "writer", start: StartSpec = None,
               ack_level: AckSpec = None, takeover: bool = False, fail_fast: bool = False,
               timeout: Optional[float] = None) -> AttachSession:
        """Opens an Attach session (a context manager, see AttachSession) as "writer" or
        "observer"; `start` defaults to "next" (only new data). Errors at open are raised here."""
        open_msg = pb.AttachOpen(channel=names.channel_name(channel),
                                 role=_ROLES.get(role, role) if isinstance(role, str) else role,
                                 ack_level=_common.ack_level(ack_level), takeover=takeover,
                                 fail_fast=fail_fast)
        s = _common.read_start(start)
        if s is not None:
            open_msg.start.CopyFrom(s)
        return AttachSession(self.stub, open_msg, timeout)

    # Call.

    def call_response(self, channel: str, request: Union[bytes, str], *,
                      framing: FramingSpec = None,
                      timeout: Optional[float] = None) -> pb.CallResponse:
        """The Call RPC: one request, one response, framed by `framing` ("newline",
        "length_prefix", "qga", a bytes delimiter, a Framing) or the channel's default framing.
        Returns the whole CallResponse (response, epoch, offsets)."""
        return self._unary(self.stub.Call, _common.call_request(channel, request, framing),
                           timeout)

    def call(self, channel: str, request: Union[bytes, str], *, framing: FramingSpec = None,
             timeout: Optional[float] = None) -> bytes:
        """Like call_response, returning the response bytes only."""
        return self.call_response(channel, request, framing=framing, timeout=timeout).response

    def call_json(self, channel: str, request: Any, *, framing: FramingSpec = None,
                  timeout: Optional[float] = None) -> Any:
        """Sends `request` as compact JSON (e.g. to xenchan-agent) and decodes the JSON reply."""
        body = json.dumps(request, separators=(",", ":"))
        return json.loads(self.call(channel, body, framing=framing, timeout=timeout))

    def qga(self, channel: str, command: str, arguments: Optional[dict] = None, *,
            timeout: Optional[float] = None) -> Any:
        """Runs one QEMU guest agent command (qga framing) and returns its `return` value, e.g.
        qga(name, "guest-exec", {"path": "/bin/true", "capture-output": True}). An `error` reply
        raises GuestAgentError; RPC failures raise XenchanError."""
        reply = self.call(channel, _common.qga_command(command, arguments), framing="qga",
                          timeout=timeout)
        return _common.qga_result(reply)


__all__ = ["Client", "XenchanError", "channel_name", "connect", "DEFAULT_TARGET"]
