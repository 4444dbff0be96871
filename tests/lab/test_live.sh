#!/usr/bin/env bash
# Live changes under load lose nothing: configuration changes are RCU-published snapshots,
# so the worker never pauses and a live flow keeps its backend and tuple whatever changes.
#
#   A. 30 s of wrk with short connections (`Connection: close`, 4 connections, paced to a
#      few hundred requests/s) against the web VIP, plus 6 HTTP/1.1 keep-alive connections
#      held open across the whole run. Once a second one change, in a rotating order:
#      add a backend (x1 198.19.0.21 in sl-b1 or x2 198.19.0.22 in sl-b2: extra nginx
#      instances this test starts), change a weight (b1 down to 0 once), drain an added
#      backend and `backend del` it once `show backends` counts 0 active flows (it got no
#      new flow meanwhile; at most DRAIN_MAX_S), snat add / snat del 198.19.0.31 (a
#      second add while it drains takes it back), `set tcp timeout`, `set udp timeout`,
#      `service set web sched`, add and delete a second service web2 (:81).
#      Must hold: every change accepted; wrk reports no socket error and no non-2xx; the
#      kept connections answer a second request from the same backend; no Sluice drop
#      counter moves (DROPS_AMBIENT would list exceptions: none needed) and no port drops;
#      no client or backend resends a SYN or SYN-ACK, hits a retransmission timeout or
#      recovers a lost segment with a tail loss probe (bare probes, i.e. late ACKs on this
#      busy 2-core machine, are reported); every request wrk counted is in a backend's
#      access log (all status 200) and Sluice created a flow for each.
#   B. 12 s of the same load; b2 set `down` at 4 s and `up` at 8 s; 6 kept keep-alive
#      connections ask again at 6 s. Must hold: b2 gets no new flow while down; the kept
#      connections on b2 are reset, the others answered by the same backend; failed
#      requests (wrk's and the kept ones) <= the flows Sluice reset (drop reason
#      backend_down); no other drop reason than backend_down and the no_flow/tcp_no_flow
#      packets of flows it reset; b1 and b3 created one flow per logged request, all 200,
#      and their TCP counters show no loss; b2 gets new flows again after `up`.
# Every change is undone at the end (also on failure): extra backends, nginx instances and
# addresses removed, weights 1:2:3, sched wrr, the timeouts as they were, web2 and the SNAT
# address deleted (the test waits for it to finish draining). The test checks the state
# matches what it found. About 60 s.
#
# For digging: LIVE_STEPS (the rotation, e.g. "weight" or "none"), LIVE_RUN_A_S (30) and
# LIVE_DELAY_MS (wrk's pause before each request, 5).
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

WRK_CONNS=4
WRK_DELAY_MS=${LIVE_DELAY_MS:-5}
RUN_A_S=${LIVE_RUN_A_S:-30}
RUN_B_S=12
DRAIN_MAX_S=25
B=("${LAB_BACKENDS[0]}:$LAB_HTTP_PORT" "${LAB_BACKENDS[1]}:$LAB_HTTP_PORT" "${LAB_BACKENDS[2]}:$LAB_HTTP_PORT")
W=(1 2 3)
X_NAMES=(x1 x2)
X_NS=("${LAB_NS_BACKENDS[0]}" "${LAB_NS_BACKENDS[1]}")
X_ADDRS=(198.19.0.21 198.19.0.22)
X_WEIGHT=2
SNAT_X=198.19.0.31
SVC2=web2
SVC2_PORT=81
KEEP_ADDRS=("${LAB_CLIENTS[@]:8:6}")
# Drop reasons allowed to move in both runs because they are not about the test's flows.
# None so far: in the lab nothing else sends to Sluice meanwhile (arp_ignored would be the
# candidate, should ARP between the backends ever reach its int port).
DROPS_AMBIENT=()
URL="http://$LAB_VIP:$LAB_WEB_PORT/"

# ---- extra backends: an nginx of their own on a second address of a backend namespace

