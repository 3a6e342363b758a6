"""Unit tests of the fleet client's decisions, free of I/O (xenchan._fleet_common): how a host of
the fleet is dialled (the advertised identity as the TLS server name, a Unix socket in
plaintext), which records end the wait for a domain's owner after each trigger, and what a
following read delivers for a move (one DOMAIN_MIGRATED epoch change, a Gap when the new owner
lost the start of its epoch). The end-to-end behaviour is fleet_e2e_test's.
"""

import unittest

import grpc

import xenchan
from xenchan import _fleet_common as fc
from xenchan.v1 import channel_service_pb2 as pb
from xenchan.v1 import fleet_service_pb2 as fpb
from xenchan.v1 import resources_pb2 as res

TLS = xenchan.TlsFiles(ca="ca.pem", cert="me.pem", key="me.key", server_name="entry.example")


class HostConnectionTest(unittest.TestCase):
    def test_tcp_host_is_checked_against_its_identity(self):
        host = fpb.Host(host_id="h2", api_address="10.0.0.2:7443", identity="h2.example")
        target, tls, creds, opts = fc.host_connection(host, TLS, None, [("k", 1)])
        self.assertEqual(target, "10.0.0.2:7443")
        self.assertEqual(tls.server_name, "h2.example")
        self.assertEqual((tls.ca, tls.cert, tls.key), ("ca.pem", "me.pem", "me.key"))
        self.assertIsNone(creds)
        self.assertEqual(opts, [("k", 1)])

    def test_host_without_identity_keeps_the_callers_name(self):
        host = fpb.Host(host_id="h2", api_address="10.0.0.2:7443")
        _, tls, _, _ = fc.host_connection(host, TLS, None, None)
        self.assertEqual(tls.server_name, "entry.example")

    def test_credentials_get_the_identity_as_name_override(self):
        creds = grpc.ssl_channel_credentials()
        host = fpb.Host(host_id="h2", api_address="h2:7443", identity="h2.example")
        _, tls, got, opts = fc.host_connection(host, None, creds, None)
        self.assertIsNone(tls)
        self.assertIs(got, creds)
        self.assertEqual(opts, [("grpc.ssl_target_name_override", "h2.example")])

    def test_unix_socket_is_plaintext(self):
        host = fpb.Host(host_id="h2", api_address="unix:///run/x.sock")
        self.assertEqual(fc.host_connection(host, TLS, None, None),
                         ("unix:///run/x.sock", None, None, []))

    def test_no_address_is_refused(self):
        with self.assertRaises(ValueError):
            fc.host_connection(fpb.Host(host_id="h2"), None, None, None)


def record(host, domid):
    return fpb.FleetDomain(host=host, domid=domid, uuid="u")


