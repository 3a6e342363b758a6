#!/bin/sh
# Runs one of the Python SDK's end-to-end tests (a unittest module next to this
# script) with Debian's /usr/bin/python3, the SDK package Bazel assembled on
# PYTHONPATH, and the real binaries it starts (harness.py).
# Arguments: the test module, xensim, xenchand, xenchan-agent, then the SDK's
# files.
set -eu
test_py="$PWD/$1"
export XENSIM="$PWD/$2" XENCHAND="$PWD/$3" XENCHAN_AGENT="$PWD/$4"
shift 4
first=$1  # .../sdk/xenchan/__init__.py
test_dir=$(dirname "$test_py")
export PYTHONPATH="$PWD/${first%/xenchan/*}:$test_dir"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$test_py" -v
