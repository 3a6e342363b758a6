"""XenchanError: a failed xenchan RPC with its stable reason and details.

xenchand sends a google.rpc.Status in the `grpc-status-details-bin` trailer, whose details hold a
google.rpc.ErrorInfo (domain "xenchan.dev", reason such as "LEASE_HELD", metadata) and typed
xenchan.v1 details. Debian ships no Python module for google.rpc, so the few fields needed are
decoded here from the protobuf wire format; typed details stay available as (type_url, bytes) and
can be parsed with the xenchan.v1.errors_pb2 classes.
"""

import grpc

_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def _varint(data, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data):
    """Yields (field_number, wire_type, value) of a serialized message (varints and bytes only)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            value = data[pos:pos + length]
            pos += length
        elif wire_type == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire_type)
        yield number, wire_type, value


def decode_status_details(data):
    """Decodes a serialized google.rpc.Status into (code, message, [(type_url, value), ...])."""
    code, message, details = 0, "", []
    for number, wire_type, value in _fields(data):
        if number == 1 and wire_type == 0:
            code = value
        elif number == 2 and wire_type == 2:
            message = value.decode("utf-8", "replace")
        elif number == 3 and wire_type == 2:
            type_url, payload = "", b""
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    type_url = v.decode("utf-8", "replace")
                elif n == 2 and w == 2:
                    payload = v
            details.append((type_url, payload))
    return code, message, details


def decode_error_info(data):
    """Decodes a serialized google.rpc.ErrorInfo into (reason, domain, metadata dict)."""
    reason, domain, metadata = "", "", {}
    for number, wire_type, value in _fields(data):
        if number == 1 and wire_type == 2:
            reason = value.decode("utf-8", "replace")
        elif number == 2 and wire_type == 2:
            domain = value.decode("utf-8", "replace")
        elif number == 3 and wire_type == 2:
            key, val = "", ""
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    key = v.decode("utf-8", "replace")
                elif n == 2 and w == 2:
                    val = v.decode("utf-8", "replace")
            metadata[key] = val
    return reason, domain, metadata


class XenchanError(grpc.RpcError):
    """A failed RPC.

    Attributes:
      code: the grpc.StatusCode (what the caller should do next; see channel_service.proto).
      message: the server's message.
      reason: the stable xenchan reason ("LEASE_HELD", "CHANNEL_NOT_FOUND", ...) or "" if the
        error did not come from xenchand (for example UNAVAILABLE when nothing listens).
      metadata: ErrorInfo metadata (dict of str).
      details: every status detail as (type_url, serialized bytes), ErrorInfo included.
    """

    def __init__(self, code, message, reason="", metadata=None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.details = details or []

    def __str__(self):
        name = self.code.name if self.code is not None else "UNKNOWN"
        reason = " (%s)" % self.reason if self.reason else ""
        return "%s%s: %s" % (name, reason, self.message)

    @classmethod
    def from_rpc_error(cls, error):
        """Builds a XenchanError from a grpc.RpcError raised by a stub call."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        reason, metadata, details = "", {}, []
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        for key, value in trailers or ():
            if key != "grpc-status-details-bin":
                continue
            try:
                _, _, details = decode_status_details(value)
                for type_url, payload in details:
                    if type_url == _ERROR_INFO_TYPE:
                        reason, _, metadata = decode_error_info(payload)
            except ValueError:
                pass  # malformed details: keep code and message
        return cls(code, message or "", reason, metadata, details)
