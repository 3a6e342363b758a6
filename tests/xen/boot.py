#!/usr/bin/python3
"""Boots the lane's Xen + dom0 under QEMU TCG and reads its serial line.

usage: boot.py IMAGES_DIR SERIAL_LOG TIMEOUT_SECONDS [QEMU_BINARY]
       boot.py --parse SERIAL_LOG          (summarise a saved serial log)

IMAGES_DIR holds xen, vmlinuz and dom0.cpio.gz (build-images.sh). Every
serial line goes to SERIAL_LOG with the host time since QEMU started. Lines
the lane defines are echoed to stdout as they arrive:

  SCENARIO <n> <name> PASS|FAIL|SKIP <detail>   one scenario's result
  RESULT <name> key=value ...              a measured figure
  LANE <text>                              progress (stage marks, versions)
  LANE-HOST <job> key=value ...            dom0 asks for a job on this machine
  LANE-END rc=<n>                          dom0's scenario script finished

dom0 has a NIC on QEMU's user network (10.0.2.15/24): a free port on this
machine's 127.0.0.1 forwards to dom0's 7443 (xenchand's mTLS listener), and
dom0 reaches this script at 10.0.2.2 (QEMU's alias for the host's loopback)
on a port it listens on, given on dom0's command line as
xenlane_host=10.0.2.2:PORT. A LANE-HOST line runs the named job,
tests/xen/host/<job>.sh (one of HOST_JOBS), with the forwarded API address
and the line's values in its environment (XENLANE_API, XENLANE_ARG_<KEY>);
its output is echoed and logged as "HOST <job> | ..." lines (never read as
the lane's own lines). dom0 then connects to that port and gets
"rc=<exit status>", the job's output and "HOST-JOB-END" once the job is
over; the scenario that asked judges them.

The run passes when LANE-END rc=0 arrived, no SCENARIO line said FAIL and
at least one said PASS. SKIP (a scenario this machine cannot run, with the
reason in its detail) counts in neither number of LANE-SUMMARY (whose format
.ci/run reads); the summary's scenario lines list it. A timeout, a Xen or kernel panic, or QEMU exiting early is
a failure, and the tail of the serial log is printed to explain it. Exit
status 0 on a pass, 1 otherwise. The last stdout line is
"LANE-SUMMARY passed=N failed=N".
"""
import os
import re
import select
import socket
import subprocess
import sys
import time

FATAL = ("(XEN) Panic", "Kernel panic", "----[ cut here ]", "BUG: ", "Oops")
HOST_JOBS = ("ansible-raw",)  # tests/xen/host/<job>.sh
HOST_PREFIX = "HOST "  # a host job's output line in the serial log
HOST_JOB_TIMEOUT = 180  # seconds a host job may run
HOST_RESULT_LIMIT = 32768  # bytes of a job's output sent back to dom0
DOM0_ADDR = "10.0.2.15"  # dom0's address on QEMU's user network (dom0/init)
DOM0_API_PORT = 7443  # xenchand's mTLS listener in dom0 (dom0/scenarios.sh)


class Report:
    def __init__(self):
        self.scenarios = []  # (n, name, verdict, detail)
        self.results = []
        self.end_rc = None
        self.fatal = []
        self.host_requests = []  # LANE-HOST lines not yet acted on

    def feed(self, line):
        """Returns True if the line is one the lane defines."""
        # dom0's console may prefix lines with kernel noise; find our token.
        for token in ("SCENARIO ", "RESULT ", "LANE-END ", "LANE-HOST ", "LANE "):
            i = line.find(token)
            if i >= 0 and (i == 0 or line[i - 1] in " \r]"):
                body = line[i:]
                break
        else:
            # A guest's kernel log that the lane quotes as evidence
            # (durable.sh's diagnose) is not a failure of Xen or dom0.
            if "GUEST-DMESG" in line:
                return False
            for f in FATAL:
                if f in line:
                    self.fatal.append(line)
                    return True
            return False
        if body.startswith("SCENARIO "):
            parts = body.split(None, 4)
            if len(parts) >= 4 and parts[3] in ("PASS", "FAIL", "SKIP"):
                self.scenarios.append((parts[1], parts[2], parts[3],
                                       parts[4] if len(parts) > 4 else ""))
        elif body.startswith("RESULT "):
            self.results.append(body)
        elif body.startswith("LANE-HOST "):
            self.host_requests.append(body)
        elif body.startswith("LANE-END "):
            try:
                self.end_rc = int(body.split("rc=", 1)[1].split()[0])
            except (IndexError, ValueError):
                self.end_rc = -1
        return True

    def passed(self):
        return sum(1 for s in self.scenarios if s[2] == "PASS")

    def failed(self):
        return sum(1 for s in self.scenarios if s[2] == "FAIL")

    def ok(self):
        return (self.end_rc == 0 and self.failed() == 0 and self.passed() > 0
                and not self.fatal)