# x_up I : address and nginx of extra backend I (body "xN", same length as "bN").
x_up() {
	local i=$1 name=${X_NAMES[$1]} ns=${X_NS[$1]} addr=${X_ADDRS[$1]}
	local dir="$LAB_RUN/live-$name"
	mkdir -p "$dir/tmp"
	: >"$dir/access.log"
	nsx "$ns" ip addr add "$addr/24" dev eth0
	add_cleanup "x_down $i"
	_lab_nginx_conf "$name" "$addr" "$dir" >"$dir/nginx.conf"
	nsx "$ns" nginx -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
	for _ in $(seq 1 50); do
		nsx "$ns" ss -Hltn "src $addr:$LAB_HTTP_PORT" | grep -q . && return 0
		sleep 0.1
	done
	die "nginx for $name ($addr) did not come up (see $dir/error.log)"
}

x_down() {
	local i=$1 dir="$LAB_RUN/live-${X_NAMES[$1]}"
	if [ -s "$dir/nginx.pid" ]; then
		_lab_kill_pid "$(cat "$dir/nginx.pid")"
	fi
	nsx "${X_NS[$i]}" ip addr del "${X_ADDRS[$i]}/24" dev eth0 2>/dev/null || true
	rm -rf "$dir"
}

# ---- reading state

# be_get SVC ADDR:PORT KEY : one key of a backend in `show backends --json` ("none": absent).
be_get() {
	json_get "$(ctl --json show backends "$1")" \
		"([b['$3'] for b in j if '%s:%s' % (b['addr'], b['port']) == '$2'] + ['none'])[0]"
}

# access log of backend NAME (b1..b3, x1, x2)
log_file() {
	case $1 in
	b*) echo "$LAB_RUN/$1/access.log" ;;
	*) echo "$LAB_RUN/live-$1/access.log" ;;
	esac
}
LOG_NAMES=(b1 b2 b3 x1 x2)

# TCP counters of the clients and backends: a lost packet is resent after a timeout (RTO) or
# by a tail loss probe that finds it lost (LossProbeRecovery); a probe that only finds a late
# ACK (LossProbes without recovery) loses nothing.
TCP_COUNTERS=(TcpExtTCPSynRetrans TcpExtTCPTimeouts TcpExtTCPLossProbeRecovery TcpExtTCPLossProbes TcpRetransSegs)

# nstat_json NS COUNTER... : {"COUNTER": value, ...} of namespace NS.
nstat_json() {
	local ns=$1
	shift
	nsx "$ns" nstat -asz "$@" |
		awk 'BEGIN { printf "{" } /^[A-Z]/ { printf "%s\"%s\": %s", s, $1, $2; s = ", " } END { printf "}" }'
}

# snapshot FILE : counters, per-backend access log lines and TCP counters, as one JSON doc.
snapshot() {
	local n f ns sep=""
	{
		echo "{\"stats\": $(ctl --json show stats),"
		echo "\"interfaces\": $(ctl --json show interfaces),"
		echo "\"backends\": $(ctl --json show backends web),"
		printf '"logs": {'
		for n in "${LOG_NAMES[@]}"; do
			f=$(log_file "$n")
			printf '%s"%s": %s' "$sep" "$n" "$( (wc -l <"$f") 2>/dev/null || echo 0)"
			sep=", "
		done
		echo "},"
		printf '"tcp": {'
		sep=""
		for ns in "$LAB_NS_CLIENT" "${LAB_NS_BACKENDS[@]}"; do
			printf '%s"%s": %s' "$sep" "$ns" "$(nstat_json "$ns" "${TCP_COUNTERS[@]}")"
			sep=", "
		done
		echo "}}"
	} >"$1"
}

