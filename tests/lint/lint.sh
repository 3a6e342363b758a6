#!/usr/bin/env bash
# Format and lint checks over the repository's own sources, as tests:
#
#   lint.sh shellcheck    every shell script (by extension or #! line)
#   lint.sh clang-format  every C++ source against .clang-format
#   lint.sh buildifier    every BUILD, .bzl and WORKSPACE file
#
# They look at the working tree itself (the files git tracks), not at a
# declared set of inputs, so the tests are tagged `external` (never cached):
# a change anywhere is seen on the next run. The tools come from
# scripts/setup.sh (shellcheck and clang-format from Debian, buildifier from
# the npm registry under /opt/xenchan-tools). To fix what they report:
#   clang-format -i FILE...     buildifier FILE...
# buildifier checks formatting only (-lint=off): its lint warnings are about
# newer Bazel releases (rules that must be load()ed) than Debian's.
set -euo pipefail
tool=$1
# .clang-format is a data dependency: its runfile link leads to the tree.
root=$(dirname "$(readlink -f "$TEST_SRCDIR/$TEST_WORKSPACE/.clang-format")")
cd "$root"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
  echo "lint: $root is not a git work tree; these checks need one" >&2
  exit 1
}
list() { git ls-files -z -- "$@" | xargs -0 -r ls -d 2>/dev/null; }  # tracked, still present

case $tool in
  shellcheck)
    mapfile -t files < <(
      list '*.sh'
      git ls-files -z | xargs -0 -r grep -lIE '^#! */(usr/)?bin/(env )?(ba|busybox )?sh' -- 2>/dev/null |
        grep -v '\.sh$' || true)
    echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p') on ${#files[@]} scripts"
    shellcheck -x "${files[@]}"
    ;;
  clang-format)
    mapfile -t files < <(list '*.cc' '*.h')
    echo "$(clang-format --version) on ${#files[@]} files"
    clang-format --dry-run --Werror "${files[@]}"
    ;;
  buildifier)
    bin=${BUILDIFIER:-/opt/xenchan-tools/node_modules/.bin/buildifier}
    mapfile -t files < <(list '*BUILD.bazel' '*.bzl' '*.BUILD' WORKSPACE)
    echo "$("$bin" --version | head -n 1) on ${#files[@]} files"
    "$bin" -mode=check -lint=off "${files[@]}"
    ;;
  *)
    echo "lint: unknown tool $tool" >&2
    exit 2
    ;;
esac
echo "lint: $tool clean"
