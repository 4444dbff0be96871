#!/usr/bin/env bash
# Reuse of quarantined tuples with proof (`tw-reuse on`), end to end with real Linux TCP stacks.
#
# A service "twr" (VIP 198.18.0.103:80, one backend b1 198.19.0.11:8080) with the TIME_WAIT
# quarantine on (`tw-quarantine 60`, set for the service) and a pool far too small for the
# load: one fresh SNAT address per run with ports 40000-40099 (100 tuples). Clients on 8
# addresses make short HTTP/1.0 connections at 15/s (labclient http-paced, nginx closes first,
# so b1 holds every tuple in TIME_WAIT for 60 s and the balancer quarantines it for 60 s).
# After the first 100 connections no tuple is free for the rest of the run, so every further
# connection needs a quarantined tuple. One may be handed out only once its old flow has left
# the table: `set tcp timeout closed` is lowered from 10 s to 3 s for the test (so ~45 flows
# linger at 15/s, well under 100) and restored at the end, also on failure.
#   C. control, tw-reuse off: 200 connections. At most 100 succeed (a tuple once per
#      quarantine), every other one is refused (RST) in under 0.9 s, alloc_failures of the
#      address grows, tw_reuses does not.
#   R. tw-reuse on, timestamp rewriting on: 300 connections all succeed; b1's
#      TcpExtPAWSTimewait and the clients' TcpExtTCPSynRetrans do not move; tw_reuses grows
#      by about 300 - 100 (show stats) and `show snat` counts as many for the address; no
#      alloc failure; b1 holds at most 100 TIME_WAIT sockets toward the address, so at least
#      200 connections were opened on a tuple b1 held in TIME_WAIT and b1 accepted them.
#   P. tw-reuse on, rewriting off: the proof is the clients' own TSval (random per 4-tuple
#      on Linux >= 6.18.y, so newer than a given old flow's by less than 2^30, the proof's
#      margin, about a quarter of the time): 300 connections; b1's TcpExtPAWSTimewait and
#      the clients' SYN retransmissions stay 0 (a tuple is never handed out without proof),
#      tw_reuses grows, and at most a fifth of the connections are refused (no provable
#      tuple among the 8 looked at: about 0.75^8 = 10% of the 200 that need a reuse), none
#      fails otherwise.
# SNAT addresses: C 198.19.0.14, R .15, P .16 (no other test uses them). While the test runs,
# "web" and "echo" may use only the lab's own pool (198.19.0.2, .3). At the end, also on
# failure: twr is deleted, then the addresses (the test waits up to 15 s for them to finish
# draining), web and echo go back to `snat all`, `set tcp timeout closed` to its old value.
# Takes about 70 s.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

TR_SVC=twr
TR_VIP=198.18.0.103
TR_PORT=80
TR_BACKEND="${LAB_BACKENDS[0]}:$LAB_HTTP_PORT"
TR_NS_BACKEND=${LAB_NS_BACKENDS[0]}
TR_PORTS=40000-40099
NPORTS=100
ADDR_C=198.19.0.14
ADDR_R=198.19.0.15
ADDR_P=198.19.0.16
CLOSED_S=3
RATE=15
COUNT_C=200
COUNT=300
# diag LABEL : what a reader needs when a run's check failed.
diag() {
	{
		echo "client: $R_JSON"
		echo "deltas: TcpExtTCPSynRetrans(client)=$R_RETRANS TcpExtPAWSTimewait(b1)=$R_PAWS" \
			"alloc_failures($R_ADDR)=$R_AFAIL tw_reuses(stats)=$R_REUSE tw_reuses($R_ADDR)=$R_SREUSE" \
			"b1 TIME-WAIT sockets toward $R_ADDR=$R_TW"
		echo "client now: $(nstat_now "$LAB_NS_CLIENT" TcpExtTCPSynRetrans TcpExtPAWSActive)"
		echo "b1 now: $(nstat_now "$TR_NS_BACKEND" TcpExtPAWSTimewait TcpExtTW TcpExtTWKilled)"
		show_now snat
		show_now portspace "$TR_SVC" "$TR_BACKEND"
		show_now drops
		show_now services "$TR_SVC"
		show_now settings
	} | diag_out "run $1"
}

# tr_run LABEL ADDR COUNT : paced_run at RATE/s to the twr VIP via ADDR (fresh: its counters
# start at 0); also sets R_REUSE (tw_reuses delta), R_AFAIL and R_SREUSE (ADDR's counters).
tr_run() {
	local reuse0
	reuse0=$(stat_get tw_reuses)
	paced_run "$1" "$TR_SVC" "$TR_VIP" "$TR_PORT" "$TR_NS_BACKEND" "$2" "$3" "$RATE"
	R_REUSE=$(($(stat_get tw_reuses) - reuse0))
	R_AFAIL=$(snat_get "$2" alloc_failures)
	R_SREUSE=$(snat_get "$2" tw_reuses)
	log "run $1: tw_reuses=+$R_REUSE;" \
		"snat $2: alloc_failures=$R_AFAIL tw_reuses=$R_SREUSE quarantined=$(snat_get "$2" quarantined)"
}

