"""Tests of the xenchan Python SDK package and its example.

The package is imported from the directory Bazel assembled (//clients/python:sdk) and from one
clients/python/build_sdk.sh generates standalone. The example's functions run against real gRPC
endpoints that are NOT xenchand: nothing listening (UNAVAILABLE), and an in-process Python gRPC
server with no services at all (UNIMPLEMENTED). No server here pretends to be xenchand; the run
against the real xenchand belongs to the end-to-end tests.
"""

import filecmp
import io
import os
import subprocess
import sys
import tempfile
import unittest
from concurrent import futures

import grpc

import xenchan
from xenchan import errors
from xenchan.v1 import channel_service_pb2, errors_pb2, resources_pb2

EXAMPLE = os.environ["XENCHAN_EXAMPLE"]
BUILD_SDK = os.environ["XENCHAN_BUILD_SDK"]
SDK_DIR = os.environ["XENCHAN_SDK_DIR"]
TMP = os.environ.get("TEST_TMPDIR", tempfile.gettempdir())


def load_example():
    import importlib.util
    spec = importlib.util.spec_from_file_location("list_and_call", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def short_socket_path(name):
    # Unix socket paths must stay under 108 bytes; TEST_TMPDIR can be long.
    d = tempfile.mkdtemp(prefix="xcpy", dir="/tmp")
    return os.path.join(d, name)


def encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    if isinstance(payload, int):
        return encode_varint(number << 3) + encode_varint(payload)
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


class PackageTest(unittest.TestCase):
    def test_package_layout_and_generated_modules(self):
        self.assertTrue(xenchan.__file__.startswith(os.path.realpath(SDK_DIR)) or
                        xenchan.__file__.startswith(SDK_DIR), xenchan.__file__)
        self.assertIs(xenchan.v1.channel_service_pb2, channel_service_pb2)
        self.assertIn("Call", channel_service_pb2.DESCRIPTOR.services_by_name[
            "ChannelService"].methods_by_name)
        self.assertTrue(hasattr(errors_pb2, "ErrorReason"))
        self.assertEqual(xenchan.channel_name("vm1", "org.xenchan.agent.0"),
                         "domains/vm1/channels/org.xenchan.agent.0")
        framing = xenchan.Client.newline_framing()
        self.assertEqual(framing.WhichOneof("kind"), "newline")

    def test_client_wraps_stub(self):
        with xenchan.connect("unix://" + short_socket_path("none.sock")) as client:
            for method in ("ListChannels", "GetChannel", "Call", "Attach", "WatchChannels"):
                self.assertTrue(hasattr(client.stub, method), method)

    def test_standalone_build_matches_bazel_build(self):
        out = tempfile.mkdtemp(prefix="sdk", dir=TMP)
        subprocess.run(["sh", BUILD_SDK, out], check=True, stdout=subprocess.DEVNULL)
        cmp = filecmp.dircmp(os.path.join(out, "xenchan"), os.path.join(SDK_DIR, "xenchan"))
        self.assertEqual(cmp.left_only, [])
        self.assertEqual(sorted(f for f in cmp.right_only if f != "__pycache__"), [])
        v1 = filecmp.dircmp(os.path.join(out, "xenchan", "v1"),
                            os.path.join(SDK_DIR, "xenchan", "v1"))
        self.assertEqual([f for f in v1.left_only + v1.right_only if f != "__pycache__"], [])
        self.assertEqual(v1.diff_files, [])
        # And it imports on its own.
        env = dict(os.environ, PYTHONPATH=out)
        result = subprocess.run(
            [sys.executable, "-c",
             "import xenchan, xenchan.v1.channel_service_pb2_grpc as g; "
             "print(xenchan.__file__); print(g.ChannelServiceStub.__name__)"],
            env=env, capture_output=True, text=True, check=True)
        self.assertTrue(result.stdout.startswith(out), result.stdout)
        self.assertIn("ChannelServiceStub", result.stdout)


class ErrorDecodingTest(unittest.TestCase):
    def test_status_with_error_info(self):
        info = (field(1, b"LEASE_HELD") + field(2, b"xenchan.dev") +
                field(3, field(1, b"holder") + field(2, b"session-7")))
        status = (field(1, 9) + field(2, b"lease held") +
                  field(3, field(1, b"type.googleapis.com/google.rpc.ErrorInfo") + field(2, info)) +
                  field(3, field(1, b"type.googleapis.com/xenchan.v1.LeaseHolder") +
                        field(2, b"\x0a\x01x")))
        code, message, details = errors.decode_status_details(status)
        self.assertEqual((code, message), (9, "lease held"))
        self.assertEqual(len(details), 2)
        self.assertEqual(errors.decode_error_info(details[0][1]),
                         ("LEASE_HELD", "xenchan.dev", {"holder": "session-7"}))
        self.assertEqual(details[1][0], "type.googleapis.com/xenchan.v1.LeaseHolder")

    def test_truncated_details_are_refused(self):
        for bad in (b"\x0a\x05ab", b"\x08", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                    b"\x0b"):
            with self.assertRaises(ValueError, msg=bad):
                errors.decode_status_details(bad)


class ExampleAgainstNonXenchandTest(unittest.TestCase):
    def setUp(self):
        self.example = load_example()

    def test_nothing_listening_is_unavailable(self):
        target = "unix://" + short_socket_path("absent.sock")
        out, err = io.StringIO(), io.StringIO()
        rc = self.example.main(["--target", target, "--timeout", "10"], out=out, err=err)
        self.assertEqual(rc, 2)
        self.assertIn("cannot reach xenchand at " + target, err.getvalue())
        self.assertEqual(out.getvalue(), "")
        with xenchan.connect(target) as client:
            with self.assertRaises(xenchan.XenchanError) as ctx:
                self.example.list_channels(client, 10)
        self.assertEqual(ctx.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(ctx.exception.reason, "")

    def test_server_without_xenchan_service_is_unimplemented(self):
        # A real gRPC server in this process that serves nothing: the SDK
        # must say the target is not xenchand rather than fail obscurely.
        path = short_socket_path("empty.sock")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.assertEqual(server.add_insecure_port("unix://" + path), 1)
        server.start()
        try:
            out, err = io.StringIO(), io.StringIO()
            rc = self.example.main(["--target", "unix://" + path, "--timeout", "10"], out=out,
                                   err=err)
            self.assertEqual(rc, 2)
            self.assertIn("does not serve xenchan.v1", err.getvalue())
            with xenchan.connect("unix://" + path) as client:
                with self.assertRaises(xenchan.XenchanError) as ctx:
                    self.example.ping_agent(client, "domains/x/channels/org.xenchan.agent.0", 10)
            self.assertEqual(ctx.exception.code, grpc.StatusCode.UNIMPLEMENTED)
            self.assertIn("UNIMPLEMENTED", str(ctx.exception))
            self.assertIsInstance(ctx.exception, grpc.RpcError)
        finally:
            server.stop(None).wait()


if __name__ == "__main__":
    unittest.main()
