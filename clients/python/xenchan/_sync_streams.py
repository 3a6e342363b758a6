"""The streaming helpers of the synchronous client: resumable Read and WatchChannels iterators,
and the Write and Attach sessions (context managers).

Thread safety: each object is used by one thread at a time, except `close()`/`cancel()`, which
any thread may call to stop an iterator blocked in another.
"""

import collections
import threading
from typing import Any, Deque, Dict, Iterator, List, Optional

import grpc

from xenchan import _common
from xenchan.errors import XenchanError, from_rpc_error
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import resources_pb2 as res

class _Feed:
    """The request messages of a client-streaming call: a bounded queue between the thread that
    writes and the one gRPC uses to send. `put` blocks while `capacity` messages wait (the server
    applies flow control when its write queue is full), and gives up once the call has ended."""

    def __init__(self, capacity: int = 4) -> None:
        self._items: Deque[Any] = collections.deque()
        self._cv = threading.Condition()
        self._capacity = capacity
        self._ended = False  # half-close once the queue is empty
        self._aborted = False  # the call is over: drop everything

    def put(self, item: Any) -> bool:
        with self._cv:
            while len(self._items) >= self._capacity and not self._aborted:
                self._cv.wait()
            if self._aborted or self._ended:
                return False
            self._items.append(item)
            self._cv.notify_all()
            return True

    def end(self) -> None:
        with self._cv:
            self._ended = True
            self._cv.notify_all()

    def abort(self, *_: Any) -> None:
        with self._cv:
            self._aborted = True
            self._cv.notify_all()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._cv:
                while not self._items and not self._ended and not self._aborted:
                    self._cv.wait()
                if self._aborted or not self._items:
                    return
                item = self._items.popleft()
                self._cv.notify_all()
            yield item


