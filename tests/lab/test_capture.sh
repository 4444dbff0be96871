#!/usr/bin/env bash
# Packet capture on a running Sluice with dpdk-dumpcap (a DPDK secondary process talking to
# the daemon's pdump server), as an operator would use it:
#   1. dpdk-dumpcap -D lists both Sluice ports.
#   2. One dumpcap per port (this DPDK's dumpcap captures only the last -i it is given)
#      captures while 1,000 short HTTP connections go through the VIP: every request
#      succeeds; the one on port 0 stops on its own after 2,000 packets, the one on port 1
#      on SIGINT once the first has gone; both exit 0 with no error.
#   3. The files (pcapng, read with scapy) hold both directions of the translated traffic:
#      client <-> VIP:80 on the client side (rx and tx of port 0), SNAT address <-> backend
#      :8080 on the backend side (port 1), and no client address or VIP on the backend side.
#   4. Detaching left nothing behind: a second pair of dumpcaps captures on the same ports
#      (a capture left enabled would make the daemon refuse it: "already exists") while 200
#      more connections succeed; the daemon logs nothing about pdump and, if the test
#      started it, exits 0 on SIGTERM.
#
# A secondary process cannot attach to a primary started with --no-huge: it maps the
# primary's memory through hugepage files, and there are none ("Cannot get hugepage
# information" or "Cannot init memory"). The lab's daemon runs that way. So unless dumpcap can already attach, the test stops the lab daemon and runs its own
# with the same EAL arguments on 2 MiB hugepages (a hugetlbfs mount of its own, -m 32,
# nr_hugepages raised only if too few pages are free); afterwards it removes the pages,
# unmounts and restores nr_hugepages. run_all.sh restarts the lab daemon for the next test.
#
# Dumpcaps are started and stopped one at a time, as the README tells operators to. A
# secondary's memory request makes the daemon broadcast to every secondary's socket, and
# DPDK 22.11 treats one that vanishes in between (a dumpcap exiting at that moment) as an
# error: "EAL: failed to send to (.../mp_socket_PID_...) due to No such file or directory",
# "Fail to handle message: mp_malloc_request". Two dumpcaps stopping on their counts at
# about the same moment did that in one of about five clean runs here; SIGINT to two at once
# did it in round 8 of 15, and one after the other nothing in 25.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

DUMPCAP=${DUMPCAP:-/usr/bin/dpdk-dumpcap}
CAP_COUNT=2000
CAP_MEM_MB=32
# Pages the test makes sure are free: the daemon's 16 at -m 32 plus 6 for each of two
# dumpcaps at once (measured), with room to spare.
CAP_PAGES=40
HP_SYS=/sys/kernel/mm/hugepages/hugepages-2048kB
ADDRS=("${LAB_CLIENTS[@]:0:4}")
OWN_DAEMON=0

[ -x "$DUMPCAP" ] || die "$DUMPCAP not found (Debian package dpdk-dev)"

