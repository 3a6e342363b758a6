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
        with xenchan.connect(target, retry=xenchan.RetryPolicy(max_attempts=0)) as client:
            with self.assertRaises(xenchan.UnavailableError) as ctx:
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


class _FakeRpcError(grpc.RpcError):
    """A finished call's status, as grpc hands it over (code, details, trailers)."""

    def __init__(self, code, details, trailers):
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


def any_detail(type_name, payload):
    return field(3, field(1, b"type.googleapis.com/" + type_name) + field(2, payload))


class TypedErrorTest(unittest.TestCase):
    def test_code_picks_the_class_and_details_are_decoded(self):
        holder = resources_pb2.LeaseHolder(session_id="s-1", identity="unix:uid=0")
        info = field(1, b"LEASE_HELD") + field(2, b"xenchan.dev")
        bad = field(1, field(1, b"config.buffer_limit_bytes") + field(2, b"too small"))
        retry = field(1, field(1, 2) + field(2, 500000000))
        status = (field(1, 9) + field(2, b"held") +
                  any_detail(b"google.rpc.ErrorInfo", info) +
                  any_detail(b"xenchan.v1.LeaseHolder", holder.SerializeToString()) +
                  any_detail(b"google.rpc.BadRequest", bad) +
                  any_detail(b"google.rpc.RetryInfo", retry) +
                  any_detail(b"xenchan.v1.Channel", b"\xff\xff"))  # malformed: dropped
        err = errors.from_rpc_error(_FakeRpcError(
            grpc.StatusCode.FAILED_PRECONDITION, "held",
            (("other", "x"), ("grpc-status-details-bin", status))))
        self.assertIsInstance(err, xenchan.FailedPreconditionError)
        self.assertIsInstance(err, xenchan.XenchanError)
        self.assertEqual(err.reason, "LEASE_HELD")
        self.assertEqual(err.reason_value, errors_pb2.ERROR_REASON_LEASE_HELD)
        self.assertEqual(err.lease_holder, holder)
        self.assertIsNone(err.channel)
        self.assertEqual(err.field_violations, [("config.buffer_limit_bytes", "too small")])
        self.assertAlmostEqual(err.retry_delay, 2.5)
        self.assertFalse(err.retryable)
        self.assertIs(errors.from_rpc_error(err), err)

    def test_every_code_has_a_class_and_garbage_trailers_keep_the_code(self):
        for code in grpc.StatusCode:
            if code == grpc.StatusCode.OK:
                continue
            err = errors.from_rpc_error(_FakeRpcError(
                code, "m", (("grpc-status-details-bin", b"\x0a\x05ab"),)))
            self.assertEqual(err.code_value, code)
            self.assertEqual((err.code, err.reason, err.details), (code, "", []))
        unavailable = errors.from_rpc_error(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, "", None))
        self.assertTrue(unavailable.retryable)

    def test_write_rejection_as_error(self):
        from xenchan import _common
        from xenchan.v1 import channel_service_pb2 as pb
        err = _common.rejection_error(pb.WriteRejection(
            code=10, reason=errors_pb2.ERROR_REASON_EPOCH_CHANGED, message="epoch"))
        self.assertIsInstance(err, xenchan.AbortedError)
        self.assertEqual(err.reason, "EPOCH_CHANGED")


