# -*- coding: utf-8 -*-
"""QEMU guest agent operations over xenchand's Call: run a command, copy a file in, copy a file
out. The Ansible connection plugin `xenchan.xen.xenchan` is a thin shell over this module, which
knows nothing of Ansible (its tests drive it directly as well).

qemu-ga (in the guest, on the channel `org.qemu.guest_agent.0`) offers:
  guest-exec {path, arg, input-data, capture-output} -> {pid}
  guest-exec-status {pid} -> {exited, exitcode | signal, out-data, err-data, *-truncated}
  guest-file-open {path, mode} -> handle; guest-file-read {handle, count} -> {count, buf-b64, eof};
  guest-file-write {handle, buf-b64} -> {count, eof}; guest-file-close {handle}
Data travels as standard base64 with padding, as qemu-ga encodes and decodes it. Each command is
one Call in the QEMU guest agent framing (xenchand sends guest-sync-delimited first), so every
request fits xenchand's Call limits: a request of at most 64 KiB, a reply of at most 1 MiB. Writes
go in chunks of WRITE_CHUNK bytes, reads in chunks of READ_CHUNK.

qemu-ga cannot say when a command ends, so `run` polls guest-exec-status with a backoff from 10 ms
to 250 ms. Replies come from the guest and are checked before use (types, base64, sizes). A
reply that never comes (GUEST_TIMEOUT) is retried where that is safe: file chunks after
guest-file-seek back to their position, and guest-exec-status; never guest-exec itself.

Errors are TransportError, with `kind` saying which of the documented failures it is.
"""

import base64
import binascii
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import xenchan

