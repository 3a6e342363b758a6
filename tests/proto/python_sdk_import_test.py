"""The generated Python SDK imports, builds messages and a stub."""
import unittest

import grpc
from xenchan.v1 import channel_service_pb2, channel_service_pb2_grpc, resources_pb2


class PythonSdkTest(unittest.TestCase):
    def test_messages_round_trip(self):
        req = channel_service_pb2.GetChannelRequest(
            name="domains/demo/channels/org.example.agent.0")
        parsed = channel_service_pb2.GetChannelRequest.FromString(req.SerializeToString())
        self.assertEqual(parsed.name, req.name)

    def test_service_descriptor_and_stub(self):
        service = channel_service_pb2.DESCRIPTOR.services_by_name["ChannelService"]
        self.assertIn("Attach", service.methods_by_name)
        channel = grpc.insecure_channel("unix:///nonexistent.sock")
        stub = channel_service_pb2_grpc.ChannelServiceStub(channel)
        self.assertTrue(hasattr(stub, "ListChannels"))
        channel.close()

    def test_resources_module(self):
        self.assertTrue(resources_pb2.DESCRIPTOR.message_types_by_name["Channel"])


if __name__ == "__main__":
    unittest.main()
