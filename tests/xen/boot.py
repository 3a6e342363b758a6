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
  LANE-END rc=<n>                          dom0's scenario script finished

The run passes when LANE-END rc=0 arrived, no SCENARIO line said FAIL and
at least one said PASS. SKIP (a scenario this machine cannot run, with the
reason in its detail) counts in neither number of LANE-SUMMARY (whose format
.ci/run reads); the summary's scenario lines list it. A timeout, a Xen or kernel panic, or QEMU exiting early is
a failure, and the tail of the serial log is printed to explain it. Exit
status 0 on a pass, 1 otherwise. The last stdout line is
"LANE-SUMMARY passed=N failed=N".
"""
import os
import select
import subprocess
import sys
import time

FATAL = ("(XEN) Panic", "Kernel panic", "----[ cut here ]", "BUG: ", "Oops")


class Report:
    def __init__(self):
        self.scenarios = []  # (n, name, verdict, detail)
        self.results = []
        self.end_rc = None
        self.fatal = []

    def feed(self, line):
        """Returns True if the line is one the lane defines."""
        # dom0's console may prefix lines with kernel noise; find our token.
        for token in ("SCENARIO ", "RESULT ", "LANE-END ", "LANE "):
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
            r.feed(line)
    return r


def summary(r, extra_failures=0):
    for n, name, verdict, detail in r.scenarios:
        print(f"  scenario {n} {name}: {verdict} {detail}")
    for f in r.fatal:
        print(f"  fatal: {f}")
    failed = r.failed() + extra_failures
    print(f"LANE-SUMMARY passed={r.passed()} failed={failed}", flush=True)


def boot(images, log_path, timeout, qemu):
    xen_args = ("console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 "
                "smap=0 loglvl=all guest_loglvl=all noreboot")
    dom0_args = "console=hvc0 earlyprintk=xen quiet loglevel=4 xenlane"
    # -cpu qemu64: with -cpu max, gRPC's threaded processes in dom0 died at
    # random (heap corruption, SIGSEGV) under Xen PV on QEMU 7.2 TCG.
    cpu = os.environ.get("XENLANE_CPU", "qemu64")
    cmd = [qemu, "-accel", "tcg", "-cpu", cpu, "-m", "2048", "-smp", "2", "-nographic",
           "-no-reboot", "-nic", "none", "-kernel", f"{images}/xen", "-append", xen_args,
           "-initrd", f"{images}/vmlinuz {dom0_args},{images}/dom0.cpio.gz"]
    print("LANE qemu: " + " ".join(f"'{c}'" if " " in c else c for c in cmd), flush=True)
    t0 = time.time()
    report = Report()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    buf = b""
    why = None
    with open(log_path, "w") as log:
        def take(raw):
            line = raw.decode("utf-8", "replace").rstrip("\r")
            el = time.time() - t0
            log.write(f"[{el:8.2f}] {line}\n")
            log.flush()
            if report.feed(line):
                print(f"[{el:7.1f}] {line}", flush=True)
        try:
            while True:
                if time.time() - t0 > timeout:
                    why = f"timed out after {timeout:.0f} s"
                    break
                ready, _, _ = select.select([p.stdout], [], [], 1.0)
                if ready:
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
