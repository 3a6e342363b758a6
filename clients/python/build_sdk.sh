#!/bin/sh
# Generates the xenchan Python SDK into OUT_DIR without Bazel or pip: the
# modules protoc and grpc_python_plugin make from proto/xenchan/v1 (Debian's
# protobuf-compiler and protobuf-compiler-grpc), plus the hand-written
# package files. Use it with Debian's python3-grpcio and python3-protobuf:
#
#   clients/python/build_sdk.sh /tmp/sdk
#   PYTHONPATH=/tmp/sdk /usr/bin/python3 clients/python/examples/list_and_call.py
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
proto_root=$here/../../proto
mkdir -p "$out/xenchan/v1"
protoc -I "$proto_root" -I /usr/include \
  --python_out="$out" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  --grpc_python_out="$out" \
  "$proto_root"/xenchan/v1/*.proto
cp "$here"/xenchan/*.py "$out/xenchan/"
: >"$out/xenchan/v1/__init__.py"
echo "$out"
