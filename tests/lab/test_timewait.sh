#!/usr/bin/env bash
# Backend TIME_WAIT quarantine, end to end with real Linux TCP stacks.
#
# A service "tw" (VIP 198.18.0.101:80, one backend b1 198.19.0.11:8080) gets one fresh SNAT
# address per run, with ports 40000-40999. Clients on 8 addresses make short HTTP/1.0
# connections at a steady rate (labclient http-paced: one fresh connection per request,
# nginx closes first, so b1 holds every tuple in TIME_WAIT for 60 s). If the balancer hands
# out a tuple that b1 still holds, b1 answers the SYN with a duplicate ACK (counting
# TcpExtPAWSTimewait when the SYN's timestamp is older) and the client must RST and resend
# its SYN (TcpExtTCPSynRetrans). Counters are read with `nstat -asz` before and after each
# run (absolute values, no history file) and diffed.
#   A. quarantine on (the default, 60 s): 600 connections at 10/s all succeed; the client
#      namespace's TcpExtTCPSynRetrans and b1's TcpExtPAWSTimewait do not move; `show snat`
#      counts quarantined tuples on the address afterwards.
#   C. as A with the clients' net.ipv4.tcp_timestamps=0 (the sequence-number rule alone
#      decides in TIME_WAIT, timestamp rewriting cannot help): all succeed, no SYN
#      retransmission. The sysctl is restored afterwards (also on failure).
#   D. over capacity: a 100-port address, 250 connections at 25/s: alloc_failures grows,
#      at most 100 connections succeed (a tuple is used once per quarantine), every other
#      one is refused (RST: connection refused or reset) in under 0.9 s, b1 counts no PAWS
#      rejection.
#   B. last (so nothing has to be switched back): `service set tw tw-quarantine 0`, and
#      timestamp rewriting off for tw (`service set tw ts-rewrite off`, else the global
#      `set tcp ts-rewrite off`, turned back on at the end; a daemon that refuses both has
#      no rewriting), then as A: SYN retransmissions on the clients plus PAWS rejections on
#      b1 must be > 0. This proves the checks of A can fail.
# Every run uses its own SNAT address (A 198.19.0.4, C .6, D .7, B .5) so that no run meets
# b1's TIME_WAIT state of another; an address is deleted (drains) once tw has moved on to the
# next one. While the test runs, "web" and "echo" may use only the lab's own pool
# (198.19.0.2, .3), so nothing else touches these addresses. At the end, also on failure:
# tw is deleted, the addresses too (the test waits up to 15 s for them to finish draining),
# web and echo go back to `snat all`, the client's tcp_timestamps to its old value.
#
# TW_COUNT and TW_RATE (default 600 and 10) change runs A, B and C; the whole test takes
# about 3.5 minutes with the defaults. B needs runs longer than the 10 s closed flows linger
# (tuples are not reused before), so it only means something with the defaults.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

TW_SVC=tw
TW_VIP=198.18.0.101
TW_PORT=80
TW_BACKEND="${LAB_BACKENDS[0]}:$LAB_HTTP_PORT"
TW_NS_BACKEND=${LAB_NS_BACKENDS[0]}
TW_PORTS=40000-40999
ADDR_A=198.19.0.4
ADDR_B=198.19.0.5
ADDR_C=198.19.0.6
ADDR_D=198.19.0.7
PORTS_D=40000-40099
NPORTS_D=100
COUNT=${TW_COUNT:-600}
RATE=${TW_RATE:-10}
COUNT_D=250
RATE_D=25

# diag LABEL : what a reader needs when a run's check failed.
diag() {
	{
		echo "client: $R_JSON"
		echo "deltas: TcpExtTCPSynRetrans(client)=$R_RETRANS TcpExtPAWSTimewait(b1)=$R_PAWS" \
			"alloc_failures($R_ADDR)=$R_AFAIL"
		echo "client now: $(nstat_now "$LAB_NS_CLIENT" TcpExtTCPSynRetrans TcpExtPAWSActive)"
		echo "b1 now: $(nstat_now "$TW_NS_BACKEND" TcpExtPAWSTimewait TcpExtTW TcpExtTWKilled)"
		echo "b1 sockets in TIME-WAIT: $(nsx "$TW_NS_BACKEND" ss -Htan state time-wait | wc -l)"
		show_now snat
		show_now portspace "$TW_SVC" "$TW_BACKEND"
		show_now drops
		show_now services "$TW_SVC"
	} | diag_out "run $1"
}

# tw_run LABEL ADDR COUNT RATE : paced_run to the tw VIP via ADDR; also sets R_AFAIL
# (ADDR's alloc_failures delta) and R_QUAR (quarantined on ADDR after the run).
tw_run() {
	local afail0
	afail0=$(snat_get "$2" alloc_failures)
	paced_run "$1" "$TW_SVC" "$TW_VIP" "$TW_PORT" "$TW_NS_BACKEND" "$2" "$3" "$4"
	R_AFAIL=$(($(snat_get "$2" alloc_failures) - afail0))
	R_QUAR=$(snat_get "$2" quarantined)
	log "run $1: alloc_failures=+$R_AFAIL quarantined=$R_QUAR"
}