class TriggerTest(unittest.TestCase):
    def test_migrated_wants_another_host_or_incarnation(self):
        t = fc.Trigger("migrated")
        self.assertFalse(t.satisfied_by(record("hosts/a", 3), "hosts/a", 3))
        self.assertTrue(t.satisfied_by(record("hosts/a", 4), "hosts/a", 3))
        self.assertTrue(t.satisfied_by(record("hosts/b", 3), "hosts/a", 3))

    def test_unavailable_takes_any_record(self):
        self.assertTrue(fc.Trigger("unavailable").satisfied_by(record("hosts/a", 3), "hosts/a", 3))

    def test_not_found_wants_another_host(self):
        t = fc.Trigger("not_found")
        self.assertFalse(t.satisfied_by(record("hosts/a", 9), "hosts/a", 3))
        self.assertTrue(t.satisfied_by(record("hosts/b", 3), "hosts/a", 3))

    def test_classify(self):
        def err(code):
            return xenchan.errors.error_class(code)(code, "m")
        self.assertEqual(fc.classify(err(grpc.StatusCode.UNAVAILABLE)).kind, "unavailable")
        self.assertEqual(fc.classify(err(grpc.StatusCode.NOT_FOUND)).kind, "not_found")
        for code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE,
                     grpc.StatusCode.INVALID_ARGUMENT):
            self.assertIsNone(fc.classify(err(code)))

    def test_owner_wait_pauses_double_up_to_a_second_and_times_out(self):
        wait = fc.OwnerWait("u", 100.0)
        self.assertEqual([wait.next_pause() for _ in range(6)], [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
        wait.last = record("hosts/a", 3)
        err = wait.timeout_error()
        self.assertIsInstance(err, xenchan.DeadlineExceededError)
        self.assertIn("hosts/a", str(err))
        self.assertIsNone(fc.OwnerWait("u", 0.0).next_pause())


def data(epoch, offset, payload):
    return pb.ReadResponse(data=pb.DataChunk(epoch=epoch, offset=offset, data=payload))


class MoveSpliceTest(unittest.TestCase):
    SOURCE = pb.EpochChange(previous_epoch=5, epoch=6, previous_end_offset=40,
                            reason=pb.EPOCH_CHANGE_REASON_DOMAIN_MIGRATED)

    def test_source_change_then_data_at_zero(self):
        out = fc.MoveSplice(self.SOURCE, res.Position(epoch=5, offset=40)).first(data(9, 0, b"x"))
        self.assertEqual(len(out), 2)
        ec = out[0].epoch_change
        self.assertEqual((ec.previous_epoch, ec.previous_end_offset, ec.epoch, ec.reason),
                         (5, 40, 9, pb.EPOCH_CHANGE_REASON_DOMAIN_MIGRATED))
        self.assertEqual(out[1], data(9, 0, b"x"))

    def test_without_source_change_uses_the_position_and_reports_a_loss(self):
        out = fc.MoveSplice(None, res.Position(epoch=5, offset=12)).first(data(9, 7, b"x"))
        ec = out[0].epoch_change
        self.assertEqual((ec.previous_epoch, ec.previous_end_offset, ec.epoch), (5, 12, 9))
        self.assertEqual(out[1].gap, pb.Gap(epoch=9, offset=0, length=7))
        self.assertEqual(out[2], data(9, 7, b"x"))

    def test_first_connection_there_is_folded(self):
        first = pb.ReadResponse(epoch_change=pb.EpochChange(
            previous_epoch=0, epoch=9, reason=pb.EPOCH_CHANGE_REASON_GUEST_CONNECTED))
        first.epoch_change.time.seconds = 77
        out = fc.MoveSplice(None, res.Position(epoch=5, offset=12)).first(first)
        self.assertEqual(len(out), 1)
        ec = out[0].epoch_change
        self.assertEqual((ec.previous_epoch, ec.epoch, ec.reason, ec.time.seconds),
                         (5, 9, pb.EPOCH_CHANGE_REASON_DOMAIN_MIGRATED, 77))

    def test_a_later_epoch_there_is_delivered_after_the_move(self):
        first = pb.ReadResponse(epoch_change=pb.EpochChange(previous_epoch=9, epoch=10))
        out = fc.MoveSplice(self.SOURCE, None).first(first)
        self.assertEqual([o.epoch_change.epoch for o in out], [9, 10])


class WatchCursorTest(unittest.TestCase):
    def test_existing_counts_once_synced(self):
        c = fc.FleetWatchCursor(0)
        c.update(fpb.WatchFleetResponse(revision=7, type=fpb.FLEET_EVENT_TYPE_EXISTING))
        self.assertEqual(c.resume_request().start_revision, 0)
        c.update(fpb.WatchFleetResponse(revision=7, type=fpb.FLEET_EVENT_TYPE_SYNCED))
        c.update(fpb.WatchFleetResponse(revision=9, type=fpb.FLEET_EVENT_TYPE_CHANGED))
        self.assertEqual(c.resume_request().start_revision, 9)
        c.relist()
        self.assertEqual((c.revision, c.relists), (0, 1))


if __name__ == "__main__":
    unittest.main()
