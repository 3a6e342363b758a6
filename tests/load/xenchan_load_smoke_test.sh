#!/bin/sh
# Smoke run of xenchan_load: 10 channels over 2 guests, 10 streams (echo,
# write and read), 2 s. Every figure must be printed, traffic must have
# flowed in each kind, and there must be no error at all. The same open
# loop at 300 msgs/s must run at that rate with no error. Then a
# non-loopback target must be refused (exit 2) before anything connects.
set -eu
out=$("$1" --channels=10 --guests=2 --streams=10 --duration=2s --mode=mix --payload=64)
echo "$out"
value() { echo "$out" | sed -n "s/^RESULT $1=\\(.*\\)\$/\\1/p"; }
for name in channels streams duration_s msgs msgs_per_s mb_per_s p50_us p90_us p99_us max_us \
    errors server_vmhwm_kb server_vmrss_kb echo_msgs_per_s write_msgs_per_s read_msgs_per_s; do
  v=$(value "$name")
  echo "$v" | grep -Eq '^[0-9][0-9.e+]*$' || { echo "RESULT $name missing or not a number: '$v'" >&2; exit 1; }
done
[ "$(value errors)" = 0 ] || { echo "errors: $(value errors)" >&2; exit 1; }
if [ "$(value channels)" != 10 ] || [ "$(value streams)" != 10 ]; then echo "wrong shape" >&2; exit 1; fi
for kind in echo write read; do
  v=$(value ${kind}_msgs_per_s)
  [ "$v" != 0 ] || { echo "no $kind traffic" >&2; exit 1; }
done
[ "$(value server_vmhwm_kb)" -gt 0 ] 2>/dev/null || { echo "no server memory figure" >&2; exit 1; }
case "$(value server_cpu_us_per_msg)" in
  "" | -* | 0) echo "no xenchand CPU per message" >&2; exit 1 ;;
esac

# Open loop: 300 msgs/s over the same 10 streams, every kind.
out=$("$1" --channels=10 --guests=2 --streams=10 --duration=2s --mode=mix --payload=64 --rate=300)
echo "$out"
echo "$out" | grep -q "^  open loop: 300 msgs/s" || { echo "not run open loop" >&2; exit 1; }
[ "$(value errors)" = 0 ] || { echo "open loop errors: $(value errors)" >&2; exit 1; }
for kind in echo write read; do
  v=$(value ${kind}_msgs_per_s)
  [ "$v" != 0 ] || { echo "no $kind traffic in the open loop" >&2; exit 1; }
done
# Paced, not flooded: within 30 % of the asked rate.
awk -v r="$(value msgs_per_s)" 'BEGIN { exit !(r > 210 && r < 390) }' ||
  { echo "open loop ran at $(value msgs_per_s) msgs/s, not 300" >&2; exit 1; }

set +e
"$1" --target=10.1.2.3:7000 --sim_state_dir=/nonexistent --duration=1s 2>err.txt
rc=$?
set -e
cat err.txt
[ "$rc" = 2 ] || { echo "non-loopback target not refused (exit $rc)" >&2; exit 1; }
grep -q "refusing non-loopback target" err.txt || { echo "no refusal message" >&2; exit 1; }
echo PASS
