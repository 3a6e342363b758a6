#!/usr/bin/env bash
# A real local fleet (issue 13, docs/FLEET.md) in one command: a 3-member
# etcd cluster (Debian's etcd, members on Unix sockets in the state dir),
# three simulated Xen hosts (xensim), each with its xenchand in the fleet
# (advertising its Unix socket: all three run on this machine; a real fleet
# advertises its mTLS address), a demo guest on each with xenchan-agent and a
# durable channel. It shows the
# fleet's records in etcd, migrates a guest from host1 to host2 and shows its
# channel coming back there by itself, then keeps running until Ctrl-C.
#
#   scripts/fleet.sh                        # set up, build, run
#   XENCHAN_STATE_DIR=/tmp/f scripts/fleet.sh
#   XENCHAN_BIN=DIR XENCHAN_FLEET_ONESHOT=1 scripts/fleet.sh
#       # with built binaries under DIR (bazel-bin layout), no set-up or
#       # build, and exit after the demo (what //tests/fleet:fleet_rig_test runs)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${XENCHAN_BIN:-}" ]; then
  scripts/setup.sh
  echo "== building"
  bazel build //server:xenchand //backend/sim:xensim //clients/cli:xenchanctl \
    //clients/agent:xenchan-agent 2>&1 | tail -n 2
  XENCHAN_BIN="$PWD/bazel-bin"
fi
BIN=$XENCHAN_BIN
XENSIM="$BIN/backend/sim/xensim"
XENCHANCTL="$BIN/clients/cli/xenchanctl"
STATE=${XENCHAN_STATE_DIR:-$(mktemp -d /tmp/xenchan-fleet.XXXXXX)}
mkdir -p "$STATE"
CHANNEL=org.xenchan.agent.0
PIDS=()
cleanup() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# wait_for FILE PATTERN PID: until PATTERN shows up in FILE (at most 60 s).
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "!! it exited:"; cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "!! timed out waiting for '$2' in $1"; cat "$1"; exit 1
}
# until_ok CMD...: until CMD succeeds (at most 60 s).
until_ok() {
  for _ in $(seq 600); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
  echo "!! timed out: $*"; "$@"; exit 1
}
ctl() { local host=$1; shift; XENCHAN_SERVER="unix://$STATE/$host/xenchand.sock" "$XENCHANCTL" "$@"; }
show() { echo "\$ $*"; }

echo "== etcd: three members"
ENDPOINTS=()
PEERS=()
for m in 1 2 3; do PEERS+=("e$m=unix://e$m:2380"); done
for m in 1 2 3; do
  (cd "$STATE" && exec etcd --name "e$m" --data-dir "$STATE/e$m.data" \
    --listen-client-urls "unix://e$m:2379" --advertise-client-urls "unix://e$m:2379" \
    --listen-peer-urls "unix://e$m:2380" --initial-advertise-peer-urls "unix://e$m:2380" \
    --initial-cluster "$(IFS=,; echo "${PEERS[*]}")" --initial-cluster-token xenchan-fleet \
    --initial-cluster-state new) > "$STATE/e$m.log" 2>&1 &
  PIDS+=($!)
  ENDPOINTS+=("unix://$STATE/e$m:2379")
done
ETCD=$(IFS=,; echo "${ENDPOINTS[*]}")
etcdctl_() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD" "$@"; }
until_ok etcdctl_ endpoint health
etcdctl_ member list

echo
echo "== three simulated Xen hosts, each with its xenchand in the fleet"
for h in host1 host2 host3; do
  mkdir -p "$STATE/$h"
  "$XENSIM" serve --state-dir "$STATE/$h" > "$STATE/$h/xensim.log" 2>&1 &
  PIDS+=($!)
  wait_for "$STATE/$h/xensim.log" "xensim: ready" "${PIDS[-1]}"
  "$BIN/server/xenchand" --platform=sim --sim-state-dir="$STATE/$h" \
    --listen="unix://$STATE/$h/xenchand.sock" --listen=insecure-tcp://127.0.0.1:0 \
    --fleet-etcd="$ETCD" --fleet-host-id="$h" \
    --fleet-advertise="unix://$STATE/$h/xenchand.sock" > "$STATE/$h/xenchand.log" 2>&1 &
  PIDS+=($!)
  wait_for "$STATE/$h/xenchand.log" "msg=ready" "${PIDS[-1]}"
  grep -h "fleet: registered" "$STATE/$h/xenchand.log" | head -n 1
done