# The daemon's --file-prefix, which dumpcap needs to find it.
PREFIX=rte
for ((i = 0; i < ${#SLUICE_EAL_ARGS[@]} - 1; i++)); do
	[ "${SLUICE_EAL_ARGS[$i]}" = --file-prefix ] && PREFIX=${SLUICE_EAL_ARGS[$((i + 1))]}
done

# dumpcap_list OUT : `dpdk-dumpcap -D` against the daemon; OUT gets stdout and stderr.
dumpcap_list() {
	timeout 30 "$DUMPCAP" --file-prefix="$PREFIX" -D >"$1" 2>&1
}

# hugepages_reserve : make CAP_PAGES 2 MiB pages free, raising nr_hugepages (restored by a
# cleanup) only by what is missing.
hugepages_reserve() {
	local nr free want
	[ -d "$HP_SYS" ] || die "this kernel offers no 2 MiB hugepages ($HP_SYS)"
	nr=$(cat "$HP_SYS/nr_hugepages")
	free=$(cat "$HP_SYS/free_hugepages")
	[ "$free" -ge "$CAP_PAGES" ] && return 0
	want=$((nr + CAP_PAGES - free))
	add_cleanup "echo $nr >$HP_SYS/nr_hugepages || log 'could not restore nr_hugepages to $nr'"
	echo "$want" >"$HP_SYS/nr_hugepages" || true
	free=$(cat "$HP_SYS/free_hugepages")
	if [ "$free" -lt "$CAP_PAGES" ]; then
		fail "cannot reserve $CAP_PAGES free 2 MiB hugepages (asked nr_hugepages=$want, $free free;" \
			"too little free memory, or too fragmented: try echo 1 >/proc/sys/vm/compact_memory)"
		die "no hugepages for a capture-capable daemon"
	fi
	log "nr_hugepages $nr -> $want for this test"
}

# daemon_on_hugepages : replace the lab daemon by one on hugepages; the EAL arguments are the
# lab's with --no-huge and its -m replaced.
daemon_on_hugepages() {
	local a skip=0 args=()
	for a in "${SLUICE_EAL_ARGS[@]}"; do
		if [ "$skip" = 1 ]; then
			skip=0
			continue
		fi
		case $a in
		--no-huge) ;;
		-m) skip=1 ;;
		*) args+=("$a") ;;
		esac
	done
	hugepages_reserve
	# A mount of our own: no other prefix's files in it, and unmounting frees everything.
	# The files are removed first: `ip netns exec` copies mounts into the namespaces it
	# creates, and a copy kept alive there would keep the pages.
	HUGE_DIR="$TEST_TMP/huge"
	mkdir -p "$HUGE_DIR"
	mount -t hugetlbfs -o pagesize=2M nodev "$HUGE_DIR" || die "cannot mount hugetlbfs on $HUGE_DIR"
	add_cleanup "rm -f '$HUGE_DIR'/*; umount '$HUGE_DIR' || log 'could not unmount $HUGE_DIR'"

	stop_sluice || die "the lab daemon did not stop"
	SLUICE_EAL_ARGS=(--huge-dir "$HUGE_DIR" -m "$CAP_MEM_MB" "${args[@]}")
	start_sluice "$SLUICE_ROOT/conf/lab.conf" /run/sluice/lab-capture.sock \
		/run/sluice/lab-capture.log || die "sluice did not start on hugepages"
	add_cleanup 'stop_sluice || true'
	OWN_DAEMON=1
}

# dumpcap_start TAG DEV [COUNT] : capture COUNT packets (or until SIGINT) on DEV into
# $TEST_TMP/TAG.pcapng, in the background (pid in DC_PID[TAG]). -p: leave the port's
# promiscuous mode alone. SIGINT or SIGTERM (dumpcap_stop, timeout, cleanup; timeout passes
# them on) makes dumpcap disable the capture before it exits.
declare -A DC_PID
dumpcap_start() {
	local tag=$1 dev=$2 count=(${3:+-c "$3"})
	timeout 60 "$DUMPCAP" --file-prefix="$PREFIX" -p -i "$dev" "${count[@]}" \
		-w "$TEST_TMP/$tag.pcapng" >"$TEST_TMP/$tag.out" 2>"$TEST_TMP/$tag.err" &
	DC_PID[$tag]=$!
	add_cleanup "kill ${DC_PID[$tag]} 2>/dev/null || true"
}

# dumpcap_ready TAG : wait (at most 20 s) until dumpcap TAG has initialised and is about to
# ask the daemon for the capture (it names its output file then; whether the daemon agreed
# shows in its exit status). Start dumpcaps one after the other: the daemon broadcasts its
# answers to one secondary's requests (memory, vdev scan) to all of them, and one still
# initialising logs "EAL: Cannot find action: ..." for each.
dumpcap_ready() {
	local tag=$1
	for _ in $(seq 1 200); do
		grep -q '^File:' "$TEST_TMP/$tag.err" 2>/dev/null && return 0
		pid_running "${DC_PID[$tag]}" || break
		sleep 0.1
	done
	sed 's/^/  /' "$TEST_TMP/$tag.err" >&2
	return 1
}

# dumpcap_errors TAG : stderr lines of dumpcap TAG that report a problem. The secondary
# probes the PCI bus the daemon left alone (--no-pci) and says so; that is not one.
dumpcap_errors() {
	grep -i -E 'error|fail|cannot|exists|not permitted' "$TEST_TMP/$1.err" |
		grep -v -E 'is not driven by the primary process|Requested device [0-9a-f:.]+ cannot be used' ||
		true
}