MAX_CALL_REQUEST = 64 * 1024
"""xenchand's limit on a Call request (proto/xenchan/v1: "request at most 64 KiB")."""
# The JSON around the data takes well under 512 bytes.
WRITE_CHUNK = ((MAX_CALL_REQUEST - 512) // 4) * 3
"""Bytes of file data per guest-file-write: 48,768 (65,024 in base64)."""
READ_CHUNK = 256 * 1024
"""Bytes per guest-file-read: the reply (~350 KiB in base64) stays well inside 1 MiB."""
MAX_INPUT = WRITE_CHUNK
"""Largest standard input guest-exec can take in one request."""

# sh: stop $1, recurse into its children, then kill it (so nothing is reparented and missed).
_KILL_TREE = ('t() { kill -STOP "$1" 2>/dev/null; for c in $(cat /proc/"$1"/task/*/children '
              '2>/dev/null); do t "$c"; done; kill -KILL "$1" 2>/dev/null; kill -CONT "$1" '
              '2>/dev/null; }; t "$1"')

RETRIES = 2
"""How often a file chunk or guest-exec-status is retried when its reply was lost."""

_POLL_FIRST = 0.01
_POLL_MAX = 0.25


class TransportError(Exception):
    """A failure to reach or use the guest agent.

    Attributes:
      kind: what failed, one of
        "channel_missing"  the domain or its channel does not exist on this xenchand;
        "not_connected"    the channel exists but the guest has not connected (or is down);
        "no_answer"        the channel is connected but the agent did not answer in time;
        "refused"          the agent answered with an error (a disabled command, a bad path...);
        "agent_restarted"  the agent lost the command or file handle (it restarted meanwhile);
        "timeout"          the command ran longer than its timeout and was killed;
        "too_large"        a reply or input over xenchand's Call limits;
        "unreachable"      xenchand itself could not be used (down, TLS, permission);
        "protocol"         the agent's reply was malformed.
      unreachable: True when the host should be reported UNREACHABLE rather than FAILED.
    """

    UNREACHABLE_KINDS = ("channel_missing", "not_connected", "no_answer", "unreachable")

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def unreachable(self) -> bool:
        return self.kind in self.UNREACHABLE_KINDS


class ExecResult(NamedTuple):
    """What a command did: `rc` is its exit code, or 128 + the signal that ended it."""

    rc: int
    stdout: bytes
    stderr: bytes
    pid: int


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise TransportError("protocol", "qemu-ga sent %s that is not a string" % what)
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise TransportError("protocol", "qemu-ga sent %s that is not base64: %s" % (what, e))


def _int(reply: Dict[str, Any], key: str, what: str) -> int:
    value = reply.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TransportError("protocol", "qemu-ga's %s reply has no integer %r: %.200r"
                             % (what, key, reply))
    return value


class GuestAgent:
    """qemu-ga in one domain, reached through a xenchan.Client.

    Owns nothing: the client is the caller's (close it yourself). Not thread-safe; one per
    connection. `call_timeout` bounds each Call in seconds; `log` receives one line per command
    (Ansible's display.vvvv, or None).
    """

    def __init__(self, client: "xenchan.Client", domain: str,
                 channel_id: str = "org.qemu.guest_agent.0", *, call_timeout: float = 30.0,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.client = client
        self.channel = xenchan.channel_name(domain, channel_id)
        self.call_timeout = call_timeout
        self._log = log or (lambda line: None)

    # One command.

    def command(self, name: str, arguments: Optional[dict] = None,
                timeout: Optional[float] = None) -> Any:
        """Runs one qemu-ga command and returns its `return` value. Raises TransportError."""
        self._log("qemu-ga %s on %s" % (name, self.channel))
        try:
            return self.client.qga(self.channel, name, arguments,
                                   timeout=self.call_timeout if timeout is None else timeout)
        except xenchan.GuestAgentError as e:
            raise TransportError("refused", "qemu-ga refused %s: %s: %s%s"
                                 % (name, e.error_class, e.desc, _hint(name, e.desc)))
        except xenchan.XenchanError as e:
            raise _from_xenchan_error(e, self.channel, name)
        except ValueError as e:  # not JSON, or not a guest agent reply
            raise TransportError("protocol", "qemu-ga's reply to %s: %s" % (name, e))

    def wait_ready(self, timeout: float) -> None:
        """guest-ping until the agent answers, for at most `timeout` seconds. A just-(re)started
        qemu-ga may drop a request that arrives while it opens the channel, so each ping has a
        short deadline and is retried; NOT_CONNECTED and missing channels fail at once."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                self.command("guest-ping", timeout=max(0.5, min(3.0, left)))
                return
            except TransportError as e:
                if e.kind != "no_answer" or time.monotonic() >= deadline:
                    if e.kind == "no_answer":
                        raise TransportError("no_answer", "qemu-ga on %s did not answer within "
                                             "%gs: is it running in the guest?"
                                             % (self.channel, timeout))
                    raise

    # Commands.

    def run(self, argv: List[str], *, stdin: bytes = b"", timeout: float = 0,
            env: Optional[List[str]] = None) -> ExecResult:
        """Runs argv in the guest as qemu-ga's user and waits for it. `timeout` > 0: after that
        many seconds the process and its descendants are killed (SIGKILL; qemu-ga gives it no
        process group of its own, so they are found through /proc) and TransportError("timeout")
        is raised. An interruption (Ansible's task timeout, ^C) kills them too before it
        propagates."""
        if len(stdin) > MAX_INPUT:
            raise TransportError("too_large", "standard input of %d bytes is over the %d a "
                                 "guest-exec request can carry" % (len(stdin), MAX_INPUT))
        args: Dict[str, Any] = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
        if stdin:
            args["input-data"] = _b64encode(stdin)
        if env is not None:
            args["env"] = list(env)
        started = self.command("guest-exec", args)
        if not isinstance(started, dict):
            raise TransportError("protocol", "qemu-ga's guest-exec reply: %.200r" % (started,))
        pid = _int(started, "pid", "guest-exec")
        deadline = time.monotonic() + timeout if timeout > 0 else None
        finished = False
        try:
            status = self._wait(pid, deadline)
            finished = True
        finally:
            if not finished:
                self._kill(pid)
        if status is None:
            self._kill(pid)
            raise TransportError("timeout", "the command %r did not end within %gs; pid %d was "
                                 "killed" % (argv, timeout, pid))
        return self._result(pid, status)

    def _wait(self, pid: int, deadline: Optional[float]) -> Optional[Dict[str, Any]]:
        """Polls guest-exec-status until the process exits (its status) or the deadline (None)."""
        delay = _POLL_FIRST
        while True:
            try:
                status = self._status(pid)
            except TransportError as e:
                if e.kind == "refused":
                    raise TransportError("agent_restarted", "qemu-ga no longer knows the command "
                                         "(pid %d): it restarted while the command ran, whose "
                                         "result is lost (%s)" % (pid, e))
                raise
            if not isinstance(status, dict) or not isinstance(status.get("exited"), bool):
                raise TransportError("protocol", "qemu-ga's guest-exec-status: %.200r"
                                     % (status,))
            if status["exited"]:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(delay if deadline is None else
                       max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, _POLL_MAX)

    def _status(self, pid: int) -> Any:
        """guest-exec-status, retried when a reply is lost (it is idempotent until it reports the
        exit, and a lost exit report leaves an error the caller sees as agent_restarted)."""
        for attempt in range(RETRIES + 1):
            try:
                return self.command("guest-exec-status", {"pid": pid})
            except TransportError as e:
                if e.kind != "no_answer" or attempt == RETRIES:
                    raise
                self._log("%s; asking again" % e)

    def _kill(self, pid: int) -> None:
        """Kills pid and its descendants (each stopped first so it forks no more, then killed,
        found through /proc/PID/task/*/children), then one guest-exec-status so qemu-ga forgets
        it. Best effort: the agent may be gone as well."""
        try:
            self.command("guest-exec", {"path": "/bin/sh", "arg": ["-c", _KILL_TREE, "-",
                                                                   str(pid)]}, timeout=5)
            self.command("guest-exec-status", {"pid": pid}, timeout=5)
        except Exception:  # the original failure (or interruption) is what the caller must see
            pass

    @staticmethod
    def _result(pid: int, status: Dict[str, Any]) -> ExecResult:
        for key in ("out-truncated", "err-truncated"):
            if status.get(key) is True:
                raise TransportError("too_large", "qemu-ga truncated the command's output "
                                     "(%s): it keeps at most 16 MiB" % key)
        out = _b64decode(status.get("out-data", ""), "out-data")
        err = _b64decode(status.get("err-data", ""), "err-data")
        if "exitcode" in status:
            rc = _int(status, "exitcode", "guest-exec-status")
        elif "signal" in status:
            rc = 128 + _int(status, "signal", "guest-exec-status")
        else:
            raise TransportError("protocol", "qemu-ga's guest-exec-status has neither exitcode "
                                 "nor signal: %.200r" % (status,))
        return ExecResult(rc, out, err, pid)

    # Files.

    def put(self, local_path: str, remote_path: str) -> int:
        """Copies a local file to remote_path in the guest (created or truncated); the bytes sent."""
        handle = self._open(remote_path, "wb")
        sent = 0
        try:
            with open(local_path, "rb") as f:
                while True:
                    chunk = f.read(WRITE_CHUNK)
                    if not chunk:
                        break
                    self._retrying(handle, sent, remote_path,
                                   lambda: self._write(handle, chunk, remote_path))
                    sent += len(chunk)
        finally:
            self._close(handle, remote_path)
        return sent

    def _write(self, handle: int, chunk: bytes, remote_path: str) -> None:
        offset = 0
        while offset < len(chunk):
            reply = self._file_command("guest-file-write",
                                       {"handle": handle, "buf-b64": _b64encode(chunk[offset:])},
                                       remote_path)
            count = _int(reply, "count", "guest-file-write")
            if count <= 0 or count > len(chunk) - offset:
                raise TransportError("protocol", "qemu-ga wrote %d of %d bytes to %s"
                                     % (count, len(chunk) - offset, remote_path))
            offset += count

    def _retrying(self, handle: int, position: int, remote_path: str,
                  step: Callable[[], Any]) -> Any:
        """step() (one chunk at `position`); when its reply is lost (no_answer), seeks the handle
        back to `position` and tries again, at most RETRIES more times: a chunk is idempotent once
        its position is set."""
        for attempt in range(RETRIES + 1):
            try:
                return step()
            except TransportError as e:
                if e.kind != "no_answer" or attempt == RETRIES:
                    raise
                self._log("%s at %d of %s; seeking back" % (e, position, remote_path))
                self._file_command("guest-file-seek", {"handle": handle, "offset": position,
                                                       "whence": "set"}, remote_path)

    def fetch(self, remote_path: str, local_path: str) -> int:
        """Copies remote_path from the guest to a local file; the bytes received."""
        handle = self._open(remote_path, "rb")
        received = 0
        try:
            with open(local_path, "wb") as f:
                while True:
                    reply = self._retrying(handle, received, remote_path, lambda: (
                        self._file_command("guest-file-read",
                                           {"handle": handle, "count": READ_CHUNK},
                                           remote_path)))
                    count = _int(reply, "count", "guest-file-read")
                    data = _b64decode(reply.get("buf-b64", ""), "buf-b64")
                    if count != len(data) or count > READ_CHUNK:
                        raise TransportError("protocol", "qemu-ga's guest-file-read says %d bytes "
                                             "and sent %d" % (count, len(data)))
                    f.write(data)
                    received += count
                    if reply.get("eof") is True or count == 0:
                        break
        finally:
            self._close(handle, remote_path)
        return received

    def _open(self, remote_path: str, mode: str) -> int:
        reply = self.command("guest-file-open", {"path": remote_path, "mode": mode})
        if not isinstance(reply, int) or isinstance(reply, bool):
            raise TransportError("protocol", "qemu-ga's guest-file-open: %.200r" % (reply,))
        return reply

    def _file_command(self, name: str, arguments: dict, remote_path: str) -> Dict[str, Any]:
        try:
            reply = self.command(name, arguments)
        except TransportError as e:
            if e.kind == "refused" and "handle" in str(e).lower():
                raise TransportError("agent_restarted", "qemu-ga lost the handle of %s: it "
                                     "restarted during the transfer (%s)" % (remote_path, e))
            raise
        if not isinstance(reply, dict):
            raise TransportError("protocol", "qemu-ga's %s: %.200r" % (name, reply))
        return reply

    def _close(self, handle: int, remote_path: str) -> None:
        try:
            self.command("guest-file-close", {"handle": handle})
        except TransportError as e:
            self._log("qemu-ga guest-file-close of %s: %s" % (remote_path, e))


def _hint(command: str, desc: str) -> str:
    if "disabled" in desc or "not found" in desc.lower():
        return (" (the guest's qemu-ga must allow %s: see its --block-rpcs/--allow-rpcs or "
                "block-rpcs in /etc/qemu/qemu-ga.conf)" % command)
    return ""


def _from_xenchan_error(e: "xenchan.XenchanError", channel: str, command: str) -> TransportError:
    if e.reason == "DOMAIN_NOT_FOUND":
        return TransportError("channel_missing", "%s: %s (no such domain on this xenchand: check "
                              "the inventory name or UUID, and the target)" % (channel, e))
    if e.reason in ("CHANNEL_NOT_FOUND", "CHANNEL_REMOVED"):
        return TransportError("channel_missing", "%s: %s (create the channel: xenchanctl create "
                              "DOMAIN org.qemu.guest_agent.0 --framing qga)" % (channel, e))
    if e.reason in ("NOT_CONNECTED", "DOMAIN_GONE"):
        return TransportError("not_connected", "%s is not connected: %s (the guest is down or "
                              "has not opened the channel)" % (channel, e))
    if e.reason == "GUEST_TIMEOUT" or isinstance(e, xenchan.DeadlineExceededError):
        return TransportError("no_answer", "qemu-ga on %s did not answer %s: %s"
                              % (channel, command, e))
    if e.reason == "RESPONSE_TOO_LARGE":
        return TransportError("too_large", "qemu-ga's reply to %s is over xenchand's 1 MiB Call "
                              "limit: %s" % (command, e))
    if e.reason == "EPOCH_CHANGED":
        return TransportError("agent_restarted", "%s reconnected during %s: %s"
                              % (channel, command, e))
    return TransportError("unreachable", "xenchand: %s during %s on %s" % (e, command, channel))
