#!/bin/sh
# Smoke run of ring_bench with tiny parameters: it must finish, print every
# figure as a RESULT line, the engine must not wake while idle, and a bulk
# transfer (every event moves data) must never be rate-limited.
set -eu
bench="$1"
xensim="$2"
out=$("$bench" --xensim="$xensim" --bytes=65536 --guests=2 --channels_per_guest=2 --idle_seconds=0.5 --repeats=1)
echo "$out"
for name in baseline_guest_to_host_mbps baseline_host_to_guest_mbps floor_guest_to_host_mbps \
    floor_host_to_guest_mbps ratio_guest_to_host_vs_floor ratio_host_to_guest_vs_floor \
    cpu_us_per_event rate_limited_periods sim_guest_to_host_mbps \
    sim_host_to_guest_mbps ratio_guest_to_host_vs_baseline ratio_host_to_guest_vs_baseline \
    sim_guest_to_host_nolimit_mbps sim_host_to_guest_nolimit_mbps \
    sim_guest_to_host_every_event_mbps sim_host_to_guest_every_event_mbps \
    events_per_second_guest_to_host events_per_second_guest_to_host_nolimit hotadd_to_connected_p50_ms hotadd_to_connected_p99_ms \
    channels_connected rss_per_channel_bytes idle_wakeups_per_second; do
  echo "$out" | grep -q "^RESULT $name=" || { echo "missing RESULT $name" >&2; exit 1; }
done
echo "$out" | grep -q "^RESULT channels_connected=4$" || { echo "not all channels connected" >&2; exit 1; }
echo "$out" | grep -q "^RESULT idle_wakeups_per_second=0$" || { echo "engine woke while idle" >&2; exit 1; }
echo "$out" | grep -q "^RESULT rate_limited_periods=0$" || { echo "bulk transfer was rate-limited" >&2; exit 1; }
echo "$out" | grep -q "^  ring_bench default, guest to host / composite floor" || { echo "no goals" >&2; exit 1; }
