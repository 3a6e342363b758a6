#!/bin/bash
# Checks deploy/systemd/xenchand.service with `systemd-analyze verify` (the
# unit's syntax, directives and referenced paths), with ExecStart pointed at
# the freshly built xenchand since verify requires an executable there, and
# that the sandboxing directives stay in the unit. Skips (with the reason)
# only when systemd-analyze is not installed.
set -euo pipefail
unit=$1
xenchand=$2
for d in ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes PrivateTmp=yes \
         CapabilityBoundingSet= DevicePolicy=closed "DeviceAllow=/dev/xen/evtchn rw" \
         "DeviceAllow=/dev/xen/gntdev rw" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
         SystemCallFilter=@system-service ReadWritePaths=; do
  grep -q "^$d" "$unit" || { echo "missing in the unit: $d"; exit 1; }
done
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED: systemd-analyze is not installed (package systemd); only the directive checks ran"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#^ExecStart=/usr/sbin/xenchand#ExecStart=$(realpath "$xenchand")#" "$unit" > "$dir/xenchand.service"
# Verify in a scratch unit directory; warnings about the host (no Xen) are
# not failures of the unit, errors in it are.
if ! out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$dir/xenchand.service" 2>&1); then
  echo "systemd-analyze verify failed:"
  echo "$out"
  exit 1
fi
if grep -Ei "unknown|invalid|failed to parse|ignoring" <<<"$out"; then
  echo "systemd-analyze verify complained about the unit:"
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify: ok${out:+ ($out)}"
