#!/bin/sh
# Checks boot.py's reading of a serial log: the lane's pass/fail verdict and
# the LANE-SUMMARY counts, without booting anything.
set -u
BOOT=tests/xen/boot.py
T=${TEST_TMPDIR:-/tmp}
fail=0

check() {  # check NAME WANT_RC WANT_SUMMARY LOG_CONTENT
  printf '%s\n' "$4" > "$T/$1.log"
  out=$(/usr/bin/python3 "$BOOT" --parse "$T/$1.log")
  rc=$?
  last=$(printf '%s\n' "$out" | tail -n 1)
  if [ "$rc" != "$2" ] || [ "$last" != "$3" ]; then
    echo "FAIL $1: rc=$rc (want $2), summary '$last' (want '$3')"
    fail=1
  else
    echo "ok $1"
  fi
}

check all_pass 0 "LANE-SUMMARY passed=2 failed=0" "[   1.00] (XEN) noise
[   9.00] SCENARIO 1 toolstack-channel PASS listed and relayed
[   9.50] RESULT direct_qemu p50_us=100
[  10.00] [   12.3] xenlane: SCENARIO 2 hot-add PASS ok
[  11.00] LANE-END rc=0"

check one_fails 1 "LANE-SUMMARY passed=1 failed=1" "SCENARIO 1 a PASS x
SCENARIO 2 b FAIL y
LANE-END rc=1"

check no_end 1 "LANE-SUMMARY passed=1 failed=1" "SCENARIO 1 a PASS x"

check nothing 1 "LANE-SUMMARY passed=0 failed=1" "(XEN) booted
LANE-END rc=0"

check panic 1 "LANE-SUMMARY passed=1 failed=1" "SCENARIO 1 a PASS x
Kernel panic - not syncing: VFS
LANE-END rc=0"

# A SKIP is neither passed nor failed, and does not fail the run.
check skip 0 "LANE-SUMMARY passed=1 failed=0" "SCENARIO 1 a PASS x
SCENARIO 2 b SKIP cannot be done here: why
LANE-END rc=0"

# A guest's kernel warning quoted by the lane is evidence, not a panic.
check guest_dmesg 0 "LANE-SUMMARY passed=1 failed=0" "SCENARIO 1 a PASS x
  | GUEST-DMESG [   79.03] ------------[ cut here ]------------
LANE-END rc=0"

# A host job's output (boot.py logs it as "HOST <job> | ...") is never read
# as the lane's own lines; a LANE-HOST request is neither passed nor failed.
check host_job 0 "LANE-SUMMARY passed=1 failed=0" "SCENARIO 12 ansible-raw PASS x
[  12.00] LANE-HOST ansible-raw domain=lane1 uuid=u domid=1 kernel=k
[  12.50] HOST ansible-raw | SCENARIO 3 fake FAIL printed by a playbook
[  12.60] HOST ansible-raw | Kernel panic - printed by a playbook
LANE-END rc=0"

# A word that merely contains a token is not a report line.
check embedded 1 "LANE-SUMMARY passed=0 failed=1" "XSCENARIO 1 a PASS x
LANE-END rc=0"

exit $fail
