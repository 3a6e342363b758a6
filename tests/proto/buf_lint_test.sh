#!/usr/bin/env bash
# Runs `buf lint` (rules from buf.yaml) over the xenchan protos. buf is
# installed by scripts/setup.sh from the npm registry.
set -euo pipefail
BUF=${BUF:-/opt/xenchan-tools/node_modules/.bin/buf}
if [ ! -x "$BUF" ]; then BUF=$(command -v buf || true); fi
if [ -z "$BUF" ] || [ ! -x "$BUF" ]; then
  echo "buf not found: run scripts/setup.sh" >&2
  exit 1
fi
# buf wants a writable cache; the sandbox's HOME is not.
export BUF_CACHE_DIR="${TEST_TMPDIR:-$(mktemp -d)}/buf-cache"
cd "${TEST_SRCDIR}/${TEST_WORKSPACE}"
"$BUF" --version
"$BUF" lint --error-format=text
echo "buf lint: clean"
