#!/usr/bin/env bash
# Builds the Debian packages xenchand, xenchan-agent and python3-xenchan from
# this tree with dpkg-buildpackage (debian/), offline, after
# scripts/setup.sh. The Bazel build inside runs in this workspace, so it
# reuses what earlier builds and tests compiled (debian/rules says why).
#
#   scripts/package.sh [OUT_DIR]    # default: dist/ at the top of the tree
#
# Writes OUT_DIR/*.deb (and the .buildinfo and .changes), then runs lintian on the .changes unless XENCHAN_LINTIAN=0:
# lintian must be clean (errors and warnings; debian/*.lintian-overrides
# say why each override is there). XENCHAN_BAZEL_FLAGS passes flags to the
# Bazel build (debian/rules). Exit status 0 only if the build and lintian
# passed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")

for tool in dpkg-buildpackage dh lintian bazel; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -q DEB_HOST_ARCH)
changes=$out/xenchan_${version}_${arch}.changes
rm -rf "$out"
mkdir -p "$out"

t0=$(date +%s)
# -b: binary packages only (the source is this git tree); --no-sign: nothing
# to sign with here; -d is not given, so missing build dependencies stop it.
# debian/rules cleans its own staging before and after; Bazel's outputs stay.
XENCHAN_DEB_DIR=$out dpkg-buildpackage -b --no-sign --post-clean \
  --changes-file="$changes" --buildinfo-file="$out/xenchan_${version}_${arch}.buildinfo" \
  --changes-option=-u"$out" --buildinfo-option=-u"$out"
echo "package: built $(cd "$out" && echo ./*.deb) in $(( $(date +%s) - t0 )) s"

if [ "${XENCHAN_LINTIAN:-1}" != 0 ]; then
  t0=$(date +%s)
  # --fail-on warning: a warning (or an error) fails the build; info tags
  # are shown but do not.
  lintian --fail-on error,warning --display-level '>=info' "$changes"
  echo "package: lintian clean in $(( $(date +%s) - t0 )) s"
fi
echo "package: ok ($out)"