# ---- set-up. Cleanups run last-in first-out: those of own_snat_begin, then the closed
# timeout is restored.
closed_prev=$(json_get "$(ctl --json show settings)" 'j["tcp"]["timeout"]["closed"]')
add_cleanup "ctl set tcp timeout closed $closed_prev >/dev/null 2>&1 || log 'could not restore: set tcp timeout closed $closed_prev'"
ctl_must set tcp timeout closed "$CLOSED_S"
own_snat_begin
addr_add "$ADDR_C" "$TR_PORTS"
svc_add "$TR_SVC" vip "$TR_VIP" port "$TR_PORT" proto tcp sched rr snat "$ADDR_C"
ctl_must backend add "$TR_SVC" "$TR_BACKEND"
ctl_must service set "$TR_SVC" tw-quarantine 60
ctl_must service set "$TR_SVC" ts-rewrite on
ctl_must service set "$TR_SVC" tw-reuse off
# The test is about timestamps: the clients and b1 must use them (the kernel's default).
ts_client=$(nsx "$LAB_NS_CLIENT" sysctl -n net.ipv4.tcp_timestamps)
ts_b1=$(nsx "$TR_NS_BACKEND" sysctl -n net.ipv4.tcp_timestamps)
ts_on() { [ "$ts_client" = 1 ] && [ "$ts_b1" = 1 ]; }
check "net.ipv4.tcp_timestamps is $ts_client in $LAB_NS_CLIENT and $ts_b1 in $TR_NS_BACKEND (want 1 and 1)" \
	ts_on
paws_active0=$(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSActive)

# ---- C: control, tw-reuse off: the pool runs out
fails0=$TEST_FAILS
tr_run C "$ADDR_C" "$COUNT_C"
if [ "$R_OK" -eq 0 ]; then
	fail "C: no connection to $TR_VIP:$TR_PORT succeeded"
	diag C
	die "the twr service does not work at all; not running the other runs"
fi
check "C (tw-reuse off): $R_OK of $COUNT_C connections succeeded (want 1..$NPORTS: a tuple once per quarantine)" \
	ok_upto "$NPORTS"
check "C (tw-reuse off): all $R_FAIL failed connections were refused or reset ($R_REFUSED)" all_refused
check "C (tw-reuse off): slowest refusal took ${R_FAILMAX}s (want < 0.9 s)" refused_fast
check "C (tw-reuse off): alloc_failures of $ADDR_C is $R_AFAIL (want > 0)" [ "$R_AFAIL" -gt 0 ]
check "C (tw-reuse off): tw_reuses moved by $R_REUSE (want 0)" [ "$R_REUSE" -eq 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag C

# ---- R: tw-reuse on, rewriting on
fails0=$TEST_FAILS
addr_add "$ADDR_R" "$TR_PORTS"
ctl_must service set "$TR_SVC" tw-reuse on
tr_run R "$ADDR_R" "$COUNT"
want=$((COUNT - NPORTS))
tol=$((want / 20 > 3 ? want / 20 : 3))
near_want() { [ "$R_REUSE" -ge $((want - tol)) ] && [ "$R_REUSE" -le $((want + tol)) ]; }
check "R: $R_OK/$COUNT connections succeeded ($R_FAIL failed)" [ "$R_OK" -eq "$COUNT" ]
check "R: b1's TcpExtPAWSTimewait moved by $R_PAWS (want 0)" [ "$R_PAWS" -eq 0 ]
check "R: clients' TcpExtTCPSynRetrans moved by $R_RETRANS (want 0)" [ "$R_RETRANS" -eq 0 ]
check "R: tw_reuses (show stats) grew by $R_REUSE (want $want +- $tol: connections - ports)" near_want
check "R: show snat counts tw_reuses=$R_SREUSE for $ADDR_R (want = show stats' $R_REUSE)" \
	[ "$R_SREUSE" -eq "$R_REUSE" ]
check "R: alloc_failures of $ADDR_R is $R_AFAIL (want 0)" [ "$R_AFAIL" -eq 0 ]
check "R: b1 holds $R_TW TIME-WAIT sockets toward $ADDR_R (want <= $NPORTS: $((COUNT - R_TW)) connections took a tuple in TIME_WAIT)" \
	[ "$R_TW" -le "$NPORTS" ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag R

# ---- P: tw-reuse on, rewriting off: the clients' own TSvals must prove it
fails0=$TEST_FAILS
addr_add "$ADDR_P" "$TR_PORTS"
ctl_must service set "$TR_SVC" ts-rewrite off
tr_run P "$ADDR_P" "$COUNT"
maxfail=$((COUNT / 5))
few_refused() { [ "$R_FAIL" -le "$maxfail" ] && [ "$R_REFUSED" -eq "$R_FAIL" ]; }
check "P (rewriting off): $R_OK/$COUNT succeeded, $R_FAIL refused or failed (want <= $maxfail, all refused: $R_REFUSED)" \
	few_refused
check "P (rewriting off): b1's TcpExtPAWSTimewait moved by $R_PAWS (want 0)" [ "$R_PAWS" -eq 0 ]
check "P (rewriting off): clients' TcpExtTCPSynRetrans moved by $R_RETRANS (want 0)" [ "$R_RETRANS" -eq 0 ]
check "P (rewriting off): tw_reuses grew by $R_REUSE (want > 0)" [ "$R_REUSE" -gt 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag P

paws_active=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSActive) - paws_active0))
check "clients' TcpExtPAWSActive moved by $paws_active over the test (want 0)" [ "$paws_active" -eq 0 ]

lab_test_end
