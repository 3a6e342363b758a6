"""The Ansible plugin's transport (clients/ansible/plugins/plugin_utils/guest_agent.py) end to end,
without Ansible: the real xenchand on xensim and a real qemu-ga in the simulated guest. Transfers
at the chunk boundaries and of every byte value, exit codes and stderr, timeouts that kill the
process tree, qemu-ga restarting under a command, and the documented failures (no channel, not
connected, agent refuses, no answer)."""

import base64
import hashlib
import os
import subprocess
import tempfile
import time
import unittest

import qga_host
import xenchan
from ansible_collections.xenchan.xen.plugins.plugin_utils import guest_agent as ga


def _state(pid: int) -> str:
    """The process state letter of pid ("" once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Waits (bounded) for a SIGKILLed pid to be dead: gone or a zombie. Delivery and the parent's
    reaping are asynchronous, and nothing signals them to this process."""
    deadline = time.monotonic() + timeout
    while _state(pid) not in ("", "Z"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class GuestAgentTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        cls.h = qga_host.QgaHost(["g1", "g2", "g3", "g4"],
                                 {"g1": [], "g2": ["guest-exec", "guest-file-open"]})
        # g3: a durable channel, then the domain goes down: NOT_CONNECTED. g4: no channel.
        cls.h.client.create_channel("g3", qga_host.QGA_CHANNEL, framing="qga", durable=True,
                                    wait=True, connect_timeout=30)
        cls.h.host.cli("domain", "destroy", "g3")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.h.stop()

    def setUp(self) -> None:
        self.agent = ga.GuestAgent(self.h.client, "g1", call_timeout=20)
        self.dir = tempfile.mkdtemp(prefix="ga-", dir=self.h.scratch)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def roundtrip(self, data: bytes) -> bytes:
        with open(self.path("in"), "wb") as f:
            f.write(data)
        self.assertEqual(self.agent.put(self.path("in"), self.path("guest")), len(data))
        with open(self.path("guest"), "rb") as f:
            self.assertEqual(f.read(), data, "what the guest wrote")
        self.assertEqual(self.agent.fetch(self.path("guest"), self.path("out")), len(data))
        with open(self.path("out"), "rb") as f:
            return f.read()

    def test_transfers_at_chunk_boundaries(self) -> None:
        for n in (0, 1, ga.WRITE_CHUNK - 1, ga.WRITE_CHUNK, ga.WRITE_CHUNK + 1,
                  ga.READ_CHUNK, ga.READ_CHUNK + 1):
            data = os.urandom(n)
            self.assertEqual(self.roundtrip(data), data, "%d bytes" % n)

    def test_every_byte_value_over_three_mib(self) -> None:
        data = bytes(range(256)) * (3 * 4096 + 17)  # 3 MiB + 4352 bytes
        back = self.roundtrip(data)
        self.assertEqual(hashlib.sha256(back).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_big_commands_in_a_row_are_each_answered(self) -> None:
        # One Call per write chunk, as put() sends them, each with a deadline far above the few
        # milliseconds it takes: every one is answered. qemu-ga loses a reply it writes while
        # input it has not parsed waits in its read buffer (GLib fails the write with "Illegal
        # seek"); when xenchand sent the command right behind its guest-sync-delimited, a big
        # command's bytes were often waiting there when the sync reply was written, and the Call
        # ended DEADLINE_EXCEEDED with the command's reply left for the next Call to discard.
        client, channel = self.h.client, self.agent.channel
        log_from = len(self.h.agents["g1"].log())
        handle = client.qga(channel, "guest-file-open", {"path": self.path("big"), "mode": "w"},
                            timeout=5)
        chunk = base64.b64encode(os.urandom(ga.WRITE_CHUNK)).decode()
        for i in range(40):
            start = time.monotonic()
            try:
                reply = client.qga(channel, "guest-file-write",
                                   {"handle": handle, "buf-b64": chunk}, timeout=5)
            except xenchan.errors.DeadlineExceededError as e:
                self.fail("write %d unanswered after %.2fs: %s" % (i, time.monotonic() - start, e))
            self.assertEqual(reply["count"], ga.WRITE_CHUNK, "write %d" % i)
        client.qga(channel, "guest-file-close", {"handle": handle}, timeout=5)
        self.assertEqual(os.path.getsize(self.path("big")), 40 * ga.WRITE_CHUNK)
        self.assertNotIn("Illegal seek", self.h.agents["g1"].log()[log_from:])

    def test_exit_code_stdout_stderr_stdin(self) -> None:
        r = self.agent.run(["/bin/sh", "-c", "cat; echo oops >&2; exit 7"], stdin=b"in\x00\xff")
        self.assertEqual((r.rc, r.stdout, r.stderr), (7, b"in\x00\xff", b"oops\n"))
        r = self.agent.run(["/bin/sh", "-c", "kill -TERM $$"])
        self.assertEqual(r.rc, 128 + 15)
        with self.assertRaises(ga.TransportError) as cm:
            self.agent.run(["/bin/true"], stdin=b"x" * (ga.MAX_INPUT + 1))
        self.assertEqual(cm.exception.kind, "too_large")

    def test_timeout_kills_the_process_tree(self) -> None:
        marker = self.path("survived")
        with self.assertRaises(ga.TransportError) as cm:
            # The outer shell, an inner one and its sleep: all three must go.
            self.agent.run(["/bin/sh", "-c", "/bin/sh -c 'sleep 30; touch %s'; touch %s"
                            % (marker, marker)], timeout=1)
        self.assertEqual(cm.exception.kind, "timeout")
        self.assertIn("killed", str(cm.exception))
        pid = int(str(cm.exception).split("pid ")[1].split()[0])
        self.assertTrue(_gone(pid), "pid %d still runs: %s" % (pid, _state(pid)))
        r = subprocess.run(["pgrep", "-f", "touch %s" % marker], capture_output=True)
        self.assertEqual(r.returncode, 1, "a child survived: %s" % r.stdout)
        self.assertFalse(os.path.exists(marker))

    def test_agent_restart_under_a_command_is_reported(self) -> None:
        sup = self.h.agents["g1"]
        started = self.agent.command("guest-exec", {"path": "/bin/sleep", "arg": ["30"]})
        starts = sup.starts
        with open(sup.pid_file) as f:
            os.kill(int(f.read()), 15)
        self.assertTrue(sup.wait_starts(starts + 1))
        self.agent.wait_ready(40)
        with self.assertRaises(ga.TransportError) as cm:
            self.agent._wait(started["pid"], None)
        self.assertEqual(cm.exception.kind, "agent_restarted")
        subprocess.run(["kill", str(started["pid"])])
        # And the next command works.
        self.assertEqual(self.agent.run(["/bin/echo", "back"]).stdout, b"back\n")

    def test_refused_by_the_agent(self) -> None:
        other = ga.GuestAgent(self.h.client, "g2", call_timeout=20)
        with self.assertRaises(ga.TransportError) as cm:
            other.run(["/bin/true"])
        self.assertEqual(cm.exception.kind, "refused")
        self.assertIn("guest-exec", str(cm.exception))
        self.assertIn("--block-rpcs", str(cm.exception))
        self.assertFalse(cm.exception.unreachable)
        with self.assertRaises(ga.TransportError) as cm:
            other.fetch("/etc/hostname", self.path("x"))
        self.assertEqual(cm.exception.kind, "refused")
        with self.assertRaises(ga.TransportError) as cm:
            self.agent.fetch(self.path("does-not-exist"), self.path("x"))
        self.assertEqual(cm.exception.kind, "refused")
        self.assertIn("does-not-exist", str(cm.exception))

    def test_missing_channel_domain_and_not_connected(self) -> None:
        for domain, kind in (("g4", "channel_missing"), ("nosuch", "channel_missing"),
                             ("g3", "not_connected")):
            with self.assertRaises(ga.TransportError, msg=domain) as cm:
                ga.GuestAgent(self.h.client, domain).wait_ready(5)
            self.assertEqual(cm.exception.kind, kind, str(cm.exception))
            self.assertTrue(cm.exception.unreachable)

    def test_no_answer_when_the_agent_is_not_running(self) -> None:
        # g1's channel with nobody reading it on a second channel id of g4.
        self.h.client.create_channel("g4", "org.qemu.guest_agent.1", framing="qga", wait=True,
                                     connect_timeout=30)
        with self.assertRaises(ga.TransportError) as cm:
            ga.GuestAgent(self.h.client, "g4", "org.qemu.guest_agent.1").wait_ready(2)
        self.assertEqual(cm.exception.kind, "no_answer")
        self.assertIn("is it running", str(cm.exception))

    def test_every_command_is_an_audited_call(self) -> None:
        self.agent.run(["/bin/true"])
        name = self.h.client.get_channel("g1/" + qga_host.QGA_CHANNEL).name  # by UUID
        calls = [line for line in self.h.audit().splitlines()
                 if '"resource":"%s"' % name in line and "ChannelService/Call" in line
                 and '"decision":"allowed"' in line]
        self.assertGreater(len(calls), 2)

    def test_unreachable_xenchand(self) -> None:
        with xenchan.connect("unix://" + self.path("nothing.sock"), timeout=2) as c:
            with self.assertRaises(ga.TransportError) as cm:
                ga.GuestAgent(c, "g1").wait_ready(2)
        self.assertEqual(cm.exception.kind, "unreachable")


if __name__ == "__main__":
    unittest.main()