class NamesAndConversionsTest(unittest.TestCase):
    def test_names(self):
        full = "domains/vm1/channels/org.x.0"
        for spec in (("vm1", "org.x.0"), ("vm1/org.x.0",), (full,)):
            self.assertEqual(xenchan.channel_name(*spec), full)
        self.assertEqual(xenchan.parse_channel_name(full), ("vm1", "org.x.0"))
        self.assertEqual(xenchan.parse_channel_name(full).domain_name, "domains/vm1")
        self.assertEqual(xenchan.domain_name("vm1"), "domains/vm1")
        self.assertEqual(xenchan.parse_domain_name("domains/vm1"), "vm1")
        for bad in ("vm1", "a/b/c", "domains/-/channels/x", "domains/vm1/channels/-x",
                    "domains/vm1/channels/" + "x" * 65):
            with self.assertRaises(ValueError, msg=bad):
                xenchan.channel_name(bad)
        with self.assertRaises(ValueError):
            xenchan.parse_domain_name("domains/-")

    def test_framing_start_ack(self):
        from xenchan import _common
        self.assertEqual(_common.framing("qga").WhichOneof("kind"), "qemu_guest_agent")
        self.assertEqual(_common.framing(b"\0").delimiter.delimiter, b"\0")
        self.assertIsNone(_common.framing(None))
        with self.assertRaises(ValueError):
            _common.framing("json")
        self.assertEqual(_common.read_start((3, 7)).position.offset, 7)
        self.assertEqual(_common.read_start("next").anchor, 2)
        self.assertEqual(_common.ack_level("consumed"), resources_pb2.ACK_LEVEL_CONSUMED)
        self.assertEqual([len(c) for c in _common.chunks(b"x" * 70000)], [65536, 4464])
        self.assertEqual(list(_common.chunks(b"")), [b""])

    def test_update_mask_follows_the_fields_given(self):
        from xenchan import _common
        req = _common.update_request("vm1/c.0", None, None, False, buffer_limit_bytes=8192,
                                     default_framing="newline")
        self.assertEqual(list(req.update_mask.paths),
                         ["config.buffer_limit_bytes", "config.default_framing"])
        self.assertEqual(req.channel.name, "domains/vm1/channels/c.0")
        with self.assertRaises(TypeError):
            _common.update_request("vm1/c.0", None, None, False, devid=3)
        with self.assertRaises(ValueError):
            _common.update_request("vm1/c.0", None, None, False)

    def test_qga_replies(self):
        from xenchan import _common
        self.assertEqual(_common.qga_command("guest-ping", None), b'{"execute":"guest-ping"}')
        self.assertEqual(_common.qga_result(b'{"return": {"pid": 5}}'), {"pid": 5})
        with self.assertRaises(xenchan.GuestAgentError) as ctx:
            _common.qga_result(b'{"error": {"class": "CommandNotFound", "desc": "no"}}')
        self.assertEqual(ctx.exception.error_class, "CommandNotFound")


class CursorTest(unittest.TestCase):
    def test_read_cursor_resumes_one_past_what_was_delivered(self):
        from xenchan import _common
        from xenchan.v1 import channel_service_pb2 as pb
        cur = _common.ReadCursor(pb.ReadRequest(channel="c", follow=True, max_bytes=10))
        self.assertFalse(cur.resume_request().HasField("start"))  # nothing yet: as asked
        cur.update(pb.ReadResponse(data=pb.DataChunk(epoch=2, offset=5, data=b"abc")))
        self.assertEqual((cur.position.epoch, cur.position.offset), (2, 8))
        cur.update(pb.ReadResponse(gap=pb.Gap(epoch=2, offset=8, length=4)))
        self.assertEqual(cur.position.offset, 12)
        cur.update(pb.ReadResponse(epoch_change=pb.EpochChange(previous_epoch=2, epoch=3)))
        req = cur.resume_request()
        self.assertEqual((req.start.position.epoch, req.start.position.offset), (3, 0))
        self.assertEqual(req.max_bytes, 7)
        self.assertTrue(req.follow)

    def test_watch_cursor_commits_a_snapshot_only_at_synced(self):
        from xenchan import _common
        from xenchan.v1 import channel_service_pb2 as pb
        cur = _common.WatchCursor(pb.WatchChannelsRequest(parent="domains/-"))
        cur.update(pb.WatchChannelsResponse(revision=50, type=pb.CHANNEL_EVENT_TYPE_EXISTING))
        self.assertEqual(cur.resume_request().start_revision, 0)
        cur.update(pb.WatchChannelsResponse(revision=50, type=pb.CHANNEL_EVENT_TYPE_SYNCED))
        cur.update(pb.WatchChannelsResponse(revision=57, type=pb.CHANNEL_EVENT_TYPE_APPEARED))
        self.assertEqual(cur.resume_request().start_revision, 57)
        cur.relist()
        self.assertEqual((cur.resume_request().start_revision, cur.relists), (0, 1))


if __name__ == "__main__":
    unittest.main()
