#!/usr/bin/env bash
# The real-Xen lane in one command (tests/xen/README.md):
#
#   tests/xen/run-lane.sh
#
# builds the Debian packages xenchand and xenchan-agent (scripts/package.sh)
# and the lane's own tools with Bazel, builds dom0 and guest images from this
# machine's Debian packages with ours unpacked into them, so the scenarios run
# exactly the files a user installs, boots
# Xen 4.17 + dom0 under QEMU TCG, runs the scenarios in dom0 and a PV guest,
# and ends with "LANE-SUMMARY passed=N failed=N". Exit status 0 only if every
# scenario passed. Nothing here skips: a machine without QEMU or Xen's
# packages fails (scripts/setup.sh --xen-lane installs them).
#
# Environment: XENLANE_WORK (default /var/tmp/xenchan-lane: images, the
# cached kernel .deb contents, serial.log), XENLANE_TIMEOUT (seconds for the
# whole boot, default 900), XENLANE_SETUP=0 to skip scripts/setup.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
WORK=${XENLANE_WORK:-/var/tmp/xenchan-lane}
TIMEOUT=${XENLANE_TIMEOUT:-900}
t_start=$(date +%s)

fail() {
  echo "LANE FAILED: $*"
  echo "LANE-SUMMARY passed=0 failed=1"
  exit 1
}

if [ "${XENLANE_SETUP:-1}" != 0 ]; then
  scripts/setup.sh --xen-lane > /tmp/xenlane-setup.$$.log 2>&1 ||
    { cat /tmp/xenlane-setup.$$.log; rm -f /tmp/xenlane-setup.$$.log; fail "scripts/setup.sh --xen-lane failed"; }
  rm -f /tmp/xenlane-setup.$$.log
fi
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 is not installed (scripts/setup.sh --xen-lane)"
# Scenario 12's host job (tests/xen/host/ansible-raw.sh) runs Debian's ansible-core here.
command -v ansible-playbook >/dev/null || fail "ansible-playbook is not installed (scripts/setup.sh)"

echo "LANE building the Debian packages (scripts/package.sh)"
DEBS=$WORK/debs
# lintian runs in scripts/test.sh; here only the files matter.
XENCHAN_LINTIAN=0 scripts/package.sh "$DEBS" > "$WORK/package.log" 2>&1 ||
  { tail -n 30 "$WORK/package.log"; fail "scripts/package.sh failed"; }
for p in "$DEBS"/*.deb; do echo "LANE package $(dpkg-deb -f "$p" Package)=$(dpkg-deb -f "$p" Version)"; done
targets=(//tests/xen:xenlane_probe //tests/xen:guest_echo)
echo "LANE bazel build ${targets[*]}"
bazel build "${targets[@]}" 2>&1 | tail -n 5
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "bazel build failed"
BIN=$WORK/bin
mkdir -p "$BIN"
for t in "${targets[@]}"; do
  f=bazel-bin/${t#//}
  f=${f/://}
  install -m 0755 "$f" "$BIN/$(basename "$f")" || fail "cannot copy $f"
done

echo "LANE building images in $WORK"
tests/xen/build-images.sh "$WORK" "$BIN" "$DEBS" || fail "building the images failed"
while read -r v; do echo "LANE version $v"; done < "$WORK/out/versions.txt"
echo "LANE version $(qemu-system-x86_64 --version | head -n 1)"
echo "LANE build took $(( $(date +%s) - t_start )) s"

# XENLANE_WORK: where boot.py's host job finds the packages and the PKI.
XENLANE_WORK=$WORK /usr/bin/python3 tests/xen/boot.py "$WORK/out" "$WORK/serial.log" "$TIMEOUT"
rc=$?
echo "LANE wall time $(( $(date +%s) - t_start )) s (serial log: $WORK/serial.log)"
exit $rc
