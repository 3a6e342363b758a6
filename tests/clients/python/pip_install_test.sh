#!/bin/bash
# `pip install ./clients/python` works offline on Debian 12 with nothing but Debian's packages:
# python3-pip, python3-setuptools, python3-wheel (to build), python3-grpcio and python3-protobuf
# (at run time), protoc and grpc_python_plugin (to generate xenchan.v1 at build time).
#   1. into a --target directory (no dependency handling), as the README shows;
#   2. into a venv made with --system-site-packages, with --no-index: the dependencies grpcio and
#      protobuf must be found satisfied by Debian's packages, nothing fetched.
# Both must import, and their generated modules must equal the ones Bazel generates.
# Arguments: the SDK's files (//clients/python:sdk).
set -euo pipefail
first=$1  # .../sdk/xenchan/__init__.py
bazel_sdk="$PWD/${first%/xenchan/*}"
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pip.XXXXXX")
export HOME="$work/home" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
mkdir -p "$HOME"

# A checkout's layout: clients/python next to proto/ (copied: pip builds in place).
mkdir -p "$work/repo/clients" "$work/repo/proto"
cp -rL clients/python "$work/repo/clients/python"
cp -rL proto/xenchan "$work/repo/proto/xenchan"
rm -rf "$work/repo/clients/python/sdk"  # Bazel's output, not part of the source
if compgen -G "$work/repo/clients/python/xenchan/v1/*" >/dev/null; then
  echo "generated modules are in the source tree" >&2
  exit 1
fi

check_import() {  # PYTHON SITE_DIR
  (cd / && "$1" -c '
import sys, xenchan, xenchan.aio, grpc
from xenchan.v1 import channel_service_pb2_grpc, errors_pb2, resources_pb2
assert xenchan.__file__.startswith(sys.argv[1]), xenchan.__file__
assert grpc.__file__.startswith("/usr/lib/python3/dist-packages/"), grpc.__file__
assert hasattr(channel_service_pb2_grpc.ChannelServiceStub, "__init__")
assert xenchan.channel_name("vm1/org.x.0") == "domains/vm1/channels/org.x.0"
print("imported", xenchan.__file__)
' "$2")
  for f in "$bazel_sdk"/xenchan/v1/*_pb2*.py; do
    cmp "$f" "$2/xenchan/v1/$(basename "$f")"
  done
}

/usr/bin/python3 -m pip install --no-build-isolation --no-deps --no-index \
  --target "$work/site" "$work/repo/clients/python"
PYTHONPATH="$work/site" check_import /usr/bin/python3 "$work/site"
PYTHONPATH="$work/site" /usr/bin/python3 -m pip show --files xenchan |
  grep -c "xenchan/v1/channel_service_pb2.py" >/dev/null

/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-index "$work/repo/clients/python"
check_import "$work/venv/bin/python" "$work/venv/lib/python3.11/site-packages"
echo PASS
