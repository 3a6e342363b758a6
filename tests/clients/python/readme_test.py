"""The examples of clients/python/README.md, run so that they cannot rot: every ```python block
is written to a script of its own and run by /usr/bin/python3, in the README's order, against the
real xenchand on a real xensim with a guest `vm1` where the real xenchan-agent answers on
org.xenchan.agent.0 and Debian's real qemu-ga on org.qemu.guest_agent.0. The only change made to a
block: xenchand's default address (xenchan.DEFAULT_TARGET) becomes the test server's socket. A
block must exit 0 within BLOCK_TIMEOUT, and every `prints: TEXT` comment in it must appear in its
output. A block preceded by `<!-- not run: REASON -->` is skipped; a marker without a reason, or
one not followed by a python block, fails the test, and so does a README with no block run.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
from typing import List, NamedTuple, Optional

import harness
import xenchan

README = os.path.join("clients", "python", "README.md")
BLOCK_TIMEOUT = 90.0
AGENT = "org.xenchan.agent.0"
QGA = "org.qemu.guest_agent.0"
QEMU_GA = "/usr/sbin/qemu-ga"
# qemu-ga acts on the machine it runs on, here the test machine: what it must not do.
QGA_BLOCKED = [
    "guest-shutdown", "guest-set-time", "guest-file-open", "guest-file-write", "guest-exec",
    "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim",
    "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid", "guest-set-vcpus",
    "guest-set-user-password", "guest-set-memory-blocks", "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
]

# A fence opening a Python block (```python, ```py, ```python3, ```pycon: all must be run or
# marked), and the marker that exempts the next one.
_FENCE = re.compile(r"^\s*```\s*(\S*)")
_PYTHON = {"python", "py", "python3", "pycon"}
_MARKER = re.compile(r"^\s*<!--\s*not run\b:?\s*(.*?)\s*-->\s*$")
_PRINTS = re.compile(r"#.*\bprints: (.+?)\s*$")


class Block(NamedTuple):
    line: int  # 1-based line of the opening fence
    source: str
    skipped_because: Optional[str]  # the marker's reason, or None: run it
    prints: List[str]


def python_blocks(text: str) -> List[Block]:
    """The Python blocks of a Markdown text; ValueError for a marker without a reason, a marker
    not directly followed (blank lines aside) by a Python block, or an unclosed fence."""
    lines = text.split("\n")
    blocks: List[Block] = []
    marker: Optional[tuple] = None  # (line, reason)
    i = 0
    while i < len(lines):
        m = _MARKER.match(lines[i])
        fence = _FENCE.match(lines[i])
        if m:
            if marker is not None:
                raise ValueError("line %d: `not run` marker not followed by a python block"
                                 % marker[0])
            if not m.group(1):
                raise ValueError("line %d: `not run` marker without a reason" % (i + 1))
            marker = (i + 1, m.group(1))
        elif fence:
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            if end == len(lines):
                raise ValueError("line %d: fence never closed" % (i + 1))
            if fence.group(1).lower() in _PYTHON:
                source = "\n".join(lines[i + 1:end]) + "\n"
                blocks.append(Block(i + 1, source, marker[1] if marker else None,
                                    [p.group(1) for p in map(_PRINTS.search, lines[i + 1:end])
                                     if p]))
            elif marker is not None:
                raise ValueError("line %d: `not run` marker before a %r block"
                                 % (marker[0], fence.group(1)))
            marker = None
            i = end
        elif lines[i].strip() and marker is not None:
            raise ValueError("line %d: `not run` marker not followed by a python block"
                             % marker[0])
        i += 1
    if marker is not None:
        raise ValueError("line %d: `not run` marker at the end" % marker[0])
    return blocks


class PythonBlocksTest(unittest.TestCase):
    """The extraction itself, on made-up Markdown: nothing Python escapes it."""

    def test_blocks_markers_and_prints(self):
        text = ("# t\n\n```python\nprint(1)  # prints: 1\n```\n\n```sh\nls\n```\n"
                "<!-- not run: a fragment -->\n\n```py\nx\n```\n``` python3\ny\n```\n")
        blocks = python_blocks(text)
        self.assertEqual([(b.line, b.skipped_because, b.prints) for b in blocks],
                         [(3, None, ["1"]), (12, "a fragment", []), (15, None, [])])
        self.assertEqual(blocks[0].source, "print(1)  # prints: 1\n")

    def test_bad_markers(self):
        for text in ["<!-- not run -->\n```python\nx\n```\n",
                     "<!-- not run: -->\n```python\nx\n```\n",
                     "<!-- not run: why -->\ntext\n```python\nx\n```\n",
                     "<!-- not run: why -->\n```sh\nx\n```\n",
                     "```python\nx\n```\n<!-- not run: why -->\n",
                     "```python\nx\n"]:
            with self.assertRaises(ValueError, msg=text):
                python_blocks(text)


class ReadmeTest(unittest.TestCase):
    longMessage = False  # the messages below already show the output
    @classmethod
    def setUpClass(cls):
        with open(README, encoding="utf-8") as f:
            cls.blocks = python_blocks(f.read())
        cls.host = harness.Host(["vm1"])
        cls.qemu_ga: Optional[subprocess.Popen] = None
        try:
            cls.client = xenchan.connect(cls.host.target)
            cls.client.create_channel("vm1", AGENT, wait=True)
            cls.host.start_agent("vm1")
            cls.client.create_channel("vm1", QGA, framing="qga", wait=True)
            cls.start_qemu_ga()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def start_qemu_ga(cls):
        """Debian's qemu-ga on the guest's tty (its state and HOME in the scratch directory),
        then guest-ping until it answers: one that just opened its tty may miss a request."""
        work = os.path.join(cls.host.scratch, "qga")
        os.makedirs(os.path.join(work, "state"))
        cls.qga_log = os.path.join(work, "qemu-ga.log")
        cls.qemu_ga = subprocess.Popen(
            [QEMU_GA, "-m", "isa-serial", "-p", cls.host.tty_path("vm1", QGA), "-t",
             os.path.join(work, "state"), "-l", cls.qga_log, "-v", "-b", ",".join(QGA_BLOCKED)],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": work, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 40
        while True:
            try:
                cls.client.qga("vm1/" + QGA, "guest-ping", timeout=2)
                return
            except xenchan.DeadlineExceededError:
                if time.monotonic() > deadline or cls.qemu_ga.poll() is not None:
                    raise RuntimeError("qemu-ga does not answer:\n" + cls.qga_text())

    @classmethod
    def qga_text(cls) -> str:
        try:
            with open(cls.qga_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @classmethod
    def tearDownClass(cls):
        if cls.qemu_ga is not None:
            cls.qemu_ga.terminate()
            cls.qemu_ga.wait(timeout=30)
        if getattr(cls, "client", None) is not None:
            cls.client.close()
        cls.host.stop()

    def test_examples_run(self):
        run = [b for b in self.blocks if b.skipped_because is None]
        self.assertGreaterEqual(len(run), 2, "README.md has at least two python blocks to run")
        for b in self.blocks:
            if b.skipped_because is not None:
                print("README.md:%d not run: %s" % (b.line, b.skipped_because), file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=self.host.scratch) as tmp:
            for b in run:
                with self.subTest(line=b.line):
                    self.run_block(b, tmp)

    def run_block(self, b: Block, tmp: str) -> None:
        self.assertIn(xenchan.DEFAULT_TARGET, b.source,
                      "README.md:%d: connects elsewhere than %s, which the test redirects"
                      % (b.line, xenchan.DEFAULT_TARGET))
        script = os.path.join(tmp, "readme_%d.py" % b.line)
        with open(script, "w", encoding="utf-8") as f:
            f.write(b.source.replace(xenchan.DEFAULT_TARGET, self.host.target))
        with subprocess.Popen([sys.executable, script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp) as proc:
            try:
                out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()  # e.g. a loop over a followed stream that never ends
                out, err = proc.communicate()
                self.fail("README.md:%d did not finish within %gs\nstdout:\n%s\nstderr:\n%s\n"
                          "the block:\n%s" % (b.line, BLOCK_TIMEOUT, out, err, b.source))
        self.assertEqual(proc.returncode, 0, "README.md:%d failed (exit %d)\nstdout:\n%s\n"
                         "stderr:\n%s\nthe block:\n%s" % (b.line, proc.returncode, out, err,
                                                           b.source))
        for want in b.prints:
            self.assertIn(want, out, "README.md:%d printed %r, without %r" % (b.line, out, want))
        print("README.md:%d ran:\n%s" % (b.line, out), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
