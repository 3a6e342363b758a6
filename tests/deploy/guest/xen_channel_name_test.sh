#!/bin/sh
# Tests the shell logic of deploy/guest/xen-channel-name against a fake sysfs
# tree and a fake `xenstore-read`. A fake xenstore-read on PATH (reading
# files under $T/xs) stands in for the real tool only because this test is of
# the helper's own logic (matching hvcM to console-N, names, records, links);
# the real xenstore-read is Debian's and needs a guest's /dev/xen/xenbus.
set -u
HELPER=$1
T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/xcn.XXXXXX")
export SYSFS="$T/sys" DEV="$T/dev" STATE_DIR="$T/run" PATH="$T/bin:$PATH"
mkdir -p "$SYSFS/bus/xen/devices" "$SYSFS/class/tty" "$DEV" "$T/bin" "$T/xs"
cat >"$T/bin/xenstore-read" <<FAKE
#!/bin/sh
[ -f "$T/xs/\$1" ] || { echo "xenstore-read: couldn't read path \$1" >&2; exit 1; }
cat "$T/xs/\$1"
FAKE
chmod 755 "$T/bin/xenstore-read"

failures=0
check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok   $1"
  else
    echo "FAIL $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}

# add_console N NAME: a probed channel device console-N named NAME.
add_console() {
  mkdir -p "$SYSFS/bus/xen/devices/console-$1" "$T/xs/device/console/$1"
  echo "device/console/$1" >"$SYSFS/bus/xen/devices/console-$1/nodename"
  [ -n "$2" ] && printf '%s' "$2" >"$T/xs/device/console/$1/name"
  return 0
}
remove_console() { rm -rf "$SYSFS/bus/xen/devices/console-$1" "$T/xs/device/console/$1"; }
add_tty() { mkdir -p "$SYSFS/class/tty/$1"; }
remove_tty() { rm -rf "$SYSFS/class/tty/$1"; }
run() { "$HELPER" "$@" 2>/dev/null; echo "rc=$?"; }

# Boot with channels declared in xl.cfg: devids 1 and 2, probed in order.
add_console 1 org.example.a.0; add_tty hvc1
add_console 2 org.example.b.0; add_tty hvc2
check "boot: hvc1 is console-1" "$(printf 'org.example.a.0\nrc=0')" "$(run name hvc1)"
check "boot: hvc2 is console-2" "$(printf 'org.example.b.0\nrc=0')" "$(run name hvc2)"
check "record of hvc1" "1" "$(cat "$STATE_DIR/hvc1")"
check "asking again gives the same answer" "$(printf 'org.example.a.0\nrc=0')" "$(run name hvc1)"
check "hvc0 is the primary console" "rc=1" "$(run name hvc0)"
check "usage error" "rc=2" "$(run name ttyS0)"
check "usage error without args" "rc=2" "$(run)"

# Hot-add with devid 7 (as xenchand may pick): the only unmapped device is
# the new tty's, whatever its index.
add_console 7 org.xenchan.agent.0; add_tty hvc3
check "hot-add: hvc3 is console-7" "$(printf 'org.xenchan.agent.0\nrc=0')" "$(run name hvc3)"

# Unplug of console-1: udev's remove event forgets hvc1; the next channel
# (devid 4) takes the free slot hvc1.
remove_console 1; remove_tty hvc1
check "forget" "rc=0" "$(run forget hvc1)"
check "forget drops both records" "absent" "$( [ -e "$STATE_DIR/hvc1" ] || [ -e "$STATE_DIR/console-1" ] || echo absent)"
add_console 4 org.example.d.0; add_tty hvc1
check "reused slot: hvc1 is now console-4" "$(printf 'org.example.d.0\nrc=0')" "$(run name hvc1)"

# A stale record (tty gone without a remove event) does not block a device.
remove_tty hvc2; add_tty hvc5
check "stale record ignored: hvc5 is console-2" "$(printf 'org.example.b.0\nrc=0')" "$(run name hvc5)"

# Two unmapped devices: console-M is taken if it is one of them, else no guess.
add_console 6 org.example.f.0; add_console 5 org.example.e.0; add_tty hvc6
check "ambiguous, console-M among them" "$(printf 'org.example.f.0\nrc=0')" "$(run name hvc6)"
add_console 9 org.example.i.0; add_tty hvc2
check "ambiguous, no console-M: unmapped" "rc=1" "$(run name hvc2)"
check "no record for a refused tty" "absent" "$( [ -e "$STATE_DIR/hvc2" ] || echo absent)"

# Names: missing (not a channel) or unsafe for a path are refused.
remove_console 9; remove_console 5
add_console 8 ""
check "no name in xenstore" "rc=1" "$(run name hvc2)"
remove_console 8
add_console 3 "../../etc/passwd"
check "unsafe name" "rc=1" "$(run name hvc2)"
remove_console 3
add_console 3 "$(printf 'a%.0s' $(seq 65))"
check "name longer than 64" "rc=1" "$(run name hvc2)"
remove_console 3
add_console 3 "bad name"
check "name with a space" "rc=1" "$(run name hvc2)"
remove_console 3

# link / unlink without udev.
add_console 3 org.example.c.0
check "link prints the name" "$(printf 'org.example.c.0\nrc=0')" "$(run link hvc2)"
check "link target" "../hvc2" "$(readlink "$DEV/xen-channel/org.example.c.0")"
check "link again (replace)" "$(printf 'org.example.c.0\nrc=0')" "$(run link hvc2)"
check "no temporary links left" "org.example.c.0" "$(ls "$DEV/xen-channel")"
check "unlink" "rc=0" "$(run unlink hvc2)"
check "link removed" "absent" "$( [ -e "$DEV/xen-channel/org.example.c.0" ] || [ -L "$DEV/xen-channel/org.example.c.0" ] || echo absent)"
check "unlink forgets" "absent" "$( [ -e "$STATE_DIR/hvc2" ] || echo absent)"

rm -rf "$T"
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