# dumpcap_finish TAG [HOW] : wait for dumpcap TAG; PASS if it stopped with status 0 and
# reported no error. HOW says what stopped it (default: its count of packets).
dumpcap_finish() {
	local tag=$1 how=${2:-after its packets} rc=0 errs
	wait "${DC_PID[$tag]}" || rc=$?
	errs=$(dumpcap_errors "$tag")
	if [ "$rc" -eq 0 ] && [ -z "$errs" ]; then
		pass "dumpcap $tag: stopped $how, exit 0, no error ($(grep -h 'received/dropped' "$TEST_TMP/$tag.err" "$TEST_TMP/$tag.out" | head -n 1))"
	else
		if [ "$rc" -eq 124 ]; then
			fail "dumpcap $tag: still short of its count after 60 s${errs:+; $errs}"
		else
			fail "dumpcap $tag: exit $rc${errs:+; $errs}"
		fi
		sed 's/^/  /' "$TEST_TMP/$tag.err" >&2
	fi
}

# dumpcap_stop TAG : stop dumpcap TAG with SIGINT (Ctrl-C) and check it as dumpcap_finish does.
dumpcap_stop() {
	kill -INT "${DC_PID[$1]}" 2>/dev/null || true
	dumpcap_finish "$1" "on SIGINT"
}

# log_problems FROM : lines of the daemon's log after line FROM that mention pdump or an error.
log_problems() {
	tail -n +"$(($1 + 1))" "$SLUICE_LOG" | grep -i -E 'pdump|error|fail' || true
}

# both_seen A B : both counts are positive.
both_seen() {
	[ "$1" -gt 0 ] && [ "$2" -gt 0 ]
}

# ---- a daemon dumpcap can attach to
if dumpcap_list "$TEST_TMP/list.out"; then
	log "dumpcap attaches to the running daemon as it is"
else
	log "dumpcap cannot attach to the lab daemon (the lab runs it with --no-huge): restarting it on hugepages"
	grep -E 'FATAL|Cause' "$TEST_TMP/list.out" | sed 's/^/  /' >&2 || true
	daemon_on_hugepages
	dumpcap_list "$TEST_TMP/list.out" || true
fi
PORT0=$(awk '$1 == "0." { print $2 }' "$TEST_TMP/list.out")
PORT1=$(awk '$1 == "1." { print $2 }' "$TEST_TMP/list.out")
if [ -n "$PORT0" ] && [ -n "$PORT1" ]; then
	pass "dpdk-dumpcap -D lists the daemon's ports: 0 $PORT0, 1 $PORT1"
else
	fail "dpdk-dumpcap -D does not list ports 0 and 1: $(tr '\n' ' ' <"$TEST_TMP/list.out")"
	die "cannot capture without the ports"
fi
log_from=$(wc -l <"$SLUICE_LOG")

# ---- capture both ports while HTTP flows
# capture_pair SUFFIX COUNT : dumpcaps extSUFFIX on port 0, for COUNT packets, and intSUFFIX
# on port 1 until capture_end stops it; one after the other.
capture_pair() {
	local tag
	for tag in "ext$1" "int$1"; do
		if [ "${tag:0:3}" = ext ]; then
			dumpcap_start "$tag" "$PORT0" "$2"
		else
			dumpcap_start "$tag" "$PORT1"
		fi
		dumpcap_ready "$tag" || {
			fail "dumpcap $tag did not start within 20 s"
			die "no capture"
		}
	done
}

# capture_end SUFFIX : extSUFFIX stops after its packets; once it has gone, intSUFFIX is
# stopped.
capture_end() {
	dumpcap_finish "ext$1"
	dumpcap_stop "int$1"
}

capture_pair "" "$CAP_COUNT"
log "dumpcaps started; $((250 * ${#ADDRS[@]})) short connections from ${#ADDRS[@]} addresses"
ab_parallel "$TEST_TMP/ab" 250 2 "${ADDRS[@]}" || true
bad=0
ab_verify "$TEST_TMP/ab" 250 "${ADDRS[@]}" || bad=$?
check "all $((250 * ${#ADDRS[@]})) requests during the capture succeeded" [ "$bad" -eq 0 ]
capture_end ""

