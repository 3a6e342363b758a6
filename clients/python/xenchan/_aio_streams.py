"""The streaming helpers of the asyncio client (xenchan.aio): resumable Read and WatchChannels
async iterators, and the Write and Attach sessions (async context managers). They behave as their
synchronous counterparts in xenchan._sync_streams, which document the semantics.

Thread safety: asyncio objects, used from the event loop that created them.
"""

import asyncio
import collections
from typing import Any, AsyncIterator, Deque, Dict, List, Optional

import grpc
from grpc import aio as grpc_aio

from xenchan import _common
from xenchan.errors import XenchanError, from_rpc_error
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import resources_pb2 as res


class _Resumable:
    """Base of ReadStream and WatchStream: `async for` over a server stream that is reopened
    after a transient failure, per the RetryPolicy. `async with` cancels it on exit."""

    def __init__(self, retry: _common.RetryPolicy, timeout: Optional[float]) -> None:
        self._retry = retry
        self._timeout = timeout
        self._call: Any = None
        self._closed = False
        self._gen = self._run()
        self.resumes = 0

    def __aiter__(self) -> "_Resumable":
        return self

    async def __anext__(self) -> Any:
        return await self._gen.__anext__()

    async def __aenter__(self) -> "_Resumable":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancels the stream."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        await self._gen.aclose()

    async def _backoff(self, attempt: int, err: XenchanError) -> bool:
        delay = self._retry.delay(attempt, err)
        if delay is None:
            return False
        self.resumes += 1
        await asyncio.sleep(delay)
        return not self._closed

    def _run(self) -> AsyncIterator[Any]:
        raise NotImplementedError


class ReadStream(_Resumable):
    """Async iterator over ReadResponse messages; see xenchan._sync_streams.ReadStream."""

    def __init__(self, stub: Any, request: pb.ReadRequest, retry: _common.RetryPolicy,
                 skip_lost: bool, timeout: Optional[float]) -> None:
        self._stub = stub
        self._cursor = _common.ReadCursor(request)
        self._skip_lost = skip_lost
        super().__init__(retry, timeout)
        self._call = stub.Read(request, timeout=timeout)  # open now: "next" means now

    @property
    def position(self) -> Optional[res.Position]:
        return self._cursor.position

    @property
    def lost(self) -> List[Any]:
        return self._cursor.lost

    async def _run(self) -> AsyncIterator[pb.ReadResponse]:
        attempt, resumed = 0, False
        while not self._cursor.done and not self._closed:
            if resumed:
                self._call = self._stub.Read(self._cursor.resume_request(), timeout=self._timeout)
            try:
                async for resp in self._call:
                    attempt = 0
                    self._cursor.update(resp)
                    yield resp
                return
            except grpc.RpcError as e:
                if self._closed:
                    return
                err = from_rpc_error(e)
                if (resumed and err.reason == "OFFSET_NOT_RETAINED" and self._skip_lost and
                        self._cursor.skip_lost(err)):
                    continue
                attempt += 1
                if not _common.transient(err) or not await self._backoff(attempt, err):
                    raise err from None
                resumed = True


class _ResumingWatch(_Resumable):
    """Base of WatchStream and FleetWatchStream; see xenchan._sync_streams._ResumingWatch."""

    def __init__(self, cursor: Any, first_request: Any, retry: _common.RetryPolicy, relist: bool,
                 relist_first: bool, timeout: Optional[float]) -> None:
        self._cursor = cursor
        self._relist = relist
        self._relist_first = relist_first
        super().__init__(retry, timeout)
        self._call = self._open(first_request)

    @property
    def revision(self) -> int:
        return self._cursor.revision

    @property
    def relists(self) -> int:
        return self._cursor.relists

    def _open(self, request: Any) -> Any:
        raise NotImplementedError

    async def _run(self) -> AsyncIterator[Any]:
        attempt, reopened = 0, False
        while not self._closed:
            if reopened:
                self._call = self._open(self._cursor.resume_request())
            try:
                async for event in self._call:
                    attempt = 0
                    self._cursor.update(event)
                    yield event
                return
            except grpc.RpcError as e:
                if self._closed:
                    return
                err = from_rpc_error(e)
                if (err.reason == "REVISION_NOT_RETAINED" and self._relist and
                        (reopened or self._relist_first)):
                    self._cursor.relist()
                    reopened = True
                    continue
                attempt += 1
                if not _common.transient(err, watch=True) or not await self._backoff(attempt,
                                                                                      err):
                    raise err from None
                reopened = True


class WatchStream(_ResumingWatch):
    """Async iterator over WatchChannelsResponse events; see xenchan._sync_streams.WatchStream."""

    def __init__(self, stub: Any, request: pb.WatchChannelsRequest,
                 retry: _common.RetryPolicy, relist: bool, timeout: Optional[float]) -> None:
        self._stub = stub
        super().__init__(_common.WatchCursor(request), request, retry, relist,
                         relist_first=False, timeout=timeout)

    def _open(self, request: pb.WatchChannelsRequest) -> Any:
        return self._stub.WatchChannels(request, timeout=self._timeout)


