#!/usr/bin/env bash
# No bench or load tool leaves a process behind, however it ends
# (bench_process.h): each run gets a unique marker in its environment, which
# every child and grandchild inherits (xensim serve, its guests, xenchand,
# the agents); once the tool is gone, no process may carry the marker.
#   e2e_bench  Die mid-run (its xenchand killed under the Attach echo), SIGTERM
#              mid-run, SIGKILL mid-run (PR_SET_PDEATHSIG), a normal run;
#   xenchan_load and ring_bench  SIGTERM mid-run.
# Each mid-run case first waits until the children it kills are there, so
# the check cannot pass by finding nothing.
#
#   child_cleanup_test.sh E2E_BENCH XENCHAN_LOAD RING_BENCH XENSIM
set -euo pipefail
e2e=$1
load=$2
ring=$3
xensim=$4
work=${TEST_TMPDIR:-$(mktemp -d)}
marker=""

# The pids of the live processes that carry this run's marker.
marked() {
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "XENCHAN_CLEANUP_MARKER=$marker"; then
      echo "${p#/proc/}"
    fi
  done
}

# The marked processes whose command line contains $1.
marked_with() {
  local pid
  for pid in $(marked); do
    { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$1" && echo "$pid"
  done
  return 0
}

# Waits (60 s at most) until at least $2 marked processes have $1 in their
# command line.
wait_for() {
  local _
  for _ in $(seq 600); do
    [ "$(marked_with "$1" | wc -l)" -ge "$2" ] && return 0
    kill -0 "$tool" 2>/dev/null || { echo "$name: the tool ended early" >&2; cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name: no $2 x '$1' among its children after 60 s" >&2
  exit 1
}

# Starts the tool ("$@") with a fresh marker in the background.
start() {
  name=$1
  shift
  marker="$name-$$-$RANDOM$RANDOM"
  XENCHAN_CLEANUP_MARKER=$marker "$@" > "$work/$name.out" 2> "$work/$name.err" &
  tool=$!
}

# Waits for the tool; checks its exit status is $1 and that, within 10 s
# (a SIGKILLed grandchild takes a moment to go), nothing marked is left.
finish() {
  local rc=0 _
  wait "$tool" || rc=$?
  if [ "$rc" != "$1" ]; then
    echo "$name: exit status $rc, expected $1" >&2
    cat "$work/$name.err" >&2
    exit 1
  fi
  for _ in $(seq 100); do
    [ -z "$(marked)" ] && { echo "$name: exit $rc, no process left"; return 0; }
    sleep 0.1
  done
  echo "$name: processes left behind:" >&2
  for pid in $(marked); do
    echo "  $pid: $({ tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null)" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  exit 1
}

# 50000 round trips: the gRPC echo takes seconds, the Attach echo that
# follows (with both agents up) ten times longer.
long_e2e=("$e2e" --pings=50000 --warmup=0 --repeats=1)

# Die: kill its xenchand while the Attach echo runs (both agents are up).
start e2e_die "${long_e2e[@]}"
wait_for --guest_agent 2
wait_for server/xenchand 1
mapfile -t servers < <(marked_with server/xenchand)
kill -KILL "${servers[@]}"
finish 1
grep -q "^e2e_bench: " "$work/e2e_die.err" || { echo "e2e_die: no Die message" >&2; exit 1; }

# SIGTERM and SIGKILL of the bench itself mid-run.
start e2e_sigterm "${long_e2e[@]}"
wait_for --guest_agent 2
kill -TERM "$tool"
finish 143

start e2e_sigkill "${long_e2e[@]}"
wait_for --guest_agent 2
wait_for "xensim guest" 1
kill -KILL "$tool"
finish 137

# A normal run.
start e2e_normal "$e2e" --pings=20 --warmup=2 --write_bytes=65536 --repeats=1
finish 0
grep -q "^RESULT attach_vs_grpc_plus_floor_p50_ratio=" "$work/e2e_normal.out" ||
  { echo "e2e_normal: no results" >&2; exit 1; }

# The load tool under load, and ring_bench in its idle window.
start load_sigterm "$load" --channels=3 --guests=1 --duration=600s --mode=mix
wait_for --guest_agent 1
wait_for server/xenchand 1
kill -TERM "$tool"
finish 143

start ring_sigterm "$ring" --xensim="$xensim" --bytes=65536 --guests=1 --channels_per_guest=1 \
  --repeats=1 --idle_seconds=600
wait_for "xensim guest" 1
kill -TERM "$tool"
finish 143
echo PASS
