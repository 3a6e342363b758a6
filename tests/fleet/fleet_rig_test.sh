#!/usr/bin/env bash
# The local fleet rig (scripts/fleet.sh: 3 etcd members, 3 xensim hosts with
# their xenchands, a guest each, a migration) once, on the built binaries,
# in a fresh short temp dir (Unix socket paths must stay short).
set -euo pipefail
root="$TEST_SRCDIR/$TEST_WORKSPACE"
state=$(mktemp -d /tmp/xfleet.XXXXXX)
trap 'rm -rf "$state"' EXIT
if ! out=$(XENCHAN_BIN="$root" XENCHAN_FLEET_ONESHOT=1 XENCHAN_STATE_DIR="$state" \
  "$root/scripts/fleet.sh" 2>&1); then
  echo "$out"
  for f in "$state"/host*/xenchand.log; do echo "---- $f"; tail -n 30 "$f"; done
  exit 1
fi
echo "$out"
grep -q "FLEET-RIG OK" <<<"$out"
