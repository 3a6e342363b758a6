#!/usr/bin/env bash
# Regenerates the Go SDK's xenchanpb/*.pb.go from the protos (with the same
# clients/go/generate.sh a developer runs) and fails on any difference from
# the committed files.
# Usage: generated_code_test.sh GENERATE_SH A_PROTO COMMITTED_PB_GO...
set -euo pipefail
generate=$1 proto=$2
shift 2
tmp=${TEST_TMPDIR:-$(mktemp -d)}/gen
# proto/xenchan/v1/x.proto -> proto/
PROTO_DIR=$(cd "$(dirname "$proto")/../.." && pwd) "$generate" "$tmp"
committed=$(dirname "$1")
status=0
for f in "$tmp"/*.pb.go; do
  if ! diff -u "$committed/$(basename "$f")" "$f"; then
    status=1
  fi
done
gen=("$tmp"/*.pb.go)
[ ${#gen[@]} = $# ] || { echo "generated ${#gen[@]} files but $# are committed"; status=1; }
if [ $status != 0 ]; then
  echo "clients/go/xenchanpb is stale: run clients/go/generate.sh and commit the result" >&2
  exit 1
fi
echo "generated code matches the protos"
