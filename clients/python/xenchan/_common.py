"""What the synchronous and the asyncio clients share, free of I/O: request builders, the
conversions of friendly arguments (strings, tuples, seconds) to xenchan.v1 messages, the retry
policy, and the cursors that remember where a Read or WatchChannels stream got to, so that it can
be resumed exactly there after a transient failure.

Not part of the public API (its public names are re-exported by the package).
"""

import json
import random
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from xenchan import names
from xenchan.errors import GuestAgentError, XenchanError, error_class
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import errors_pb2
from xenchan.v1 import resources_pb2 as res

MAX_DATA_BYTES = 64 * 1024
"""Largest data in one stream message, and largest Call request."""

FramingSpec = Union[None, str, bytes, res.Framing]
StartSpec = Union[None, str, int, res.Position, Tuple[int, int], pb.ReadStart]
AckSpec = Union[None, str, int]

_CODES = {c.value[0]: c for c in grpc.StatusCode}
_UPDATABLE = ("lifetime", "buffer_limit_bytes", "overflow_policy", "write_queue_limit_bytes",
              "default_framing")


def framing(spec: FramingSpec) -> Optional[res.Framing]:
    """A Framing from "newline", "length_prefix", "qga" (or "qemu_guest_agent"), a bytes
    delimiter, or a Framing message; None stays None (the channel's default framing)."""
    if spec is None or isinstance(spec, res.Framing):
        return spec
    if isinstance(spec, bytes):
        return res.Framing(delimiter=res.Framing.Delimiter(delimiter=spec))
    kinds = {"newline": "newline", "length_prefix": "length_prefix", "qga": "qemu_guest_agent",
             "qemu_guest_agent": "qemu_guest_agent"}
    if spec not in kinds:
        raise ValueError("unknown framing %r (newline, length_prefix, qga or a bytes delimiter)"
                         % (spec,))
    f = res.Framing()
    getattr(f, kinds[spec]).SetInParent()
    return f


def read_start(spec: StartSpec) -> Optional[pb.ReadStart]:
    """A ReadStart from "earliest", "next", a StartAnchor value, a Position, an (epoch, offset)
    pair or a ReadStart; None stays None (the method's default)."""
    if spec is None or isinstance(spec, pb.ReadStart):
        return spec
    if isinstance(spec, str):
        anchors = {"earliest": pb.START_ANCHOR_EARLIEST, "next": pb.START_ANCHOR_NEXT}
        if spec not in anchors:
            raise ValueError("unknown start %r (earliest, next, or a position)" % spec)
        return pb.ReadStart(anchor=anchors[spec])
    if isinstance(spec, int):
        return pb.ReadStart(anchor=spec)
    if isinstance(spec, res.Position):
        return pb.ReadStart(position=spec)
    epoch, offset = spec
    return pb.ReadStart(position=res.Position(epoch=epoch, offset=offset))


def ack_level(spec: AckSpec) -> int:
    """An AckLevel value from "accepted", "delivered", "consumed" or the value itself."""
    if spec is None:
        return res.ACK_LEVEL_UNSPECIFIED
    if isinstance(spec, str):
        return res.AckLevel.Value("ACK_LEVEL_" + spec.upper())
    return spec


def duration(seconds: Optional[float]) -> Optional[duration_pb2.Duration]:
    if seconds is None:
        return None
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def list_channels_request(parent: str, channel_id_prefix: str, transports: Iterable[int],
                          states: Iterable[int], page_size: int) -> pb.ListChannelsRequest:
    req = pb.ListChannelsRequest(parent=names.domain_name(parent) if parent != names.ALL_DOMAINS
                                 else parent, page_size=page_size, states=list(states))
    req.filter.channel_id_prefix = channel_id_prefix
    req.filter.transports.extend(transports)
    return req


