"""The asyncio read that follows a channel across the hosts of a fleet
(xenchan.aio.Fleet.read with follow=True): the rules of xenchan._sync_fleet_read.FleetReadStream
(docs/FLEET.md, "Following a channel across hosts"), with a task instead of a thread watching the
fleet for the domain leaving its host.

Thread safety: an asyncio object, used from the event loop that created it.
"""

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Optional

import grpc

from xenchan import _common, names
from xenchan._common import RetryPolicy, StartSpec
from xenchan._fleet_common import (MIGRATED, DomainLocation, MoveSplice, OwnerWait, Trigger,
                                   classify)
from xenchan.errors import XenchanError, from_rpc_error
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import fleet_service_pb2 as fpb
from xenchan.v1 import resources_pb2 as res

if TYPE_CHECKING:
    from xenchan._aio_fleet import Fleet

_SEEN = (fpb.FLEET_EVENT_TYPE_EXISTING, fpb.FLEET_EVENT_TYPE_APPEARED,
         fpb.FLEET_EVENT_TYPE_CHANGED)


class _Departed(Exception):
    """The departure watch ended the Read in flight (it cancelled the call)."""


class FleetReadStream:
    """Async iterator over the ReadResponse messages of a channel on whichever host of the fleet
    runs its domain; see xenchan._sync_fleet_read.FleetReadStream. `async with` closes it."""

    def __init__(self, fleet: "Fleet", location: DomainLocation, channel_id: str,
                 start: StartSpec, follow: bool, retry: RetryPolicy, move_timeout: float,
                 timeout: Optional[float]) -> None:
        self._fleet = fleet
        self._channel = names.channel_name(location.domain.uuid, channel_id)
        self._follow = follow
        self._retry = retry
        self._move_timeout = move_timeout
        self._timeout = timeout
        self._closed = False
        self._generation = 0
        self._departed = -1
        self._wait_call: Any = None
        self._monitor: Optional["asyncio.Task[None]"] = None
        self.location = location
        self.moves = 0
        req = pb.ReadRequest(channel=self._channel, follow=follow)
        s = _common.read_start(start)
        if s is not None:
            req.start.CopyFrom(s)
        self._cursor = _common.ReadCursor(req)
        self._client = fleet.connect_host(location.host, retry=retry)
        self._call = self._open(req)  # open now: "next" means now
        if follow:
            self._monitor = asyncio.ensure_future(self._watch_departures())
        self._gen = self._run()

    @property
    def position(self) -> Optional[res.Position]:
        return self._cursor.position

    def __aiter__(self) -> "FleetReadStream":
        return self

    async def __anext__(self) -> pb.ReadResponse:
        return await self._gen.__anext__()

    async def __aenter__(self) -> "FleetReadStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancels the stream and the fleet watch behind it."""
        await self._shutdown()
        await self._gen.aclose()

    async def _shutdown(self) -> None:
        """Stops the Read and look-ups in flight, the departure watch and the connection to the
        owner. Idempotent; also run when the iteration ends."""
        self._closed = True
        for call in (self._call, self._wait_call, self._monitor):
            if call is not None:
                call.cancel()
        await self._client.close()

    def _open(self, req: pb.ReadRequest) -> Any:
        self._generation += 1
        self._call = self._client.stub.Read(req, timeout=self._timeout)
        return self._call

    async def _next(self, call: Any) -> Optional[pb.ReadResponse]:
        """The call's next message, None at its end; _Departed if the departure watch ended it."""
        generation = self._generation
        try:
            resp = await call.read()
        except asyncio.CancelledError:
            if self._departed == generation and not self._task_cancelled():
                raise _Departed() from None
            raise
        return None if resp is grpc.aio.EOF else resp

    @staticmethod
    def _task_cancelled() -> bool:
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    async def _run(self) -> AsyncIterator[pb.ReadResponse]:
        try:
            async for m in self._stream():
                yield m
        finally:
            await self._shutdown()

    async def _stream(self) -> AsyncIterator[pb.ReadResponse]:
        attempt = 0
        splice: Optional[MoveSplice] = None
        adopt: Optional[OwnerWait] = None
        call = self._call
        while not self._closed:
            trigger: Optional[Trigger] = None
            held: Optional[pb.ReadResponse] = None
            try:
                while True:
                    resp = await self._next(call)
                    if resp is None:
                        return  # OK: not following, or the server ended the stream
                    attempt = 0
                    if splice is not None:
                        out, splice, adopt = splice.first(resp), None, None
                        for m in out:
                            self._cursor.update(m)
                            yield m
                        continue
                    if resp.HasField("epoch_change") and resp.epoch_change.reason == MIGRATED:
                        held, trigger = resp, Trigger("migrated", epoch_change=resp.epoch_change)
                        break
                    self._cursor.update(resp)
                    yield resp
            except _Departed:
                trigger = Trigger("departed")
            except grpc.RpcError as e:
                if self._closed:
                    return
                err = from_rpc_error(e)
                if splice is not None and adopt is not None and err.code == grpc.StatusCode.NOT_FOUND:
                    pause = adopt.next_pause()
                    if pause is None:
                        raise adopt.timeout_error(err) from None
                    await asyncio.sleep(pause)
                    call = self._open(self._cursor.resume_request())
                    continue
                trigger = classify(err)
                if trigger is None:
                    raise err from None
            if trigger.kind == "departed":
                async for m in self._drain(trigger):
                    yield m
            location = await self._await_owner(trigger)
            if location is None:
                return
            same_host = location.domain.host == self.location.domain.host
            if held is not None and same_host:
                self.location = location
                self._cursor.update(held)
                yield held
                continue
            call.cancel()
            if same_host:
                self.location = location
                attempt += 1
                delay = self._retry.delay(attempt, trigger.error)
                if delay is None:
                    raise (trigger.error or XenchanError(None, "stream ended")) from None
                await asyncio.sleep(delay)
                call = self._open(self._cursor.resume_request())
                continue
            splice = MoveSplice(trigger.epoch_change, self._cursor.position)
            adopt = OwnerWait(location.domain.uuid, self._move_timeout)
            call = await self._move(location)

    async def _move(self, location: DomainLocation) -> Any:
        client = self._fleet.connect_host(location.host, retry=self._retry)
        old, self._client = self._client, client
        await old.close()
        self.location = location
        self.moves += 1
        req = pb.ReadRequest(channel=self._channel, follow=self._follow,
                             start=pb.ReadStart(anchor=pb.START_ANCHOR_EARLIEST))
        self._cursor = _common.ReadCursor(req)
        return self._open(req)

    async def _drain(self, trigger: Trigger) -> AsyncIterator[pb.ReadResponse]:
        req = self._cursor.resume_request()
        req.follow = False
        call = self._open(req)
        try:
            async for resp in call:
                if resp.HasField("epoch_change") and resp.epoch_change.reason == MIGRATED:
                    trigger.kind, trigger.epoch_change = "migrated", resp.epoch_change
                    return
                self._cursor.update(resp)
                yield resp
        except grpc.RpcError:
            return
        finally:
            call.cancel()

    async def _await_owner(self, trigger: Trigger) -> Optional[DomainLocation]:
        uuid = self.location.domain.uuid
        current, domid = self.location.domain.host, self.location.domain.domid
        if trigger.kind == "departed":
            trigger.kind = "not_found"
        wait = OwnerWait(uuid, self._move_timeout)
        stub = self._fleet.stub
        while not self._closed:
            try:
                resp = await stub.LocateDomain(fpb.LocateDomainRequest(name="domains/" + uuid),
                                               timeout=max(0.01, wait.remaining()))
                location = DomainLocation.from_response(resp)
                wait.last = location.domain
                if trigger.satisfied_by(location.domain, current, domid):
                    return location
                if trigger.kind == "not_found" and trigger.error is not None:
                    raise trigger.error
                call = stub.WatchFleet(fpb.WatchFleetRequest(start_revision=location.revision),
                                       timeout=max(0.01, wait.remaining()))
                self._wait_call = call
                try:
                    async for event in call:
                        if (event.HasField("domain") and event.domain.uuid == uuid and
                                event.type in _SEEN):
                            wait.last = event.domain
                            if trigger.satisfied_by(event.domain, current, domid):
                                break
                finally:
                    call.cancel()
                continue
            except XenchanError:
                raise
            except grpc.RpcError as e:
                if self._closed:
                    return None
                err = from_rpc_error(e)
                if err.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.OUT_OF_RANGE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise err from None
                pause = wait.next_pause()
                if pause is None:
                    raise wait.timeout_error(err) from None
                await asyncio.sleep(pause)
        return None

    async def _watch_departures(self) -> None:
        """The departure watch (see the synchronous stream), as a task."""
        uuid = self.location.domain.uuid
        try:
            async with self._fleet.watch_fleet(start_revision=self.location.revision,
                                               retry=self._retry) as watch:
                async for event in watch:
                    if not (event.HasField("domain") and event.domain.uuid == uuid and
                            event.type in _SEEN):
                        continue
                    generation, client = self._generation, self._client
                    if (event.domain.host != self.location.domain.host and
                            await self._source_down(client, generation) and
                            generation == self._generation):
                        self._departed = generation
                        self._call.cancel()
        except grpc.RpcError:
            return

    async def _source_down(self, client: Any, generation: int) -> bool:
        wait = OwnerWait(self.location.domain.uuid, self._move_timeout)
        while not self._closed and generation == self._generation:
            try:
                ch = await client.stub.GetChannel(pb.GetChannelRequest(name=self._channel),
                                                  timeout=max(0.01, wait.remaining()))
                if ch.channel.state == res.CHANNEL_STATE_DOMAIN_DOWN:
                    return True
            except grpc.RpcError as e:
                if from_rpc_error(e).code in (grpc.StatusCode.NOT_FOUND,
                                              grpc.StatusCode.UNAVAILABLE):
                    return True
            pause = wait.next_pause()
            if pause is None:
                return False
            await asyncio.sleep(pause)
        return False
