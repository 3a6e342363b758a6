"""The processes of the Ansible plugin's end-to-end tests: harness.Host (the real xensim, and the
real xenchand on it, with an audit log) plus Debian's real qemu-ga inside simulated guests, on
each guest's `org.qemu.guest_agent.0` channel, kept running by a supervisor as systemd would.

qemu-ga runs on this machine (the simulated guest is a directory), as the test's user, with
HOME and its state in the scratch directory and the commands that would change the machine
blocked; commands the tests run touch only their temp directories. No sleeps: waits read
process output or wait on conditions, each up to a deadline.
"""

import os
import subprocess
import threading
from typing import Dict, List, Optional

import harness
import xenchan
from ansible_collections.xenchan.xen.plugins.plugin_utils.guest_agent import GuestAgent

QEMU_GA = "/usr/sbin/qemu-ga"
QGA_CHANNEL = "org.qemu.guest_agent.0"

# What the test machine must not let a test do (qemu-ga acts on its own host, this machine).
BLOCKED = [
    "guest-shutdown", "guest-set-time", "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw", "guest-fstrim", "guest-suspend-disk", "guest-suspend-ram",
    "guest-suspend-hybrid", "guest-set-vcpus", "guest-set-user-password",
    "guest-set-memory-blocks", "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
]


class QgaSupervisor:
    """qemu-ga on one tty, started again whenever it exits (as `Restart=always` does) until
    stop(). Writes the current pid to `pid_file`. Thread-safe."""

    def __init__(self, tty: str, work_dir: str, home: str, extra_blocked: List[str]) -> None:
        self.tty = tty
        self.work_dir = work_dir
        self.pid_file = os.path.join(work_dir, "qemu-ga.pid")
        self.log_file = os.path.join(work_dir, "qemu-ga.log")
        os.makedirs(os.path.join(work_dir, "state"), exist_ok=True)
        self._argv = [QEMU_GA, "-m", "isa-serial", "-p", tty, "-t",
                      os.path.join(work_dir, "state"), "-l", self.log_file, "-v",
                      "-b", ",".join(BLOCKED + extra_blocked)]
        self._env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home, "LANG": "C.UTF-8"}
        self._cv = threading.Condition()
        self._stopping = False
        self._proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    return
                self._proc = subprocess.Popen(self._argv, env=self._env,
                                              stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
                with open(self.pid_file + ".new", "w") as f:
                    f.write("%d\n" % self._proc.pid)
                os.replace(self.pid_file + ".new", self.pid_file)
                self.starts += 1
                self._cv.notify_all()
                proc = self._proc
            proc.wait()

    def wait_starts(self, n: int, timeout: float = 30.0) -> bool:
        """Waits until qemu-ga has been started n times in all."""
        with self._cv:
            return self._cv.wait_for(lambda: self.starts >= n, timeout)

    def log(self) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        self._thread.join(timeout=30)


class QgaHost:
    """xensim + xenchand (audited) with `domains`; those in `agents` (domain -> commands to block
    besides BLOCKED) get a qemu-ga channel and a supervised qemu-ga that answers."""

    def __init__(self, domains: List[str], agents: Dict[str, List[str]],
                 xenchand_flags: Optional[List[str]] = None) -> None:
        self.host = harness.Host(domains)
        self.scratch = self.host.scratch
        self.audit_log = os.path.join(self.scratch, "audit.log")
        self.guest_home = os.path.join(self.scratch, "guest-home")
        os.makedirs(self.guest_home)
        self.agents: Dict[str, QgaSupervisor] = {}
        try:
            self.host.stop_xenchand()
            self.host.start_xenchand(["--audit-log=" + self.audit_log] + (xenchand_flags or []))
            self.client = xenchan.connect(self.host.target)
            for domain, blocked in agents.items():
                self.client.create_channel(domain, QGA_CHANNEL, framing="qga", wait=True,
                                           connect_timeout=30)
                self.agents[domain] = QgaSupervisor(
                    self.host.tty_path(domain, QGA_CHANNEL),
                    os.path.join(self.scratch, "qga-" + domain), self.guest_home, blocked)
                GuestAgent(self.client, domain).wait_ready(40)
        except Exception:
            self.stop()
            raise

    @property
    def target(self) -> str:
        return self.host.target

    def audit(self) -> str:
        try:
            with open(self.audit_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        if getattr(self, "client", None) is not None:
            self.client.close()
        self.host.stop()