def parse_file(path):
    r = Report()
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("[") and "] " in line:
                line = line.split("] ", 1)[1]
            if line.startswith(HOST_PREFIX):
                continue  # a host job's output, not the serial line
            r.feed(line)
    return r


def summary(r, extra_failures=0):
    for n, name, verdict, detail in r.scenarios:
        print(f"  scenario {n} {name}: {verdict} {detail}")
    for f in r.fatal:
        print(f"  fatal: {f}")
    failed = r.failed() + extra_failures
    print(f"LANE-SUMMARY passed={r.passed()} failed={failed}", flush=True)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now, for QEMU's hostfwd
    (QEMU cannot report a port it chose itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostJob:
    """One LANE-HOST job: tests/xen/host/<job>.sh, run as a child process.

    Owns the child (killed by close()) and the connection dom0 waits on for
    the result. Not thread-safe: boot()'s loop drives it through fds(),
    readable() and deliver(); `emit` receives each output line.
    """

    def __init__(self, request, api, emit):
        parts = request.split()
        self.name = parts[1] if len(parts) > 1 else "?"
        self.emit = emit
        self.output = []
        self.rc = None
        self.conn = None
        self.sent = False
        self.proc = None
        self.buf = b""
        self.started = time.time()
        if self.name not in HOST_JOBS:
            self._end(127, f"unknown host job {self.name!r} (known: {', '.join(HOST_JOBS)})")
            return
        env = dict(os.environ, XENLANE_API=api)
        for kv in parts[2:]:
            # dom0 sends facts it knows (names, UUIDs, numbers): nothing else passes.
            m = re.fullmatch(r"([a-z][a-z0-9_]{0,31})=([A-Za-z0-9._:-]{1,200})", kv)
            if not m:
                self._end(2, f"refused argument {kv!r} of LANE-HOST {self.name}")
                return
            env["XENLANE_ARG_" + m.group(1).upper()] = m.group(2)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host",
                              self.name + ".sh")
        self.proc = subprocess.Popen(["/bin/bash", script], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def _line(self, text):
        self.output.append(text)
        self.emit(f"{HOST_PREFIX}{self.name} | {text}")

    def _end(self, rc, why=None):
        if why:
            self._line(why)
        self.rc = rc
        self._line(f"(exit status {rc} after {time.time() - self.started:.1f} s)")

    def fds(self):
        return [self.proc.stdout] if self.proc and self.rc is None else []

    def readable(self):
        data = os.read(self.proc.stdout.fileno(), 65536)
        self.buf += data
        while b"\n" in self.buf or (not data and self.buf):
            raw, _, self.buf = self.buf.partition(b"\n")
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))
        if not data:
            self.proc.stdout.close()
            self._end(self.proc.wait())

    def check_timeout(self):
        if self.rc is None and time.time() - self.started > HOST_JOB_TIMEOUT:
            self.close()
            self._end(124, f"killed after {HOST_JOB_TIMEOUT} s")

    def deliver(self):
        """Sends the result to dom0 once the job is over and dom0 is connected."""
        if self.rc is None or self.conn is None:
            return
        body = "\n".join(self.output).encode("utf-8", "replace")[-HOST_RESULT_LIMIT:]
        try:
            self.conn.sendall(b"rc=%d\n%s\nHOST-JOB-END\n" % (self.rc, body))
        except OSError as e:
            self.emit(f"{HOST_PREFIX}{self.name} | could not send the result to dom0: {e}")
        self.conn.close()
        self.conn = None
        self.sent = True

    def close(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)  # our own child's session, by its pid
            self.proc.wait()
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def boot(images, log_path, timeout, qemu):
    xen_args = ("console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 "
                "smap=0 loglvl=all guest_loglvl=all noreboot")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    api_port = free_port()
    api = f"127.0.0.1:{api_port}"
    dom0_args = ("console=hvc0 earlyprintk=xen quiet loglevel=4 xenlane "
                 f"xenlane_host=10.0.2.2:{listener.getsockname()[1]}")
    # -cpu qemu64: with -cpu max, gRPC's threaded processes in dom0 died at
    # random (heap corruption, SIGSEGV) under Xen PV on QEMU 7.2 TCG.
    cpu = os.environ.get("XENLANE_CPU", "qemu64")
    # e1000: one module in Debian's kernel (dom0/init loads it), no virtio stack.
    nic = f"user,model=e1000,hostfwd=tcp:{api}-{DOM0_ADDR}:{DOM0_API_PORT}"
    cmd = [qemu, "-accel", "tcg", "-cpu", cpu, "-m", "2048", "-smp", "2", "-nographic",
           "-no-reboot", "-nic", nic, "-kernel", f"{images}/xen", "-append", xen_args,
           "-initrd", f"{images}/vmlinuz {dom0_args},{images}/dom0.cpio.gz"]
    print("LANE qemu: " + " ".join(f"'{c}'" if " " in c else c for c in cmd), flush=True)
    t0 = time.time()
    report = Report()
    jobs = []
    waiting = []  # dom0's result connections not yet given to a job
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    buf = b""
    why = None
    with open(log_path, "w") as log:
        def stamp(line):
            el = time.time() - t0
            log.write(f"[{el:8.2f}] {line}\n")
            log.flush()
            return el

        def emit(line):  # a host job's line: logged and echoed, never parsed
            print(f"[{stamp(line):7.1f}] {line}", flush=True)

        def take(raw):
            line = raw.decode("utf-8", "replace").rstrip("\r")
            el = stamp(line)
            if report.feed(line):
                print(f"[{el:7.1f}] {line}", flush=True)
            while report.host_requests:
                jobs.append(HostJob(report.host_requests.pop(0), api, emit))

        try:
            while True:
                if time.time() - t0 > timeout:
                    why = f"timed out after {timeout:.0f} s"
                    break
                job_fds = {f: j for j in jobs for f in j.fds()}
                ready, _, _ = select.select([p.stdout, listener] + list(job_fds), [], [], 1.0)
                if listener in ready:
                    try:
                        conn, _ = listener.accept()
                        conn.settimeout(30)  # dom0 reads at once; never block the loop long
                        waiting.append(conn)
                    except BlockingIOError:
                        pass
                for f, j in job_fds.items():
                    if f in ready:
                        j.readable()
                for j in jobs:
                    j.check_timeout()
                    # dom0 connects once per job, after its LANE-HOST line.
                    if j.conn is None and not j.sent and waiting:
                        j.conn = waiting.pop(0)
                    j.deliver()
                if p.stdout in ready:
                    data = os.read(p.stdout.fileno(), 65536)
                    if not data:
                        break
                    buf += data
                    while b"\n" in buf:
                        raw, buf = buf.split(b"\n", 1)
                        take(raw)
                    if report.fatal:
                        why = "panic or kernel bug on the serial line"
                        break
                elif p.poll() is not None:
                    break
        finally:
            if p.poll() is None:
                p.kill()  # our own child, by its pid
            p.wait()
            if buf:
                take(buf)
            for j in jobs:
                j.close()
            for c in waiting:
                c.close()
            listener.close()
    total = time.time() - t0
    print(f"LANE qemu exit={p.returncode} wall_s={total:.1f}", flush=True)
    if why is None and report.end_rc is None:
        why = "QEMU exited before the scenarios finished"
    if why is not None or not report.ok():
        print(f"LANE FAILED: {why or 'a scenario failed or the script ended non-zero'}; "
              f"last 60 serial lines ({log_path}):")
        with open(log_path, errors="replace") as f:
            for line in f.readlines()[-60:]:
                print("  | " + line.rstrip("\n"))
    # No scenario line at all still counts as one failure.
    extra = 0 if report.scenarios and why is None else 1
    summary(report, extra if not report.ok() else 0)
    return 0 if report.ok() and why is None else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--parse":
        r = parse_file(argv[2])
        summary(r, 0 if r.ok() else (0 if r.failed() else 1))
        return 0 if r.ok() else 1
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    qemu = argv[4] if len(argv) == 5 else "qemu-system-x86_64"
    return boot(argv[1], argv[2], float(argv[3]), qemu)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