def create_request(parent: str, channel_id: str, config: Optional[res.ChannelConfig],
                   durable: bool, framing_spec: FramingSpec, wait: bool,
                   connect_timeout: Optional[float], validate_only: bool,
                   **config_fields: Any) -> pb.CreateChannelRequest:
    cfg = res.ChannelConfig()
    if config is not None:
        cfg.CopyFrom(config)
    for key, value in config_fields.items():
        if key not in _UPDATABLE or key in ("lifetime", "default_framing"):
            raise TypeError("unknown config field %r" % key)
        setattr(cfg, key, value)
    if durable:
        cfg.lifetime = res.CHANNEL_LIFETIME_DURABLE
    if framing_spec is not None:
        cfg.default_framing.CopyFrom(framing(framing_spec))
    req = pb.CreateChannelRequest(parent=names.domain_name(parent), channel_id=channel_id,
                                  config=cfg, wait_until_connected=wait,
                                  validate_only=validate_only)
    if connect_timeout is not None:
        req.connect_timeout.CopyFrom(duration(connect_timeout))
    return req


def update_request(name: str, config: Optional[res.ChannelConfig],
                   update_mask: Optional[Iterable[str]], validate_only: bool,
                   **fields: Any) -> pb.UpdateChannelRequest:
    """UpdateChannel with an explicit mask: the `fields` given (lifetime, buffer_limit_bytes,
    overflow_policy, write_queue_limit_bytes, default_framing) are set and masked; `config` with
    `update_mask` passes through for full control."""
    req = pb.UpdateChannelRequest(validate_only=validate_only)
    req.channel.name = names.channel_name(name)
    if config is not None:
        req.channel.config.CopyFrom(config)
    paths: List[str] = list(update_mask or [])
    for key, value in fields.items():
        if key not in _UPDATABLE:
            raise TypeError("UpdateChannel cannot change %r (only %s)" % (key, ", ".join(_UPDATABLE)))
        if key == "default_framing":
            req.channel.config.default_framing.CopyFrom(framing(value) or res.Framing())
        else:
            setattr(req.channel.config, key, value)
        paths.append("config." + key)
    if not paths:
        raise ValueError("UpdateChannel needs at least one field to change")
    req.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=paths))
    return req


def call_request(channel: str, request: Union[bytes, str], framing_spec: FramingSpec
                 ) -> pb.CallRequest:
    data = request.encode() if isinstance(request, str) else request
    req = pb.CallRequest(channel=names.channel_name(channel), request=data)
    f = framing(framing_spec)
    if f is not None:
        req.framing.CopyFrom(f)
    return req


def qga_command(command: str, arguments: Optional[dict]) -> bytes:
    body: dict = {"execute": command}
    if arguments is not None:
        body["arguments"] = arguments
    return json.dumps(body, separators=(",", ":")).encode()


def qga_result(reply: bytes) -> Any:
    """The `return` of a QEMU guest agent reply; GuestAgentError for an `error` reply."""
    value = json.loads(reply.decode("utf-8"))
    if isinstance(value, dict) and "error" in value:
        err = value["error"] if isinstance(value["error"], dict) else {}
        raise GuestAgentError(str(err.get("class", "")), str(err.get("desc", "")), value)
    if not isinstance(value, dict) or "return" not in value:
        raise ValueError("not a QEMU guest agent reply: %r" % reply[:200])
    return value["return"]


def chunks(data: bytes) -> Iterator[bytes]:
    """`data` cut into stream messages of at most 64 KiB (one empty message for b"")."""
    if not data:
        yield b""
    for i in range(0, len(data), MAX_DATA_BYTES):
        yield data[i:i + MAX_DATA_BYTES]


def rejection_error(rejection: pb.WriteRejection) -> XenchanError:
    """The typed error a WriteRejection stands for (e.g. FailedPreconditionError NOT_CONNECTED)."""
    code = _CODES.get(rejection.code, grpc.StatusCode.UNKNOWN)
    reason = errors_pb2.ErrorReason.Name(rejection.reason)[len("ERROR_REASON_"):] \
        if rejection.reason in errors_pb2.ErrorReason.values() else ""
    return error_class(code)(code, rejection.message, reason)