class _Resumable:
    """Base of ReadStream and WatchStream: an iterator over a server stream that reopens it after
    a transient failure, per the RetryPolicy. A context manager: leaving it cancels the stream."""

    def __init__(self, retry: _common.RetryPolicy, timeout: Optional[float]) -> None:
        self._retry = retry
        self._timeout = timeout
        self._call: Any = None
        self._stop = threading.Event()
        self._gen = self._run()
        self.resumes = 0
        """How many times the stream was reopened after a failure."""

    def __iter__(self) -> "_Resumable":
        return self

    def __next__(self) -> Any:
        return next(self._gen)

    def __enter__(self) -> "_Resumable":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Cancels the stream; an iteration in progress (in any thread) ends without error."""
        self._stop.set()
        if self._call is not None:
            self._call.cancel()
        try:
            self._gen.close()
        except ValueError:
            pass  # running in another thread: the cancellation ends it

    def _backoff(self, attempt: int, err: XenchanError) -> bool:
        """Waits before retry `attempt`; False if the policy gives up or the stream was closed."""
        delay = self._retry.delay(attempt, err)
        if delay is None:
            return False
        self.resumes += 1
        return not self._stop.wait(delay)

    def _run(self) -> Iterator[Any]:
        raise NotImplementedError


class ReadStream(_Resumable):
    """Iterates over the ReadResponse messages of a Read (data, gap, epoch_change), reopening the
    stream from `position` after a transient failure (server restart, connection loss).

    If the position to resume from is no longer retained (the server lost its buffer in a
    restart), the stream raises OutOfRangeError (OFFSET_NOT_RETAINED), or with skip_lost=True
    continues from the earliest retained position and records the skipped range in `lost`.
    """

    def __init__(self, stub: Any, request: pb.ReadRequest, retry: _common.RetryPolicy,
                 skip_lost: bool, timeout: Optional[float]) -> None:
        self._stub = stub
        self._cursor = _common.ReadCursor(request)
        self._skip_lost = skip_lost
        super().__init__(retry, timeout)
        self._call = stub.Read(request, timeout=timeout)  # open now: "next" means now

    @property
    def position(self) -> Optional[res.Position]:
        """One past the last byte (or gap) delivered: where a new Read would continue."""
        return self._cursor.position

    @property
    def lost(self) -> List[Any]:
        """[(from_position, to_position)] skipped with skip_lost because the server lost them."""
        return self._cursor.lost

    def _run(self) -> Iterator[pb.ReadResponse]:
        attempt, resumed = 0, False
        while not self._cursor.done and not self._stop.is_set():
            if resumed:
                self._call = self._stub.Read(self._cursor.resume_request(), timeout=self._timeout)
            try:
                for resp in self._call:
                    attempt = 0
                    self._cursor.update(resp)
                    yield resp
                return
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                err = from_rpc_error(e)
                if (resumed and err.reason == "OFFSET_NOT_RETAINED" and self._skip_lost and
                        self._cursor.skip_lost(err)):
                    continue
                attempt += 1
                if not _common.transient(err) or not self._backoff(attempt, err):
                    if self._stop.is_set():
                        return
                    raise err from None
                resumed = True


class _ResumingWatch(_Resumable):
    """Base of WatchStream and FleetWatchStream: a watch that reconnects after a transient failure
    and resumes after the last revision its cursor processed; if that revision is no longer
    retained (REVISION_NOT_RETAINED), it starts over with a snapshot when relist=True. A cursor
    has update(event), resume_request(), relist(), `revision` and `relists`."""

    def __init__(self, cursor: Any, first_request: Any, retry: _common.RetryPolicy, relist: bool,
                 relist_first: bool, timeout: Optional[float]) -> None:
        self._cursor = cursor
        self._relist = relist
        # Whether a start revision the first open is refused for relists too, or is the caller's
        # error to see.
        self._relist_first = relist_first
        super().__init__(retry, timeout)
        self._call = self._open(first_request)

    @property
    def revision(self) -> int:
        """The revision to resume from (0 before the first SYNCED of a snapshot)."""
        return self._cursor.revision

    @property
    def relists(self) -> int:
        """How many times the watch had to start over with a snapshot."""
        return self._cursor.relists

    def _open(self, request: Any) -> Any:
        raise NotImplementedError

    def _run(self) -> Iterator[Any]:
        attempt, reopened = 0, False
        while not self._stop.is_set():
            if reopened:
                self._call = self._open(self._cursor.resume_request())
            try:
                for event in self._call:
                    attempt = 0
                    self._cursor.update(event)
                    yield event
                return
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                err = from_rpc_error(e)
                if (err.reason == "REVISION_NOT_RETAINED" and self._relist and
                        (reopened or self._relist_first)):
                    self._cursor.relist()
                    reopened = True
                    continue
                attempt += 1
                if not _common.transient(err, watch=True) or not self._backoff(attempt, err):
                    if self._stop.is_set():
                        return
                    raise err from None
                reopened = True


class WatchStream(_ResumingWatch):
    """Iterates over WatchChannelsResponse events, reconnecting after a transient failure and
    resuming after the last revision processed (`revision`).

    If the server no longer retains that revision (it aged out, or a restarted server does not
    know it), the watch starts over with a fresh snapshot when relist=True (the default, as
    client-go's reflector does): EXISTING events for every current channel, then SYNCED. A consumer
    that keeps a cache should replace it with that snapshot; `relists` counts them. With
    relist=False it raises OutOfRangeError (REVISION_NOT_RETAINED) instead, as it does when the
    start revision the caller asked for is not retained.
    """

    def __init__(self, stub: Any, request: pb.WatchChannelsRequest,
                 retry: _common.RetryPolicy, relist: bool, timeout: Optional[float]) -> None:
        self._stub = stub
        super().__init__(_common.WatchCursor(request), request, retry, relist,
                         relist_first=False, timeout=timeout)

    def _open(self, request: pb.WatchChannelsRequest) -> Any:
        return self._stub.WatchChannels(request, timeout=self._timeout)


class Writer:
    """A Write stream: bytes appended in order to the channel's host-to-guest stream, holding the
    write lease from open to close. Use it as a context manager:

        with client.writer(name, ack_level="delivered") as w:
            w.write(b"first ")
            w.write(b"second\\n")
        print(w.progress.delivered_bytes)

    Leaving the block half-closes the stream and waits for the server's answer (the bytes reached
    ack_level, or the error, raised as XenchanError); leaving it with an exception cancels the
    stream instead. `write` blocks while the server applies flow control (write queue full).
    """

    def __init__(self, stub: Any, first: pb.WriteRequest, timeout: Optional[float]) -> None:
        self._feed = _Feed()
        self._future = stub.Write.future(iter(self._feed), timeout=timeout)
        self._future.add_done_callback(self._feed.abort)
        self._feed.put(first)
        self.progress: Optional[res.WriteProgress] = None
        """The final WriteProgress, once closed."""
        self.bytes_sent = len(first.data)

    def write(self, data: bytes) -> None:
        """Queues `data` (any length; sent as messages of at most 64 KiB). Raises the stream's
        error if it has already ended."""
        for chunk in _common.chunks(data):
            if chunk and not self._feed.put(pb.WriteRequest(data=chunk)):
                self._raise_ended()
            self.bytes_sent += len(chunk)

    def close(self) -> res.WriteProgress:
        """Half-closes and waits for the server's answer; returns the WriteProgress."""
        if self.progress is not None:
            return self.progress
        self._feed.end()
        try:
            self.progress = self._future.result().progress
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        return self.progress

    def cancel(self) -> None:
        """Abandons the stream (bytes already accepted are still delivered)."""
        self._future.cancel()
        self._feed.abort()

    def _raise_ended(self) -> None:
        try:
            self._future.result()
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        raise RuntimeError("the Write stream already ended")

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()


