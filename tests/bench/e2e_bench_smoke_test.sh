#!/bin/sh
# Smoke run of e2e_bench with tiny parameters: it must finish and print every
# figure as a RESULT line.
set -eu
out=$("$1" --pings=50 --warmup=5 --write_bytes=262144 --repeats=1)
echo "$out"
for name in grpc_echo_p50_us grpc_echo_p99_us attach_echo_p50_us attach_echo_p99_us \
    attach_vs_grpc_p50_ratio attach_vs_grpc_p99_ratio attach_echo_rate_limited_periods \
    write_delivered_mbps write_consumed_mbps write_rate_limited_periods \
    engine_echo_p50_us engine_echo_p99_us attach_vs_engine_p50_ratio \
    engine_echo_rate_limited_periods engine_write_delivered_mbps engine_write_consumed_mbps \
    write_consumed_vs_engine_ratio write_delivered_vs_engine_ratio floor_echo_p50_us \
    floor_echo_p99_us engine_vs_floor_p50_ratio attach_vs_grpc_plus_floor_p50_ratio \
    attach_switches_per_round_trip attach_xenchand_switches_per_round_trip; do
  echo "$out" | grep -q "^RESULT $name=[0-9]" || { echo "missing RESULT $name" >&2; exit 1; }
done
echo "$out" | grep -q "^  Attach echo p50 / (gRPC echo p50 + sim-floor echo p50)" || { echo "no goals" >&2; exit 1; }
