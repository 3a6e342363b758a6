#!/usr/bin/env bash
# Proves that the layering rule is a build error: a Bazel of its own (own
# output root under $TEST_TMPDIR, analysis only) must refuse every wrong-way
# dependency in //backend/layering_check as "not visible", and accept the
# allowed one beside them (so that a Bazel that fails for another reason
# cannot pass this test). Reads the working tree: tagged external and local.
set -uo pipefail
root=$(dirname "$(readlink -f "$TEST_SRCDIR/$TEST_WORKSPACE/.clang-format")")
cd "$root" || exit 1
pkg=//backend/layering_check
nested() {
  bazel --output_user_root="$TEST_TMPDIR/bazel" --max_idle_secs=10 \
    build --nobuild --symlink_prefix=/ --noshow_progress "$@" 2>&1
}
status=0
if out=$(nested "$pkg:allowed_backend_uses_util"); then
  echo "ok: $pkg:allowed_backend_uses_util analyses"
else
  echo "FAIL: the allowed dependency did not analyse:"; echo "$out"; status=1
fi
for target in backend_uses_server backend_uses_engine backend_uses_client_library; do
  out=$(nested "$pkg:$target"); rc=$?
  if [ "$rc" -ne 0 ] && grep -q "is not visible from target '$pkg:$target'" <<<"$out"; then
    echo "ok: $pkg:$target is refused: $(grep -o "target '[^']*' is not visible[^.]*" <<<"$out" | head -n 1)"
  else
    echo "FAIL: $pkg:$target was not refused for visibility (exit $rc):"; echo "$out"; status=1
  fi
done
bazel --output_user_root="$TEST_TMPDIR/bazel" shutdown >/dev/null 2>&1
exit $status
