#!/bin/sh
# Runs sdk_test.py with Debian's /usr/bin/python3 (python3-grpcio,
# python3-protobuf) and the SDK package Bazel assembled on PYTHONPATH.
# Arguments: the example, build_sdk.sh, then the SDK's files.
set -eu
export XENCHAN_EXAMPLE="$PWD/$1"
export XENCHAN_BUILD_SDK="$PWD/$2"
shift 2
first=$1  # .../sdk/xenchan/__init__.py
export XENCHAN_SDK_DIR="$PWD/${first%/xenchan/*}"
export PYTHONPATH="$XENCHAN_SDK_DIR"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$(dirname "$0")/sdk_test.py" -v
