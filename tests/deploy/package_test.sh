#!/usr/bin/env bash
# Installs the Debian packages scripts/package.sh built into a fresh minimal
# Debian 12 root and checks what an admin gets: files, modes and owners,
# conffiles, the system user, the units (systemd-analyze verify), that the
# installed programs run, an upgrade to a second version that keeps a
# modified conffile and the state, and that only a purge removes the state.
#
#   tests/deploy/package_test.sh DEB_DIR      # as root; DEB_DIR from package.sh
#
# The root comes from mmdebstrap (--variant=apt: Essential packages and apt)
# with the packages' dependencies downloaded into its apt cache but not
# installed, so apt resolves the Depends of the built packages offline, as
# it would on a host. It is cached as a tarball in XENCHAN_TEST_CACHE
# (default /var/cache/xenchan-test), keyed by the dependency list: reruns
# need no network, a new dependency fetches a new root once. Everything else
# happens in a temporary directory, in a private mount namespace.
# The second version is built from a copy of debian/ with a new changelog
# entry and a changed xenchand.conf, by the same debian/rules, in the same
# Bazel workspace (nothing is recompiled).
# Ends with "package_test: N passed, N failed"; exit status 0 only if all
# checks passed.
# Single quotes hold code for `bash -c` and dpkg-query formats, on purpose;
# functions called through check() look unreachable to shellcheck:
# shellcheck disable=SC2016,SC2317
set -uo pipefail
DEBS=$(realpath "${1:?usage: package_test.sh DEB_DIR}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${XENCHAN_TEST_CACHE:-/var/cache/xenchan-test}
SUITE=bookworm
[ "$(id -u)" -eq 0 ] || { echo "package_test: needs root (chroot)"; exit 1; }
for t in mmdebstrap dpkg-buildpackage systemd-analyze unshare; do
  command -v "$t" >/dev/null || { echo "package_test: $t is missing: run scripts/setup.sh"; exit 1; }
done

T=$(mktemp -d /var/tmp/xenchan-package-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
R=$T/root
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() {  # check DESCRIPTION COMMAND...: the command must succeed
  local what=$1
  shift
  if "$@" >"$T/out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/     /' "$T/out" | tail -n 20; fi
}
# in_root COMMAND...: run in the root, with its own /proc, in a private
# mount and PID namespace (nothing is left mounted on the host).
in_root() { unshare --mount --pid --fork --mount-proc="$R/proc" chroot "$R" "$@"; }
stat_of() { in_root stat -c '%a %U:%G' "$1" 2>/dev/null; }
is() {  # is DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}
finish() {
  echo "package_test: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

version=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
v1=("$DEBS/xenchand_${version}_"*.deb "$DEBS/xenchan-agent_${version}_"*.deb
    "$DEBS/python3-xenchan_${version}_all.deb")
for d in "${v1[@]}"; do [ -f "$d" ] || { bad "no $d: run scripts/package.sh first"; finish; }; done

# ---- the root: cached per dependency list
# The packages' Depends, plus what the units run under on a host (systemd,
# and procps for ExecReload's /bin/kill), for systemd-analyze verify.
deps=$({ for d in "${v1[@]}"; do dpkg-deb -f "$d" Depends; done; echo ", systemd, procps"; } | tr ',' '\n' |
  sed -e 's/(.*)//' -e 's/|.*//' -e 's/:any//' -e 's/ //g' | grep -v '^$' | sort -u |
  grep -vx -e xenchand -e xenchan-agent -e python3-xenchan | tr '\n' ' ')
key=$(echo "$SUITE no-recommends $deps" | sha256sum | cut -c1-16)
tarball=$CACHE/$SUITE-apt-$key.tar
if [ ! -f "$tarball" ]; then
  echo "package_test: making the $SUITE root (once per dependency list): $tarball"
  t0=$(date +%s)
  mkdir -p "$CACHE"
  # The dependencies are downloaded, not installed; the apt lists and cache
  # are kept so that installing from this root needs no network.
  if ! mmdebstrap --quiet --variant=apt --format=tar --skip=cleanup/apt \
      --customize-hook='chroot "$1" apt-get install --download-only --no-install-recommends -y -q '"$deps" \
      "$SUITE" "$tarball.tmp" >"$T/mmdebstrap.log" 2>&1; then
    tail -n 30 "$T/mmdebstrap.log"
    rm -f "$tarball.tmp"
    bad "mmdebstrap $SUITE"
    finish
  fi
  mv "$tarball.tmp" "$tarball"
  # Roots for earlier dependency lists are no longer used.
  find "$CACHE" -maxdepth 1 -name "$SUITE-apt-*.tar" ! -name "${tarball##*/}" -delete
  echo "package_test: root made in $(( $(date +%s) - t0 )) s"
fi
mkdir -p "$R"
tar -C "$R" -xf "$tarball" || { bad "unpacking $tarball"; finish; }
mkdir -p "$R/debs/v1" "$R/debs/v2"
cp "${v1[@]}" "$R/debs/v1/"

# install_debs DEB...: what an admin's `apt install ./X.deb` does, offline,
# keeping modified conffiles: apt installs the Depends the packages declare
# (from the root's cache, without Recommends: systemd and udev, since the
# units are checked with the host's systemd-analyze --root), then dpkg
# installs the packages and refuses if anything they depend on is missing.
# (apt-get given the .deb files itself stops with "Pathname to install is not
# absolute" when it splits the run around python3-minimal's set-up.)
install_debs() {
  # shellcheck disable=SC2086  # $deps is a list of package names
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download \
    --no-install-recommends $deps &&
    in_root env DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold -i "$@"
}

# ---- install
in_root_debs() { (cd "$R" && for d in debs/"$1"/*.deb; do echo "/$d"; done); }
mapfile -t debs < <(in_root_debs v1)
check "install the three packages offline" install_debs "${debs[@]}"
in_root dpkg-query -W -f='${Status}\n' xenchand xenchan-agent python3-xenchan >"$T/status" 2>&1
is "all three installed" "$(grep -c 'install ok installed' "$T/status")" 3

# ---- files, modes, owners
for f in "/usr/sbin/xenchand 755 root:root" "/usr/bin/xenchanctl 755 root:root" \
         "/usr/sbin/xenchan-agent 755 root:root" "/lib/udev/xen-channel-name 755 root:root" \
         "/etc/xenchan/xenchand.conf 644 root:root" "/etc/xenchan/policy.conf 644 root:root" \
         "/etc/xenchan/policy.example 644 root:root" "/etc/logrotate.d/xenchand 644 root:root" \
         "/lib/systemd/system/xenchand.service 644 root:root" \
         "/lib/systemd/system/xenchan-agent.service 644 root:root" \
         "/lib/udev/rules.d/60-xenchand.rules 644 root:root" \
         "/lib/udev/rules.d/90-xen-channel.rules 644 root:root" \
         "/usr/share/man/man8/xenchand.8.gz 644 root:root" \
         "/usr/share/man/man1/xenchanctl.1.gz 644 root:root" \
         "/usr/share/man/man8/xenchan-agent.8.gz 644 root:root" \
         "/var/lib/xenchan 750 xenchan:xenchan" "/var/log/xenchan 750 xenchan:xenchan"; do
  read -r path mode owner <<<"$f"
  is "$path" "$(stat_of "$path")" "$mode $owner"
done
for f in deploy/systemd/xenchand.service:/lib/systemd/system/xenchand.service \
         deploy/guest/xenchan-agent.service:/lib/systemd/system/xenchan-agent.service \
         deploy/guest/90-xen-channel.rules:/lib/udev/rules.d/90-xen-channel.rules \
         deploy/guest/xen-channel-name:/lib/udev/xen-channel-name \
         deploy/xenchand.conf:/etc/xenchan/xenchand.conf \
         deploy/policy.example:/etc/xenchan/policy.example \
         deploy/logrotate.d/xenchand:/etc/logrotate.d/xenchand; do
  check "${f#*:} is deploy's ${f%%:*}" cmp "$REPO/${f%%:*}" "$R${f#*:}"
done
in_root dpkg-query -W -f='${Conffiles}\n' xenchand | awk 'NF{print $1}' | sort >"$T/conffiles"
is "xenchand's conffiles" "$(tr '\n' ' ' <"$T/conffiles")" \
  "/etc/logrotate.d/xenchand /etc/xenchan/policy.conf /etc/xenchan/policy.example /etc/xenchan/xenchand.conf "
check "the udev rule gives the group the unit's DeviceAllow nodes" bash -c '
  unit=$(sed -n "s#^DeviceAllow=/dev/\(xen/[a-z]*\) rw#\1#p" "$1" | sort | tr "\n" " ")
  rule=$(sed -n "s/.*KERNEL==\"\([^\"]*\)\".*GROUP=\"xenchan\".*/\1/p" "$2" | tr "|" "\n" | sort | tr "\n" " ")
  echo "unit: $unit; rule: $rule"; [ -n "$unit" ] && [ "$unit" = "$rule" ]' _ \
  "$R/lib/systemd/system/xenchand.service" "$R/lib/udev/rules.d/60-xenchand.rules"

# ---- the system user
IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd xenchan)
check "user xenchan exists" test -n "${uid:-}"
check "xenchan is a system user (uid ${uid:-?} < 1000)" test "${uid:-1000}" -lt 1000
is "xenchan's home" "${home:-}" /var/lib/xenchan
is "xenchan's shell" "${shell:-}" /usr/sbin/nologin
is "xenchan's primary group" "$(in_root getent group "${gid:-x}" | cut -d: -f1)" xenchan
check "the unit runs as xenchan" grep -qx 'User=xenchan' "$R/lib/systemd/system/xenchand.service"

# ---- units, enabled and valid
for u in xenchand xenchan-agent; do
  check "$u.service enabled" test -L "$R/etc/systemd/system/multi-user.target.wants/$u.service"
  check "systemd-analyze verify $u.service" bash -c '
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no --root="$1" "$2" 2>&1) || { echo "$out"; exit 1; }
    echo "$out"; ! grep -Ei "unknown|invalid|failed to parse|ignoring" <<<"$out"' _ "$R" "/lib/systemd/system/$u.service"
done

# ---- the programs run (their libraries resolve from the Depends alone)
check "xenchand --help runs" in_root /usr/sbin/xenchand --help
check "xenchanctl --help runs" in_root /usr/bin/xenchanctl --help
# The installed configuration and policy are accepted: xenchand reads both,
# then stops at the platform (no Xen in the root). Own network namespace: it
# must not reach the host's ports.
unshare --net --mount --pid --fork --mount-proc="$R/proc" chroot "$R" /usr/sbin/xenchand \
  --config /etc/xenchan/xenchand.conf --platform sim --sim-state-dir /nonexistent >"$T/start" 2>&1
check "xenchand accepts the installed xenchand.conf and policy.conf" bash -c '
  cat "$1"; grep -q "msg=policy path=/etc/xenchan/policy.conf sections=1 rules=1" "$1" &&
    grep -q "platform unavailable" "$1"' _ "$T/start"
is "xenchan-agent --version is the package's version" "$(in_root /usr/sbin/xenchan-agent --version 2>&1)" \
  "xenchan-agent $version"
# The SDK keeps its own version (clients/python/xenchan/__init__.py).
check "python3 imports the SDK and its generated modules" in_root python3 -c \
  'import xenchan, xenchan.v1.channel_service_pb2_grpc; print(xenchan.__version__)'

check "xenchand.8 is generated from --help" bash -c 'zcat "$1" | grep -qF "Generated from \`xenchand --help\`"' _ \
  "$R/usr/share/man/man8/xenchand.8.gz"
check "the xen-channel-name helper runs" in_root /lib/udev/xen-channel-name --root /tmp list

# ---- local changes an upgrade must keep
echo "# local change: keep me" >>"$R/etc/xenchan/xenchand.conf"
cp "$R/etc/xenchan/xenchand.conf" "$T/xenchand.conf.local"
echo "declarations" >"$R/var/lib/xenchan/declarations.db"
echo "audit" >"$R/var/log/xenchan/audit.log"

# ---- version 2: a new changelog entry and a changed xenchand.conf
v2=$version+test1
S=$T/src2
mkdir -p "$S"
cp -a "$REPO/debian" "$REPO/deploy" "$S/"
mkdir -p "$S/docs" && cp "$REPO/docs/SECURITY.md" "$S/docs/"
rm -rf "$S/debian/build" "$S/debian/.debhelper"
echo "# a setting new in $v2" >>"$S/deploy/xenchand.conf"
{
  printf 'xenchan (%s) unstable; urgency=medium\n\n  * Upgrade test build.\n\n' "$v2"
  printf ' -- xenchan team <team@xenchan.invalid>  %s\n\n' "$(date -R)"
  cat "$REPO/debian/changelog"
} >"$S/debian/changelog"
t0=$(date +%s)
if (cd "$S" && XENCHAN_BAZEL_WORKSPACE=$REPO XENCHAN_DEB_DIR=$R/debs/v2 \
      dpkg-buildpackage -b --no-sign --changes-file="$R/debs/v2/v2.changes" \
      --buildinfo-file="$R/debs/v2/v2.buildinfo" --changes-option=-u"$R/debs/v2" \
      --buildinfo-option=-u"$R/debs/v2") >"$T/v2.log" 2>&1; then
  ok "built version $v2 from a copy of debian/ in $(( $(date +%s) - t0 )) s"
else
  bad "building version $v2"
  tail -n 30 "$T/v2.log"
  finish
fi
mapfile -t debs < <(in_root_debs v2)
check "install version $v2 (upgrade: ${#debs[@]} packages)" install_debs "${debs[@]}"
is "xenchand upgraded" "$(in_root dpkg-query -W -f='${Version}' xenchand)" "$v2"
check "the modified xenchand.conf is kept" cmp "$T/xenchand.conf.local" "$R/etc/xenchan/xenchand.conf"
check "the new xenchand.conf is beside it as .dpkg-dist" cmp "$S/deploy/xenchand.conf" \
  "$R/etc/xenchan/xenchand.conf.dpkg-dist"
check "the state is kept across the upgrade" grep -qx declarations "$R/var/lib/xenchan/declarations.db"
is "xenchan's uid is kept" "$(in_root id -u xenchan)" "${uid:-}"

# ---- remove keeps state and configuration; purge removes them
check "apt-get remove xenchand" in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q xenchand
check "after remove: the binary is gone" test ! -e "$R/usr/sbin/xenchand"
check "after remove: the state is kept" grep -qx declarations "$R/var/lib/xenchan/declarations.db"
check "after remove: the audit log is kept" test -f "$R/var/log/xenchan/audit.log"
check "after remove: the configuration is kept" test -f "$R/etc/xenchan/xenchand.conf"
check "dpkg --purge xenchand" in_root dpkg --purge xenchand
check "after purge: /var/lib/xenchan is gone" test ! -e "$R/var/lib/xenchan"
check "after purge: /var/log/xenchan is gone" test ! -e "$R/var/log/xenchan"
check "after purge: /etc/xenchan is gone" test ! -e "$R/etc/xenchan"
check "after purge: the unit's enablement is gone" \
  test ! -e "$R/etc/systemd/system/multi-user.target.wants/xenchand.service"
check "dpkg --purge xenchan-agent python3-xenchan" in_root dpkg --purge xenchan-agent python3-xenchan
check "after purge: no file of ours is left" bash -c '! find "$1/usr" "$1/lib" "$1/etc" -name "*xenchan*" | grep .' _ "$R"
finish