# sdiff BEFORE AFTER PYEXPR : PYEXPR with a, b the two snapshots and helpers:
#   drops() {reason: delta} of the reasons that moved; portdrops() {port.rx/tx_dropped: delta};
#   logs(name) lines added; be(addr:port, key) delta of a backend key; tcp(counter) delta
#   summed over the namespaces, tcpns(counter) {namespace: delta}; flows() delta of
#   flows_created.
sdiff() {
	"$PY" - "$1" "$2" "$3" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def drops():
    x, y = a["stats"]["drops"], b["stats"]["drops"]
    return {k: v - x.get(k, 0) for k, v in y.items() if v != x.get(k, 0)}
def portdrops():
    r = {}
    for p, q in zip(a["interfaces"], b["interfaces"]):
        for k in ("rx_dropped", "tx_dropped"):
            if q[k] != p[k]:
                r[q["name"] + "." + k] = q[k] - p[k]
    return r
def logs(n):
    return b["logs"][n] - a["logs"][n]
def be(addr, key):
    get = lambda s: ([x[key] for x in s["backends"] if "%s:%s" % (x["addr"], x["port"]) == addr] + [0])[0]
    return get(b) - get(a)
def tcp(k):
    return sum(b["tcp"][n][k] - a["tcp"][n][k] for n in b["tcp"])
def tcpns(k):
    return {n: b["tcp"][n][k] - a["tcp"][n][k] for n in b["tcp"]}
def flows():
    return b["stats"]["flows_created"] - a["stats"]["flows_created"]
r = eval(sys.argv[3])
print(json.dumps(r) if isinstance(r, (dict, list)) else r)
PY
}

# non200 NAME FROM : lines after line FROM of NAME's access log whose status is not 200.
non200() {
	local f
	f=$(log_file "$1")
	[ -e "$f" ] || {
		echo 0
		return
	}
	tail -n +"$(($2 + 1))" "$f" | awk '$9 != 200' | wc -l
}

# ---- wrk

WRK_PID=
# wrk_start OUT SECONDS : paced wrk with short connections from the client namespace.
wrk_start() {
	cat >"$TEST_TMP/pace.lua" <<EOF
-- Wait this long before each request: keeps the load modest on a 2-core machine.
function delay()
	return $WRK_DELAY_MS
end
EOF
	ip netns exec "$LAB_NS_CLIENT" timeout -k 5 $(($2 + 30)) wrk -t1 -c"$WRK_CONNS" -d"$2s" \
		--timeout 3s -s "$TEST_TMP/pace.lua" -H 'Connection: close' "$URL" >"$1" 2>&1 &
	WRK_PID=$!
	add_cleanup "kill $WRK_PID 2>/dev/null || true"
}

