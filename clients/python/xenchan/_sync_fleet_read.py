"""The synchronous read that follows a channel across the hosts of a fleet (Fleet.read with
follow=True), per docs/FLEET.md, "Following a channel across hosts".

Thread safety: one thread iterates; close() may be called from any thread. A helper thread watches
the fleet for the domain leaving its host (see FleetReadStream).
"""

import threading
from typing import TYPE_CHECKING, Any, Iterator, Optional

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
    from xenchan.fleet import Fleet

_SEEN = (fpb.FLEET_EVENT_TYPE_EXISTING, fpb.FLEET_EVENT_TYPE_APPEARED,
         fpb.FLEET_EVENT_TYPE_CHANGED)


class FleetReadStream:
    """Iterates over the ReadResponse messages (data, gap, epoch_change) of a channel, on whichever
    host of the fleet runs its domain.

    It reads from the owner, and re-resolves the domain through the fleet when the owner's stream
    says the domain left: an EpochChange with reason DOMAIN_MIGRATED, the stream ending
    UNAVAILABLE (host unreachable or restarting) or NOT_FOUND (the copy there removed), or, from
    xenchands that do not yet end a moved channel's epoch themselves, the fleet naming another
    host while the channel here is DOMAIN_DOWN (then what the source still holds is read to its
    end first). It waits at most `move_timeout` seconds for the owner (DeadlineExceededError
    naming the domain and its last record otherwise), then continues:

    - on the same host after a restart, from `position` (nothing repeated);
    - on a new host, from the start of the channel's epoch there, after one EpochChange
      (reason DOMAIN_MIGRATED, previous_epoch/previous_end_offset where the source ended) and, if
      the new owner no longer holds the epoch's first bytes, a Gap from offset 0.

    Every other error and epoch change is the caller's, as with Client.read. `location` is the
    domain's current location, `moves` counts host changes. A context manager; close() cancels.
    """

    def __init__(self, fleet: "Fleet", location: DomainLocation, channel_id: str,
                 start: StartSpec, follow: bool, retry: RetryPolicy, move_timeout: float,
                 timeout: Optional[float]) -> None:
        self._fleet = fleet
        self._channel = names.channel_name(location.domain.uuid, channel_id)
        self._follow = follow
        self._retry = retry
        self._move_timeout = move_timeout
        self._timeout = timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._generation = 0  # of the Read call in flight; the departure watch names the one it ends
        self._departed = -1
        self._wait_call: Any = None
        self._monitor: Any = None
        self.location = location
        """Where the domain runs, as last resolved."""
        self.moves = 0
        """How many times the stream moved to another host."""
        req = pb.ReadRequest(channel=self._channel, follow=follow)
        s = _common.read_start(start)
        if s is not None:
            req.start.CopyFrom(s)
        self._cursor = _common.ReadCursor(req)
        self._client = fleet.connect_host(location.host, retry=retry)
        self._call = self._open(req)  # open now: "next" means now
        if follow:
            threading.Thread(target=self._watch_departures, daemon=True).start()
        self._gen = self._run()

    @property
    def position(self) -> Optional[res.Position]:
        """One past the last byte (or gap, or epoch start) delivered, on the current host."""
        return self._cursor.position

    def __iter__(self) -> "FleetReadStream":
        return self

    def __next__(self) -> pb.ReadResponse:
        return next(self._gen)

    def __enter__(self) -> "FleetReadStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Cancels the stream; an iteration in progress (in any thread) ends without error."""
        self._shutdown()
        try:
            self._gen.close()
        except ValueError:
            pass  # running in another thread: the cancellation ends it

    def _shutdown(self) -> None:
        """Stops everything: the Read and the look-ups in flight, the departure watch, the
        connection to the owner. Idempotent; also run when the iteration ends."""
        self._stop.set()
        with self._lock:
            calls, monitor, client = [self._call, self._wait_call], self._monitor, self._client
        for call in calls:
            if call is not None:
                call.cancel()
        if monitor is not None:
            monitor.close()
        client.close()

    def _open(self, req: pb.ReadRequest) -> Any:
        with self._lock:
            self._generation += 1
            self._call = self._client.stub.Read(req, timeout=self._timeout)
            return self._call

    def _run(self) -> Iterator[pb.ReadResponse]:
        try:
            yield from self._stream()
        finally:
            self._shutdown()

    def _stream(self) -> Iterator[pb.ReadResponse]:
        attempt = 0
        splice: Optional[MoveSplice] = None  # a move waiting for the new owner's first message
        adopt: Optional[OwnerWait] = None  # bounds retries of NOT_FOUND from the new owner
        call = self._call
        while not self._stop.is_set():
            trigger: Optional[Trigger] = None
            held: Optional[pb.ReadResponse] = None  # a DOMAIN_MIGRATED change not delivered yet
            try:
                for resp in call:
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
                else:
                    return  # OK: not following, or the server ended the stream
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                err = from_rpc_error(e)
                if self._was_departed():
                    trigger = Trigger("departed")
                elif splice is not None and adopt is not None and err.code == grpc.StatusCode.NOT_FOUND:
                    pause = adopt.next_pause()  # the new owner may still be adopting the channel
                    if pause is None:
                        raise adopt.timeout_error(err) from None
                    self._stop.wait(pause)
                    call = self._open(self._cursor.resume_request())
                    continue
                else:
                    trigger = classify(err)
                    if trigger is None:
                        raise err from None
            assert trigger is not None
            if trigger.kind == "departed":
                for m in self._drain(trigger):
                    yield m
            if self._stop.is_set():
                return
            location = self._await_owner(trigger)
            if location is None:
                return
            same_host = location.domain.host == self.location.domain.host
            if held is not None and same_host:  # a migration within the host: same stream
                self.location = location
                self._cursor.update(held)
                yield held
                continue
            call.cancel()
            if same_host:  # restarted or briefly unreachable: resume where we were
                self.location = location
                attempt += 1
                delay = self._retry.delay(attempt, trigger.error)
                if delay is None:
                    raise (trigger.error or XenchanError(None, "stream ended")) from None
                if self._stop.wait(delay):
                    return
                call = self._open(self._cursor.resume_request())
                continue
            splice = MoveSplice(trigger.epoch_change, self._cursor.position)
            adopt = OwnerWait(location.domain.uuid, self._move_timeout)
            call = self._move(location)

    def _move(self, location: DomainLocation) -> Any:
        """Switches to `location`'s host and opens the Read there from its earliest byte."""
        client = self._fleet.connect_host(location.host, retry=self._retry)
        old, self._client = self._client, client
        old.close()
        self.location = location
        self.moves += 1
        req = pb.ReadRequest(channel=self._channel, follow=self._follow,
                             start=pb.ReadStart(anchor=pb.START_ANCHOR_EARLIEST))
        self._cursor = _common.ReadCursor(req)
        return self._open(req)

    def _drain(self, trigger: Trigger) -> Iterator[pb.ReadResponse]:
        """What the source still holds from `position` to its end (the domain is down there, so
        the end is final). Its DOMAIN_MIGRATED epoch change, if it sends one, becomes the
        trigger's (not delivered)."""
        req = self._cursor.resume_request()
        req.follow = False
        call = self._open(req)
        try:
            for resp in call:
                if resp.HasField("epoch_change") and resp.epoch_change.reason == MIGRATED:
                    trigger.kind, trigger.epoch_change = "migrated", resp.epoch_change
                    return
                self._cursor.update(resp)
                yield resp
        except grpc.RpcError:
            return  # the source went meanwhile: what it had is what we delivered
        finally:
            call.cancel()

    def _await_owner(self, trigger: Trigger) -> Optional[DomainLocation]:
        """Looks up the domain until its record satisfies `trigger` (LocateDomain, then WatchFleet
        from the answer's revision), within move_timeout. None if the stream was closed."""
        uuid = self.location.domain.uuid
        current, domid = self.location.domain.host, self.location.domain.domid
        if trigger.kind == "departed":
            trigger.kind = "not_found"  # the same condition: a host other than this one
        wait = OwnerWait(uuid, self._move_timeout)
        stub = self._fleet.stub
        while not self._stop.is_set():
            try:
                resp = stub.LocateDomain(fpb.LocateDomainRequest(name="domains/" + uuid),
                                         timeout=max(0.01, wait.remaining()))
                location = DomainLocation.from_response(resp)
                wait.last = location.domain
                if trigger.satisfied_by(location.domain, current, domid):
                    return location
                if trigger.kind == "not_found" and trigger.error is not None:
                    raise trigger.error  # still here: the channel was deleted on its host
                call = stub.WatchFleet(fpb.WatchFleetRequest(start_revision=location.revision),
                                       timeout=max(0.01, wait.remaining()))
                with self._lock:
                    self._wait_call = call
                try:
                    for event in call:
                        if (event.HasField("domain") and event.domain.uuid == uuid and
                                event.type in _SEEN):
                            wait.last = event.domain
                            if trigger.satisfied_by(event.domain, current, domid):
                                break  # look it up again, with its host
                finally:
                    call.cancel()
                continue
            except XenchanError:
                raise
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return None
                err = from_rpc_error(e)
                if err.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.OUT_OF_RANGE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise err from None
                pause = wait.next_pause()
                if pause is None:
                    raise wait.timeout_error(err) from None
                self._stop.wait(pause)
        return None

    def _was_departed(self) -> bool:
        with self._lock:
            return self._departed == self._generation

    def _watch_departures(self) -> None:
        """The helper thread: follows the fleet's records of the domain; when one names another
        host and the channel here is DOMAIN_DOWN (or gone), ends the current Read so that _run
        drains the source and moves. Best effort: a failing watch only loses this signal."""
        uuid = self.location.domain.uuid
        try:
            watch = self._fleet.watch_fleet(start_revision=self.location.revision,
                                            retry=self._retry)
            with self._lock:
                self._monitor = watch
            if self._stop.is_set():
                watch.close()
                return
            for event in watch:
                if not (event.HasField("domain") and event.domain.uuid == uuid and
                        event.type in _SEEN):
                    continue
                with self._lock:
                    generation, client = self._generation, self._client
                    here = self.location.domain.host
                if event.domain.host != here and self._source_down(client, generation):
                    with self._lock:
                        if generation == self._generation and self._call is not None:
                            self._departed = generation
                            self._call.cancel()
        except (grpc.RpcError, ValueError):
            return

    def _source_down(self, client: Any, generation: int) -> bool:
        """Whether the channel on the host being read is DOMAIN_DOWN or gone (polled until it is,
        while the same Read is in flight, within move_timeout)."""
        wait = OwnerWait(self.location.domain.uuid, self._move_timeout)
        while not self._stop.is_set():
            with self._lock:
                if generation != self._generation:
                    return False
            try:
                ch = client.stub.GetChannel(pb.GetChannelRequest(name=self._channel),
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
            self._stop.wait(pause)
        return False
