"""The Python SDK's fleet resolution end to end (xenchan.connect_fleet, synchronous and asyncio):
one real etcd, two simulated Xen hosts (host-a runs vm-a, host-b runs vm-b with the real
xenchan-agent), each with its real xenchand in the fleet, and a third xenchand outside any fleet.

Covered: hosts listed and watched through host A; vm-b located through A and its agent called by
name on B without naming B; typed errors (unknown domain, a xenchand without --fleet-etcd); a
following read of a durable channel across `xensim domain migrate` A -> B that continues on B with
one DOMAIN_MIGRATED epoch change, every byte the guest wrote on either host delivered once, in
order; the same in asyncio; a following read that rides out a restart of its owner's xenchand.
"""

import asyncio
import os
import unittest

import grpc

import fleet_harness
import harness
import xenchan
import xenchan.aio
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import fleet_service_pb2 as fpb
from xenchan.v1 import resources_pb2 as res

AGENT = "org.xenchan.agent.0"
LOG = "org.xenchan.log.0"
FAST = xenchan.RetryPolicy(initial_backoff=0.05, max_backoff=0.5, max_attempts=60)


class FleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.etcd = fleet_harness.Etcd()
        cls.hosts = []
        try:
            cls.a = fleet_harness.FleetHost(cls.etcd, "host-a", ["vm-a", "vm-m", "vm-n"])
            cls.hosts.append(cls.a)
            cls.b = fleet_harness.FleetHost(cls.etcd, "host-b", ["vm-b"])
            cls.hosts.append(cls.b)
            cls.lone = harness.Host([])  # no --fleet-etcd
            cls.hosts.append(cls.lone)
            cls.fleet = xenchan.connect_fleet(cls.a.target, retry=FAST)
            fleet_harness.wait_for_hosts(cls.fleet, ["host-a", "host-b"])
            with xenchan.connect(cls.b.target) as client_b:
                client_b.create_channel("vm-b", AGENT, wait=True)
            cls.b.start_agent("vm-b")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "fleet", None) is not None:
            cls.fleet.close()
        for host in cls.hosts:
            host.stop()
        cls.etcd.stop()

    def locate(self, domain, host_id):
        """The location of `domain` once the fleet has it on `host_id` (records reach etcd and
        the entry's view asynchronously)."""
        def probe():
            try:
                where = self.fleet.locate_domain(domain)
            except xenchan.NotFoundError:
                return None
            return where if where.host.host_id == host_id else None
        return fleet_harness.until(probe, "%s on %s" % (domain, host_id))

    def test_hosts(self):
        hosts = list(self.fleet.list_hosts(page_size=1))
        self.assertEqual([h.host_id for h in hosts], ["host-a", "host-b"])
        self.assertEqual(hosts[1].name, "hosts/host-b")
        self.assertEqual(hosts[1].api_address, self.b.target)
        self.assertEqual(hosts[1].identity, "")  # a Unix socket: no certificate

    def test_watch_fleet_snapshot_then_resume(self):
        with self.fleet.watch_fleet() as watch:
            seen = []
            for event in watch:
                seen.append(event)
                if event.type == fpb.FLEET_EVENT_TYPE_SYNCED:
                    break
            revision = watch.revision
        self.assertTrue(all(e.type == fpb.FLEET_EVENT_TYPE_EXISTING for e in seen[:-1]))
        self.assertEqual({e.host.host_id for e in seen if e.HasField("host")},
                         {"host-a", "host-b"})
        self.assertIn("vm-b", {e.domain.display_name for e in seen if e.HasField("domain")})
        self.assertEqual(revision, seen[-1].revision)
        self.assertGreater(revision, 0)
        # Resumed after that revision: a domain created meanwhile arrives as APPEARED.
        self.b.cli("domain", "create", "--name", "vm-w")
        with self.fleet.watch_fleet(start_revision=revision) as watch:
            for event in watch:
                self.assertNotEqual(event.type, fpb.FLEET_EVENT_TYPE_EXISTING)
                if event.HasField("domain") and event.domain.display_name == "vm-w":
                    self.assertEqual(event.type, fpb.FLEET_EVENT_TYPE_APPEARED)
                    self.assertEqual(event.domain.host, "hosts/host-b")
                    self.assertGreater(event.revision, revision)
                    break

    def test_locate_on_b_through_a_and_call_its_agent(self):
        where = self.locate("vm-b", "host-b")
        self.assertEqual(where.domain.display_name, "vm-b")
        self.assertEqual(where.domain.name, "domains/" + where.domain.uuid)
        self.assertEqual(where.host.api_address, self.b.target)
        self.assertEqual(self.fleet.locate_domain(where.domain.uuid).domain.uuid,
                         where.domain.uuid)
        with self.fleet.connect("vm-b") as client:
            reply = client.call_json("vm-b/" + AGENT, {"op": "ping"})
        self.assertTrue(reply.get("ok"), reply)

    def test_errors(self):
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            self.fleet.locate_domain("no-such-vm")
        self.assertEqual(ctx.exception.reason, "DOMAIN_NOT_FOUND")
        with self.assertRaises(xenchan.NotFoundError):
            self.fleet.connect("no-such-vm")
        with self.assertRaises(xenchan.InvalidArgumentError) as ctx:
            self.fleet.locate_domain("domains/a/b")
        self.assertEqual(ctx.exception.reason, "INVALID_NAME")
        with xenchan.connect_fleet(self.lone.target) as lone:
            for attempt in (lambda: lone.locate_domain("vm-b"), lambda: list(lone.list_hosts()),
                            lambda: next(iter(lone.watch_fleet()))):
                with self.assertRaises(xenchan.FailedPreconditionError) as ctx:
                    attempt()
                self.assertEqual(ctx.exception.reason, "FLEET_NOT_CONFIGURED")
                self.assertEqual(ctx.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

    def durable_log(self, domain):
        """A durable LOG channel in `domain` on A, declared in etcd, the guest's tty open."""
        with xenchan.connect(self.a.target) as client_a:
            ch = client_a.create_channel(domain, LOG, durable=True, wait=True)
        fleet_harness.wait_for_declaration(self.etcd, ch.domain_uuid, LOG)
        self.locate(domain, "host-a")
        return self.a.open_tty(domain, LOG)

    def until_received(self, domain, count):
        """Until host A's copy of `domain`'s LOG channel has received `count` bytes."""
        with xenchan.connect(self.a.target) as client_a:
            fleet_harness.until(
                lambda: True if client_a.get_channel(domain + "/" + LOG)
                .counters.bytes_from_guest == count else None,
                "%d bytes from %s on host-a" % (count, domain))

    def check_follow(self, got, first_epoch, stream):
        """`got` (the follower's messages up to "three") is "one", "two" from A, one
        DOMAIN_MIGRATED epoch change from where A ended, then "three" from B at offset 0."""
        data = b"".join(r.data.data for r in got if r.HasField("data"))
        self.assertEqual(data, b"one\ntwo\nthree\n")
        changes = [i for i, r in enumerate(got) if r.HasField("epoch_change")]
        self.assertEqual(len(changes), 1, got)
        before = b"".join(r.data.data for r in got[:changes[0]] if r.HasField("data"))
        self.assertEqual(before, b"one\ntwo\n")
        change = got[changes[0]].epoch_change
        self.assertEqual(change.reason, pb.EPOCH_CHANGE_REASON_DOMAIN_MIGRATED)
        self.assertEqual(change.previous_epoch, first_epoch)
        self.assertEqual(change.previous_end_offset, len(b"one\ntwo\n"))
        self.assertNotEqual(change.epoch, first_epoch)
        after = [r for r in got[changes[0] + 1:]]
        self.assertTrue(all(r.HasField("data") and r.data.epoch == change.epoch for r in after))
        self.assertEqual(after[0].data.offset, 0)
        self.assertFalse(any(r.HasField("gap") for r in got))
        self.assertEqual(stream.moves, 1)
        self.assertEqual(stream.location.host.host_id, "host-b")
        self.assertEqual((stream.position.epoch, stream.position.offset),
                         (change.epoch, len(b"three\n")))

    def test_follow_across_migration(self):
        """The follower has read "one" on A; "two" reaches A but not the follower before the
        domain moves: it is delivered from A before the move, "three" from B after it."""
        fd = self.durable_log("vm-m")
        os.write(fd, b"one\n")
        stream = self.fleet.read("vm-m", LOG, follow=True)
        self.addCleanup(stream.close)
        got = [next(stream)]
        self.assertEqual(got[0].data.data, b"one\n")
        first_epoch = stream.position.epoch
        os.write(fd, b"two\n")
        self.until_received("vm-m", 8)
        self.a.migrate("vm-m", self.b)
        os.write(fleet_harness.until(lambda: self._open_b("vm-m"), "vm-m's channel on host-b"),
                 b"three\n")
        for resp in stream:
            got.append(resp)
            if resp.HasField("data") and resp.data.data.endswith(b"three\n"):
                break
        self.check_follow(got, first_epoch, stream)

    def test_aio(self):
        asyncio.run(self.aio_scenario())

    async def aio_scenario(self):
        async with xenchan.aio.connect_fleet(self.a.target, retry=FAST) as fleet:
            hosts = [h.host_id async for h in fleet.list_hosts()]
            self.assertEqual(hosts, ["host-a", "host-b"])
            where = await fleet.locate_domain("vm-b")
            self.assertEqual(where.host.host_id, "host-b")
            client = await fleet.connect("vm-b")
            async with client:
                reply = await client.call_json("vm-b/" + AGENT, {"op": "ping"})
            self.assertTrue(reply.get("ok"), reply)
            with self.assertRaises(xenchan.NotFoundError) as ctx:
                await fleet.locate_domain("no-such-vm")
            self.assertEqual(ctx.exception.reason, "DOMAIN_NOT_FOUND")
            async with fleet.watch_fleet() as watch:
                async for event in watch:
                    if event.type == fpb.FLEET_EVENT_TYPE_SYNCED:
                        break
                self.assertGreater(watch.revision, 0)
            async with xenchan.aio.connect_fleet(self.lone.target) as lone:
                with self.assertRaises(xenchan.FailedPreconditionError) as ctx:
                    await lone.locate_domain("vm-b")
                self.assertEqual(ctx.exception.reason, "FLEET_NOT_CONFIGURED")

            fd = self.durable_log("vm-n")
            os.write(fd, b"one\n")
            async with await fleet.read("vm-n", LOG, follow=True) as stream:
                got = [await stream.__anext__()]
                self.assertEqual(got[0].data.data, b"one\n")
                first_epoch = stream.position.epoch
                os.write(fd, b"two\n")
                self.until_received("vm-n", 8)
                self.a.migrate("vm-n", self.b)
                os.write(fleet_harness.until(lambda: self._open_b("vm-n"),
                                             "vm-n's channel on host-b"), b"three\n")
                async for resp in stream:
                    got.append(resp)
                    if resp.HasField("data") and resp.data.data.endswith(b"three\n"):
                        break
                self.check_follow(got, first_epoch, stream)

    def test_restart_of_the_owner(self):
        """The owner's xenchand restarts under a following read (UNAVAILABLE): the follower waits
        for the domain's record (the graceful stop revoked the host's lease, so it is gone until
        the host publishes again), reconnects to the same host and reads what the guest writes
        after the restart."""
        with xenchan.connect(self.a.target) as client_a:
            client_a.create_channel("vm-a", LOG, wait=True)
        self.locate("vm-a", "host-a")
        stream = self.fleet.read("vm-a", LOG, follow=True)
        self.addCleanup(stream.close)
        self.a.stop_xenchand()
        self.a.start_xenchand()
        self.locate("vm-a", "host-a")
        os.write(self.a.open_tty("vm-a", LOG), b"after restart\n")
        got = b""
        for resp in stream:
            self.assertFalse(resp.HasField("gap"))
            if resp.HasField("data"):
                got += resp.data.data
            if got.endswith(b"\n"):
                break
        self.assertEqual(got, b"after restart\n")
        self.assertEqual(stream.moves, 0)
        self.assertEqual(stream.location.host.host_id, "host-a")

    def _open_b(self, domain):
        with xenchan.connect(self.b.target) as client_b:
            try:
                ch = client_b.get_channel(domain + "/" + LOG)
            except xenchan.XenchanError:
                return None
        if ch.state != res.CHANNEL_STATE_CONNECTED:
            return None
        return self.b.open_tty(domain, LOG)


if __name__ == "__main__":
    unittest.main()
