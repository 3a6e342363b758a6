#!/usr/bin/env bash
# Builds the lane's boot images from this machine's Debian packages, the
# project's packages and the lane's tools (already built by run-lane.sh):
#
#   tests/xen/build-images.sh WORK_DIR BIN_DIR DEB_DIR
#
# BIN_DIR holds the lane's tools xenlane_probe and guest_echo; DEB_DIR the
# packages scripts/package.sh built: xenchand_*.deb is unpacked into dom0's
# root and xenchan-agent_*.deb into the guest's (dpkg-deb -x: the busybox
# roots have no dpkg), so the lane runs exactly the installed files, with
# their libraries copied in beside them; the guest also gets this machine's
# qemu-ga, dom0 the e1000 module and a fresh PKI made in WORK_DIR/pki
# (scenario 12). Output in WORK_DIR/out: xen (the unpacked hypervisor; QEMU's
# multiboot loader refuses the .gz), vmlinuz (dom0's kernel), dom0.cpio.gz
# (which carries the guest kernel and guest.cpio.gz), and versions.txt. The
# kernel .deb is fetched with apt-get download once per version and cached in
# WORK_DIR/kernel-<package>.
set -euo pipefail
WORK=${1:?usage: build-images.sh WORK_DIR BIN_DIR DEB_DIR}
BIN=${2:?usage: build-images.sh WORK_DIR BIN_DIR DEB_DIR}
DEBS=${3:?usage: build-images.sh WORK_DIR BIN_DIR DEB_DIR}
LANE=$(cd "$(dirname "$0")" && pwd)
OUT=$WORK/out
XEN_LIB=/usr/lib/xen-4.17
mkdir -p "$OUT"

die() { echo "build-images: $*" >&2; exit 1; }
for f in /boot/xen-4.17-amd64.gz "$XEN_LIB/bin/xl" /usr/libexec/xen-qemu-system-i386 \
         /bin/busybox /usr/bin/xenstore /usr/share/qemu/keymaps/en-us /usr/sbin/qemu-ga; do
  [ -e "$f" ] || die "$f is missing: run scripts/setup.sh --xen-lane"
done
for b in xenlane_probe guest_echo; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing"
done
deb_of() {  # deb_of PACKAGE: the one DEB_DIR/PACKAGE_*.deb
  local f
  f=$(find "$DEBS" -maxdepth 1 -name "${1}_*.deb" | sort | tail -n 1)
  [ -n "$f" ] || die "no $DEBS/${1}_*.deb: run scripts/package.sh $DEBS"
  echo "$f"
}
XENCHAND_DEB=$(deb_of xenchand)
AGENT_DEB=$(deb_of xenchan-agent)

# ---- kernel: vmlinuz, the Xen driver modules and e1000 (dom0's NIC) of
# Debian's current kernel
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
KDIR=$WORK/kernel-$KPKG
E1000=kernel/drivers/net/ethernet/intel/e1000/e1000.ko
if ! ls "$KDIR"/boot/vmlinuz-* "$KDIR"/lib/modules/*/$E1000 >/dev/null 2>&1; then
  rm -rf "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
  (cd "$KDIR.tmp" && apt-get download "$KPKG" >/dev/null) || die "apt-get download $KPKG failed"
  deb=$(ls "$KDIR.tmp"/*.deb)
  dpkg-deb -f "$deb" Version > "$KDIR.tmp/VERSION"
  (cd "$KDIR.tmp" && dpkg-deb --fsys-tarfile "$deb" |
     tar -x --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/xen/*' "./lib/modules/*/$E1000")
  rm -f "$deb"
  rm -rf "$KDIR" && mv "$KDIR.tmp" "$KDIR"
fi
VMLINUZ=$(find "$KDIR/boot" -maxdepth 1 -name "vmlinuz-*" | sort | head -n 1)
KVER=${VMLINUZ##*/vmlinuz-}

# copy_libs ROOT FILE: FILE's shared-library closure (ldd lists it
# transitively, from this machine) into ROOT.
copy_libs() {
  local root=$1 file=$2
  ldd "$file" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# copy_with_libs ROOT FILE [DEST]: FILE (dereferenced) plus its shared-library
# closure into ROOT.
copy_with_libs() {
  local root=$1 file=$2 dest=${3:-$2}
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$file" "$root$dest"
  copy_libs "$root" "$file"
}

# install_deb ROOT DEB BINARY...: DEB's files into ROOT, and the libraries
# of its BINARYs (paths inside ROOT).
install_deb() {
  local root=$1 deb=$2 b
  shift 2
  dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x $deb failed"
  for b in "$@"; do
    [ -x "$root$b" ] || die "$deb has no $b"
    copy_libs "$root" "$root$b"
  done
}

pack() {  # pack ROOT OUTPUT LEVEL
  (cd "$1" && find . | cpio -o -H newc --quiet | gzip "-$3" > "$2")
}

# ---- guest root: busybox init, the agent, the echo peer, xenstore tools
G=$WORK/guestroot
rm -rf "$G" && mkdir -p "$G"/{bin,sbin,etc/init.d,proc,sys,dev,run,tmp,root,lib/xenlane,lib/udev,usr/lib}
cp /bin/busybox "$G/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$G/bin/$a" ] || ln -s busybox "$G/bin/$a"; done
ln -s bin/busybox "$G/init"
mknod -m 0600 "$G/dev/console" c 5 1   # init's stdio before devtmpfs is mounted
ln -s ../bin/busybox "$G/sbin/poweroff"   # the kernel's orderly_poweroff runs /sbin/poweroff
# The agent package: /usr/sbin/xenchan-agent and /lib/udev/xen-channel-name
# (found as /usr/lib/udev/... too: usr/lib/udev links to /lib/udev, as on a
# merged-/usr Debian 12), its unit and udev rule (unused: busybox init).
install_deb "$G" "$AGENT_DEB" /usr/sbin/xenchan-agent
ln -s ../../lib/udev "$G/usr/lib/udev"
copy_with_libs "$G" "$BIN/guest_echo" /bin/guest_echo
copy_with_libs "$G" /usr/bin/xenstore
# Debian's qemu-ga (qemu-guest-agent, on this machine for the suite's tests):
# scenario 12's Ansible runs its raw tasks through it.
copy_with_libs "$G" /usr/sbin/qemu-ga
for n in read write exists ls rm watch list; do ln -s xenstore "$G/usr/bin/xenstore-$n"; done
[ -e "$G/lib64/ld-linux-x86-64.so.2" ] || { mkdir -p "$G/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$G/lib64/"; }
[ -x "$G/lib/udev/xen-channel-name" ] || die "$AGENT_DEB has no /lib/udev/xen-channel-name"
install -m 0755 "$LANE/guest/rcS" "$G/etc/init.d/rcS"
install -m 0755 "$LANE/guest/control" "$G/lib/xenlane/control"
install -m 0644 "$LANE/guest/inittab" "$G/etc/inittab"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$G/etc/passwd"
printf 'root:x:0:\n' > "$G/etc/group"
printf 'ID=xenlane\nNAME="xenchan lane guest"\nVERSION_ID=1\nPRETTY_NAME="xenchan lane guest (busybox)"\n' > "$G/etc/os-release"
pack "$G" "$OUT/guest.cpio.gz" 6

# ---- dom0 root: Xen tools, QEMU (channel backend), our binaries
R=$WORK/dom0root
rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,run,etc/xen,root,lib64,var/lib,var/log/xen,lib/modules,lane}
ln -s ../run "$R/var/run"
cp /bin/busybox "$R/bin/busybox"
for b in xl xenstored xenconsoled xen-init-dom0 xenconsole libxl-save-helper xenstore-control; do
  copy_with_libs "$R" "$XEN_LIB/bin/$b"