# start_agent HOST GUEST: xenchan-agent inside GUEST's root on HOST.
start_agent() {
  local root="$STATE/$1/guests/$2/root"
  mkdir -p "$root/etc"
  printf 'PRETTY_NAME="xensim guest %s"\nID=demo\n' "$2" > "$root/etc/os-release"
  "$BIN/clients/agent/xenchan-agent" --channel "$CHANNEL" --root "$root" --target-root "$root" \
    > "$STATE/$1/agent-$2.log" 2>&1 &
  PIDS+=($!)
}

echo
echo "== a guest on each host, with its agent and a durable channel"
for pair in host1:web-1 host2:web-2 host3:db-1; do
  h=${pair%%:*} g=${pair#*:}
  "$XENSIM" --state-dir "$STATE/$h" domain create --name "$g" > /dev/null
  start_agent "$h" "$g"
  show "xenchanctl (on $h) create $g $CHANNEL --durable --wait"
  ctl "$h" create "$g" "$CHANNEL" --durable --wait
done

echo
echo "== the fleet in etcd (docs/FLEET.md): hosts and domains on their hosts' leases, declarations on none"
# three_declarations: the three guests' declarations are in etcd.
three_declarations() {
  [ "$(etcdctl_ get --prefix /xenchan/v1/declarations/ --keys-only | grep -c .)" -eq 3 ]
}
until_ok three_declarations
show "etcdctl get --prefix /xenchan/v1/ --keys-only"
etcdctl_ get --prefix /xenchan/v1/ --keys-only | grep .
show "etcdctl get /xenchan/v1/hosts/host2"
etcdctl_ get /xenchan/v1/hosts/host2 --print-value-only

echo
echo "== one view of the fleet from any xenchand (--fleet): hosts, domains, a call routed to the owner"
show "xenchanctl --fleet host1 hosts"
"$XENCHANCTL" --fleet "unix://$STATE/host1/xenchand.sock" hosts
show "xenchanctl --fleet host1 domains"
"$XENCHANCTL" --fleet "unix://$STATE/host1/xenchand.sock" domains
show "xenchanctl --fleet host1 call db-1/$CHANNEL '{\"op\":\"ping\"}'   # db-1 runs on host3"
"$XENCHANCTL" --fleet "unix://$STATE/host1/xenchand.sock" call "db-1/$CHANNEL" '{"op":"ping"}'

echo
echo "== migrate web-1 from host1 to host2: host2's xenchand adopts its channel from etcd"
UUID=$(ctl host1 --output json get web-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
show "xensim --state-dir host1 domain migrate web-1 --to host2"
"$XENSIM" --state-dir "$STATE/host1" domain migrate web-1 --to "$STATE/host2"
start_agent host2 web-1   # the guest's agent, now running on host2
until_ok sh -c "XENCHAN_SERVER=unix://$STATE/host2/xenchand.sock '$XENCHANCTL' get 'web-1/$CHANNEL' | grep -q '^state: *connected'"
show "xenchanctl (on host2) get web-1/$CHANNEL   # the same uid as on host1"
ctl host2 get "web-1/$CHANNEL"
show "xenchanctl (on host2) call web-1/$CHANNEL '{\"op\":\"ping\"}'"
ctl host2 call "web-1/$CHANNEL" '{"op":"ping"}'
show "etcdctl get /xenchan/v1/domains/$UUID"
until_ok sh -c "ETCDCTL_API=3 etcdctl --endpoints '$ETCD' get /xenchan/v1/domains/$UUID --print-value-only | grep -q host2"
etcdctl_ get "/xenchan/v1/domains/$UUID" --print-value-only
show "xenchanctl --fleet host3 call web-1/$CHANNEL '{\"op\":\"ping\"}'   # routed to host2 now"
until_ok sh -c "'$XENCHANCTL' --fleet 'unix://$STATE/host3/xenchand.sock' domains | grep -q 'web-1 .*host2'"
"$XENCHANCTL" --fleet "unix://$STATE/host3/xenchand.sock" call "web-1/$CHANNEL" '{"op":"ping"}'
show "xenchanctl (on host1) get $UUID/$CHANNEL   # it waits there, DOMAIN_DOWN, with its buffer"
ctl host1 get "$UUID/$CHANNEL"

if [ -n "${XENCHAN_FLEET_ONESHOT:-}" ]; then
  echo "FLEET-RIG OK"
  exit 0
fi
cat <<TXT

== running: etcd x3, xensim + xenchand x3, the agents (state and logs in $STATE). In another shell:
   ETCDCTL_API=3 etcdctl --endpoints $ETCD get --prefix /xenchan/v1/
   XENCHAN_SERVER=unix://$STATE/host2/xenchand.sock $XENCHANCTL list --domains
   $XENSIM --state-dir $STATE/host2 domain migrate web-1 --to $STATE/host3
Press Ctrl-C to stop.
TXT
wait "${PIDS[0]}"
