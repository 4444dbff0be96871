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
#      quarantine), every other one is refused (RST) in under 0.5 s, alloc_failures of the
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
LAB_POOL=198.19.0.2,198.19.0.3
ADDR_C=198.19.0.14
ADDR_R=198.19.0.15
ADDR_P=198.19.0.16
CLOSED_S=3
RATE=15
COUNT_C=200
COUNT=300
R_ADDR=
SRC=$(
	IFS=,
	echo "${LAB_CLIENTS[*]:0:8}"
)

# nstat_get NS COUNTER : absolute value of a TCP counter in namespace NS (0 if absent).
# -a: ignore the history file, -s: do not write one, -z: print zero counters too.
nstat_get() {
	nsx "$1" nstat -asz "$2" | awk -v c="$2" '$1 == c { v = $2 } END { print v + 0 }'
}

# snat_get ADDR KEY : one key of ADDR's entry in `show snat --json` (-1 if not listed).
snat_get() {
	json_get "$(ctl --json show snat)" "([s['$2'] for s in j if s['addr'] == '$1'] + [-1])[0]"
}

# stat_get KEY : one key of `show stats --json`.
stat_get() {
	json_get "$(ctl --json show stats)" "j['$1']"
}

# ctl_must CMD... : a sluicectl command the test cannot do without.
ctl_must() {
	local err
	if ! err=$(ctl "$@" 2>&1); then
		fail "sluicectl $* refused: $err"
		die "cannot continue without: sluicectl $*"
	fi
}

# diag LABEL : what a reader needs when a run's check failed.
diag() {
	{
		echo "--- diagnostics for run $1"
		echo "client: $R_JSON"
		echo "deltas: TcpExtTCPSynRetrans(client)=$R_RETRANS TcpExtPAWSTimewait(b1)=$R_PAWS" \
			"alloc_failures($R_ADDR)=$R_AFAIL tw_reuses(stats)=$R_REUSE tw_reuses($R_ADDR)=$R_SREUSE" \
			"b1 TIME-WAIT sockets toward $R_ADDR=$R_TW"
		echo "client now: $(nsx "$LAB_NS_CLIENT" nstat -asz TcpExtTCPSynRetrans TcpExtPAWSActive | tail -n +2 | tr -s ' ' | tr '\n' ' ')"
		echo "b1 now: $(nsx "$TR_NS_BACKEND" nstat -asz TcpExtPAWSTimewait TcpExtTW TcpExtTWKilled | tail -n +2 | tr -s ' ' | tr '\n' ' ')"
		echo "show snat: $(ctl --json show snat 2>&1)"
		echo "show portspace $TR_SVC $TR_BACKEND: $(ctl --json show portspace "$TR_SVC" "$TR_BACKEND" 2>&1)"
		echo "show drops: $(ctl --json show drops 2>&1)"
		echo "show services $TR_SVC: $(ctl --json show services "$TR_SVC" 2>&1)"
		echo "show settings: $(ctl --json show settings 2>&1)"
		echo "---"
	} | sed 's/^/  /' >&2
}

# tr_run LABEL ADDR COUNT : COUNT paced connections (RATE/s) to the twr VIP while twr may use
# only SNAT address ADDR (fresh: its counters start at 0). Sets R_JSON (labclient's result),
# R_OK, R_FAIL, R_FAILMAX, R_REFUSED (failures that were RST), R_RETRANS, R_PAWS, R_REUSE
# (deltas), R_AFAIL, R_SREUSE (the address's counters), R_TW (b1's TIME-WAIT sockets toward
# ADDR), R_ADDR. Deletes the previous run's address once twr has moved on from it.
tr_run() {
	local label=$1 addr=$2 count=$3 out pid rc=0 retrans0 paws0 reuse0 secs
	out="$TEST_TMP/run-$label.json"
	ctl_must service set "$TR_SVC" snat "$addr"
	[ -z "${R_ADDR:-}" ] || addr_del "$R_ADDR"
	R_ADDR=$addr
	retrans0=$(nstat_get "$LAB_NS_CLIENT" TcpExtTCPSynRetrans)
	paws0=$(nstat_get "$TR_NS_BACKEND" TcpExtPAWSTimewait)
	reuse0=$(stat_get tw_reuses)
	secs=$((count / RATE + 1))
	log "run $label: $count connections at $RATE/s (~$secs s) via SNAT $addr ports $TR_PORTS"
	# In the background, so a signal to the test is handled at once (bash runs traps only
	# between foreground commands) and the client is ended by its pid.
	ip netns exec "$LAB_NS_CLIENT" timeout $((secs + 40)) "$PY" "$LABCLIENT" http-paced \
		--vip "$TR_VIP" --port "$TR_PORT" --src "$SRC" --count "$count" --rate "$RATE" \
		--connect-timeout 3 --timeout 3 --deadline $((secs + 15)) \
		>"$out" 2>"$out.err" &
	pid=$!
	add_cleanup "kill $pid 2>/dev/null || true"
	wait "$pid" || rc=$?
	R_JSON=$(cat "$out")
	if [ "$rc" -ne 0 ] || [ -z "$R_JSON" ]; then
		R_JSON="{\"ok\": 0, \"fail\": $count, \"fail_latency_max_s\": 99, \"fail_kinds\": {}, \"errors\": [\"labclient exit $rc: $(tail -n 3 "$out.err" | tr '\n"' ' .')\"]}"
	fi
	R_OK=$(json_get "$R_JSON" 'j["ok"]')
	R_FAIL=$(json_get "$R_JSON" 'j["fail"]')
	R_FAILMAX=$(json_get "$R_JSON" 'j["fail_latency_max_s"]')
	R_REFUSED=$(json_get "$R_JSON" \
		'sum(v for k, v in j.get("fail_kinds", {}).items() if k in ("ConnectionRefusedError", "ConnectionResetError"))')
	R_RETRANS=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtTCPSynRetrans) - retrans0))
	R_PAWS=$(($(nstat_get "$TR_NS_BACKEND" TcpExtPAWSTimewait) - paws0))
	R_REUSE=$(($(stat_get tw_reuses) - reuse0))
	R_AFAIL=$(snat_get "$addr" alloc_failures)
	R_SREUSE=$(snat_get "$addr" tw_reuses)
	R_TW=$(nsx "$TR_NS_BACKEND" ss -Htan state time-wait "( sport = :$LAB_HTTP_PORT )" "dst $addr" | wc -l)
	log "run $label: ok=$R_OK fail=$R_FAIL (refused $R_REFUSED, slowest ${R_FAILMAX}s)" \
		"SynRetrans=+$R_RETRANS PAWSTimewait=+$R_PAWS tw_reuses=+$R_REUSE" \
		"snat $addr: alloc_failures=$R_AFAIL tw_reuses=$R_SREUSE quarantined=$(snat_get "$addr" quarantined);" \
		"b1 TIME-WAIT toward $addr: $R_TW;" \
		"ok_latency_max=$(json_get "$R_JSON" 'j.get("ok_latency_max_s")')s" \
		"fail_kinds=$(json_get "$R_JSON" 'j.get("fail_kinds")') elapsed=$(json_get "$R_JSON" 'j.get("elapsed_s")')s"
}

