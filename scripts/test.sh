#!/usr/bin/env bash
# The README's test command: sets up what is missing, then runs the whole test
# suite in every build configuration CI runs, and ends with one line
# "N passed, N failed" counted from Bazel's test summaries.
#
#   scripts/test.sh                  # default (gcc), ASan/UBSan and TSan
#   XENCHAN_TEST_CONFIGS="default" scripts/test.sh   # a quicker subset
#   XENCHAN_TEST_PACKAGES=0 scripts/test.sh          # without the Debian packages
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

read -r -a configs <<<"${XENCHAN_TEST_CONFIGS:-default asan tsan}"
log_dir=$(mktemp -d)
passed=0
failed=0
status=0
for config in "${configs[@]}"; do
  flags=()
  [ "$config" = default ] || flags=(--config="$config")
  targets=(//...)
  # The sanitizer configurations build only what their tests need: the
  # default configuration already builds every target (tools, benches).
  [ "$config" = default ] || flags+=(--build_tests_only)
  # Under ASan (which instruments for libFuzzer's coverage too) every fuzz
  # target is also fuzzed for a short, fixed time: the *_fuzz_run tests of
  # tests/fuzz/defs.bzl, tagged manual so that //... leaves them out.
  if [ "$config" = asan ]; then
    mapfile -t fuzz_runs < <(bazel query --noshow_progress 'attr(tags, "\bfuzz_run\b", //...)' 2>/dev/null)
    targets+=("${fuzz_runs[@]}")
  fi
  echo "=== bazel test ${flags[*]} //... (${#targets[@]} patterns) ==="
  bazel test "${flags[@]}" --keep_going --test_summary=short "${targets[@]}" 2>&1 | tee "$log_dir/$config.log"
  rc=${PIPESTATUS[0]}
  # Bazel exits 3 when some tests failed and 1 when the build failed; both count.
  [ "$rc" -eq 0 ] || status=1
  p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log_dir/$config.log")
  f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log_dir/$config.log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi  # the build itself broke
  grep -E '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log_dir/$config.log" |
    sed "s/^/FAILED-IN-$config: /" >>"$log_dir/failures"
  # Each failed test's first assertions, so that a log that keeps only its
  # tail still says why (CI's machine and its test logs are gone after it).
  grep -oE '^//[^ ]+ +(FAILED|TIMEOUT|FLAKY)' "$log_dir/$config.log" | awk '{print $1}' |
    while read -r target; do
      test_log="bazel-testlogs/${target#//}"
      test_log="${test_log/://}/test.log"
      [ -f "$test_log" ] || continue
      grep -E -A4 'Failure$|^\[  FAILED  \] [^ ]+ \(|TIMEOUT|^not ok|Error:' "$test_log" | head -n 16 |
        sed 's/^/    | /' >>"$log_dir/failures"
    done
  if [ "$rc" -ne 0 ] && [ "$f" -eq 1 ] && ! grep -q "^FAILED-IN-$config: " "$log_dir/failures"; then
    echo "FAILED-IN-$config: the build (bazel exit $rc)" >>"$log_dir/failures"
  fi
  echo "--- $config: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
  # The Debian packages, once, right after the default configuration: their
  # Bazel build is that configuration's, so it only reuses what the suite
  # just compiled (the sanitizer configurations write the same output tree).
  # Two tests: the build with lintian, and the install/upgrade/purge test.
  if [ "$config" = default ] && [ "${XENCHAN_TEST_PACKAGES:-1}" != 0 ]; then
    echo "=== Debian packages: scripts/package.sh, tests/deploy/package_test.sh ==="
    if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
    pkg_dir=$(mktemp -d)
    if scripts/package.sh "$pkg_dir" >"$log_dir/package.log" 2>&1; then
      tail -n 3 "$log_dir/package.log"
      echo "packages PASSED"
      passed=$((passed + 1))
      if "${as_root[@]}" tests/deploy/package_test.sh "$pkg_dir" >"$log_dir/package_test.log" 2>&1; then
        tail -n 1 "$log_dir/package_test.log"
        echo "package_test PASSED"
        passed=$((passed + 1))
      else
        grep -v '^ok ' "$log_dir/package_test.log" | tail -n 40
        echo "package_test FAILED"
        echo "FAILED-IN-default: tests/deploy/package_test.sh" >>"$log_dir/failures"
        failed=$((failed + 1))
        status=1
      fi
    else
      tail -n 40 "$log_dir/package.log"
      echo "packages FAILED (the install test did not run)"
      echo "FAILED-IN-default: scripts/package.sh" >>"$log_dir/failures"
      failed=$((failed + 2))
      status=1
    fi
    rm -rf "$pkg_dir"
  fi
done
# What failed, once more at the end, where a truncated log still shows it.
[ -s "$log_dir/failures" ] && cat "$log_dir/failures"
rm -rf "$log_dir"
echo "$passed passed, $failed failed"
exit $status