# Set-up.
own_snat_begin
addr_add "$ADDR_A" "$TW_PORTS"
svc_add "$TW_SVC" vip "$TW_VIP" port "$TW_PORT" proto tcp sched rr snat "$ADDR_A"
ctl_must backend add "$TW_SVC" "$TW_BACKEND"

# ---- A: quarantine on (default)
fails0=$TEST_FAILS
tw_run A "$ADDR_A" "$COUNT" "$RATE"
if [ "$R_OK" -eq 0 ]; then
	fail "A: no connection to $TW_VIP:$TW_PORT succeeded"
	diag A
	die "the tw service does not work at all; not running the other runs"
fi
check "A: $R_OK/$COUNT connections succeeded ($R_FAIL failed)" [ "$R_OK" -eq "$COUNT" ]
check "A: clients' TcpExtTCPSynRetrans moved by $R_RETRANS (want 0)" [ "$R_RETRANS" -eq 0 ]
check "A: b1's TcpExtPAWSTimewait moved by $R_PAWS (want 0)" [ "$R_PAWS" -eq 0 ]
# A tuple is counted as quarantined once its flow has left the table (closed flows linger
# 10 s): with a run shorter than that, wait a little.
for _ in $(seq 1 30); do
	[ "$R_QUAR" -gt 0 ] && break
	sleep 0.5
	R_QUAR=$(snat_get "$ADDR_A" quarantined)
done
check "A: show snat counts $R_QUAR quarantined tuples on $ADDR_A (want > 0)" [ "$R_QUAR" -gt 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag A

# ---- C: quarantine on, clients without TCP timestamps
fails0=$TEST_FAILS
addr_add "$ADDR_C" "$TW_PORTS"
ts_prev=$(nsx "$LAB_NS_CLIENT" sysctl -n net.ipv4.tcp_timestamps)
nsx "$LAB_NS_CLIENT" sysctl -q -w net.ipv4.tcp_timestamps=0 >/dev/null
add_cleanup "nsx $LAB_NS_CLIENT sysctl -q -w net.ipv4.tcp_timestamps=$ts_prev >/dev/null 2>&1 || log 'could not restore tcp_timestamps in $LAB_NS_CLIENT'"
tw_run C "$ADDR_C" "$COUNT" "$RATE"
nsx "$LAB_NS_CLIENT" sysctl -q -w "net.ipv4.tcp_timestamps=$ts_prev" >/dev/null
check "C (no timestamps): $R_OK/$COUNT connections succeeded ($R_FAIL failed)" [ "$R_OK" -eq "$COUNT" ]
check "C (no timestamps): clients' TcpExtTCPSynRetrans moved by $R_RETRANS (want 0)" \
	[ "$R_RETRANS" -eq 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag C

# ---- D: more new connections than tuples
fails0=$TEST_FAILS
addr_add "$ADDR_D" "$PORTS_D"
tw_run D "$ADDR_D" "$COUNT_D" "$RATE_D"
check "D: alloc_failures of $ADDR_D grew by $R_AFAIL (want > 0)" [ "$R_AFAIL" -gt 0 ]
check "D: $R_OK connections succeeded (want 1..$NPORTS_D: each tuple once per quarantine)" \
	ok_upto "$NPORTS_D"
check "D: all $R_FAIL failed connections were refused or reset ($R_REFUSED)" all_refused
check "D: slowest refusal took ${R_FAILMAX}s (want < 0.9 s)" refused_fast
check "D: b1's TcpExtPAWSTimewait moved by $R_PAWS (want 0)" [ "$R_PAWS" -eq 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag D

# ---- B: quarantine off: the same traffic as A must run into b1's TIME_WAIT
fails0=$TEST_FAILS
addr_add "$ADDR_B" "$TW_PORTS"
if err=$(ctl service set "$TW_SVC" tw-quarantine 0 2>&1); then
	pass "B: service set $TW_SVC tw-quarantine 0 accepted"
else
	# Still run: a daemon without the quarantine is what B wants to see anyway.
	fail "B: service set $TW_SVC tw-quarantine 0 refused: $err"
fi
# Timestamp rewriting would make reusing a tuple safe without the quarantine; B is about
# neither protecting it. A daemon without rewriting refuses the command: fine too.
if ! err=$(ctl service set "$TW_SVC" ts-rewrite off 2>&1); then
	log "B: service set $TW_SVC ts-rewrite off refused ($err); trying the global switch"
	if err=$(ctl set tcp ts-rewrite off 2>&1); then
		add_cleanup "ctl set tcp ts-rewrite on >/dev/null 2>&1 || log 'could not restore: set tcp ts-rewrite on'"
	else
		log "B: set tcp ts-rewrite off refused too ($err): no rewriting to turn off"
	fi
fi
tw_run B "$ADDR_B" "$COUNT" "$RATE"
check "B (quarantine off): clients' SYN retransmissions $R_RETRANS + b1's PAWS rejections $R_PAWS > 0" \
	[ $((R_RETRANS + R_PAWS)) -gt 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag B

lab_test_end