# wrk_parse OUT : sets W_REQ, W_SOCKERR (sum), W_SOCKTXT, W_NON2XX; W_REQ=-1 if no report.
wrk_parse() {
	local out=$1 e
	W_REQ=$(awk '/ requests in / {print $1}' "$out")
	[ -n "$W_REQ" ] || W_REQ=-1
	read -r -a e < <(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$out") || e=(0 0 0 0)
	W_SOCKTXT="connect ${e[0]}, read ${e[1]}, write ${e[2]}, timeout ${e[3]}"
	W_SOCKERR=$((e[0] + e[1] + e[2] + e[3]))
	W_NON2XX=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$out")
	W_NON2XX=${W_NON2XX:-0}
}

wrk_wait() {
	local rc=0
	wait "$WRK_PID" || rc=$?
	[ "$rc" -eq 0 ] || log "wrk exited with status $rc: $(tail -n 3 "$1" | tr '\n' ' ')"
}

# in_range V LO HI : LO <= V <= HI.
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# ---- the clock of the change loop

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
sleep_until_us() {
	local d=$(($1 - $(now_us)))
	[ "$d" -gt 0 ] || return 0
	sleep "$((d / 1000000)).$(printf '%06d' $((d % 1000000)))"
}

# ---- changes

CHANGES=0
REFUSED=0
CHLOG="$TEST_TMP/changes.log"
: >"$CHLOG"
# apply CMD... : one live change; counted, logged, FAIL if refused.
apply() {
	local err t
	t=$(($(now_us) / 1000 - T0_MS))
	if err=$(ctl "$@" 2>&1); then
		CHANGES=$((CHANGES + 1))
		echo "$t ms: $*" >>"$CHLOG"
	else
		REFUSED=$((REFUSED + 1))
		echo "$t ms: REFUSED $*: $err" >>"$CHLOG"
		fail "live change refused: sluicectl $*: $err"
	fi
}

XSTATE=(absent absent)
XDRAIN_US=(0 0)
XFLOWS=(0 0)
DRAIN_NEW=0
DRAIN_WAIT_MAX_MS=0
DELS=0
WSTEPS=("0 3" "1 1" "2 5" "0 0" "1 2" "2 3" "0 1")
WI=0
SCHEDS=(rr maglev lc wrr)
SI=0
TCPSTEPS=("established 3600" "syn 20" "closing 120" "closed 8")
TI=0
UI=0
SNAT_DEL_INUSE=()

step_weight() {
	local s
	read -r -a s <<<"${WSTEPS[$((WI % ${#WSTEPS[@]}))]}"
	WI=$((WI + 1))
	apply backend set web "${B[${s[0]}]}" weight "${s[1]}"
}

step_add() {
	local i
	for i in 0 1; do
		if [ "${XSTATE[$i]}" = absent ]; then
			apply backend add web "${X_ADDRS[$i]}:$LAB_HTTP_PORT" weight "$X_WEIGHT"
			XSTATE[i]=up
			return
		fi
	done
	step_weight
}

step_drain() {
	local i
	for i in 0 1; do
		if [ "${XSTATE[$i]}" = up ]; then
			apply backend set web "${X_ADDRS[$i]}:$LAB_HTTP_PORT" state drain
			# After the command: it returns once no worker can see the old snapshot,
			# so every flow counted from now on was created under the drain.
			XFLOWS[i]=$(be_get web "${X_ADDRS[$i]}:$LAB_HTTP_PORT" total_flows)
			XSTATE[i]=drain
			XDRAIN_US[i]=$(now_us)
			return
		fi
	done
	step_weight
}

# try_del I FORCE : delete drained extra backend I if it has no active flow left (or FORCE);
# checks that it got no new flow while draining. 0 if it was deleted.
try_del() {
	local i=$1 force=$2 be="${X_ADDRS[$1]}:$LAB_HTTP_PORT" active total waited
	active=$(be_get web "$be" active_flows)
	waited=$((($(now_us) - XDRAIN_US[i]) / 1000))
	if [ "$active" != 0 ] && [ "$force" = no ]; then
		return 1
	fi
	[ "$active" = 0 ] || fail "drained $be still has $active active flows after $waited ms (max ${DRAIN_MAX_S}s)"
	total=$(be_get web "$be" total_flows)
	if [ "$total" != "${XFLOWS[$i]}" ]; then
		fail "drained $be got $((total - XFLOWS[i])) new flows while draining (total_flows ${XFLOWS[$i]} -> $total)"
		DRAIN_NEW=$((DRAIN_NEW + total - XFLOWS[i]))
	fi
	[ "$waited" -le "$DRAIN_WAIT_MAX_MS" ] || DRAIN_WAIT_MAX_MS=$waited
	apply backend del web "$be"
	DELS=$((DELS + 1))
	XSTATE[i]=absent
	return 0
}

# pending_del : a drained backend whose flows are all gone is deleted (0: it took the tick).
pending_del() {
	local i force
	for i in 0 1; do
		[ "${XSTATE[$i]}" = drain ] || continue
		force=no
		[ $(($(now_us) - XDRAIN_US[i])) -lt $((DRAIN_MAX_S * 1000000)) ] || force=yes
		try_del "$i" "$force" && return 0
	done
	return 1
}

step_snat() {
	local st
	st=$(snat_get "$SNAT_X" state)
	if [ "$st" = active ]; then
		SNAT_DEL_INUSE+=("$(snat_get "$SNAT_X" in_use)")
		apply snat del "$SNAT_X"
	else
		# Absent, or draining: `snat add` takes a draining address back.
		apply snat add "$SNAT_X" dev int
	fi
}

step_tcp() {
	local s
	read -r -a s <<<"${TCPSTEPS[$((TI % ${#TCPSTEPS[@]}))]}"
	# Every other time back to the value the test found.
	if [ $(((TI / ${#TCPSTEPS[@]}) % 2)) -eq 1 ]; then
		s[1]=$(json_get "$SETTINGS0" "j['tcp']['timeout']['${s[0]}']")
	fi
	TI=$((TI + 1))
	apply set tcp timeout "${s[0]}" "${s[1]}"
}

step_udp() {
	local v=120
	[ $((UI % 2)) -eq 0 ] || v=$(json_get "$SETTINGS0" "j['udp']['timeout']")
	UI=$((UI + 1))
	apply set udp timeout "$v"
}

step_sched() {
	apply service set web sched "${SCHEDS[$((SI % ${#SCHEDS[@]}))]}"
	SI=$((SI + 1))
}

step_svc() {
	if ctl show services "$SVC2" >/dev/null 2>&1; then
		apply service del "$SVC2"
	else
		apply service add "$SVC2" vip "$LAB_VIP" port "$SVC2_PORT" proto tcp sched rr
		apply backend add "$SVC2" "${B[2]}"
	fi
}

# LIVE_STEPS overrides the rotation, e.g. "weight" to try one kind of change alone, or
# "none" for the same load without changes.
read -r -a STEPS <<<"${LIVE_STEPS:-add weight snat tcp drain sched svc weight udp snat weight svc}"
step_none() { :; }

# ---- restoring

SETTINGS0=$(ctl --json show settings)
BACKENDS0=$(json_get "$(ctl --json show backends web)" \
	"sorted((b['addr'], b['port'], b['weight'], b['state']) for b in j)")
SCHED0=$(json_get "$(ctl --json show services web)" 'j[0]["sched"]')
SNATS0=$(json_get "$(ctl --json show snat)" "sorted(s['addr'] for s in j)")
SERVICES0=$(json_get "$(ctl --json show services)" "sorted(s['name'] for s in j)")

restore() {
	local i st v
	ctl service del "$SVC2" >/dev/null 2>&1 || true
	for i in 0 1; do
		ctl backend del web "${X_ADDRS[$i]}:$LAB_HTTP_PORT" >/dev/null 2>&1 || true
		XSTATE[i]=absent
	done
	for i in 0 1 2; do
		ctl backend set web "${B[$i]}" weight "${W[$i]}" state up >/dev/null 2>&1 ||
			log "could not restore ${B[$i]}"
	done
	ctl service set web sched "$SCHED0" >/dev/null 2>&1 || log "could not restore sched $SCHED0"
	for st in syn established closing closed; do
		v=$(json_get "$SETTINGS0" "j['tcp']['timeout']['$st']")
		ctl set tcp timeout "$st" "$v" >/dev/null 2>&1 || log "could not restore tcp timeout $st"
	done
	ctl set udp timeout "$(json_get "$SETTINGS0" "j['udp']['timeout']")" >/dev/null 2>&1 ||
		log "could not restore udp timeout"
	if [ "$(snat_get "$SNAT_X" state)" = active ]; then
		ctl snat del "$SNAT_X" >/dev/null 2>&1 || log "could not delete $SNAT_X"
	fi
	# A deleted address drains until its last flow (closed ones linger 10 s) has ended.
	for _ in $(seq 1 40); do
		[ "$(snat_get "$SNAT_X" state)" = -1 ] && return 0
		sleep 0.5
	done
	log "$SNAT_X still draining after 20 s"
}

# tcp_checks RUN BEFORE AFTER NS... : no packet of the TCP connections of namespaces NS was
# lost for good in the run.
tcp_checks() {
	local run=$1 a=$2 b=$3 k v sum
	shift 3
	log "run $run: TCP tail loss probes (late ACKs, not losses): $(sdiff "$a" "$b" 'tcpns("TcpExtTCPLossProbes")')"
	for k in TcpExtTCPSynRetrans TcpExtTCPTimeouts TcpExtTCPLossProbeRecovery; do
		v=$(sdiff "$a" "$b" "{n: x for n, x in tcpns('$k').items() if n in '$*'.split()}")
		sum=$(json_get "$v" 'sum(j.values())')
		check "$run: $k did not move in $*: $v" [ "$sum" -eq 0 ]
	done
}

# ---- the run A

for i in 0 1; do
	x_up "$i"
done
add_cleanup restore

rm -rf "$TEST_TMP/keep"
keep_open "${KEEP_ADDRS[@]}"
KEEP_A=$KEEP_FIRST
nerr=$(json_get "$KEEP_A" 'sum(1 for c in j if c["body"].startswith("ERROR"))')
check "A: ${#KEEP_ADDRS[@]} keep-alive connections held across the run ($KEEP_A)" [ "$nerr" -eq 0 ]

snapshot "$TEST_TMP/a0.json"
log "run A: ${RUN_A_S} s of wrk -c$WRK_CONNS (Connection: close, ${WRK_DELAY_MS} ms pacing), one change a second"
T0_MS=$(($(now_us) / 1000))
start_us=$(now_us)
wrk_start "$TEST_TMP/wrk-a.out" "$RUN_A_S"
step=0
for ((tick = 1; tick < RUN_A_S; tick++)); do
	sleep_until_us $((start_us + tick * 1000000))
	pid_running "$WRK_PID" || break
	pending_del && continue
	"step_${STEPS[$((step % ${#STEPS[@]}))]}"
	step=$((step + 1))
done
wrk_wait "$TEST_TMP/wrk-a.out"
keep_second
KEEP_A2=$KEEP_SECOND
# Drained backends still waiting for their last flows: bounded by DRAIN_MAX_S each.
for _ in $(seq 1 $((DRAIN_MAX_S * 4))); do
	[[ " ${XSTATE[*]} " == *" drain "* ]] || break
	pending_del || sleep 0.25
done
# nginx writes the access log line after the response: give the last ones a moment.
sleep 0.5
snapshot "$TEST_TMP/a1.json"

wrk_parse "$TEST_TMP/wrk-a.out"
log "run A: $CHANGES changes applied ($REFUSED refused), $DELS drained backends deleted:"
sed 's/^/    /' "$CHLOG" >&2
log "run A wrk: $(grep -E 'requests in|Requests/sec|Socket errors|Non-2xx' "$TEST_TMP/wrk-a.out" | tr -s ' ' | tr '\n' ';')"

check "A: wrk ran $W_REQ requests (want >= $((RUN_A_S * 20)))" [ "$W_REQ" -ge $((RUN_A_S * 20)) ]
check "A: $CHANGES live changes applied (want >= $((RUN_A_S - 2)))" [ "$CHANGES" -ge $((RUN_A_S - 2)) ]
check "A: no change refused ($REFUSED)" [ "$REFUSED" -eq 0 ]
check "A: both extra backends were added, drained and deleted ($DELS deletes, want >= 2)" [ "$DELS" -ge 2 ]
check "A: drained backends got no new flow while draining ($DRAIN_NEW; longest wait for 0 active flows ${DRAIN_WAIT_MAX_MS} ms)" \
	[ "$DRAIN_NEW" -eq 0 ]
check "A: wrk socket errors: $W_SOCKTXT (want all 0)" [ "$W_SOCKERR" -eq 0 ]
check "A: wrk non-2xx responses: $W_NON2XX (want 0)" [ "$W_NON2XX" -eq 0 ]
same=$(json_get "{\"a\": $KEEP_A, \"b\": $KEEP_A2}" \
	'sum(1 for x, y in zip(j["a"], j["b"]) if x["body"] == y["body"])')
check "A: every kept connection answered again by the same backend after all changes ($same/${#KEEP_ADDRS[@]}: $KEEP_A2)" \
	[ "$same" -eq "${#KEEP_ADDRS[@]}" ]

drops=$(sdiff "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" 'drops()')
bad=$(json_get "$drops" "{k: v for k, v in j.items() if k not in '${DROPS_AMBIENT[*]}'.split()}")
check "A: no drop counter moved (allowed: ${DROPS_AMBIENT[*]:-none}): moved $drops" [ "$bad" = "{}" ]
pd=$(sdiff "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" 'portdrops()')
check "A: no port drops ($pd)" [ "$pd" = "{}" ]
tcp_checks A "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" "$LAB_NS_CLIENT" "${LAB_NS_BACKENDS[@]}"

# Access logs: wrk's requests plus the kept connections' second requests. wrk stops with up
# to WRK_CONNS requests in flight, which a backend may have logged but wrk did not count.
keep_ok=$(json_get "$KEEP_A2" 'sum(1 for c in j if not c["body"].startswith("ERROR"))')
logged=$(sdiff "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" "sum(logs(n) for n in b['logs'])")
per=$(sdiff "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" "{n: logs(n) for n in b['logs']}")
lw=$((logged - keep_ok))
check "A: backends logged $lw requests of wrk ($per, minus $keep_ok kept), want $W_REQ..$((W_REQ + WRK_CONNS))" \
	in_range "$lw" "$W_REQ" $((W_REQ + WRK_CONNS))
check "A: both extra backends served requests ($per)" \
	[ "$(json_get "$per" 'min(j["x1"], j["x2"])')" -gt 0 ]
n2=0
for n in "${LOG_NAMES[@]}"; do
	n2=$((n2 + $(non200 "$n" "$(json_get "$(cat "$TEST_TMP/a0.json")" "j['logs']['$n']")")))
done
check "A: every logged response was a 200 ($n2 were not)" [ "$n2" -eq 0 ]
# Connections without a request: wrk's probe of the address before it starts (wrk.resolve()
# connects once) and the up to WRK_CONNS connections that were open, waiting for their paced
# request, when it stopped.
fl=$(sdiff "$TEST_TMP/a0.json" "$TEST_TMP/a1.json" 'flows()')
check "A: Sluice created $fl flows for $lw logged requests (want $lw..$((lw + WRK_CONNS + 1)))" \
	in_range "$fl" "$lw" $((lw + WRK_CONNS + 1))
if [ -n "${SNAT_DEL_INUSE[*]}" ]; then
	log "run A: $SNAT_X had ${SNAT_DEL_INUSE[*]} tuples in use at its deletes"
fi

restore
check "A: backends of web restored" \
	[ "$(json_get "$(ctl --json show backends web)" "sorted((b['addr'], b['port'], b['weight'], b['state']) for b in j)")" = "$BACKENDS0" ]
check "A: settings restored" [ "$(ctl --json show settings)" = "$SETTINGS0" ]
check "A: sched restored ($SCHED0)" [ "$(json_get "$(ctl --json show services web)" 'j[0]["sched"]')" = "$SCHED0" ]
check "A: SNAT pool restored ($SNATS0)" \
	[ "$(json_get "$(ctl --json show snat)" "sorted(s['addr'] for s in j)")" = "$SNATS0" ]
check "A: services as before ($SERVICES0)" \
	[ "$(json_get "$(ctl --json show services)" "sorted(s['name'] for s in j)")" = "$SERVICES0" ]

# ---- the run B

rm -rf "$TEST_TMP/keep"
keep_open "${KEEP_ADDRS[@]}"
KEEP_B=$KEEP_FIRST
B2_BODY=b2
kb2=$(json_get "$KEEP_B" "sum(1 for c in j if c['body'] == '$B2_BODY')")
nerr=$(json_get "$KEEP_B" 'sum(1 for c in j if c["body"].startswith("ERROR"))')
check "B: ${#KEEP_ADDRS[@]} keep-alive connections answered ($KEEP_B)" [ "$nerr" -eq 0 ]
check "B: $kb2 of them on b2 (want >= 1)" [ "$kb2" -ge 1 ]

snapshot "$TEST_TMP/b0.json"
log "run B: ${RUN_B_S} s of wrk; ${B[1]} down at 4 s, kept connections ask again at 6 s, up at 8 s"
T0_MS=$(($(now_us) / 1000))
start_us=$(now_us)
wrk_start "$TEST_TMP/wrk-b.out" "$RUN_B_S"
add_cleanup "ctl backend set web ${B[1]} state up >/dev/null 2>&1 || true"
sleep_until_us $((start_us + 4000000))
apply backend set web "${B[1]}" state down
down_total=$(be_get web "${B[1]}" total_flows)
sleep_until_us $((start_us + 6000000))
keep_second
KEEP_B2=$KEEP_SECOND
sleep_until_us $((start_us + 8000000))
up_total=$(be_get web "${B[1]}" total_flows)
apply backend set web "${B[1]}" state up
wrk_wait "$TEST_TMP/wrk-b.out"
sleep 0.5
snapshot "$TEST_TMP/b1.json"

wrk_parse "$TEST_TMP/wrk-b.out"
log "run B wrk: $(grep -E 'requests in|Requests/sec|Socket errors|Non-2xx' "$TEST_TMP/wrk-b.out" | tr -s ' ' | tr '\n' ';')"
drops=$(sdiff "$TEST_TMP/b0.json" "$TEST_TMP/b1.json" 'drops()')
resets=$(json_get "$drops" 'j.get("backend_down", 0)')
keep_fail=$(json_get "$KEEP_B2" 'sum(1 for c in j if c["body"].startswith("ERROR"))')
failed=$((W_SOCKERR + W_NON2XX + keep_fail))
log "run B: drops moved $drops; wrk failures $((W_SOCKERR + W_NON2XX)) ($W_SOCKTXT, non-2xx $W_NON2XX), kept connections failed $keep_fail"

check "B: wrk ran $W_REQ requests (want >= $((RUN_B_S * 20)))" [ "$W_REQ" -ge $((RUN_B_S * 20)) ]
check "B: b2 got no new flow while down (total_flows $down_total -> $up_total)" \
	[ "$down_total" = "$up_total" ]
bad=$(json_get "{\"a\": $KEEP_B, \"b\": $KEEP_B2}" \
	"sum(1 for x, y in zip(j['a'], j['b']) if (x['body'] == '$B2_BODY') != y['body'].startswith('ERROR') or (x['body'] != '$B2_BODY' and x['body'] != y['body']))")
check "B: kept connections on b2 reset ($keep_fail of $kb2), the others answered by the same backend ($KEEP_B2)" \
	[ "$bad" -eq 0 ]
check "B: $failed failed requests <= $resets flows reset by Sluice (backend_down)" \
	[ "$failed" -le "$resets" ]
check "B: the resets were counted (backend_down $resets >= $kb2 kept connections on b2)" \
	[ "$resets" -ge "$kb2" ]
bad=$(json_get "$drops" \
	"{k: v for k, v in j.items() if k not in 'backend_down no_flow tcp_no_flow ${DROPS_AMBIENT[*]}'.split()}")
check "B: no drop reason but backend_down and its aftermath (no_flow, tcp_no_flow): moved $drops" \
	[ "$bad" = "{}" ]
pd=$(sdiff "$TEST_TMP/b0.json" "$TEST_TMP/b1.json" 'portdrops()')
check "B: no port drops ($pd)" [ "$pd" = "{}" ]
# The clients and b2 retransmit into flows that were reset; b1 and b3 must not.
tcp_checks B "$TEST_TMP/b0.json" "$TEST_TMP/b1.json" "${LAB_NS_BACKENDS[0]}" "${LAB_NS_BACKENDS[2]}"
for i in 0 2; do
	n="b$((i + 1))"
	kept=$(json_get "$KEEP_B2" "sum(1 for c in j if c['body'] == '$n')")
	fl=$(sdiff "$TEST_TMP/b0.json" "$TEST_TMP/b1.json" "be('${B[$i]}', 'total_flows')")
	lg=$(($(sdiff "$TEST_TMP/b0.json" "$TEST_TMP/b1.json" "logs('$n')") - kept))
	check "B: $n had no failure: $fl new flows, $lg requests logged (want $lg..$((lg + WRK_CONNS)) flows)" \
		in_range "$fl" "$lg" $((lg + WRK_CONNS))
	n2=$(non200 "$n" "$(json_get "$(cat "$TEST_TMP/b0.json")" "j['logs']['$n']")")
	check "B: every response $n logged was a 200 ($n2 were not)" [ "$n2" -eq 0 ]
done
end_total=$(be_get web "${B[1]}" total_flows)
check "B: b2 takes new flows again after up ($up_total -> $end_total)" [ "$end_total" -gt "$up_total" ]

lab_test_end
