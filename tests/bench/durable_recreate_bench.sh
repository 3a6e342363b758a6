#!/usr/bin/env bash
# How fast a durable channel comes back on the simulated host: N times
# `xensim domain reboot` and N times `domain save` + `domain restore` of a
# guest with a durable channel (and no agent: the simulated guest's own
# driver connects it), timed from xenchand's own event timestamps
# (`xenchanctl --output json watch`):
#   re-created -> connected   the guest's part (WAITING_FOR_GUEST to CONNECTED)
#   down -> connected         the whole gap (DOMAIN_DOWN to CONNECTED),
#                             including the toolstack's destroy and create
# A restore over 1 s is one whose guest resumed before xenchand re-created
# the device (the channel is then moved after resume_probe_timeout, 5 s).
# Prints min/median/max per reason. Not a test: run it by hand after
# `bazel build //backend/sim:xensim //server:xenchand //clients/cli:xenchanctl`.
#
#   tests/bench/durable_recreate_bench.sh [N]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="$PWD/bazel-bin"
N=${1:-20}
STATE=$(mktemp -d /tmp/xenchan-durable-bench.XXXXXX)
export XENCHAN_SERVER="unix://$STATE/xenchand.sock" XENSTORED_PATH="$STATE/xenstored.sock"
X="$BIN/clients/cli/xenchanctl"
S=("$BIN/backend/sim/xensim" --state-dir "$STATE")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
wait_log() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
connected() {
  for _ in $(seq 500); do
    "$X" get demo/org.xenchan.agent.0 2>/dev/null | grep -q "state: *connected" && return 0
    sleep 0.02
  done
  echo "!! not connected" >&2; return 1
}
"$BIN/backend/sim/xensim" serve --state-dir "$STATE" > "$STATE/xensim.log" 2>&1 &
PIDS+=($!)
wait_log "$STATE/xensim.log" "xensim: ready"
"$BIN/server/xenchand" --platform=sim --sim-state-dir="$STATE" \
  --listen="unix://$STATE/xenchand.sock" > "$STATE/xenchand.log" 2>&1 &
PIDS+=($!)
wait_log "$STATE/xenchand.log" "msg=ready"
"${S[@]}" domain create --name demo > /dev/null
"$X" create demo org.xenchan.agent.0 --wait --durable > /dev/null
"$X" --output json watch > "$STATE/watch.json" 2>&1 &
PIDS+=($!)
for _ in $(seq "$N"); do
  "${S[@]}" domain reboot demo > /dev/null
  connected
  "${S[@]}" domain save demo "$STATE/demo.save" > /dev/null
  "${S[@]}" domain restore "$STATE/demo.save" > /dev/null
  connected
done
sleep 0.5  # let the watch stream print the last events
python3 - "$STATE/watch.json" <<'PY'
import json, re, sys
from datetime import datetime
text = open(sys.argv[1]).read()
dec, i, events = json.JSONDecoder(), 0, []
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    events.append(obj)
def when(e):
    m = re.match(r'(.*)\.(\d+)Z', e['event_time'])
    return datetime.strptime(m.group(1), '%Y-%m-%dT%H:%M:%S').timestamp() + float('0.' + m.group(2))
down = recreated = None
guest, total = {}, {}
for e in events:
    state, kind = e.get('channel', {}).get('state'), e.get('type')
    if kind == 'CHANNEL_EVENT_TYPE_STATE_CHANGED' and state == 'CHANNEL_STATE_DOMAIN_DOWN':
        down = when(e)
    elif kind == 'CHANNEL_EVENT_TYPE_STATE_CHANGED' and state == 'CHANNEL_STATE_WAITING_FOR_GUEST' and down:
        recreated = when(e)
    elif kind == 'CHANNEL_EVENT_TYPE_CONNECTED' and down and recreated:
        reason = e.get('epoch_change', {}).get('reason', '?').replace('EPOCH_CHANGE_REASON_', '')
        guest.setdefault(reason, []).append((when(e) - recreated) * 1000)
        total.setdefault(reason, []).append((when(e) - down) * 1000)
        down = recreated = None
def stats(v):
    v = sorted(v)
    return 'min %.1f median %.1f max %.1f' % (v[0], v[len(v) // 2], v[-1])
for reason in sorted(guest):
    slow = sum(1 for x in total[reason] if x > 1000)
    print('%-16s n=%d  re-created->connected ms %s  |  down->connected ms %s  (over 1 s: %d)'
          % (reason, len(guest[reason]), stats(guest[reason]), stats(total[reason]), slow))
PY
