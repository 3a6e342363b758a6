#!/bin/sh
# Smoke run of e2e_bench with tiny parameters: it must finish and print every
# figure as a RESULT line.
set -eu
out=$("$1" --pings=50 --warmup=5 --write_bytes=262144)
echo "$out"
for name in grpc_echo_p50_us grpc_echo_p99_us attach_echo_p50_us attach_echo_p99_us \
    attach_vs_grpc_p50_ratio attach_vs_grpc_p99_ratio attach_echo_rate_limited_periods \
    write_delivered_mbps write_consumed_mbps write_rate_limited_periods \
    engine_echo_p50_us engine_echo_p99_us attach_vs_engine_p50_ratio \
    engine_echo_rate_limited_periods engine_write_delivered_mbps engine_write_consumed_mbps \
    write_consumed_vs_engine_ratio write_delivered_vs_engine_ratio; do
  echo "$out" | grep -q "^RESULT $name=[0-9]" || { echo "missing RESULT $name" >&2; exit 1; }
done
