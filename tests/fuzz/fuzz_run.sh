#!/usr/bin/env bash
# Runs one libFuzzer binary for a short, fixed time, starting from its seed
# corpus, so that a target that breaks within seconds cannot land. Started by
# the `<name>_fuzz_run` tests that fuzz_test() (defs.bzl) declares, which CI
# runs in the ASan configuration (scripts/test.sh).
#
#   fuzz_run.sh BINARY SECONDS SEED...
#
# New inputs go to a scratch copy of the corpus, never into the source tree;
# a crashing input is written to the test's undeclared outputs
# (bazel-testlogs/.../test.outputs/) and printed as a reproduction command.
set -euo pipefail
binary=$1
seconds=$2
shift 2
work=${TEST_TMPDIR:-$(mktemp -d)}/corpus
mkdir -p "$work"
for seed in "$@"; do cp -- "$seed" "$work/"; done
artifacts=${TEST_UNDECLARED_OUTPUTS_DIR:-$work}/
echo "fuzz_run: $(basename "$binary") for ${seconds}s from $# seeds"
if ! "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
     -print_final_stats=1 -artifact_prefix="$artifacts" "$work"; then
  echo "fuzz_run: $(basename "$binary") failed; crashing input(s) in $artifacts:" >&2
  ls -l "$artifacts" >&2 || true
  echo "reproduce: bazel build --config=asan <target>_libfuzzer && bazel-bin/.../<target>_libfuzzer CRASH_FILE" >&2
  exit 1
fi
