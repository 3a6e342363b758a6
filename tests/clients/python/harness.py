"""The processes of the Python SDK's end-to-end tests: a real `xensim serve` (the simulated Xen
host), the real xenchand on it (--platform=sim), and the real xenchan-agent inside a simulated
guest. Binaries come from the environment (XENSIM, XENCHAND, XENCHAN_AGENT: paths in the test's
runfiles, set by e2e_test.sh).

Everything lives in a fresh /tmp/xcpy-* directory (TEST_TMPDIR is too long for Unix socket paths)
that stop() removes. No sleeps: every wait reads a process's output up to a deadline.
"""

import os
import select
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
import tty
from typing import List, Optional

XENSIM = os.environ.get("XENSIM", "")
XENCHAND = os.environ.get("XENCHAND", "")
XENCHAN_AGENT = os.environ.get("XENCHAN_AGENT", "")


class _LoggedProcess:
    """A child whose stderr (or stdout) a thread collects, so tests can wait for a line."""

    def __init__(self, argv: List[str], stream: str = "stderr") -> None:
        kwargs = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "stdin":
                  subprocess.DEVNULL}
        kwargs[stream] = subprocess.PIPE
        self.proc = subprocess.Popen(argv, **kwargs)
        self._pipe = getattr(self.proc, stream)
        self._log = ""
        self._cv = threading.Condition()
        self._eof = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for raw in iter(lambda: self._pipe.read1(65536), b""):
            with self._cv:
                self._log += raw.decode("utf-8", "replace")
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    @property
    def log(self) -> str:
        with self._cv:
            return self._log

    def wait_for(self, text: str, timeout: float = 30.0, after: int = 0) -> bool:
        """Waits until the output (from offset `after`) contains `text`."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while text not in self._log[after:]:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return False
                self._cv.wait(left)
            return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._thread.join(timeout=5)
        self._pipe.close()
        return rc


class Host:
    """xensim serve with guest domains, and xenchand (restartable, same state) on it, in one
    scratch directory. The domains are created before xenchand starts, so it knows them once it
    says ready (a domain created later is known only once xenchand has seen it appear)."""

    def __init__(self, domains: List[str]) -> None:
        self.scratch = tempfile.mkdtemp(prefix="xcpy-", dir="/tmp")
        self.state_dir = os.path.join(self.scratch, "s")
        self.socket = os.path.join(self.scratch, "x.sock")
        self.target = "unix://" + self.socket
        self.xensim = _LoggedProcess([XENSIM, "serve", "--state-dir", self.state_dir], "stdout")
        if not self.xensim.wait_for("xensim: ready state-dir=" + self.state_dir):
            raise RuntimeError("xensim did not start:\n" + self.xensim.log)
        self.xenchand: Optional[_LoggedProcess] = None
        self.agents: List[_LoggedProcess] = []
        self.ttys: List[int] = []
        try:
            for name in domains:
                self.cli("domain", "create", "--name", name)
            self.start_xenchand()
        except Exception:
            self.stop()
            raise

    def start_xenchand(self, extra: Optional[List[str]] = None) -> None:
        """Starts xenchand on the host's state (again, after stop_xenchand) and waits for ready."""
        self.xenchand = _LoggedProcess([XENCHAND, "--platform=sim",
                                        "--sim-state-dir=" + self.state_dir,
                                        "--listen=unix://" + self.socket] + (extra or []))
        if not self.xenchand.wait_for("msg=ready"):
            raise RuntimeError("xenchand did not start:\n" + self.xenchand.log)

    def stop_xenchand(self) -> int:
        assert self.xenchand is not None
        return self.xenchand.stop()

    def cli(self, *args: str) -> str:
        """Runs `xensim --state-dir S args...`; returns stdout (raises on failure)."""
        r = subprocess.run([XENSIM, "--state-dir", self.state_dir] + list(args),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("xensim %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def guest_root(self, name: str) -> str:
        return os.path.join(self.state_dir, "guests", name, "root")

    def tty_path(self, domain: str, channel_id: str) -> str:
        return os.path.join(self.guest_root(domain), "dev", "xen-channel", channel_id)

    def open_tty(self, domain: str, channel_id: str) -> int:
        """The guest's end of a channel, opened raw. The simulated guest makes the tty when the
        device appears, so it exists once the channel is CONNECTED."""
        fd = os.open(self.tty_path(domain, channel_id), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        tty.setraw(fd, termios.TCSANOW)
        self.ttys.append(fd)
        return fd

    def start_agent(self, domain: str) -> _LoggedProcess:
        """xenchan-agent in `domain` on org.xenchan.agent.0, once its tty is raw."""
        target_root = os.path.join(self.scratch, "target-" + domain)
        os.makedirs(target_root, exist_ok=True)
        agent = _LoggedProcess([XENCHAN_AGENT, "--root", self.guest_root(domain),
                                "--target-root", target_root, "--no-wait-connected"])
        self.agents.append(agent)
        if not agent.wait_for("(raw)"):
            raise RuntimeError("xenchan-agent did not open its channel:\n" + agent.log)
        return agent

    def stop(self) -> None:
        for fd in self.ttys:
            os.close(fd)
        for agent in self.agents:
            agent.stop()
        if self.xenchand is not None:
            self.xenchand.stop()
        self.xensim.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)


def read_exactly(fd: int, n: int, timeout: float = 20.0) -> bytes:
    """Reads n bytes from a guest tty (bounded by `timeout`)."""
    out = b""
    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("read %r of %d bytes" % (out, n))
        out += os.read(fd, n - len(out))
    return out
