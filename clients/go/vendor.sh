#!/usr/bin/env bash
# Writes clients/go/vendor from go.mod: for every required module a symbolic
# link vendor/MODULE -> /usr/share/gocode/src/MODULE (where Debian's golang-*-dev
# packages install Go libraries), and vendor/modules.txt, the manifest that
# makes `go` build in vendor mode: offline, with no module cache, no proxy and
# no go.sum. The links and the manifest are committed, so `go build` and
# `go test ./...` need no set-up beyond scripts/setup.sh; run this again after
# changing go.mod's requirements. README.md says why vendor mode.
#
#   clients/go/vendor.sh            # rewrite vendor/
#   clients/go/vendor.sh --check    # exit 1 if vendor/ is not what go.mod says
#   GOCODE=/other/src clients/go/vendor.sh DIR   # another source root or module dir
set -euo pipefail
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
dir=${1:-$(cd "$(dirname "$0")" && pwd)}
gocode=${GOCODE:-/usr/share/gocode/src}

# `module version` of every require line, in go.mod's order.
mapfile -t reqs < <(awk '
  /^require \($/ { inblock = 1; next }
  inblock && /^\)/ { inblock = 0; next }
  inblock && NF >= 2 { print $1, $2; next }
  /^require [^(]/ { print $2, $3 }' "$dir/go.mod")
[ ${#reqs[@]} -gt 0 ] || { echo "vendor.sh: no requirements in $dir/go.mod" >&2; exit 1; }

manifest=""
for r in "${reqs[@]}"; do
  mod=${r% *}
  ver=${r#* }
  src=$gocode/$mod
  [ -f "$src/go.mod" ] || {
    echo "vendor.sh: $src/go.mod missing: is its Debian package installed (scripts/setup.sh)?" >&2
    exit 1
  }
  # The language version the module's own go.mod declares: vendored packages
  # are compiled with it.
  gover=$(awk '$1 == "go" { print $2; exit }' "$src/go.mod")
  manifest+="# $mod $ver"$'\n'"## explicit; go ${gover:-1.11}"$'\n'
done

if [ $check = 1 ]; then
  bad=0
  [ "$(cat "$dir/vendor/modules.txt" 2>/dev/null)"$'\n' = "$manifest" ] ||
    { echo "vendor.sh: vendor/modules.txt differs from go.mod" >&2; bad=1; }
  for r in "${reqs[@]}"; do
    mod=${r% *}
    [ "$(readlink "$dir/vendor/$mod")" = "$gocode/$mod" ] ||
      { echo "vendor.sh: vendor/$mod is not a link to $gocode/$mod" >&2; bad=1; }
  done
  exit $bad
fi

rm -rf "$dir/vendor"
mkdir -p "$dir/vendor"
for r in "${reqs[@]}"; do
  mod=${r% *}
  mkdir -p "$dir/vendor/$(dirname "$mod")"
  ln -s "$gocode/$mod" "$dir/vendor/$mod"
done
printf '%s' "$manifest" > "$dir/vendor/modules.txt"
