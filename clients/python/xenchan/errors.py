"""Typed errors of the xenchan SDK: one exception class per gRPC code, with the stable reason.

Every failed RPC is raised as a subclass of XenchanError (itself a grpc.RpcError), chosen by the
status code, which says what the caller should do next (channel_service.proto, "Errors"):

    try:
        client.write(name, b"hello\\n")
    except xenchan.FailedPreconditionError as e:        # e.g. not connected, lease held
        if e.reason == "LEASE_HELD":
            print("held by", e.lease_holder.identity)
    except xenchan.UnavailableError as e:               # retry with backoff
        time.sleep(e.retry_delay or 1.0)

`reason` is the ErrorReason name without its prefix ("LEASE_HELD"), or "" for errors gRPC made
itself (nothing listening, a cancelled call, a deadline passed on the client). The typed details
the server attached are decoded into xenchan.v1 messages (`typed_details`, `detail(cls)` and a
property per detail: `channel`, `lease_holder`, `write_progress`, `partial_response`,
`retained_range`, `retained_revisions`, `epoch_mismatch`, `limit_exceeded`), plus `field_violations`
(google.rpc.BadRequest) and `retry_delay` (google.rpc.RetryInfo).

GuestAgentError is not an RPC failure: it is a QEMU guest agent's `{"error": ...}` reply, which the
server returns with status OK (see Client.qga).
"""

from typing import Dict, List, Optional, Tuple, Type, TypeVar

import grpc
from google.protobuf import message as _message

from xenchan import _wire
from xenchan.v1 import errors_pb2, resources_pb2

# Kept importable from here: the decoders used to live in this module.
decode_status_details = _wire.decode_status_details
decode_error_info = _wire.decode_error_info

_DETAIL_PREFIX = "type.googleapis.com/"
# The xenchan.v1 messages the server sends as details, by full name.
_DETAIL_TYPES = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (resources_pb2.Channel, resources_pb2.LeaseHolder, resources_pb2.WriteProgress,
                errors_pb2.RetainedRange, errors_pb2.RetainedRevisions, errors_pb2.EpochMismatch,
                errors_pb2.LimitExceeded, errors_pb2.PartialResponse)
}

M = TypeVar("M", bound=_message.Message)


