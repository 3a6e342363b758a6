# shellcheck shell=sh
# The variables and helpers come from scenarios.sh, which sources this, and
# predicates run through its bounded wait helpers:
# shellcheck disable=SC2317,SC2154
# The lane's scenario 12 (issue 16; tests/xen/README.md): Ansible's raw
# module in lane1, driven from outside. ansible-playbook runs on the machine
# that runs the lane (boot.py's host job, tests/xen/host/ansible-raw.sh)
# with the connection plugin xenchan.xen.xenchan, over mutual TLS to
# xenchand's listener here (QEMU's user network forwards a host port to
# 10.0.2.15:7443); xenchand relays each qemu-ga command through lane1's
# org.qemu.guest_agent.0 channel, hot-added here, to the real qemu-ga in the
# guest (guest/rcS starts it on the channel's tty). dom0 passes what it
# knows of the guest on its LANE-HOST line, connects to boot.py for the
# job's result, and checks the verdict, the playbook's recap, and its own
# audit log: the Calls came from the certificate's identity over the
# network, and the caller without a policy rule was denied.
# Sourced by scenarios.sh with lane1 (dom$D) up and xenchand running.
QGA=org.qemu.guest_agent.0
ANSIBLE_ID=spiffe://xenchan.test/ctl   # uri.pem of tests/server/make_test_certs.sh
DENIED_ID=dns:ctl.example.org          # dns.pem: no rule in /lane/policy.conf

qga_ping() {
  timeout 10 xenchanctl --server "$SERVER" --timeout 3s call "lane1/$QGA" '{"execute":"guest-ping"}' \
    --framing qemu-guest-agent 2>&1 | grep -q '"return"'
}
# audited IDENTITY DECISION: authz lines of Calls on lane1's qemu-ga channel.
audited() {
  grep '"event":"authz"' "$AUDIT_LOG" 2>/dev/null | grep -F "\"identity\":\"$1\"" |
    grep -F '"verb":"call"' | grep -F "$QGA" | grep -F "\"decision\":\"$2\""
}
has_audited() { [ -n "$(audited "$@")" ]; }

net=$(ip -4 -o addr show 2>/dev/null | awk '$2 != "lo" { print $2 " " $4; exit }')
host_at=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^xenlane_host=//p')
U1=$(xenstore-read "/local/domain/$D/vm" 2>/dev/null); U1=${U1##*/}
K1=$(sed -n 's/^kernel-release=//p' /lane/versions.txt)
t0=$(now_ms)
qc=$(ctl create lane1 $QGA --framing qemu-guest-agent --wait --connect-timeout 60s 2>&1); qcr=$?
t_created=$(( $(now_ms) - t0 ))
wait_for 60 qga_ping; qp=$?
t_qga=$(( $(now_ms) - t0 ))
# guest/rcS logs qemu-ga's starts and exits (guest uptime) on its console.
qga_log=$(grep -a -o 'QGA-[A-Z]* [^ ]* *[^ ]*' "$CONSOLE_DIR/guest-lane1.log" | tail -n 4 | tr '\n' ' ')
lane "ansible: dom0 NIC '${net:-none}', host at '${host_at:-?}'; $QGA create rc=$qcr after $t_created ms; qemu-ga answered guest-ping rc=$qp after $t_qga ms; guest console: ${qga_log:-no QGA lines}"
rm -f /tmp/ansible.result
t0=$(now_ms)
if [ -n "$net" ] && [ -n "$host_at" ] && [ $qcr -eq 0 ] && [ $qp -eq 0 ]; then
  echo "LANE-HOST ansible-raw domain=lane1 uuid=$U1 domid=$D kernel=$K1"
  # boot.py answers once the job is over (it kills a job after 180 s).
  timeout 200 socat -u "TCP:$host_at,connect-timeout=10" STDOUT > /tmp/ansible.result 2> /tmp/ansible.socat
fi
t_job=$(( $(now_ms) - t0 ))
jrc=$(sed -n '1s/^rc=//p' /tmp/ansible.result 2>/dev/null)
ended=no; [ "$(tail -n 1 /tmp/ansible.result 2>/dev/null)" = HOST-JOB-END ] && ended=yes
recap=$(grep -E '^lane1 +: ok=' /tmp/ansible.result 2>/dev/null | tr -s ' ' | sed 's/ $//')
# The Calls: allowed for the playbook's identity, from the network (QEMU's
# gateway, 10.0.2.2), and the identity without a rule denied.
wait_for 10 has_audited "$ANSIBLE_ID" allowed
wait_for 10 has_audited "$DENIED_ID" denied
calls=$(audited "$ANSIBLE_ID" allowed | grep -c .)
peers=$(audited "$ANSIBLE_ID" allowed | sed -n 's/.*"peer":"\([^"]*\)".*/\1/p' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
peers=${peers% }
denied=$(audited "$DENIED_ID" denied | grep -c .)
seen=no; grep -qF "\"$U1\"" /tmp/ansible.result 2>/dev/null && seen=yes
case "$jrc/$ended/$recap/$peers" in
  0/yes/*"unreachable=0 failed=0 "*"ignored=1"/ipv4:10.0.2.2)
    ok12=yes ;;
  *) ok12=no ;;
esac
echo "RESULT ansible_raw create_ms=$t_created qga_answered_ms=$t_qga host_job_ms=$t_job calls=$calls"
if [ $ok12 = yes ] && [ "$calls" -gt 0 ] && [ "$denied" -gt 0 ] && [ $seen = yes ]; then
  scenario 12 ansible-raw PASS "ansible-playbook on the lane's host, mTLS as $ANSIBLE_ID from $peers: raw in lane1 answered its kernel, uuid $U1, dom$D and name as dom0 knows them; the failing raw task failed with rc 3 as asserted ($recap); $calls Calls allowed and audited, $DENIED_ID denied $denied time(s); qemu-ga answered ${t_qga} ms after the channel's create, the job took ${t_job} ms"
else
  echo "---- host job result"; sed 's/^/  | /' /tmp/ansible.result 2>/dev/null | tail -n 60
  sed 's/^/  | socat: /' /tmp/ansible.socat 2>/dev/null
  echo "---- audit log (last 10)"; tail -n 10 "$AUDIT_LOG" 2>/dev/null | sed 's/^/  | /'
  echo "---- lane1's qemu-ga log"; gcmd lane1 20 'tail -n 20 /run/qemu-ga.log; ps | grep -v grep | grep qemu-ga' | sed 's/^/  | /'
  explain
  scenario 12 ansible-raw FAIL "NIC '${net:-none}' host '${host_at:-?}'; create rc=$qcr ($(echo "$qc" | tail -n 1)); qemu-ga ping rc=$qp; host job rc=${jrc:-none} complete=$ended; recap '${recap:-none}'; guest's uuid in the output: $seen; Calls allowed for $ANSIBLE_ID: $calls from '${peers:-nowhere}'; denied for $DENIED_ID: $denied"
fi