async def _write(call: Any, message: Any) -> None:
    """call.write, with a failed call's error raised as XenchanError."""
    try:
        await call.write(message)
    except grpc.RpcError as e:
        raise from_rpc_error(e) from None
    except asyncio.InvalidStateError:
        await _raise_status(call)


class _FinishedCall(grpc.RpcError):
    """The status of a finished grpc.aio call, in the shape from_rpc_error reads."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: Any) -> None:
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers


async def _status_error(call: Any) -> Optional[XenchanError]:
    """The typed error a finished call ended with, or None if it ended OK."""
    code = await call.code()
    if code == grpc.StatusCode.OK:
        return None
    return from_rpc_error(_FinishedCall(code, await call.details(),
                                        await call.trailing_metadata()))


async def _raise_status(call: Any) -> None:
    err = await _status_error(call)
    if err is not None:
        raise err
    raise RuntimeError("the stream already ended")


class Writer:
    """A Write stream, `async with client.writer(name) as w: await w.write(data)`; leaving the
    block half-closes and awaits the answer (`progress`); see xenchan._sync_streams.Writer."""

    def __init__(self, stub: Any, first: pb.WriteRequest, timeout: Optional[float]) -> None:
        self._first = first
        self._call = stub.Write(timeout=timeout)
        self.progress: Optional[res.WriteProgress] = None
        self.bytes_sent = len(first.data)

    async def open(self) -> "Writer":
        await _write(self._call, self._first)
        return self

    async def write(self, data: bytes) -> None:
        for chunk in _common.chunks(data):
            if chunk:
                await _write(self._call, pb.WriteRequest(data=chunk))
            self.bytes_sent += len(chunk)

    async def close(self) -> res.WriteProgress:
        if self.progress is None:
            try:
                await self._call.done_writing()
                self.progress = (await self._call).progress
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None
        return self.progress

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> "Writer":
        return await self.open()

    async def __aexit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            await self.close()
        else:
            self.cancel()


class AttachSession:
    """An Attach session: `async for event in session`, `await session.send(data)`; see
    xenchan._sync_streams.AttachSession. Open it with `async with client.attach(...)`."""

    def __init__(self, stub: Any, open_msg: pb.AttachOpen, timeout: Optional[float]) -> None:
        self._open = open_msg
        self._call = stub.Attach(timeout=timeout)
        self._pending: Deque[pb.AttachResponse] = collections.deque()
        self._seq = 0
        self.acked: Dict[int, int] = {}
        self.rejections: List[pb.WriteRejection] = []
        self.opened: Optional[pb.AttachOpened] = None

    async def open(self) -> "AttachSession":
        """Sends `open` and waits for `opened`; raises the open's error."""
        await _write(self._call, pb.AttachRequest(open=self._open))
        first = await self._receive()
        if first is None or first.WhichOneof("event") != "opened":
            self._call.cancel()
            raise RuntimeError("Attach: the server did not answer with opened")
        self.opened = first.opened
        return self

    async def _receive(self) -> Optional[pb.AttachResponse]:
        try:
            msg = await self._call.read()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        if msg is grpc_aio.EOF:
            err = await _status_error(self._call)
            if err is not None:
                raise err
            return None
        kind = msg.WhichOneof("event")
        if kind == "write_ack":
            a = msg.write_ack
            self.acked[a.level] = max(self.acked.get(a.level, 0), a.sequence_id)
        elif kind == "write_rejection":
            self.rejections.append(msg.write_rejection)
        return msg

    async def send(self, data: bytes, expected_epoch: int = 0) -> int:
        if len(data) > _common.MAX_DATA_BYTES:
            raise ValueError("one Attach write carries at most 64 KiB")
        self._seq += 1
        await _write(self._call, pb.AttachRequest(write=pb.AttachWrite(
            sequence_id=self._seq, data=data, expected_epoch=expected_epoch)))
        return self._seq

    async def wait_for_ack(self, sequence_id: int, level: _common.AckSpec = "accepted") -> None:
        want = _common.ack_level(level)
        while True:
            if any(lvl >= want and seq >= sequence_id for lvl, seq in self.acked.items()):
                return
            for r in self.rejections:
                if r.first_sequence_id <= sequence_id <= r.last_sequence_id:
                    raise _common.rejection_error(r)
            msg = await self._receive()
            if msg is None:
                raise RuntimeError("Attach stream ended before write %d was acknowledged"
                                   % sequence_id)
            self._pending.append(msg)

    def __aiter__(self) -> "AttachSession":
        return self

    async def __anext__(self) -> pb.AttachResponse:
        if self._pending:
            return self._pending.popleft()
        msg = await self._receive()
        if msg is None:
            raise StopAsyncIteration
        return msg

    async def close(self) -> List[pb.AttachResponse]:
        """Half-closes and reads the stream to its end; returns the events not yet iterated."""
        try:
            await self._call.done_writing()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        rest = list(self._pending)
        self._pending.clear()
        while True:
            msg = await self._receive()
            if msg is None:
                return rest
            rest.append(msg)

    def cancel(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> "AttachSession":
        if self.opened is None:
            await self.open()
        return self

    async def __aexit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            await self.close()
        else:
            self.cancel()