class AttachSession:
    """An open Attach session: iterate over it for AttachResponse events (data, gaps, epoch
    changes, stalls, state changes, acks and rejections of this session's writes); `send` writes
    (writers only). `opened` is the server's AttachOpened. A context manager:

        with client.attach(name, role="writer") as s:
            seq = s.send(b'{"op":"ping"}\\n')
            s.wait_for_ack(seq)
            for event in s: ...

    Leaving the block half-closes: the server sends the outstanding acknowledgements, releases the
    lease and ends the stream; leaving it with an exception cancels the stream.
    """

    def __init__(self, stub: Any, open_msg: pb.AttachOpen, timeout: Optional[float]) -> None:
        self._feed = _Feed()
        self._feed.put(pb.AttachRequest(open=open_msg))
        self._call = stub.Attach(iter(self._feed), timeout=timeout)
        self._call.add_callback(self._feed.abort)
        self._pending: Deque[pb.AttachResponse] = collections.deque()
        self._seq = 0
        self.acked: Dict[int, int] = {}
        """AckLevel -> highest sequence id acknowledged at that level."""
        self.rejections: List[pb.WriteRejection] = []
        """Every WriteRejection seen so far."""
        first = self._receive()
        if first is None or first.WhichOneof("event") != "opened":
            self._call.cancel()
            raise RuntimeError("Attach: the server did not answer with opened")
        self.opened: pb.AttachOpened = first.opened

    def _receive(self) -> Optional[pb.AttachResponse]:
        try:
            msg = next(self._call)
        except StopIteration:
            return None
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        kind = msg.WhichOneof("event")
        if kind == "write_ack":
            a = msg.write_ack
            self.acked[a.level] = max(self.acked.get(a.level, 0), a.sequence_id)
        elif kind == "write_rejection":
            self.rejections.append(msg.write_rejection)
        return msg

    def send(self, data: bytes, expected_epoch: int = 0) -> int:
        """Sends one write (at most 64 KiB, all accepted or all rejected); returns its sequence
        id. Blocks while the server applies flow control."""
        if len(data) > _common.MAX_DATA_BYTES:
            raise ValueError("one Attach write carries at most 64 KiB")
        self._seq += 1
        req = pb.AttachRequest(write=pb.AttachWrite(sequence_id=self._seq, data=data,
                                                    expected_epoch=expected_epoch))
        if not self._feed.put(req):
            self._drain_error()
            raise RuntimeError("the Attach stream already ended")
        return self._seq

    def wait_for_ack(self, sequence_id: int, level: _common.AckSpec = "accepted") -> None:
        """Reads events until write `sequence_id` reached `level`; the events read meanwhile are
        kept for iteration. Raises the write's rejection as a typed error (e.g.
        FailedPreconditionError NOT_CONNECTED), or the stream's error."""
        want = _common.ack_level(level)
        while True:
            if any(lvl >= want and seq >= sequence_id for lvl, seq in self.acked.items()):
                return
            for r in self.rejections:
                if r.first_sequence_id <= sequence_id <= r.last_sequence_id:
                    raise _common.rejection_error(r)
            msg = self._receive()
            if msg is None:
                raise RuntimeError("Attach stream ended before write %d was acknowledged"
                                   % sequence_id)
            self._pending.append(msg)

    def __iter__(self) -> "AttachSession":
        return self

    def __next__(self) -> pb.AttachResponse:
        if self._pending:
            return self._pending.popleft()
        msg = self._receive()
        if msg is None:
            raise StopIteration
        return msg

    def close(self) -> List[pb.AttachResponse]:
        """Half-closes and reads the stream to its end; returns the events not yet iterated."""
        self._feed.end()
        rest = list(self._pending)
        self._pending.clear()
        while True:
            msg = self._receive()
            if msg is None:
                return rest
            rest.append(msg)

    def cancel(self) -> None:
        """Leaves at once (bytes already accepted are still delivered)."""
        self._call.cancel()
        self._feed.abort()

    def _drain_error(self) -> None:
        while self._receive() is not None:
            pass

    def __enter__(self) -> "AttachSession":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()