# ---- what the files hold
read -r n_ext to_vip from_vip n_int snat_be be_snat leak < <("$PY" - "$TEST_TMP/ext.pcapng" \
	"$TEST_TMP/int.pcapng" "$LAB_VIP" "$LAB_WEB_PORT" "$LAB_OWN_POOL" \
	"${LAB_BACKENDS[*]}" "$LAB_HTTP_PORT" "${LAB_CLIENTS[*]}" <<'PY' || echo "-1 -1 -1 -1 -1 -1 -1"
import sys
from scapy.all import IP, TCP, rdpcap

ext_f, int_f, vip, vport, pool, backends, bport, clients = sys.argv[1:9]
vport, bport = int(vport), int(bport)
pool, backends, clients = set(pool.split(",")), set(backends.split()), set(clients.split())

def tcp(f):
    pkts = rdpcap(f)
    return len(pkts), [(p[IP].src, p[TCP].sport, p[IP].dst, p[TCP].dport)
                       for p in pkts if IP in p and TCP in p]

n_ext, ext = tcp(ext_f)
n_int, int_ = tcp(int_f)
to_vip = sum(1 for s, sp, d, dp in ext if s in clients and d == vip and dp == vport)
from_vip = sum(1 for s, sp, d, dp in ext if s == vip and sp == vport and d in clients)
snat_be = sum(1 for s, sp, d, dp in int_ if s in pool and d in backends and dp == bport)
be_snat = sum(1 for s, sp, d, dp in int_ if s in backends and sp == bport and d in pool)
leak = sum(1 for s, sp, d, dp in int_ if {s, d} & (clients | {vip}))
print(n_ext, to_vip, from_vip, n_int, snat_be, be_snat, leak)
PY
)
log "client side: $n_ext packets, $to_vip client->VIP:$LAB_WEB_PORT, $from_vip VIP->client;" \
	"backend side: $n_int packets, $snat_be SNAT->backend:$LAB_HTTP_PORT, $be_snat backend->SNAT"
# -c stops at the end of the burst that reaches the count.
check "client-side file holds at least $CAP_COUNT packets (got $n_ext)" [ "$n_ext" -ge "$CAP_COUNT" ]
check "client side: packets from clients to the VIP:$LAB_WEB_PORT ($to_vip) and back ($from_vip)" \
	both_seen "$to_vip" "$from_vip"
check "backend-side file holds at least $CAP_COUNT packets (got $n_int)" [ "$n_int" -ge "$CAP_COUNT" ]
check "backend side: packets from SNAT addresses to backends:$LAB_HTTP_PORT ($snat_be) and back ($be_snat)" \
	both_seen "$snat_be" "$be_snat"
check "backend side: no packet carries a client address or the VIP ($leak)" [ "$leak" -eq 0 ]

# ---- detached cleanly: the same ports can be captured again, forwarding goes on
# Had the first pair not disabled their captures, these would be refused ("already exists").
capture_pair 2 20
res=$(short_conns "$(
	IFS=,
	echo "${ADDRS[*]}"
)" 200)
ok=$(json_get "$res" 'j["ok"]')
check "200 connections during and after the second capture succeeded (ok=$ok, errors: $(json_get "$res" 'j["errors"][:2]'))" \
	[ "$ok" -eq 200 ]
capture_end 2

probs=$(log_problems "$log_from")
check "the daemon logged nothing about pdump or errors while captures came and went${probs:+: $probs}" \
	[ -z "$probs" ]
check "sluice is still running after the captures" sluice_alive

if [ "$OWN_DAEMON" = 1 ]; then
	# lab_test_end wants the shared daemon alive; this one ends here, so finish by hand.
	check "sluice (on hugepages) exits 0 on SIGTERM after the captures" stop_sluice
	probs=$(log_problems "$log_from")
	check "nothing about pdump or errors in its log at shutdown${probs:+: $probs}" [ -z "$probs" ]
	[ "$TEST_CHECKS" -gt 0 ] && [ "$TEST_FAILS" -eq 0 ]
else
	lab_test_end
fi
