#!/usr/bin/env bash
# Runs `go vet` and `go test ./...` over the Go SDK module (clients/go) in a
# temp copy, offline: vendor mode over Debian's /usr/share/gocode/src (links
# made by the module's own vendor.sh), a fresh GOCACHE and GOPATH, no proxy.
# Usage: go_test.sh GO_MOD VENDOR_SH XENSIM XENCHAND AGENT
set -euo pipefail
go_mod=$1 vendor_sh=$2
abs() { (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")"); }
export XENCHAN_XENSIM XENCHAN_XENCHAND XENCHAN_AGENT
XENCHAN_XENSIM=$(abs "$3")
XENCHAN_XENCHAND=$(abs "$4")
XENCHAN_AGENT=$(abs "$5")

tmp=${TEST_TMPDIR:-$(mktemp -d)}
src=$tmp/src
rm -rf "$src"
# Runfiles are links to the sources: copy what they point to.
cp -rL "$(dirname "$go_mod")" "$src"
rm -rf "$src/vendor"
"$vendor_sh" "$src"

export HOME=$tmp GOCACHE=$tmp/gocache GOPATH=$tmp/gopath GOPROXY=off GOFLAGS=-mod=vendor GOTMPDIR=$tmp
mkdir -p "$GOCACHE" "$GOPATH"
cd "$src"
go version
go vet ./...
go test -count=1 -v ./... 2>&1 | tee "$tmp/go-test.log" | grep -E '^(=== RUN|--- |ok|FAIL|PASS|panic)' || true
# The exit status of go test, not of the filter.
grep -qE '^(FAIL|panic)' "$tmp/go-test.log" && { cat "$tmp/go-test.log"; exit 1; }
grep -q '^ok' "$tmp/go-test.log" || { cat "$tmp/go-test.log"; exit 1; }
if grep -q -- '--- SKIP' "$tmp/go-test.log"; then
  echo "go_test.sh: a test skipped although the binaries are given" >&2
  grep -B2 -A3 -- '--- SKIP' "$tmp/go-test.log" >&2
  exit 1
fi
echo "go_test.sh: ok"