class XenchanError(grpc.RpcError):
    """A failed xenchan RPC. Subclasses name the gRPC code; catch this for all of them.

    Attributes:
      code: the grpc.StatusCode.
      message: the server's human-readable message (English, not stable).
      reason: the stable reason ("LEASE_HELD", "CHANNEL_NOT_FOUND", ...) or "".
      metadata: the ErrorInfo metadata ("channel", "domain", "session_id", "verb", "limit").
      details: every status detail as (type_url, serialized bytes), ErrorInfo included.
      typed_details: the details decoded as xenchan.v1 messages (unknown types left out).
    """

    code_value: Optional[grpc.StatusCode] = None  # set by each subclass

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "",
                 metadata: Optional[Dict[str, str]] = None,
                 details: Optional[List[Tuple[str, bytes]]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.details = details or []
        self.typed_details: List[_message.Message] = []
        for type_url, payload in self.details:
            cls = _DETAIL_TYPES.get(type_url[len(_DETAIL_PREFIX):]) \
                if type_url.startswith(_DETAIL_PREFIX) else None
            if cls is None:
                continue
            try:
                self.typed_details.append(cls.FromString(payload))
            except _message.DecodeError:
                pass  # a malformed detail is dropped, the error itself stays usable

    def __str__(self) -> str:
        name = self.code.name if self.code is not None else "UNKNOWN"
        reason = " (%s)" % self.reason if self.reason else ""
        return "%s%s: %s" % (name, reason, self.message)

    def __repr__(self) -> str:
        return "%s(%r, %r, reason=%r)" % (type(self).__name__, self.code, self.message,
                                          self.reason)

    @property
    def reason_value(self) -> int:
        """The reason as an errors_pb2.ErrorReason value (ERROR_REASON_UNSPECIFIED if unknown)."""
        try:
            return errors_pb2.ErrorReason.Value("ERROR_REASON_" + self.reason)
        except ValueError:
            return errors_pb2.ERROR_REASON_UNSPECIFIED

    @property
    def retryable(self) -> bool:
        """True for errors that a retry with backoff may cure: UNAVAILABLE other than DOMAIN_GONE
        (server shutting down or unreachable, xenstore or QEMU unreachable)."""
        return self.code == grpc.StatusCode.UNAVAILABLE and self.reason != "DOMAIN_GONE"

    def detail(self, cls: Type[M]) -> Optional[M]:
        """The first typed detail of class `cls` (e.g. resources_pb2.LeaseHolder), or None."""
        for d in self.typed_details:
            if isinstance(d, cls):
                return d
        return None

    @property
    def channel(self) -> Optional[resources_pb2.Channel]:
        """The Channel detail (NOT_CONNECTED, CHANNEL_EXISTS, TOOLSTACK_MANAGED, ...)."""
        return self.detail(resources_pb2.Channel)

    @property
    def lease_holder(self) -> Optional[resources_pb2.LeaseHolder]:
        """The LeaseHolder detail (LEASE_HELD, LEASE_WAIT_TIMEOUT, LEASE_TAKEN_OVER)."""
        return self.detail(resources_pb2.LeaseHolder)

    @property
    def write_progress(self) -> Optional[resources_pb2.WriteProgress]:
        """What a failed Write stream got through (every Write error after the first message)."""
        return self.detail(resources_pb2.WriteProgress)

    @property
    def partial_response(self) -> Optional[errors_pb2.PartialResponse]:
        """What a Call that failed after writing its request had received."""
        return self.detail(errors_pb2.PartialResponse)

    @property
    def retained_range(self) -> Optional[errors_pb2.RetainedRange]:
        """OFFSET_NOT_RETAINED: the positions that can still be read."""
        return self.detail(errors_pb2.RetainedRange)

    @property
    def retained_revisions(self) -> Optional[errors_pb2.RetainedRevisions]:
        """REVISION_NOT_RETAINED: the revisions a watch can resume from."""
        return self.detail(errors_pb2.RetainedRevisions)

    @property
    def epoch_mismatch(self) -> Optional[errors_pb2.EpochMismatch]:
        """EPOCH_CHANGED: the expected and the current epoch."""
        return self.detail(errors_pb2.EpochMismatch)

    @property
    def limit_exceeded(self) -> Optional[errors_pb2.LimitExceeded]:
        """RESOURCE_EXHAUSTED reasons: which limit was hit."""
        return self.detail(errors_pb2.LimitExceeded)

    @property
    def field_violations(self) -> List[Tuple[str, str]]:
        """INVALID_ARGUMENT: [(field, description)] from google.rpc.BadRequest."""
        out: List[Tuple[str, str]] = []
        for type_url, payload in self.details:
            if type_url == _wire.BAD_REQUEST_TYPE:
                try:
                    out.extend(_wire.decode_bad_request(payload))
                except ValueError:
                    pass
        return out

    @property
    def retry_delay(self) -> Optional[float]:
        """The delay in seconds the server suggests (google.rpc.RetryInfo), or None."""
        for type_url, payload in self.details:
            if type_url == _wire.RETRY_INFO_TYPE:
                try:
                    return _wire.decode_retry_delay(payload)
                except ValueError:
                    return None
        return None

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "XenchanError":
        """The typed error for a grpc.RpcError raised by a stub call (sync or grpc.aio)."""
        return from_rpc_error(error)


def _subclass(name: str, code: grpc.StatusCode, doc: str) -> type:
    return type(name, (XenchanError,), {"__doc__": doc, "code_value": code})


CancelledError = _subclass("CancelledError", grpc.StatusCode.CANCELLED,
                           "The call was cancelled (usually by this client).")
UnknownError = _subclass("UnknownError", grpc.StatusCode.UNKNOWN, "An unknown error.")
InvalidArgumentError = _subclass("InvalidArgumentError", grpc.StatusCode.INVALID_ARGUMENT,
                                 "Malformed name, resource, option or payload: fix the request.")
DeadlineExceededError = _subclass(
    "DeadlineExceededError", grpc.StatusCode.DEADLINE_EXCEEDED,
    "The guest did not connect, consume or answer in time, or the call's deadline passed.")
NotFoundError = _subclass("NotFoundError", grpc.StatusCode.NOT_FOUND,
                          "Unknown domain or channel, or the channel was removed under a stream.")
AlreadyExistsError = _subclass("AlreadyExistsError", grpc.StatusCode.ALREADY_EXISTS,
                               "The channel id is already present in that domain.")
PermissionDeniedError = _subclass("PermissionDeniedError", grpc.StatusCode.PERMISSION_DENIED,
                                  "The identity lacks the verb (metadata['verb']).")
ResourceExhaustedError = _subclass("ResourceExhaustedError", grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   "A limit or quota was hit (see limit_exceeded).")
FailedPreconditionError = _subclass(
    "FailedPreconditionError", grpc.StatusCode.FAILED_PRECONDITION,
    "Not connected, lease held, toolstack channel, ...: change the state first.")
AbortedError = _subclass("AbortedError", grpc.StatusCode.ABORTED,
                         "The epoch changed or the lease was taken over: resynchronise, retry.")
OutOfRangeError = _subclass("OutOfRangeError", grpc.StatusCode.OUT_OF_RANGE,
                            "A resume offset or watch revision is no longer retained.")
UnimplementedError = _subclass("UnimplementedError", grpc.StatusCode.UNIMPLEMENTED,
                               "The server does not serve this method (is it xenchand?).")
InternalError = _subclass("InternalError", grpc.StatusCode.INTERNAL, "An internal error.")
UnavailableError = _subclass("UnavailableError", grpc.StatusCode.UNAVAILABLE,
                             "Server down or shutting down, domain gone: retry with backoff.")
DataLossError = _subclass("DataLossError", grpc.StatusCode.DATA_LOSS, "Unrecoverable data loss.")
UnauthenticatedError = _subclass("UnauthenticatedError", grpc.StatusCode.UNAUTHENTICATED,
                                 "No usable identity (client certificate, peer credentials).")

_BY_CODE = {cls.code_value: cls for cls in XenchanError.__subclasses__()}


def error_class(code: grpc.StatusCode) -> type:
    """The XenchanError subclass for `code` (XenchanError itself for codes without one)."""
    return _BY_CODE.get(code, XenchanError)


def from_rpc_error(error: grpc.RpcError) -> XenchanError:
    """Builds the typed error for a grpc.RpcError (sync or grpc.aio); keeps an XenchanError."""
    if isinstance(error, XenchanError):
        return error
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    reason, metadata, details = "", {}, []
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            _, _, details = _wire.decode_status_details(value)
            for type_url, payload in details:
                if type_url == _wire.ERROR_INFO_TYPE:
                    reason, _, metadata = _wire.decode_error_info(payload)
        except ValueError:
            details = []  # malformed details: keep code and message
    return error_class(code)(code, message or "", reason, metadata, details)


class GuestAgentError(Exception):
    """A QEMU guest agent answered a command with `{"error": {"class": ..., "desc": ...}}`.

    Attributes:
      error_class: the agent's error class, e.g. "CommandNotFound", "GenericError".
      desc: its description.
      reply: the whole decoded reply.
    """

    def __init__(self, error_class: str, desc: str, reply: object) -> None:
        super().__init__("%s: %s" % (error_class, desc))
        self.error_class = error_class
        self.desc = desc
        self.reply = reply
