#!/usr/bin/env bash
# Regenerates the Go code of the xenchan.v1 API (xenchanpb/*.pb.go) from
# proto/xenchan/v1 with Debian's protoc, protoc-gen-go and
# protoc-gen-go-grpc. The generated files are committed (Go's convention, so
# that the module builds with plain `go build`); tests/clients/go's
# generated_code_test runs this into a temp dir and fails on any difference.
#
#   clients/go/generate.sh              # rewrite clients/go/xenchanpb
#   clients/go/generate.sh OUT_DIR      # write the files into OUT_DIR instead
#   PROTO_DIR=... clients/go/generate.sh OUT_DIR   # protos from elsewhere
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto_dir=${PROTO_DIR:-$here/../../proto}
out=${1:-$here/xenchanpb}
pkg=xenchan.dev/go/xenchanpb

# The protos carry no go_package option (they are shared by every SDK): map
# each file to the package here instead.
maps=()
for f in "$proto_dir"/xenchan/v1/*.proto; do
  rel=xenchan/v1/$(basename "$f")
  maps+=("--go_opt=M$rel=$pkg" "--go-grpc_opt=M$rel=$pkg")
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$proto_dir" && protoc -I . "${maps[@]}" \
  --go_out="$tmp" --go-grpc_out="$tmp" xenchan/v1/*.proto)
mkdir -p "$out"
rm -f "$out"/*.pb.go
cp "$tmp/$pkg"/*.pb.go "$out"/