# addr_add ADDR : a fresh pool address with TR_PORTS (deleted by addr_del or by teardown).
addr_add() {
	ctl_must snat add "$1" ports "$TR_PORTS" dev int
	ADDED+=("$1")
}
# addr_del ADDR : done with ADDR; it drains until its last flows have ended.
addr_del() {
	ctl snat del "$1" >/dev/null 2>&1 || log "snat del $1 refused"
}
# teardown : twr goes first (`snat del` refuses a service's only address), then the
# addresses this test added.
TR_ADDED=0
ADDED=()
teardown() {
	local a
	if [ "$TR_ADDED" -eq 1 ]; then
		ctl service del "$TR_SVC" >/dev/null 2>&1 || log "could not delete service $TR_SVC"
	fi
	for a in "${ADDED[@]}"; do
		ctl snat del "$a" >/dev/null 2>&1 || true
	done
}
# addrs_gone : wait (at most 15 s) until the deleted addresses have finished draining.
addrs_gone() {
	local left
	[ "${#ADDED[@]}" -gt 0 ] || return 0
	for _ in $(seq 1 30); do
		left=$(json_get "$(ctl --json show snat)" \
			"' '.join(s['addr'] for s in j if s['addr'] in '${ADDED[*]}'.split())")
		[ -z "$left" ] && return 0
		sleep 0.5
	done
	log "still draining after 15 s: $left"
}
refused_fast() {
	"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.5 else 1)' "$R_FAILMAX"
}

# ---- set-up. Cleanups run last-in first-out: teardown, then the closed timeout and the
# pool of web and echo are restored, then the wait for the addresses to go.
add_cleanup addrs_gone
for svc in web echo; do
	ctl_must service set "$svc" snat "$LAB_POOL"
	add_cleanup "ctl service set $svc snat all >/dev/null 2>&1 || log 'could not restore: service set $svc snat all'"
done
closed_prev=$(json_get "$(ctl --json show settings)" 'j["tcp"]["timeout"]["closed"]')
add_cleanup "ctl set tcp timeout closed $closed_prev >/dev/null 2>&1 || log 'could not restore: set tcp timeout closed $closed_prev'"
ctl_must set tcp timeout closed "$CLOSED_S"
add_cleanup teardown
addr_add "$ADDR_C"
ctl_must service add "$TR_SVC" vip "$TR_VIP" port "$TR_PORT" proto tcp sched rr snat "$ADDR_C"
TR_ADDED=1
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
some_ok() { [ "$R_OK" -gt 0 ] && [ "$R_OK" -le "$NPORTS" ]; }
all_refused() { [ "$R_FAIL" -gt 0 ] && [ "$R_REFUSED" -eq "$R_FAIL" ]; }
check "C (tw-reuse off): $R_OK of $COUNT_C connections succeeded (want 1..$NPORTS: a tuple once per quarantine)" some_ok
check "C (tw-reuse off): all $R_FAIL failed connections were refused or reset ($R_REFUSED)" all_refused
check "C (tw-reuse off): slowest refusal took ${R_FAILMAX}s (want < 0.5 s)" refused_fast
check "C (tw-reuse off): alloc_failures of $ADDR_C is $R_AFAIL (want > 0)" [ "$R_AFAIL" -gt 0 ]
check "C (tw-reuse off): tw_reuses moved by $R_REUSE (want 0)" [ "$R_REUSE" -eq 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag C

# ---- R: tw-reuse on, rewriting on
fails0=$TEST_FAILS
addr_add "$ADDR_R"
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
addr_add "$ADDR_P"
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
