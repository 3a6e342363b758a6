#!/bin/sh
# Tests deploy/guest/xen-channel-name against a fake guest: a sysfs tree
# (bus/xen/devices/console-N with nodename, state and a driver link;
# class/tty/hvc0..hvc7, all present from boot as in Linux), /dev/hvcM nodes
# (a live tty is a readable file, an index no console holds is a dangling
# link, so opening it fails as ENODEV does), and a `xenstore-read` that reads
# files under $T/xs. The fake xenstore-read stands in for Debian's tool only
# because the real one needs a guest's /dev/xen/xenbus; the real-Xen lane
# (tests/xen) runs the helper against the real thing.
#
#   xen_channel_name_test.sh HELPER
# runs every case under /bin/sh and, when busybox is installed, again under
# busybox sh (the lane's guest shell).
set -u
HELPER=$1
FAKE_BIN=$(mktemp -d "${TEST_TMPDIR:-/tmp}/xcn-bin.XXXXXX")
failures=0

check() {  # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    echo "ok   [$SHELL_NAME] $1"
  else
    echo "FAIL [$SHELL_NAME] $1: expected '$2', got '$3'"
    failures=$((failures + 1))
  fi
}

# ---- the fake guest
new_guest() {
  T=$(mktemp -d "${TEST_TMPDIR:-/tmp}/xcn.XXXXXX")
  R=$T/root
  mkdir -p "$R/sys/bus/xen/devices" "$R/sys/bus/xen/drivers/xenconsole" "$R/sys/class/tty" \
    "$R/dev" "$R/run" "$T/xs"
  for m in 0 1 2 3 4 5 6 7; do
    mkdir -p "$R/sys/class/tty/hvc$m"
    tty_dead "$m"
  done
  tty_live 0  # the primary console
  cat >"$FAKE_BIN/xenstore-read" <<FAKE
#!/bin/sh
[ -f "\$XS/\$1" ] || { echo "xenstore-read: couldn't read path \$1" >&2; exit 1; }
cat "\$XS/\$1"
FAKE
  chmod 755 "$FAKE_BIN/xenstore-read"
  export XS="$T/xs"
}
tty_live() { rm -f "$R/dev/hvc$1"; : >"$R/dev/hvc$1"; }
tty_dead() { rm -f "$R/dev/hvc$1"; ln -s "/nonexistent/hvc$1" "$R/dev/hvc$1"; }

# add_device N [NAME]: xenstore nodes and an unbound console-N (the `add`
# event comes before the probe).
add_device() {
  mkdir -p "$T/xs/device/console/$1"
  [ $# -ge 2 ] && printf '%s' "$2" >"$T/xs/device/console/$1/name"
  d=$R/sys/bus/xen/devices/console-$1
  remove_sysfs_only "$1"
  mkdir "$d"
  echo "device/console/$1" >"$d/nodename"
  echo "Initialising" >"$d/state"
}
# probe N M: hvc_xen's probe bound console-N and allocated hvcM.
probe() {
  ln -s ../../drivers/xenconsole "$R/sys/bus/xen/devices/console-$1/driver"
  echo "Initialised" >"$R/sys/bus/xen/devices/console-$1/state"
  tty_live "$2"
}
set_state() { echo "$2" >"$R/sys/bus/xen/devices/console-$1/state"; }
unbind() { rm -f "$R/sys/bus/xen/devices/console-$1/driver"; }
remove_sysfs_only() {
  if [ -d "$R/sys/bus/xen/devices/console-$1" ]; then
    mkdir -p "$T/gone"
    mv "$R/sys/bus/xen/devices/console-$1" "$(mktemp -d "$T/gone/XXXXXX")/"
  fi
}
# remove_device N: console-N's sysfs directory goes (moved aside, so that its
# inode is not reused: kernfs numbers new nodes cyclically) and its xenstore
# nodes too.
remove_device() {
  remove_sysfs_only "$1"
  rm -rf "$T/xs/device/console/$1"
}

# $SHELL_CMD is a command line ("busybox sh"): split on purpose.
# shellcheck disable=SC2086
helper() { env PATH="$FAKE_BIN:$PATH" $SHELL_CMD "$HELPER" --root "$R" "$@"; }
# raw_event ACTION SUBSYSTEM DEVPATH: a uevent as udev or busybox uevent
# passes it (in the environment).
raw_event() {
  # shellcheck disable=SC2086  # $SHELL_CMD is a command line, split on purpose
  env PATH="$FAKE_BIN:$PATH" ACTION="$1" SUBSYSTEM="$2" DEVPATH="$3" \
    $SHELL_CMD "$HELPER" --root "$R" uevent 2>>"$T/log"
}
event() { raw_event "$1" xen "/devices/console-$2"; }  # event ACTION N
do_sync() { helper sync 2>>"$T/log"; }
links() {  # "name->target" of every link, sorted, space-separated
  for l in "$R/dev/xen-channel"/* "$R/dev/xen-channel"/.[!.]*; do
    [ -L "$l" ] && echo "${l##*/}->$(readlink "$l")"
  done | sort | tr '\n' ' ' | sed 's/ $//'
}
outside() {  # files the helper made outside dev/xen-channel and run/xen-channel
  (cd "$R" && find . -newer "$T/stamp" ! -type d | grep -v -e '^./dev/xen-channel/' -e '^./run/xen-channel/' \
    -e '^./dev/hvc' -e '^./sys/' | sort | tr '\n' ' ')
}

