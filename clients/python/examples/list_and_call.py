#!/usr/bin/python3
"""List the channels a xenchand serves and ping every connected xenchan-agent.

    PYTHONPATH=<sdk dir> /usr/bin/python3 list_and_call.py \
        [--target unix:///run/xenchan/xenchand.sock] [--agent org.xenchan.agent.0] [--timeout 10]

For each channel it prints name, transport and state; for each CONNECTED channel whose id is the
agent's, it sends {"op":"ping"} with Call (newline framing, as the agent speaks newline-delimited
JSON) and prints the reply. Exit status: 0 when every agent answered, 1 when an agent call failed,
2 when the server could not be used at all.
"""

import argparse
import json
import sys

import grpc

import xenchan
from xenchan.v1 import resources_pb2


def list_channels(client, timeout):
    """Returns [(name, transport, state)] for every channel, as strings."""
    rows = []
    for ch in client.list_channels("domains/-", timeout=timeout):
        rows.append((ch.name, resources_pb2.Transport.Name(ch.transport),
                     resources_pb2.ChannelState.Name(ch.state), ch.channel_id))
    return rows


def ping_agent(client, name, timeout):
    """Calls ping on the agent behind channel `name`; returns its decoded JSON reply."""
    return client.call_json(name, {"op": "ping"}, framing="newline", timeout=timeout)


def main(argv=None, out=sys.stdout, err=sys.stderr):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=xenchan.DEFAULT_TARGET)
    parser.add_argument("--agent", default="org.xenchan.agent.0", help="agent channel id")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per RPC")
    args = parser.parse_args(argv)

    # A command line tool fails at once rather than retrying an unreachable server.
    with xenchan.connect(args.target, retry=xenchan.RetryPolicy(max_attempts=0)) as client:
        try:
            rows = list_channels(client, args.timeout)
        except xenchan.XenchanError as e:
            if e.code == grpc.StatusCode.UNAVAILABLE:
                print("cannot reach xenchand at %s: %s" % (args.target, e), file=err)
            elif e.code == grpc.StatusCode.UNIMPLEMENTED:
                print("%s does not serve xenchan.v1 (is it xenchand?): %s" % (args.target, e),
                      file=err)
            else:
                print("ListChannels failed: %s" % e, file=err)
            return 2
        for name, transport, state, _ in rows:
            print("%-60s %-28s %s" % (name, transport, state), file=out)
        status = 0
        for name, _, state, channel_id in rows:
            if channel_id != args.agent or state != "CHANNEL_STATE_CONNECTED":
                continue
            try:
                print("%s: %s" % (name, json.dumps(ping_agent(client, name, args.timeout))),
                      file=out)
            except (xenchan.XenchanError, ValueError) as e:
                print("%s: ping failed: %s" % (name, e), file=err)
                status = 1
        return status


if __name__ == "__main__":
    sys.exit(main())
