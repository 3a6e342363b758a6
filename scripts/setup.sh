#!/usr/bin/env bash
# Installs everything xenchan needs to build, test and run, from Debian's
# packages and the npm registry. Idempotent: a second run installs nothing and
# takes a few seconds. Runs as root, or through sudo when not root.
#
#   scripts/setup.sh            # build + test + run dependencies
#   scripts/setup.sh --xen-lane # also what the real-Xen lane (tests/xen) boots
set -euo pipefail

BUF_VERSION=1.75.0
BUILDIFIER_VERSION=8.2.1
TOOLS_DIR=/opt/xenchan-tools   # npm packages (buf, buildifier) live here, outside the repo

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# name: what it is for (the README's dependency table says the same).
PACKAGES=(
  bazel-bootstrap bazel-bootstrap-source   # the build (offline), and Bazel's own rule repositories
  g++ clang libclang-rt-14-dev             # compilers; clang for -Wthread-safety, ASan/UBSan, TSan, libFuzzer
  pkg-config                               # how the build finds the system libraries
  protobuf-compiler libprotobuf-dev        # protoc and the C++ protobuf runtime
  libgrpc++-dev protobuf-compiler-grpc     # gRPC C++ and the grpc_cpp/grpc_python protoc plugins
  libabsl-dev                              # absl::Status, strings, time, flags
  libxen-dev                               # libxenstore, libxenevtchn, libxengnttab and Xen's public headers
  xenstore-utils                           # xenstore-read/-ls/... : run against xensim in tests
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and benchmarks
  prometheus-cpp-dev                       # xenchand's /metrics
  python3 python3-grpcio python3-protobuf  # the generated Python SDK and its test
  python3-pip python3-setuptools python3-wheel python3-venv  # `pip install ./clients/python` (offline, no build isolation) and its test
  qemu-guest-agent                         # a real peer for Call with the QEMU guest agent framing
  ansible-core                             # the Ansible connection plugin (clients/ansible) and its playbook tests
  openssl libssl-dev                       # test certificate authorities for mTLS tests; X.509 parsing in xenchand
  libsqlite3-dev                           # SQLite: xenchand's crash-safe store of durable channel declarations
  etcd-server etcd-client                  # etcd 3.4: the fleet's store (issue 13); real members in tests
  nodejs npm                               # to install buf (proto lint) and buildifier
  shellcheck clang-format                  # the lint tests (tests/lint): shell scripts, C++ format
  golang-go                                # Go 1.19: the Go SDK (clients/go) and the provisioner
  golang-google-grpc-dev golang-google-genproto-dev  # gRPC Go and google.rpc error details, under /usr/share/gocode/src
  golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev  # the Go protobuf runtime (1.28) and the APIv1 shim gRPC 1.33 calls
  protoc-gen-go protoc-gen-go-grpc         # the Go code generators (clients/go/generate.sh and its diff test)
  dpkg-dev debhelper dh-python             # scripts/package.sh: dpkg-buildpackage, dh (debian/rules), dh_python3
  lintian                                  # scripts/package.sh: the packages must be lintian clean
  groff-base                               # tests/man: renders the generated man pages
  mmdebstrap                               # tests/deploy/package_test.sh: a minimal Debian 12 root to install into
  systemd                                  # systemd-analyze verify of the units (tests/deploy)
)
# The real-Xen lane (tests/xen/run-lane.sh): QEMU, Xen 4.17's hypervisor and
# tools, QEMU's Xen device model (serves xl.cfg channels), busybox and cpio
# for the initramfs images, socat for raw socket checks. The kernel is not
# installed: the lane fetches linux-image-amd64's current .deb with
# `apt-get download`, which needs the package lists.
XEN_LANE_PACKAGES=(
  qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17 qemu-system-xen
  busybox-static cpio socat
)
XEN_LANE=0
if [ "${1:-}" = "--xen-lane" ]; then PACKAGES+=("${XEN_LANE_PACKAGES[@]}"); XEN_LANE=1; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere on some images; any working npm will do.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$XEN_LANE" = 1 ] &&
   ! apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-[0-9]'; then
  echo "setup: apt-get update (the Xen lane downloads linux-image-amd64's kernel)"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
fi

# etcd's v3 API protos (//third_party/etcd_api compiles them to C++): taken
# from Debian's golang-etcd-server-dev and golang-github-gogo-protobuf-dev
# with `apt-get download` and unpacked (the .proto files only) under
# $TOOLS_DIR/etcd-api, not installed: golang-etcd-server-dev depends on the
# old Go protobuf 1.3 packages, which Debian 12 cannot install beside the
# 1.5 ones the Go SDK needs (apt removes one set to install the other).
ETCD_API_DIR=$TOOLS_DIR/etcd-api
if [ ! -f "$ETCD_API_DIR/go.etcd.io/etcd/etcdserver/etcdserverpb/rpc.proto" ] ||
   [ ! -f "$ETCD_API_DIR/github.com/gogo/protobuf/gogoproto/gogo.proto" ]; then
  echo "setup: fetching etcd's API protos into $ETCD_API_DIR"
  fetch=$(mktemp -d)
  chmod 755 "$fetch"  # apt's download sandbox user writes here
  if ! (cd "$fetch" && apt-get download -qq golang-etcd-server-dev golang-github-gogo-protobuf-dev); then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    (cd "$fetch" && apt-get download -qq golang-etcd-server-dev golang-github-gogo-protobuf-dev)
  fi
  for deb in "$fetch"/*.deb; do dpkg-deb -x "$deb" "$fetch/root"; done
  "${SUDO[@]}" mkdir -p "$ETCD_API_DIR"
  (cd "$fetch/root/usr/share/gocode/src" && find . -name '*.proto' -print0 |
    "${SUDO[@]}" xargs -0 cp --parents -t "$ETCD_API_DIR")
  rm -rf "$fetch"
fi

if [ ! -x "$TOOLS_DIR/node_modules/.bin/buf" ] ||
   [ "$("$TOOLS_DIR/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  echo "setup: installing buf $BUF_VERSION into $TOOLS_DIR"
  "${SUDO[@]}" mkdir -p "$TOOLS_DIR"
  "${SUDO[@]}" npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR" "@bufbuild/buf@$BUF_VERSION"
fi
if [ ! -x "$TOOLS_DIR/node_modules/.bin/buildifier" ] ||
   ! "$TOOLS_DIR/node_modules/.bin/buildifier" --version 2>/dev/null | grep -q "version: $BUILDIFIER_VERSION\b"; then
  echo "setup: installing buildifier $BUILDIFIER_VERSION into $TOOLS_DIR"
  "${SUDO[@]}" mkdir -p "$TOOLS_DIR"
  "${SUDO[@]}" npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR" "@bazel/buildifier@$BUILDIFIER_VERSION"
fi
echo "setup: ok"
