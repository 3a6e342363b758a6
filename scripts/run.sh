#!/usr/bin/env bash
# The README's main-job command: sets up, builds everything, then starts the
# simulated Xen host (xensim) with a demo guest and shows, with real output,
# a channel working end to end. It keeps the host running until Ctrl-C.
#
#   scripts/run.sh                      # state in a fresh temp dir
#   XENCHAN_STATE_DIR=/tmp/x scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== building everything"
bazel build //... 2>&1 | tail -n 3
BIN="$PWD/bazel-bin"
XENSIM="$BIN/backend/sim/xensim"

STATE=${XENCHAN_STATE_DIR:-$(mktemp -d /tmp/xenchan.XXXXXX)}
mkdir -p "$STATE"
export XENSTORED_PATH="$STATE/xenstored.sock"
PY=/usr/bin/python3

"$XENSIM" serve --state-dir "$STATE" > "$STATE/xensim.log" 2>&1 &
SIM_PID=$!
GUEST_AGENT_PID=
cleanup() {
  [ -n "$GUEST_AGENT_PID" ] && kill "$GUEST_AGENT_PID" 2>/dev/null || true
  kill "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do
  grep -q "xensim: ready" "$STATE/xensim.log" 2>/dev/null && break
  kill -0 "$SIM_PID" 2>/dev/null || { cat "$STATE/xensim.log"; exit 1; }
  sleep 0.1
done
grep "xensim: ready" "$STATE/xensim.log"

run() { echo "\$ $*"; "$@"; }
echo
echo "== a demo guest with one channel declared the xl.cfg way (served by the simulated QEMU)"
run "$XENSIM" --state-dir "$STATE" domain create --name demo \
  --channel "name=org.xenchan.demo.0,connection=socket,path=$STATE/demo-channel.sock"
TTY="$STATE/guests/demo/root/dev/xen-channel/org.xenchan.demo.0"
for _ in $(seq 100); do [ -e "$TTY" ] && break; sleep 0.1; done
run "$XENSIM" --state-dir "$STATE" domain list
echo
echo "== the channel in xenstore, read with Debian's own xenstore-ls"
run xenstore-ls /local/domain/1/device/console
echo
echo "== an in-guest echo agent on $TTY, and a dom0 client on the QEMU socket"
"$PY" - "$TTY" <<'PYEOF' &
import os, sys, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)  # channels start as cooked ttys, like hvc
buf = b""
while True:
    data = os.read(fd, 4096)
    if not data:
        break
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        os.write(fd, b"guest echoes: " + line + b"\n")
PYEOF
GUEST_AGENT_PID=$!
"$PY" - "$STATE/demo-channel.sock" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"hello from dom0\n")
got = b""
while not got.endswith(b"\n"):
    got += s.recv(4096)
print("dom0 sent:     hello from dom0")
print("dom0 received:", got.decode().strip())
PYEOF
echo
cat <<TXT
== the simulated host keeps running (state in $STATE). Try, in another shell:
   export XENSTORED_PATH=$STATE/xenstored.sock
   xenstore-ls /local/domain
   $XENSIM --state-dir $STATE domain create --name web --channel name=org.example.agent.0,connection=pty
   $XENSIM --state-dir $STATE domain list
   $XENSIM --state-dir $STATE domain destroy web

Not there yet: xenchand (the gRPC server) and xenchanctl arrive with issue 5; the channel engine
that hot-adds channels with xenchan's own ring backend with issue 4.
Press Ctrl-C to stop.
TXT
wait "$SIM_PID"
