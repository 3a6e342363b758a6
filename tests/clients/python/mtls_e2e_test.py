"""The Python SDK over mutual TLS end to end: the real xenchand on xensim listening on loopback TCP
with a throw-away PKI (tests/server/make_test_certs.sh, made at test time), a policy granting the
test's client identity, and both clients (xenchan.Client, xenchan.aio.Client) connecting with
TlsFiles. Refusals: no client certificate, a client of another CA, a server name the server's
certificate does not carry, an identity the policy does not know."""

import asyncio
import os
import re
import subprocess
import unittest

import harness
import xenchan
import xenchan.aio

MAKE_CERTS = os.environ.get("XENCHAN_MAKE_CERTS", "")


class MtlsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls) -> None:
        cls.host = harness.Host(["vm1"])
        try:
            cls.pki = os.path.join(cls.host.scratch, "pki")
            subprocess.run(["bash", MAKE_CERTS, cls.pki], check=True, capture_output=True,
                           timeout=120)
            policy = os.path.join(cls.host.scratch, "policy.conf")
            with open(policy, "w") as f:
                f.write("[identity spiffe://xenchan.test/ctl]\n"
                        "allow verbs=read,write,call,manage domain=* channel=*\n"
                        "[identity unix:uid=%d]\nallow verbs=* domain=* channel=*\n" % os.getuid())
            cls.host.stop_xenchand()
            cls.host.start_xenchand(["--listen=127.0.0.1:0", "--policy=" + policy,
                                     "--tls-cert=" + cls.file("server.pem"),
                                     "--tls-key=" + cls.file("server.key"),
                                     "--tls-client-ca=" + cls.file("ca.pem")])
            assert cls.host.xenchand is not None
            m = re.search(r"msg=listening address=(127\.0\.0\.1:\d+)", cls.host.xenchand.log)
            if m is None:
                raise RuntimeError("no TCP listener:\n" + cls.host.xenchand.log)
            cls.target = m.group(1)
        except Exception:
            cls.host.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.host.stop()

    @classmethod
    def file(cls, name: str) -> str:
        return os.path.join(cls.pki, name)

    def tls(self, client: str = "uri", ca: str = "ca.pem",
            server_name: str = "localhost") -> xenchan.TlsFiles:
        return xenchan.TlsFiles(ca=self.file(ca), cert=self.file(client + ".pem"),
                                key=self.file(client + ".key"), server_name=server_name)

    def test_sync_client_over_mtls(self) -> None:
        with xenchan.connect(self.target, tls=self.tls(), timeout=20) as c:
            names = [d.name for d in c.list_domains()]
            self.assertTrue(any(d.display_name == "vm1" for d in c.list_domains()), names)
            ch = c.create_channel("vm1", "org.example.tls.0", wait=True, connect_timeout=30)
            self.assertEqual(c.get_channel(ch.name).name, ch.name)
            c.delete_channel(ch.name)

    def test_aio_client_over_mtls(self) -> None:
        async def run() -> list:
            async with xenchan.aio.connect(self.target, tls=self.tls(), timeout=20) as c:
                return [d.display_name async for d in c.list_domains()]
        self.assertIn("vm1", asyncio.run(run()))

    def test_identity_without_a_grant_is_denied(self) -> None:
        with xenchan.connect(self.target, tls=self.tls("dns"), timeout=20) as c:
            with self.assertRaises(xenchan.PermissionDeniedError) as cm:
                c.create_channel("vm1", "org.example.denied.0")
        self.assertEqual(cm.exception.reason, "PERMISSION_DENIED")

    def test_refused_connections(self) -> None:
        cases = {
            "no client certificate": xenchan.TlsFiles(ca=self.file("ca.pem"),
                                                      server_name="localhost"),
            "a client of another CA": self.tls("rogue"),
            "an expired client": self.tls("expired"),
            "a server name the certificate lacks": self.tls(server_name="other.example.org"),
        }
        for what, tls in cases.items():
            with self.subTest(what):
                with xenchan.connect(self.target, tls=tls, timeout=5,
                                     retry=xenchan.RetryPolicy(max_attempts=0)) as c:
                    with self.assertRaises((xenchan.UnavailableError,
                                            xenchan.UnauthenticatedError)):
                        list(c.list_domains())

    def test_plaintext_to_the_tls_port_fails(self) -> None:
        with xenchan.connect(self.target, timeout=5,
                             retry=xenchan.RetryPolicy(max_attempts=0)) as c:
            with self.assertRaises(xenchan.UnavailableError):
                list(c.list_domains())


if __name__ == "__main__":
    unittest.main()
