"""The processes of the Python SDK's fleet tests: one real etcd member (Debian's /usr/bin/etcd, on
Unix sockets in a fresh /tmp directory, as tests/etcd/etcd_cluster.cc and scripts/fleet.sh start
theirs) and several simulated Xen hosts (harness.Host: xensim + xenchand) whose xenchands join the
fleet with --fleet-etcd, each with its own host id and advertising its Unix socket (all hosts run on
this machine; a real fleet advertises its mutual-TLS address).

No sleeps: etcd is ready when its log says so, a host once xenchand says ready; what the fleet
knows is waited for through FleetService itself (wait_for_hosts).
"""

import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, List, Optional, TypeVar

import harness
import xenchan

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
T = TypeVar("T")


class Etcd:
    """One etcd member serving on `endpoint` (unix://DIR/m0:2379), its data in a temp dir."""

    def __init__(self) -> None:
        if not os.access(ETCD, os.X_OK):
            raise RuntimeError("no /usr/bin/etcd: run scripts/setup.sh (etcd-server)")
        self.dir = tempfile.mkdtemp(prefix="xcetcd-", dir="/tmp")
        self.endpoint = "unix://%s/m0:2379" % self.dir
        cwd = os.getcwd()
        os.chdir(self.dir)  # etcd resolves unix://m0:2379 against its working directory
        try:
            self.proc = harness._LoggedProcess([
                ETCD, "--name", "m0", "--data-dir", os.path.join(self.dir, "m0.data"),
                "--listen-client-urls", "unix://m0:2379", "--advertise-client-urls",
                "unix://m0:2379", "--listen-peer-urls", "unix://m0:2380",
                "--initial-advertise-peer-urls", "unix://m0:2380", "--initial-cluster",
                "m0=unix://m0:2380", "--initial-cluster-state", "new",
                "--initial-cluster-token", "xenchan-py-test", "--heartbeat-interval", "50",
                "--election-timeout", "500"])
        finally:
            os.chdir(cwd)
        if not self.proc.wait_for("ready to serve client requests", timeout=60):
            self.stop()
            raise RuntimeError("etcd did not start:\n" + self.proc.log)

    def keys(self, prefix: str) -> List[str]:
        """The keys under `prefix` (Debian's etcdctl)."""
        r = subprocess.run([ETCDCTL, "--endpoints", self.endpoint, "get", "--prefix", prefix,
                            "--keys-only"], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if r.returncode != 0:
            raise RuntimeError("etcdctl get: " + r.stderr)
        return [k for k in r.stdout.splitlines() if k]

    def stop(self) -> None:
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class FleetHost(harness.Host):
    """A harness.Host whose xenchand is in the fleet of `etcd` as `host_id`."""

    def __init__(self, etcd: Etcd, host_id: str, domains: List[str],
                 extra: Optional[List[str]] = None) -> None:
        self.host_id = host_id
        self.fleet_args = ["--fleet-etcd=" + etcd.endpoint, "--fleet-host-id=" + host_id,
                           "--fleet-lease-ttl=5s"] + (extra or [])
        super().__init__(domains)

    def start_xenchand(self, extra: Optional[List[str]] = None) -> None:
        super().start_xenchand(self.fleet_args + (extra or []))

    def migrate(self, domain: str, to: "FleetHost") -> None:
        """`xensim domain migrate DOMAIN --to` the other host's state directory."""
        self.cli("domain", "migrate", domain, "--to", to.state_dir)


def wait_for_declaration(etcd: Etcd, domain_uuid: str, channel_id: str) -> None:
    """Until the durable channel's declaration is in etcd (the host publishes it asynchronously;
    a migration before that would arrive on a host that knows no channel to adopt)."""
    key = "/xenchan/v1/declarations/%s/%s" % (domain_uuid, channel_id)
    until(lambda: True if key in etcd.keys(key) else None, "declaration " + key)


def wait_for_hosts(fleet: "xenchan.Fleet", host_ids: List[str], timeout: float = 60.0) -> None:
    """Until the fleet's WatchFleet has shown every host of `host_ids` (a fleet's xenchand answers
    FLEET_UNAVAILABLE until it first read etcd: the watch retries through it)."""
    want = set(host_ids)
    deadline = time.monotonic() + timeout
    seen = set()
    with fleet.watch_fleet(timeout=timeout) as watch:
        for event in watch:
            if event.HasField("host"):
                seen.add(event.host.host_id)
            if want <= seen:
                return
            if time.monotonic() > deadline:
                break
    raise AssertionError("the fleet shows hosts %s, not all of %s" % (sorted(seen), sorted(want)))


def until(probe: Callable[[], Optional[T]], what: str, timeout: float = 60.0) -> T:
    """Calls `probe` until it returns something other than None (an answer the test waits for
    from a server that learns it asynchronously, e.g. etcd's record after a migration)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)
