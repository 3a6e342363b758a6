"""Decoding of the google.rpc messages xenchand puts in its error trailers, by hand.

xenchand sends a google.rpc.Status in the `grpc-status-details-bin` trailer; its details hold a
google.rpc.ErrorInfo, for INVALID_ARGUMENT a google.rpc.BadRequest, sometimes a google.rpc.RetryInfo,
and xenchan.v1 messages. Debian ships no Python module for google.rpc (only python3-protobuf), so
the few fields needed are read here from the protobuf wire format. The trailer comes from the
network: every function raises ValueError on malformed input instead of trusting lengths.
"""

from typing import Dict, Iterator, List, Optional, Tuple

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
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


def fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """Yields (field_number, wire_type, value) of a serialized message.

    Varints come as int, length-delimited fields as bytes, fixed32/64 as raw bytes.
    """
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
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if pos + size > len(data):
                raise ValueError("truncated fixed field")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError("unsupported wire type %d" % wire_type)
        yield number, wire_type, value


def _text(value: object) -> str:
    return value.decode("utf-8", "replace")  # type: ignore[union-attr]


def decode_status_details(data: bytes) -> Tuple[int, str, List[Tuple[str, bytes]]]:
    """A serialized google.rpc.Status -> (code, message, [(type_url, value), ...])."""
    code, message, details = 0, "", []
    for number, wire_type, value in fields(data):
        if number == 1 and wire_type == 0:
            code = value
        elif number == 2 and wire_type == 2:
            message = _text(value)
        elif number == 3 and wire_type == 2:
            type_url, payload = "", b""
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    type_url = _text(v)
                elif n == 2 and w == 2:
                    payload = v
            details.append((type_url, payload))
    return code, message, details


def decode_error_info(data: bytes) -> Tuple[str, str, Dict[str, str]]:
    """A serialized google.rpc.ErrorInfo -> (reason, domain, metadata)."""
    reason, domain, metadata = "", "", {}
    for number, wire_type, value in fields(data):
        if number == 1 and wire_type == 2:
            reason = _text(value)
        elif number == 2 and wire_type == 2:
            domain = _text(value)
        elif number == 3 and wire_type == 2:
            key, val = "", ""
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    key = _text(v)
                elif n == 2 and w == 2:
                    val = _text(v)
            metadata[key] = val
    return reason, domain, metadata


def decode_bad_request(data: bytes) -> List[Tuple[str, str]]:
    """A serialized google.rpc.BadRequest -> [(field, description), ...]."""
    out = []
    for number, wire_type, value in fields(data):
        if number == 1 and wire_type == 2:
            field, description = "", ""
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    field = _text(v)
                elif n == 2 and w == 2:
                    description = _text(v)
            out.append((field, description))
    return out


def decode_retry_delay(data: bytes) -> Optional[float]:
    """A serialized google.rpc.RetryInfo -> its retry_delay in seconds (None if unset)."""
    for number, wire_type, value in fields(data):
        if number == 1 and wire_type == 2:
            seconds, nanos = 0, 0
            for n, w, v in fields(value):
                if n == 1 and w == 0:
                    seconds = v
                elif n == 2 and w == 0:
                    nanos = v
            return seconds + nanos / 1e9
    return None