@dataclass
class RetryPolicy:
    """How resumable streams (and idempotent reads) retry after a transient failure: UNAVAILABLE
    other than DOMAIN_GONE, and RESOURCE_EXHAUSTED (SLOW_CONSUMER) for watches.

    Delays grow from `initial_backoff` by `multiplier` up to `max_backoff` seconds, each with up to
    `jitter` of itself added at random; a delay the server suggests (RetryInfo) is used when longer.
    After `max_attempts` failures in a row without progress the error is raised (None: never give
    up). RetryPolicy(max_attempts=0) turns retries off.
    """

    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_attempts: Optional[int] = 10

    def delay(self, attempt: int, error: Optional[XenchanError] = None) -> Optional[float]:
        """Seconds to wait before retry number `attempt` (1-based), or None to give up."""
        if self.max_attempts is not None and attempt > self.max_attempts:
            return None
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        base *= 1 + random.uniform(0, self.jitter)
        suggested = error.retry_delay if error is not None else None
        return max(base, suggested or 0.0)


NO_RETRY = RetryPolicy(max_attempts=0)


def transient(error: XenchanError, watch: bool = False) -> bool:
    """Whether a stream broken by `error` may be resumed."""
    if error.retryable:
        return True
    return watch and error.reason == "SLOW_CONSUMER"


class ReadCursor:
    """Where a Read stream got to: the position one past the last byte (or gap) it delivered, and
    how many bytes of max_bytes remain. Builds the request that resumes exactly there."""

    def __init__(self, request: pb.ReadRequest) -> None:
        self.request = request
        self.position: Optional[res.Position] = None
        self.received = 0
        self.lost: List[Tuple[res.Position, res.Position]] = []

    def update(self, resp: pb.ReadResponse) -> None:
        kind = resp.WhichOneof("event")
        if kind == "data":
            self.position = res.Position(epoch=resp.data.epoch,
                                         offset=resp.data.offset + len(resp.data.data))
            self.received += len(resp.data.data)
        elif kind == "gap":
            self.position = res.Position(epoch=resp.gap.epoch,
                                         offset=resp.gap.offset + resp.gap.length)
        elif kind == "epoch_change":
            self.position = res.Position(epoch=resp.epoch_change.epoch, offset=0)

    @property
    def done(self) -> bool:
        return self.request.max_bytes != 0 and self.received >= self.request.max_bytes

    def resume_request(self) -> pb.ReadRequest:
        req = pb.ReadRequest()
        req.CopyFrom(self.request)
        if self.position is not None:
            req.start.position.CopyFrom(self.position)
        if self.request.max_bytes:
            req.max_bytes = self.request.max_bytes - self.received
        return req

    def skip_lost(self, error: XenchanError) -> bool:
        """After OFFSET_NOT_RETAINED on a resume: move on to the earliest retained position (the
        server lost the bytes in between, e.g. in a restart), recording the loss. False if the
        error says nothing usable."""
        rr = error.retained_range
        if rr is None or not rr.HasField("earliest_position") or self.position is None:
            return False
        self.lost.append((res.Position(epoch=self.position.epoch, offset=self.position.offset),
                          res.Position(epoch=rr.earliest_position.epoch,
                                       offset=rr.earliest_position.offset)))
        self.position = res.Position(epoch=rr.earliest_position.epoch,
                                     offset=rr.earliest_position.offset)
        return True


class WatchCursor:
    """Where a WatchChannels stream got to: the last revision it may resume from (SYNCED,
    PROGRESS and live events; EXISTING events only once their SYNCED arrived)."""

    def __init__(self, request: pb.WatchChannelsRequest) -> None:
        self.request = request
        self.revision = request.start_revision
        self.synced = False
        self.relists = 0

    def update(self, event: pb.WatchChannelsResponse) -> None:
        if event.type == pb.CHANNEL_EVENT_TYPE_SYNCED:
            self.synced = True
        if event.type != pb.CHANNEL_EVENT_TYPE_EXISTING:
            self.revision = event.revision

    def resume_request(self) -> pb.WatchChannelsRequest:
        req = pb.WatchChannelsRequest()
        req.CopyFrom(self.request)
        req.start_revision = self.revision
        return req

    def relist(self) -> None:
        """The revision aged out (or a new server does not know it): start over with a snapshot."""
        self.revision = 0
        self.synced = False
        self.relists += 1