done
copy_with_libs "$R" /usr/bin/xenstore
for n in read write exists ls rm watch list chmod; do ln -s xenstore "$R/usr/bin/xenstore-$n"; done
copy_with_libs "$R" /usr/libexec/xen-qemu-system-i386
copy_with_libs "$R" /usr/bin/socat
# The server package: /usr/sbin/xenchand, /usr/bin/xenchanctl, /etc/xenchan.
install_deb "$R" "$XENCHAND_DEB" /usr/sbin/xenchand /usr/bin/xenchanctl
copy_with_libs "$R" "$BIN/xenlane_probe" /bin/xenlane_probe
[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
# libxl starts QEMU with -vnc none, which still loads the en-us keymap.
mkdir -p "$R/usr/share/qemu/keymaps" && cp /usr/share/qemu/keymaps/en-us "$R/usr/share/qemu/keymaps/"
cp -a /etc/xen/xl.conf /etc/xen/scripts "$R/etc/xen/"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs/xenfs; do
  cp "$KDIR/lib/modules/$KVER/kernel/drivers/xen/$m.ko" "$R/lib/modules/"
done
cp "$KDIR/lib/modules/$KVER/$E1000" "$R/lib/modules/"
# A fresh PKI per build (tests/server/make_test_certs.sh) in WORK_DIR/pki:
# dom0 gets the CA and xenchand's certificate and key, the Ansible host job
# (host/ansible-raw.sh) uses the client certificates from WORK_DIR/pki.
rm -rf "$WORK/pki"
"$LANE/../server/make_test_certs.sh" "$WORK/pki" > "$WORK/pki.log" 2>&1 ||
  { cat "$WORK/pki.log" >&2; die "making the lane's PKI failed"; }
mkdir -p "$R/lane/pki"
cp "$WORK/pki/ca.pem" "$WORK/pki/server.pem" "$WORK/pki/server.key" "$R/lane/pki/"
install -m 0755 "$LANE/dom0/init" "$R/init"
install -m 0755 "$LANE/dom0/scenarios.sh" "$R/lane/scenarios.sh"
install -m 0644 "$LANE/dom0/lane1.cfg" "$LANE/dom0/lane2.cfg" "$LANE/dom0/lane3.cfg" "$R/lane/"
install -m 0755 "$LANE/dom0/durable.sh" "$LANE/dom0/ansible.sh" "$R/lane/"
install -m 0644 "$LANE/dom0/policy.conf" "$R/lane/policy.conf"
cp "$VMLINUZ" "$R/lane/vmlinuz"
cp "$OUT/guest.cpio.gz" "$R/lane/guest.cpio.gz"

# ---- versions, recorded in the image too (dom0 prints them)
{
  for p in xen-hypervisor-4.17-amd64 xen-utils-4.17 qemu-system-x86 qemu-system-xen busybox-static qemu-guest-agent; do
    echo "$p=$(dpkg-query -W -f='${Version}' "$p")"
  done
  echo "$KPKG=$(cat "$KDIR/VERSION" 2>/dev/null || echo unknown)"
  echo "kernel-release=$KVER"
  for d in "$XENCHAND_DEB" "$AGENT_DEB"; do echo "$(dpkg-deb -f "$d" Package)=$(dpkg-deb -f "$d" Version)"; done
} > "$OUT/versions.txt"
cp "$OUT/versions.txt" "$R/lane/versions.txt"
pack "$R" "$OUT/dom0.cpio.gz" 1
cp "$VMLINUZ" "$OUT/vmlinuz"
zcat /boot/xen-4.17-amd64.gz > "$OUT/xen"
echo "build-images: kernel $KVER; guest $(du -sh "$G" | cut -f1), dom0 $(du -sh "$R" | cut -f1)"
