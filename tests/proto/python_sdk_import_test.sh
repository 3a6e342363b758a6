#!/usr/bin/env bash
# Imports the Python modules generated from the protos with Debian's
# python3-grpcio and python3-protobuf (/usr/bin/python3, not a pyenv one).
set -euo pipefail
first=$1
gen_root=${first%/xenchan/v1/*}
export PYTHONPATH="$gen_root"
exec /usr/bin/python3 "$(dirname "$0")/python_sdk_import_test.py"
