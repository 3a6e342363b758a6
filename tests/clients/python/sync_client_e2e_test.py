"""The synchronous Python client (xenchan.Client) end to end: every RPC against the real xenchand
on a real xensim, with the real xenchan-agent answering Calls in a simulated guest and the test
acting as the guest on a second channel's tty (raw), so that every byte can be checked on both
sides. Also: errors mapped to typed exceptions with reasons and details, and Read and
WatchChannels resumed across a xenchand restart on the same state (the streams really break: the
old server ends them with UNAVAILABLE (SHUTTING_DOWN)).
"""

import os
import unittest
from concurrent import futures

import grpc

import harness
import xenchan
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import resources_pb2 as res

AGENT = "org.xenchan.agent.0"
FAST = xenchan.RetryPolicy(initial_backoff=0.05, max_backoff=0.5, max_attempts=60)


def wait_event(watch, kinds, channel_id=None):
    """The next watch event of one of `kinds` (for `channel_id`), skipping others."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    for event in watch:
        if event.type in kinds and (channel_id is None or event.channel.channel_id == channel_id):
            return event
    raise AssertionError("watch ended before %s" % kinds)


class SyncClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = harness.Host(["vm1", "vm2"])
        cls.client = xenchan.connect(cls.host.target, retry=FAST)
        cls.agent = cls.client.create_channel("vm1", AGENT, wait=True)
        cls.host.start_agent("vm1")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.host.stop()

    def data_channel(self, channel_id):
        ch = self.client.create_channel("vm2", channel_id, wait=True)
        self.addCleanup(self.client.delete_channel, ch.name, force_after=0)
        return ch, self.host.open_tty("vm2", channel_id)

    def test_domains(self):
        domains = {d.display_name: d for d in self.client.list_domains(page_size=1)}
        self.assertEqual(set(domains), {"vm1", "vm2"})
        vm1 = self.client.get_domain("vm1")
        self.assertEqual(vm1.uuid, domains["vm1"].uuid)
        self.assertEqual(self.client.get_domain(vm1.name).state, res.DOMAIN_STATE_RUNNING)
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            self.client.get_domain("no-such-vm")
        self.assertEqual(ctx.exception.reason, "DOMAIN_NOT_FOUND")
        self.assertEqual(ctx.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_channel_lifecycle(self):
        would = self.client.create_channel("vm2", "life.0", validate_only=True,
                                           buffer_limit_bytes=65536)
        self.assertEqual(would.state, res.CHANNEL_STATE_CREATING)
        with self.assertRaises(xenchan.NotFoundError):
            self.client.get_channel("vm2/life.0")  # validate_only created nothing
        ch = self.client.create_channel("vm2", "life.0", framing="length_prefix",
                                        buffer_limit_bytes=65536)
        self.assertEqual(ch.config.buffer_limit_bytes, 65536)
        self.assertEqual(ch.config.default_framing.WhichOneof("kind"), "length_prefix")
        ref = xenchan.parse_channel_name(ch.name)
        self.assertEqual(ref.channel_id, "life.0")
        self.assertEqual(self.client.get_channel(ch.name).uid, ch.uid)
        self.assertEqual(self.client.get_channel("vm2/life.0").uid, ch.uid)
        listed = [c.channel_id for c in self.client.list_channels("vm2", page_size=1)]
        self.assertIn("life.0", listed)
        self.assertEqual([c.channel_id for c in self.client.list_channels(
            channel_id_prefix="life.")], ["life.0"])
        self.assertNotIn("life.0", [c.channel_id for c in self.client.list_channels(
            states=[res.CHANNEL_STATE_FAILED])])

        with self.assertRaises(xenchan.AlreadyExistsError) as ctx:
            self.client.create_channel("vm2", "life.0")
        self.assertEqual(ctx.exception.reason, "CHANNEL_EXISTS")
        self.assertEqual(ctx.exception.channel.uid, ch.uid)  # the typed detail
        with self.assertRaises(xenchan.InvalidArgumentError) as ctx:
            self.client.create_channel("vm2", "-bad id")
        self.assertEqual(ctx.exception.reason, "INVALID_CHANNEL_ID")

        updated = self.client.update_channel(ch.name, buffer_limit_bytes=131072,
                                             default_framing="newline")
        self.assertEqual(updated.config.buffer_limit_bytes, 131072)
        self.assertEqual(updated.config.default_framing.WhichOneof("kind"), "newline")
        self.assertEqual(self.client.get_channel(ch.name).config.buffer_limit_bytes, 131072)
        cfg = res.ChannelConfig(overflow_policy=res.OVERFLOW_POLICY_DROP_OLDEST,
                                write_queue_limit_bytes=65536)  # not in the mask: ignored
        updated = self.client.update_channel(ch.name, config=cfg,
                                             update_mask=["config.overflow_policy"])
        self.assertEqual(updated.config.overflow_policy, res.OVERFLOW_POLICY_DROP_OLDEST)
        self.assertEqual(updated.config.buffer_limit_bytes, 131072)
        self.assertEqual(updated.config.write_queue_limit_bytes, ch.config.write_queue_limit_bytes)
        with self.assertRaises(xenchan.InvalidArgumentError) as ctx:
            self.client.update_channel(ch.name, config=cfg, update_mask=["devid"])
        self.assertEqual(ctx.exception.reason, "INVALID_OPTION")
        self.assertTrue(ctx.exception.field_violations, ctx.exception.details)
        with self.assertRaises(ValueError):
            self.client.update_channel(ch.name)  # no field: refused before any RPC

        deleted = self.client.delete_channel(ch.name, force_after=0)
        self.assertEqual(deleted.channel.state, res.CHANNEL_STATE_CLOSED)
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            self.client.get_channel(ch.name)
        self.assertEqual(ctx.exception.reason, "CHANNEL_NOT_FOUND")
        self.assertEqual(ctx.exception.reason_value, xenchan.v1.errors_pb2.ERROR_REASON_CHANNEL_NOT_FOUND)

    def test_call_the_agent(self):
        name = self.agent.name
        self.assertEqual(self.client.call_json(name, {"op": "ping"})["op"], "pong")
        resp = self.client.call_response(name, b'{"op":"hello","id":7}', framing="newline")
        self.assertEqual(resp.epoch, self.client.get_channel(name).epoch)
        self.assertIn(b'"id":7', resp.response)
        with self.assertRaises(xenchan.InvalidArgumentError) as ctx:
            self.client.call(name, b"x" * (64 * 1024 + 1))
        self.assertEqual(ctx.exception.reason, "PAYLOAD_TOO_LARGE")
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            self.client.call("vm1/org.nobody.0", b"{}")
        self.assertEqual(ctx.exception.reason, "CHANNEL_NOT_FOUND")
        self.assertEqual(ctx.exception.metadata.get("channel"), "domains/vm1/channels/org.nobody.0")

    def test_write_and_read(self):
        ch, fd = self.data_channel("rw.0")
        with futures.ThreadPoolExecutor(1) as guest:
            received = guest.submit(harness.read_exactly, fd, 90003)  # the guest reads meanwhile
            with self.client.writer(ch.name, ack_level="delivered", timeout=20) as w:
                w.write(b"abc")
                w.write(b"def" * 30000)  # several 64 KiB messages
            self.assertEqual(w.progress.accepted_bytes, 90003)
            self.assertEqual(w.progress.delivered_bytes, 90003)
            self.assertEqual(received.result(), b"abc" + b"def" * 30000)
        progress = self.client.write(ch.name, "tail\n")
        self.assertEqual(progress.accepted_bytes, 5)
        self.assertEqual(harness.read_exactly(fd, 5), b"tail\n")

        os.write(fd, b"guest says hi\n")
        os.write(fd, b"and more\n")
        stream = self.client.read(ch.name, follow=True, max_bytes=23)
        got = b"".join(r.data.data for r in stream if r.HasField("data"))
        self.assertEqual(got, b"guest says hi\nand more\n")
        self.assertEqual(stream.position.offset, 23)
        self.assertEqual(self.client.read_bytes(ch.name, start=(stream.position.epoch, 14)),
                         b"and more\n")
        self.assertEqual(self.client.read_bytes(ch.name, start="next"), b"")
        with self.assertRaises(xenchan.OutOfRangeError) as ctx:
            self.client.read_bytes(ch.name, start=(stream.position.epoch, 1000))
        self.assertEqual(ctx.exception.reason, "OFFSET_NOT_RETAINED")
        self.assertEqual(ctx.exception.retained_range.next_position.offset, 23)

    def test_attach(self):
        ch, fd = self.data_channel("attach.0")
        with self.client.attach(ch.name, role="writer", ack_level="delivered") as session:
            self.assertEqual(session.opened.role, pb.SESSION_ROLE_WRITER)
            with self.assertRaises(xenchan.FailedPreconditionError) as ctx:
                self.client.write(ch.name, b"x")
            self.assertEqual(ctx.exception.reason, "LEASE_HELD")
            self.assertEqual(ctx.exception.lease_holder.session_id, session.opened.session_id)
            seq = session.send(b"ping\n")
            session.wait_for_ack(seq, "delivered")
            self.assertEqual(harness.read_exactly(fd, 5), b"ping\n")
            with self.client.attach(ch.name, role="observer", start="earliest") as observer:
                os.write(fd, b"pong\n")
                self.assertEqual(next(e for e in session if e.HasField("data")).data.data,
                                 b"pong\n")
                self.assertEqual(next(e for e in observer if e.HasField("data")).data.data,
                                 b"pong\n")
            stale = session.send(b"stale", expected_epoch=ch.epoch + 100)
            with self.assertRaises(xenchan.AbortedError) as ctx:
                session.wait_for_ack(stale)
            self.assertEqual(ctx.exception.reason, "EPOCH_CHANGED")
        self.assertEqual(self.client.get_channel(ch.name).write_lease.session_id, "")
        with self.assertRaises(xenchan.NotFoundError):
            self.client.attach("vm2/none.0", role="observer")

    def test_watch(self):
        with self.client.watch_channels("vm2") as watch:
            wait_event(watch, pb.CHANNEL_EVENT_TYPE_SYNCED)
            synced_at = watch.revision
            self.assertGreater(synced_at, 0)
            ch = self.client.create_channel("vm2", "watched.0")
            appeared = wait_event(watch, pb.CHANNEL_EVENT_TYPE_APPEARED, "watched.0")
            self.assertGreater(appeared.revision, synced_at)
            self.client.delete_channel(ch.name, force_after=0)
            removed = wait_event(watch, pb.CHANNEL_EVENT_TYPE_REMOVED, "watched.0")
            self.assertEqual(removed.removal_reason, pb.REMOVAL_REASON_DELETED)
            last = watch.revision
        # Resuming from a revision replays what came after it.
        with self.client.watch_channels("vm2", start_revision=synced_at) as replay:
            self.assertEqual(wait_event(replay, pb.CHANNEL_EVENT_TYPE_REMOVED).revision, last)
        with self.assertRaises(xenchan.OutOfRangeError) as ctx:
            next(iter(self.client.watch_channels("vm2", start_revision=last + 10 ** 9)))
        self.assertEqual(ctx.exception.reason, "REVISION_NOT_RETAINED")
        self.assertGreaterEqual(ctx.exception.retained_revisions.current_revision, last)

    def test_nothing_listening_is_unavailable(self):
        target = xenchan.unix_target(os.path.join(self.host.scratch, "nobody.sock"))
        with xenchan.connect(target, retry=xenchan.RetryPolicy(max_attempts=1,
                                                               initial_backoff=0.01)) as c:
            with self.assertRaises(xenchan.UnavailableError) as ctx:
                c.get_channel(self.agent.name, timeout=5)
        self.assertTrue(ctx.exception.retryable)
        self.assertEqual(ctx.exception.reason, "")
        self.assertIsInstance(ctx.exception, grpc.RpcError)


class SyncResumeAcrossRestartTest(unittest.TestCase):
    """xenchand stops (SIGTERM) and starts again on the same state directory."""

    def setUp(self):
        self.host = harness.Host(["vm1"])
        self.addCleanup(self.host.stop)
        self.client = xenchan.connect(self.host.target, retry=FAST)
        self.addCleanup(self.client.close)
        self.ch = self.client.create_channel("vm1", "data.0", wait=True)
        self.fd = self.host.open_tty("vm1", "data.0")

    def restart(self):
        self.assertEqual(self.host.stop_xenchand(), 0)
        self.host.start_xenchand()

    def test_read_and_watch_resume(self):
        os.write(self.fd, b"before\n")
        reader = self.client.read(self.ch.name, follow=True, skip_lost=True)
        strict = self.client.read(self.ch.name, follow=True)
        watch = self.client.watch_channels()
        self.assertEqual(next(reader).data.data, b"before\n")
        self.assertEqual(next(strict).data.data, b"before\n")
        wait_event(watch, pb.CHANNEL_EVENT_TYPE_SYNCED)
        self.restart()
        os.write(self.fd, b"after\n")
        data = next(r for r in reader if r.HasField("data"))
        self.assertEqual(data.data.data, b"after\n")
        self.assertGreater(data.data.epoch, self.ch.epoch)  # SERVER_RESTARTED began a new epoch
        self.assertGreaterEqual(reader.resumes, 1)
        self.assertEqual(len(reader.lost), 1)  # epoch 1 is gone with the old server's buffer
        with self.assertRaises(xenchan.OutOfRangeError) as ctx:
            next(strict)
        self.assertEqual(ctx.exception.retained_range.earliest_position.epoch, data.data.epoch)
        # The watch reconnects when next iterated; the new server does not know the old
        # revision, so it starts over with a snapshot, in which the channel made meanwhile is.
        self.client.create_channel("vm1", "later.0")
        seen = wait_event(watch, (pb.CHANNEL_EVENT_TYPE_EXISTING, pb.CHANNEL_EVENT_TYPE_APPEARED),
                          "later.0")
        self.assertEqual(seen.type, pb.CHANNEL_EVENT_TYPE_EXISTING)
        self.assertEqual(watch.relists, 1)
        wait_event(watch, pb.CHANNEL_EVENT_TYPE_SYNCED)
        self.client.delete_channel("vm1/later.0", force_after=0)
        wait_event(watch, pb.CHANNEL_EVENT_TYPE_REMOVED, "later.0")
        for s in (reader, strict, watch):
            s.close()

    def test_shutdown_ends_streams_with_unavailable_when_not_retrying(self):
        once = xenchan.RetryPolicy(max_attempts=0)
        reader = self.client.read(self.ch.name, follow=True, retry=once)
        os.write(self.fd, b"x")
        self.assertEqual(next(reader).data.data, b"x")
        self.assertEqual(self.host.stop_xenchand(), 0)
        with self.assertRaises(xenchan.UnavailableError) as ctx:
            next(reader)
        self.assertIn(ctx.exception.reason, ("SHUTTING_DOWN", ""))
        self.assertTrue(ctx.exception.retryable)


if __name__ == "__main__":
    unittest.main()
