#!/bin/bash
# Proves that ThreadSanitizer sees races in the reactor logic: runs
# planted_race_driver (WriteLogic with one lock left out, see
# server/BUILD.bazel :write_logic_planted_race_for_test) with TSan told to
# go on after a report and exit 66, and passes only if TSan reported a data
# race with a frame in WriteLogic. Built and run only under --config=tsan.
set -u
driver="$1"
log="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}/planted_race.log"
TSAN_OPTIONS="halt_on_error=0 exitcode=66" "$driver" >"$log" 2>&1
rc=$?
echo "driver exit code: $rc"
grep -m1 -A12 "WARNING: ThreadSanitizer: data race" "$log"
fail() {
  echo "FAIL: $1"
  tail -40 "$log"
  exit 1
}
[ "$rc" -eq 66 ] || fail "expected exit code 66 (TSan reported), got $rc"
grep -q "WARNING: ThreadSanitizer: data race" "$log" || fail "no data race reported"
# The planted access (fastbuild strips file names, so match the function).
grep -q "#0 xenchan::server::WriteLogic::OnReadDone" "$log" ||
  fail "the report does not name the planted access in WriteLogic::OnReadDone"
echo "PASS: ThreadSanitizer reported the planted race in WriteLogic"
