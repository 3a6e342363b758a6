#!/bin/sh
# Runs a unit test module of the Python SDK (no processes: pure logic) with
# Debian's /usr/bin/python3 and the SDK package Bazel assembled on PYTHONPATH.
# Arguments: the test module, then the SDK's files.
set -eu
test_py="$PWD/$1"
shift
first=$1  # .../sdk/xenchan/__init__.py
export PYTHONPATH="$PWD/${first%/xenchan/*}"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$test_py" -v
