#!/bin/sh
# Runs one of the Ansible plugin's end-to-end tests (a unittest module next to
# this script) with Debian's /usr/bin/python3: the SDK package Bazel assembled
# and the collection (laid out as ansible_collections/xenchan/xen in a temp
# directory) on PYTHONPATH, and the real binaries harness.py starts.
# Arguments: the test module, xensim, xenchand, the collection's galaxy.yml,
# tests/clients/python/harness.py, then the SDK's files.
set -eu
test_py="$PWD/$1"
XENSIM="$PWD/$2"
XENCHAND="$PWD/$3"
XENCHAN_COLLECTION="$PWD/$(dirname "$4")"
harness_dir="$PWD/$(dirname "$5")"
shift 5
first=$1  # .../sdk/xenchan/__init__.py
XENCHAN_SDK_DIR="$PWD/${first%/xenchan/*}"
collections=$(mktemp -d "${TEST_TMPDIR:-/tmp}/collections.XXXXXX")
mkdir -p "$collections/ansible_collections/xenchan"
cp -rL "$XENCHAN_COLLECTION" "$collections/ansible_collections/xenchan/xen"
PYTHONPATH="$XENCHAN_SDK_DIR:$collections:$harness_dir:$(dirname "$test_py")"
PYTHONDONTWRITEBYTECODE=1
export XENSIM XENCHAND XENCHAN_COLLECTION XENCHAN_SDK_DIR PYTHONPATH PYTHONDONTWRITEBYTECODE
exec /usr/bin/python3 "$test_py" -v
