#!/usr/bin/env bash
# boot.py's host job for the lane's scenario 12 (dom0/ansible.sh): Debian's
# ansible-playbook on the machine that runs the lane, against the lane's
# guest lane1, through xenchand in dom0 over mutual TLS, with the
# connection plugin xenchan.xen.xenchan, as a provisioning pipeline runs it.
#
# Uses: the python3-xenchan package scripts/package.sh built (unpacked with
# dpkg-deb -x, on PYTHONPATH), the collection from clients/ansible (laid out
# as ansible_collections/xenchan/xen), the lane's PKI (build-images.sh made
# it with tests/server/make_test_certs.sh: uri.pem is the identity dom0's
# policy lets call lane1's qemu-ga; dns.pem is one it does not).
# Hermetic: HOME and every ANSIBLE_* path are in XENLANE_WORK/ansible.
#
# Environment (boot.py): XENLANE_API (127.0.0.1:PORT, forwarded to dom0's
# 7443), XENLANE_ARG_DOMAIN/_UUID/_DOMID/_KERNEL (what dom0 knows of the
# guest); XENLANE_WORK (run-lane.sh). Exit status 0 only if the playbook
# passed and the caller without a policy rule was refused.
set -uo pipefail
cd "$(dirname "$0")/../../.." || exit 1
WORK=${XENLANE_WORK:?}
PKI=$WORK/pki
A=$WORK/ansible
: "${XENLANE_API:?}" "${XENLANE_ARG_DOMAIN:?}" "${XENLANE_ARG_UUID:?}" "${XENLANE_ARG_DOMID:?}" "${XENLANE_ARG_KERNEL:?}"

rm -rf "$A" && mkdir -p "$A"/home "$A"/local-tmp "$A"/remote-tmp "$A"/sdk "$A"/collections/ansible_collections/xenchan
sdk_deb=$(find "$WORK/debs" -maxdepth 1 -name 'python3-xenchan_*.deb' | sort | tail -n 1)
[ -n "$sdk_deb" ] || { echo "no python3-xenchan package in $WORK/debs"; exit 2; }
dpkg-deb -x "$sdk_deb" "$A/sdk" || exit 2
cp -r clients/ansible "$A/collections/ansible_collections/xenchan/xen" || exit 2
cat > "$A/inventory.ini" <<INI
[lane]
$XENLANE_ARG_DOMAIN

[lane:vars]
ansible_connection=xenchan.xen.xenchan
ansible_xenchan_target=$XENLANE_API
ansible_xenchan_tls_ca=$PKI/ca.pem
ansible_xenchan_tls_cert=$PKI/uri.pem
ansible_xenchan_tls_key=$PKI/uri.key
ansible_xenchan_connect_timeout=30
ansible_xenchan_call_timeout=20
INI
printf '[defaults]\nretry_files_enabled = False\nnocolor = True\n' > "$A/ansible.cfg"
run() {
  env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 HOME="$A/home" \
    PYTHONPATH="$A/sdk/usr/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 \
    ANSIBLE_CONFIG="$A/ansible.cfg" ANSIBLE_HOME="$A/home/.ansible" \
    ANSIBLE_COLLECTIONS_PATH="$A/collections" ANSIBLE_LOCAL_TEMP="$A/local-tmp" \
    ANSIBLE_REMOTE_TMP="$A/remote-tmp" ANSIBLE_INVENTORY="$A/inventory.ini" \
    ANSIBLE_GALAXY_SERVER_LIST="" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "$@"
}

echo "ansible-playbook $(run ansible-playbook --version | head -n 1 | sed 's/.*core //; s/\]//') -> $XENLANE_API (mTLS as spiffe://xenchan.test/ctl)"
run ansible-playbook tests/xen/host/ansible-raw.yml \
  -e "expected_kernel=$XENLANE_ARG_KERNEL" -e "expected_uuid=$XENLANE_ARG_UUID" \
  -e "expected_domid=$XENLANE_ARG_DOMID"
play=$?
echo "ansible-playbook exit status $play"

# A caller the policy has no rule for (dns.pem: DNS:Ctl.Example.Org) must be refused.
denied=$(run ansible "$XENLANE_ARG_DOMAIN" -m ansible.builtin.raw -a true \
  -e "ansible_xenchan_tls_cert=$PKI/dns.pem" -e "ansible_xenchan_tls_key=$PKI/dns.key" 2>&1)
drc=$?
echo "$denied" | tail -n 3
refused=no
if [ $drc -ne 0 ] && echo "$denied" | grep -q "PERMISSION_DENIED"; then refused=yes; fi
echo "caller without a policy rule refused: $refused (exit status $drc)"
[ $play -eq 0 ] && [ $refused = yes ]