run_suite() {
  # ---- boot: xl declared devids 1 and 2 (plus a throw-away entry the
  # toolstack dropped); both probed before the helper first runs. All eight
  # ttys exist; only hvc1 and hvc2 open.
  new_guest
  add_device 1 org.example.a.0; probe 1 1
  add_device 2 org.example.b.0; probe 2 2
  : >"$T/stamp"
  do_sync; check "boot: sync exits 0" 0 $?
  check "boot: one link per channel, to the ttys that open" \
    "org.example.a.0->../hvc1 org.example.b.0->../hvc2" "$(links)"
  check "boot: two at once are logged as paired by order" yes \
    "$(grep -q 'several new devices at once' "$T/log" && echo yes)"
  check "list" "$(printf 'console-1 hvc1 org.example.a.0\nconsole-2 hvc2 org.example.b.0')" "$(helper list)"
  do_sync
  check "sync again changes nothing" "org.example.a.0->../hvc1 org.example.b.0->../hvc2" "$(links)"
  check "nothing written outside dev/xen-channel and run/xen-channel" "" "$(outside)"

  # ---- hot-add with devid 5: `add` before the probe does nothing, `bind`
  # after it links the lowest free tty (hvc3), whatever the devid.
  add_device 5 org.xenchan.agent.0
  event add 5; check "hot-add: add event exits 0" 0 $?
  check "hot-add: nothing before the probe" "org.example.a.0->../hvc1 org.example.b.0->../hvc2" "$(links)"
  probe 5 3
  event bind 5
  check "hot-add: bind links hvc3" \
    "org.example.a.0->../hvc1 org.example.b.0->../hvc2 org.xenchan.agent.0->../hvc3" "$(links)"

  # ---- unplug of console-2: current kernels free hvc2 at the backend's
  # Closing (no event), then unbind/remove when the frontend dir goes.
  set_state 2 Closed; tty_dead 2
  unbind 2; event unbind 2
  check "unplug: unbind removes the link" \
    "org.example.a.0->../hvc1 org.xenchan.agent.0->../hvc3" "$(links)"
  remove_device 2; event remove 2
  check "unplug: remove exits 0" 0 $?
  check "unplug: record dropped" "absent" "$([ -e "$R/run/xen-channel/console-2" ] || echo absent)"

  # ---- the next channel (devid 2 again, a new device) takes the free hvc2.
  add_device 2 org.example.c.0; probe 2 2; event bind 2
  check "re-add: the freed slot is linked under the new name" \
    "org.example.a.0->../hvc1 org.example.c.0->../hvc2 org.xenchan.agent.0->../hvc3" "$(links)"

  # ---- console-2 replaced between two syncs (events lost or coalesced):
  # same devid and tty, new device: the old link goes, the new name comes.
  remove_device 2; add_device 2 org.example.d.0; probe 2 2
  do_sync
  check "replaced device: recognised by its new sysfs directory" \
    "org.example.a.0->../hvc1 org.example.d.0->../hvc2 org.xenchan.agent.0->../hvc3" "$(links)"

  # ---- an unplug seen only at `unbind` while Closing (no state change yet).
  set_state 5 Closing; tty_dead 3; do_sync
  check "closing device: link removed" "org.example.a.0->../hvc1 org.example.d.0->../hvc2" "$(links)"
  unbind 5; remove_device 5; event remove 5

  # ---- older kernels hold the slot until the device is removed: a new
  # device while a closed one still holds its tty is not guessed at.
  add_device 6 org.example.f.0; probe 6 3; event bind 6
  set_state 1 Closed  # console-1 closed, its hvc1 still open-able (old kernel)
  add_device 7 org.example.g.0; probe 7 4
  event bind 7
  check "old kernel: closed device's link removed" "org.example.d.0->../hvc2 org.example.f.0->../hvc3" "$(links)"
  check "old kernel: two free ttys for one device: no guess" yes \
    "$(grep -q 'console device(s) 7 wait for a tty (free ttys: 1 4)' "$T/log" && echo yes)"
  tty_dead 1; unbind 1; remove_device 1; event remove 1
  check "old kernel: resolved when the closed device goes" \
    "org.example.d.0->../hvc2 org.example.f.0->../hvc3 org.example.g.0->../hvc4" "$(links)"

  # ---- more channels than ttys: the device beyond hvc7 waits, nothing else moves.
  for n in 1 3 4 8; do add_device "$n" "org.example.x$n.0"; done
  probe 1 1; probe 3 5; probe 4 6; probe 8 7; do_sync
  add_device 9 org.example.x9.0; probe 9 1  # probe 9 1 re-marks hvc1: no new tty
  do_sync
  check "no tty left: console-9 waits" yes \
    "$(grep -q 'console device(s) 9 wait for a tty (free ttys: none)' "$T/log" && echo yes)"
  check "no tty left: 7 channels linked" 7 "$(find "$R/dev/xen-channel" -mindepth 1 -maxdepth 1 | wc -l | tr -d ' ')"
  rm -rf "$T"

  # ---- names: invalid ones are never linked, but their device still holds
  # its tty, so the next channel gets the right one.
  new_guest
  : >"$T/stamp"
  n=1
  for bad in "../../etc/passwd" "a/b" "." ".." ".hidden" "-rf" "bad name" "tab	x" \
    "$(printf 'a%.0s' $(seq 65))" "caf$(printf '\303\251')"; do
    add_device "$n" "$bad"; probe "$n" "$n"; event bind "$n"
    check "bad name '$bad': not linked" "" "$(links)"
    check "bad name '$bad': recorded as refused" "console-$n hvc$n !" "$(helper list | tail -n 1)"
    remove_device "$n"; unbind "$n"; tty_dead "$n"; event remove "$n"
  done
  check "bad names: nothing written outside" "" "$(outside)"
  check "bad names: logged" yes "$(grep -q 'invalid channel name' "$T/log" && echo yes)"
  add_device 1 "$(printf 'a%.0s' $(seq 64))"; probe 1 1; event bind 1
  check "64-character name is linked" "$(printf 'a%.0s' $(seq 64))->../hvc1" "$(links)"
  remove_device 1; unbind 1; tty_dead 1; event remove 1
  add_device 3 "../evil"; probe 3 1; event bind 3
  add_device 4; probe 4 2; event bind 4  # a console without a name
  add_device 5 org.example.ok.0; probe 5 3; event bind 5
  check "unnamed and refused devices keep their ttys" "org.example.ok.0->../hvc3" "$(links)"

  # ---- a name written after the probe is picked up at the next event.
  printf 'org.example.late.0' >"$T/xs/device/console/4/name"
  do_sync
  check "late name linked" "org.example.late.0->../hvc2 org.example.ok.0->../hvc3" "$(links)"

  # ---- the same name twice: the second is not linked over the first.
  add_device 6 org.example.ok.0; probe 6 4; event bind 6
  check "duplicate name not linked" "org.example.late.0->../hvc2 org.example.ok.0->../hvc3" "$(links)"
  check "duplicate name logged" yes "$(grep -q 'org.example.ok.0 is already linked' "$T/log" && echo yes)"

  # ---- events that are not a console device's are ignored; usage errors.
  remove_device 5
  raw_event add tty /devices/virtual/tty/hvc3
  check "tty event ignored: exit 0" 0 $?
  check "tty event ignored: nothing synced" "org.example.late.0->../hvc2 org.example.ok.0->../hvc3" "$(links)"
  raw_event add xen /devices/vbd-51712
  check "other xen device ignored" "org.example.late.0->../hvc2 org.example.ok.0->../hvc3" "$(links)"
  helper bogus 2>/dev/null; check "unknown command" 2 $?
  helper 2>/dev/null; check "no command" 2 $?
  helper --root 2>/dev/null; check "--root without a directory" 2 $?

  # ---- a lock left by a holder that died is broken; the sync goes on.
  mkdir "$R/run/xen-channel/lock"
  sh -c 'exit 0' & dead=$!; wait "$dead"
  echo "$dead" >"$R/run/xen-channel/lock/pid"
  event remove 5
  check "stale lock broken: console-5's link gone, the duplicate takes the name" \
    "org.example.late.0->../hvc2 org.example.ok.0->../hvc4" "$(links)"
  check "lock released" absent "$([ -e "$R/run/xen-channel/lock" ] || echo absent)"
  rm -rf "$T"
}

SHELL_NAME=sh SHELL_CMD=/bin/sh run_suite
if command -v busybox >/dev/null 2>&1; then
  SHELL_NAME=busybox SHELL_CMD="busybox sh" run_suite
else
  echo "(busybox is not installed: the busybox sh pass is not run)"
fi
rm -rf "$FAKE_BIN"
if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
