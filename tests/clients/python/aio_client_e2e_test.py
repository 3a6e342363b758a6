"""The asyncio Python client (xenchan.aio) end to end: every RPC against the real xenchand on a
real xensim, with the real xenchan-agent answering Calls and the test acting as the guest on a
second channel's raw tty; typed errors; Read and WatchChannels resumed across a xenchand restart
on the same state directory.
"""

import asyncio
import os
import unittest

import harness
import xenchan
import xenchan.aio
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import resources_pb2 as res

AGENT = "org.xenchan.agent.0"
FAST = xenchan.RetryPolicy(initial_backoff=0.05, max_backoff=0.5, max_attempts=60)


async def wait_event(watch, kinds, channel_id=None):
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    async for event in watch:
        if event.type in kinds and (channel_id is None or event.channel.channel_id == channel_id):
            return event
    raise AssertionError("watch ended before %s" % (kinds,))


async def first_data(stream):
    async for event in stream:
        if event.HasField("data"):
            return event.data
    raise AssertionError("stream ended without data")


class AioClientTest(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = harness.Host(["vm1", "vm2"])
        cls.host_ready = False

    @classmethod
    def tearDownClass(cls):
        cls.host.stop()

    async def asyncSetUp(self):
        self.client = xenchan.aio.connect(self.host.target, retry=FAST)
        if not type(self).host_ready:
            await self.client.create_channel("vm1", AGENT, wait=True)
            self.host.start_agent("vm1")
            type(self).host_ready = True

    async def asyncTearDown(self):
        await self.client.close()

    async def test_domains_and_channel_lifecycle(self):
        c = self.client
        self.assertEqual({d.display_name async for d in c.list_domains(page_size=1)},
                         {"vm1", "vm2"})
        vm2 = await c.get_domain("vm2")
        ch = await c.create_channel("vm2", "aio.life.0", durable=True, framing=b"\x00")
        self.assertEqual(ch.config.lifetime, res.CHANNEL_LIFETIME_DURABLE)
        self.assertEqual(ch.config.default_framing.delimiter.delimiter, b"\x00")
        self.assertTrue(ch.name.startswith(vm2.name + "/channels/"))
        self.assertEqual((await c.get_channel("vm2/aio.life.0")).uid, ch.uid)
        self.assertIn("aio.life.0", [x.channel_id async for x in c.list_channels(
            "vm2", channel_id_prefix="aio.")])
        updated = await c.update_channel(ch.name, lifetime=res.CHANNEL_LIFETIME_INCARNATION,
                                         overflow_policy=res.OVERFLOW_POLICY_DROP_OLDEST)
        self.assertEqual(updated.config.lifetime, res.CHANNEL_LIFETIME_INCARNATION)
        self.assertEqual(updated.config.overflow_policy, res.OVERFLOW_POLICY_DROP_OLDEST)
        with self.assertRaises(xenchan.AlreadyExistsError) as ctx:
            await c.create_channel("vm2", "aio.life.0")
        self.assertEqual(ctx.exception.channel.uid, ch.uid)
        deleted = await c.delete_channel(ch.name, force_after=0)
        self.assertEqual(deleted.channel.state, res.CHANNEL_STATE_CLOSED)
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            await c.delete_channel(ch.name)
        self.assertEqual(ctx.exception.reason, "CHANNEL_NOT_FOUND")
        with self.assertRaises(xenchan.NotFoundError) as ctx:
            await c.get_domain("nobody")
        self.assertEqual(ctx.exception.reason, "DOMAIN_NOT_FOUND")

    async def test_call_the_agent(self):
        name = "vm1/" + AGENT
        self.assertEqual((await self.client.call_json(name, {"op": "ping"}))["op"], "pong")
        resp = await self.client.call_response(name, '{"op":"hello","id":"a"}')
        self.assertIn(b'"id":"a"', resp.response)
        self.assertGreater(resp.epoch, 0)
        with self.assertRaises(xenchan.InvalidArgumentError) as ctx:
            await self.client.call(name, b"x" * (64 * 1024 + 1))
        self.assertEqual(ctx.exception.reason, "PAYLOAD_TOO_LARGE")

    async def test_write_read_attach_watch(self):
        c = self.client
        async with c.watch_channels("vm2", channel_id_prefix="aio.rw") as watch:
            await wait_event(watch, pb.CHANNEL_EVENT_TYPE_SYNCED)
            ch = await c.create_channel("vm2", "aio.rw.0", wait=True)
            await wait_event(watch, pb.CHANNEL_EVENT_TYPE_APPEARED, "aio.rw.0")
            await wait_event(watch, pb.CHANNEL_EVENT_TYPE_CONNECTED, "aio.rw.0")
            fd = self.host.open_tty("vm2", "aio.rw.0")

            async with c.writer(ch.name, ack_level="accepted") as w:
                await w.write(b"hello ")
                await w.write(b"guest\n")
            self.assertEqual(w.progress.accepted_bytes, 12)
            self.assertEqual(harness.read_exactly(fd, 12), b"hello guest\n")
            self.assertEqual((await c.write(ch.name, b"again\n")).accepted_bytes, 6)
            self.assertEqual(harness.read_exactly(fd, 6), b"again\n")

            async with c.attach(ch.name, role="writer", ack_level="delivered") as session:
                with self.assertRaises(xenchan.FailedPreconditionError) as ctx:
                    await c.write(ch.name, b"x")
                self.assertEqual(ctx.exception.lease_holder.session_id,
                                 session.opened.session_id)
                await wait_event(watch, pb.CHANNEL_EVENT_TYPE_LEASE_CHANGED, "aio.rw.0")
                seq = await session.send(b"cmd\n")
                await session.wait_for_ack(seq, "delivered")
                self.assertEqual(harness.read_exactly(fd, 4), b"cmd\n")
                os.write(fd, b"reply\n")
                self.assertEqual((await first_data(session)).data, b"reply\n")

            os.write(fd, b"more\n")
            data = b""
            async with c.read(ch.name, follow=True, max_bytes=11) as stream:
                async for r in stream:
                    data += r.data.data
            self.assertEqual(data, b"reply\nmore\n")
            self.assertEqual(await c.read_bytes(ch.name, start=(stream.position.epoch, 6)),
                             b"more\n")
            with self.assertRaises(xenchan.OutOfRangeError) as ctx:
                await c.read_bytes(ch.name, start=(stream.position.epoch, 999))
            self.assertEqual(ctx.exception.retained_range.next_position.offset, 11)
            await c.delete_channel(ch.name, force_after=0)
            await wait_event(watch, pb.CHANNEL_EVENT_TYPE_REMOVED, "aio.rw.0")


class AioResumeAcrossRestartTest(unittest.IsolatedAsyncioTestCase):
    """xenchand stops (SIGTERM) and starts again on the same state directory."""

    async def test_read_and_watch_resume(self):
        host = harness.Host(["vm1"])
        self.addCleanup(host.stop)
        async with xenchan.aio.connect(host.target, retry=FAST) as c:
            ch = await c.create_channel("vm1", "data.0", wait=True)
            fd = host.open_tty("vm1", "data.0")
            os.write(fd, b"before\n")
            reader = c.read(ch.name, follow=True, skip_lost=True)
            watch = c.watch_channels("vm1")
            self.assertEqual((await first_data(reader)).data, b"before\n")
            await wait_event(watch, pb.CHANNEL_EVENT_TYPE_SYNCED)
            # Stopping waits for xenchand to exit; the loop keeps serving the streams meanwhile.
            self.assertEqual(await asyncio.get_running_loop().run_in_executor(
                None, host.stop_xenchand), 0)
            await asyncio.get_running_loop().run_in_executor(None, host.start_xenchand)
            os.write(fd, b"after\n")
            data = await first_data(reader)
            self.assertEqual(data.data, b"after\n")
            self.assertGreater(data.epoch, ch.epoch)
            self.assertGreaterEqual(reader.resumes, 1)
            self.assertEqual(len(reader.lost), 1)
            await c.create_channel("vm1", "later.0")
            await wait_event(watch, (pb.CHANNEL_EVENT_TYPE_EXISTING,
                                     pb.CHANNEL_EVENT_TYPE_APPEARED), "later.0")
            self.assertEqual(watch.relists, 1)
            await reader.aclose()
            await watch.aclose()


if __name__ == "__main__":
    unittest.main()
