#!/usr/bin/env bash
# The README's main-job command: sets up, builds everything, then starts
# xenchand on the embedded simulated Xen host (xensim) with a demo guest
# running xenchan-agent, and shows with real output how to list channels,
# hot-add a durable one, provision the guest with xenchanctl, and reboot the
# guest with the channel coming back by itself. It keeps running until
# Ctrl-C.
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
export XENCHAN_SERVER="unix://$STATE/xenchand.sock"
XENCHANCTL="$BIN/clients/cli/xenchanctl"
PIDS=()
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# wait_for FILE PATTERN PID: until PATTERN shows up in FILE (at most 20 s).
wait_for() {
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "!! it exited:"; cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "!! timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
# run CMD...: shows the command (quoted where needed, build paths shortened), then runs it.
run() {
  local shown="\$" a
  for a in "$@"; do
    a=${a#"$BIN/"}
    if [[ $a =~ [^A-Za-z0-9_./:=@,+-] ]]; then shown+=" '$a'"; else shown+=" $a"; fi
  done
  echo "$shown"
  "$@"
}

echo "== the simulated Xen host (xensim): xenstored, hypervisor, toolstack"
"$XENSIM" serve --state-dir "$STATE" > "$STATE/xensim.log" 2>&1 &
PIDS+=($!)
wait_for "$STATE/xensim.log" "xensim: ready" "${PIDS[-1]}"
grep "xensim: ready" "$STATE/xensim.log"

echo
echo "== xenchand on it, on a Unix socket (callers known by uid) and a plaintext loopback TCP port (unauthenticated)"
"$BIN/server/xenchand" --platform=sim --sim-state-dir="$STATE" \
  --listen="unix://$STATE/xenchand.sock" --listen=insecure-tcp://127.0.0.1:0 > "$STATE/xenchand.log" 2>&1 &
PIDS+=($!)
wait_for "$STATE/xenchand.log" "msg=ready" "${PIDS[-1]}"
grep "msg=listening" "$STATE/xenchand.log"

echo
echo "== a demo guest; inside it, xenchan-agent waits for its channel org.xenchan.agent.0"
run "$XENSIM" --state-dir "$STATE" domain create --name demo
GUEST_ROOT="$STATE/guests/demo/root"
mkdir -p "$GUEST_ROOT/etc"
printf 'PRETTY_NAME="xensim demo guest"\nID=demo\n' > "$GUEST_ROOT/etc/os-release"
"$BIN/clients/agent/xenchan-agent" --channel org.xenchan.agent.0 --root "$GUEST_ROOT" \
  --target-root "$GUEST_ROOT" > "$STATE/agent.log" 2>&1 &
PIDS+=($!)

echo
echo "== hot-add the channel with xenchanctl (xenchan is its backend: ring, grant, event channel)"
echo "   --durable: declared for the VM's UUID, it follows the VM through reboot and save/restore"
run "$XENCHANCTL" create demo org.xenchan.agent.0 --wait --durable
echo
run "$XENCHANCTL" list
echo
echo "== talk to the agent: ping, facts, and first-boot provisioning"
run "$XENCHANCTL" call demo/org.xenchan.agent.0 '{"op":"ping"}'
run "$XENCHANCTL" call demo/org.xenchan.agent.0 '{"op":"facts"}'
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyOnlyForTheXenchanDemo demo@controller"
run "$XENCHANCTL" call demo/org.xenchan.agent.0 \
  "{\"op\":\"provision\",\"hostname\":\"web-01\",\"ssh_authorized_keys\":[\"$KEY\"]}"
echo
echo "== what the agent wrote inside the guest"
run cat "$GUEST_ROOT/etc/hostname"
run cat "$GUEST_ROOT/root/.ssh/authorized_keys"
echo
echo "== reboot the guest (new domid): xenchand re-creates the channel as the domain appears"
"$XENCHANCTL" read --follow demo/org.xenchan.agent.0 > "$STATE/follow.log" 2>&1 &
PIDS+=($!)
run "$XENSIM" --state-dir "$STATE" domain reboot demo
for _ in $(seq 200); do
  "$XENCHANCTL" list 2>/dev/null | grep -q "org.xenchan.agent.0 .* connected" && break
  sleep 0.1
done
run "$XENCHANCTL" list
run "$XENCHANCTL" call demo/org.xenchan.agent.0 '{"op":"ping"}'
echo "== a 'read --follow' started before the reboot read on across it:"
run cat "$STATE/follow.log"
echo
cat <<TXT
== running: xensim, xenchand and the agent (state and logs in $STATE). In another shell:
   export XENCHAN_SERVER=$XENCHAN_SERVER XENSTORED_PATH=$XENSTORED_PATH
   $XENCHANCTL list --domains
   $XENCHANCTL watch
   $XENCHANCTL call demo/org.xenchan.agent.0 '{"op":"ping"}'
   $XENCHANCTL attach demo/org.xenchan.agent.0 --observer
   xenstore-ls /local/domain/1/device/console
   $XENSIM --state-dir $STATE domain list
Press Ctrl-C to stop.
TXT
wait "${PIDS[0]}"
