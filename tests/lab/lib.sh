# shellcheck shell=bash
# Shared setup for the lab tests. Each test_*.sh sources this, calls lab_test_begin, runs its
# checks with check/pass/fail, and ends with lab_test_end (exit status 1 if any check failed).
#
# A test uses the lab and daemon that tests/lab/run_all.sh set up (it exports SLUICE_SOCK
# and SLUICE_PID). Run alone, a test brings the lab up and starts its own daemon, and takes
# both down again on exit, so `tests/lab/test_http.sh` works by itself.
#
# Tests change daemon state only through sluicectl and undo it in a cleanup (see
# add_cleanup), so the next test sees conf/lab.conf again.

LAB_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/lib/common.sh
source "$LAB_TEST_DIR/../../tools/lib/common.sh"
# shellcheck source=tools/lib/lab.sh
source "$SLUICE_ROOT/tools/lib/lab.sh"
# shellcheck source=tools/lib/sluice.sh
source "$SLUICE_ROOT/tools/lib/sluice.sh"

TEST_NAME=$(basename "$0" .sh)
TEST_FAILS=0
TEST_CHECKS=0
LABCLIENT="$SLUICE_ROOT/tools/lib/labclient.py"

pass() {
	TEST_CHECKS=$((TEST_CHECKS + 1))
	echo "PASS $TEST_NAME: $*"
}
fail() {
	TEST_CHECKS=$((TEST_CHECKS + 1))
	TEST_FAILS=$((TEST_FAILS + 1))
	echo "FAIL $TEST_NAME: $*"
}
skip() {
	echo "SKIP $TEST_NAME: $*"
}
# check DESCRIPTION CMD... : PASS if CMD succeeds, else FAIL.
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

lab_test_begin() {
	require_root
	cd "$SLUICE_ROOT" || exit 1
	install_traps
	# shellcheck disable=SC2034 # used by the test scripts
	TEST_TMP=$(mktemp -d "/tmp/sluice-$TEST_NAME.XXXXXX")
	# shellcheck disable=SC2016 # expanded when the cleanup runs
	add_cleanup 'rm -rf "$TEST_TMP"'
	if ! lab_is_up; then
		log "$TEST_NAME: lab is not up; bringing it up for this test"
		lab_up
		add_cleanup 'lab_down || true'
	fi
	if [ -n "${SLUICE_PID:-}" ] && ctl show version >/dev/null 2>&1; then
		return 0
	fi
	SLUICE_PID=
	start_sluice "$SLUICE_ROOT/conf/lab.conf" /run/sluice/lab-test.sock /run/sluice/lab-test.log ||
		die "$TEST_NAME: could not start sluice"
	add_cleanup 'stop_sluice || true'
}

lab_test_end() {
	if ! sluice_alive; then
		fail "daemon is no longer running at the end of the test"
	fi
	if [ "$TEST_CHECKS" -eq 0 ]; then
		fail "no check ran"
	fi
	[ "$TEST_FAILS" -eq 0 ]
}

# client CMD... : run CMD in the client namespace.
client() {
	ip netns exec "$LAB_NS_CLIENT" "$@"
}

# labclient SUBCOMMAND ARGS... : tools/lib/labclient.py in the client namespace (JSON out).
labclient() {
	client timeout 300 "$PY" "$LABCLIENT" "$@"
}

# access_lines N : number of requests backend bN has logged so far.
access_lines() {
	wc -l <"$LAB_RUN/b$1/access.log"
}

# ab_parallel OUTDIR N C ADDR... : one `ab -n N -c C -B ADDR` per address, in parallel, from
# the client namespace to the web VIP. Output in OUTDIR/ab-ADDR.out. Bounded by timeout.
ab_parallel() {
	local dir=$1 n=$2 c=$3 addr pids=() rc=0
	shift 3
	mkdir -p "$dir"
	for addr in "$@"; do
		client timeout 120 ab -r -s 10 -n "$n" -c "$c" -B "$addr" \
			"http://$LAB_VIP:$LAB_WEB_PORT/" >"$dir/ab-$addr.out" 2>"$dir/ab-$addr.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=1
	done
	return $rc
}

# ab_verify OUTDIR N ADDR... : PASS/FAIL per address: N complete, 0 failed, no non-2xx.
# Returns the number of addresses that failed (0 = all good).
ab_verify() {
	local dir=$1 n=$2 addr out c f bad=0
	shift 2
	for addr in "$@"; do
		out="$dir/ab-$addr.out"
		c=$(awk '/^Complete requests:/ {print $3}' "$out" 2>/dev/null || true)
		f=$(awk '/^Failed requests:/ {print $3}' "$out" 2>/dev/null || true)
		if [ "$c" = "$n" ] && [ "$f" = "0" ] && ! grep -q '^Non-2xx responses:' "$out"; then
			pass "ab from $addr: $c/$n complete, 0 failed, all 2xx"
		else
			fail "ab from $addr: complete=${c:-?}/$n failed=${f:-?}" \
				"$(grep '^Non-2xx' "$out" 2>/dev/null || true)" \
				"$(tail -n 2 "$dir/ab-$addr.err" 2>/dev/null | tr '\n' ' ')"
			bad=$((bad + 1))
		fi
	done
	return $bad
}

# backend_flows SERVICE ADDR:PORT : total_flows of one backend from `show backends --json`.
backend_flows() {
	json_get "$(ctl --json show backends "$1")" \
		"[b['total_flows'] for b in j if '%s:%s' % (b['addr'], b['port']) == '$2'][0]"
}

# drops_json : `show drops --json`.
drops_json() {
	ctl --json show drops
}

# short_conns SRC_CSV COUNT : COUNT short HTTP connections to the web VIP from the given
# client addresses; prints labclient's JSON (a zero result if the client itself failed).
short_conns() {
	labclient http-short --vip "$LAB_VIP" --port "$LAB_WEB_PORT" --src "$1" --count "$2" \
		--threads 4 || echo '{"ok":0,"fail":-1,"bodies":{},"errors":["labclient failed"]}'
}

# keep_open ADDR... : one HTTP/1.1 keep-alive connection to the web VIP per address, held
# open in the background; sets KEEP_FIRST to the first responses (JSON list in address
# order) and dies if the client does not report within 30 s. keep_second then asks once
# more on every connection and sets KEEP_SECOND. Not for $(...): they set variables and
# own a background process.
keep_open() {
	local src
	src=$(
		IFS=,
		echo "$*"
	)
	KEEP_DIR="$TEST_TMP/keep"
	mkdir -p "$KEEP_DIR"
	ip netns exec "$LAB_NS_CLIENT" timeout 120 "$PY" "$LABCLIENT" http-keep --vip "$LAB_VIP" \
		--port "$LAB_WEB_PORT" --src "$src" --dir "$KEEP_DIR" --hold 60 >"$KEEP_DIR/out" 2>&1 &
	KEEPER=$!
	add_cleanup "touch '$KEEP_DIR/go'; kill $KEEPER 2>/dev/null || true"
	for _ in $(seq 1 300); do
		[ -e "$KEEP_DIR/first.json" ] && break
		sleep 0.1
	done
	[ -e "$KEEP_DIR/first.json" ] ||
		die "keep-alive client did not report within 30 s: $(cat "$KEEP_DIR/out")"
	# shellcheck disable=SC2034 # read by the tests
	KEEP_FIRST=$(cat "$KEEP_DIR/first.json")
}

keep_second() {
	touch "$KEEP_DIR/go"
	wait "$KEEPER" || true
	# shellcheck disable=SC2034 # read by the tests
	KEEP_SECOND=$(cat "$KEEP_DIR/second.json" 2>/dev/null || echo '[]')
}

# ---- for tests with SNAT addresses and services of their own and paced client runs
# (test_timewait.sh, test_tsrewrite.sh, test_twreuse.sh).

# ctl_must CMD... : a sluicectl command the test cannot do without (FAIL and die if refused).
ctl_must() {
	local err
	if ! err=$(ctl "$@" 2>&1); then
		fail "sluicectl $* refused: $err"
		die "cannot continue without: sluicectl $*"
	fi
}

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

# conf/lab.conf's SNAT pool; what svc_add and addr_add added; paced_run's current address.
LAB_OWN_POOL=198.19.0.2,198.19.0.3
SVCS_ADDED=()
ADDRS_ADDED=()
R_ADDR=

# own_snat_begin : web and echo use only LAB_OWN_POOL meanwhile; at the end teardown, web and
# echo back to `snat all`, then addrs_gone (cleanups run last-in first-out).
own_snat_begin() {
	local svc
	add_cleanup addrs_gone
	for svc in web echo; do
		ctl_must service set "$svc" snat "$LAB_OWN_POOL"
		add_cleanup "ctl service set $svc snat all >/dev/null 2>&1 || log 'could not restore: service set $svc snat all'"
	done
	add_cleanup teardown
}

# svc_add NAME ARGS... : `service add NAME ARGS...`, deleted again by teardown.
svc_add() {
	ctl_must service add "$@"
	SVCS_ADDED+=("$1")
}

# addr_add ADDR PORTS : a fresh SNAT address (deleted again by addr_del or by teardown).
addr_add() {
	ctl_must snat add "$1" ports "$2" dev int
	ADDRS_ADDED+=("$1")
}

# addr_del ADDR : done with ADDR; it drains (listed in `show snat`) until its last flows end.
addr_del() {
	ctl snat del "$1" >/dev/null 2>&1 || log "snat del $1 refused"
}

# teardown : svc_add's services first (`snat del` refuses a service's only address), then
# addr_add's addresses (refused for one already deleted by addr_del: fine).
teardown() {
	local s a
	for s in "${SVCS_ADDED[@]}"; do
		ctl service del "$s" >/dev/null 2>&1 || log "could not delete service $s"
	done
	for a in "${ADDRS_ADDED[@]}"; do
		ctl snat del "$a" >/dev/null 2>&1 || true
	done
}

# addrs_gone : wait (at most 15 s) until addr_add's addresses have finished draining.
addrs_gone() {
	local left
	[ "${#ADDRS_ADDED[@]}" -gt 0 ] || return 0
	for _ in $(seq 1 30); do
		left=$(json_get "$(ctl --json show snat)" \
			"' '.join(s['addr'] for s in j if s['addr'] in '${ADDRS_ADDED[*]}'.split())")
		[ -z "$left" ] && return 0
		sleep 0.5
	done
	log "still draining after 15 s: $left"
}

# paced_run LABEL SVC VIP PORT NS_BACKEND ADDR COUNT RATE : COUNT paced short connections
# (labclient http-paced) from 8 clients to VIP:PORT, SVC using only SNAT address ADDR (the
# previous run's R_ADDR is deleted). Sets R_JSON, R_OK, R_FAIL, R_FAILMAX, R_REFUSED, deltas
# R_RETRANS (clients) and R_PAWS (NS_BACKEND), R_TW (TIME-WAIT toward ADDR), R_ADDR.
paced_run() {
	local label=$1 svc=$2 vip=$3 port=$4 ns=$5 addr=$6 count=$7 rate=$8
	local out pid rc=0 retrans0 paws0 secs src
	out="$TEST_TMP/run-$label.json"
	src=$(
		IFS=,
		echo "${LAB_CLIENTS[*]:0:8}"
	)
	ctl_must service set "$svc" snat "$addr"
	[ -z "${R_ADDR:-}" ] || addr_del "$R_ADDR"
	R_ADDR=$addr
	retrans0=$(nstat_get "$LAB_NS_CLIENT" TcpExtTCPSynRetrans)
	paws0=$(nstat_get "$ns" TcpExtPAWSTimewait)
	secs=$((count / rate + 1))
	log "run $label: $count connections at $rate/s (~$secs s) via SNAT $addr"
	# In the background, so a signal to the test is handled at once (bash runs traps only
	# between foreground commands) and the client is ended by its pid.
	# Timeouts of 10 s: the slowest connection that succeeded took 2.5 s on a busy machine,
	# and a stall is caught anyway by the SYN retransmission and PAWS counters.
	ip netns exec "$LAB_NS_CLIENT" timeout $((secs + 60)) "$PY" "$LABCLIENT" http-paced \
		--vip "$vip" --port "$port" --src "$src" --count "$count" --rate "$rate" \
		--connect-timeout 10 --timeout 10 --deadline $((secs + 25)) \
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
	R_PAWS=$(($(nstat_get "$ns" TcpExtPAWSTimewait) - paws0))
	R_TW=$(nsx "$ns" ss -Htan state time-wait "( sport = :$LAB_HTTP_PORT )" "dst $addr" | wc -l)
	log "run $label: ok=$R_OK fail=$R_FAIL (refused $R_REFUSED, slowest ${R_FAILMAX}s)" \
		"SynRetrans=+$R_RETRANS PAWSTimewait=+$R_PAWS b1 TIME-WAIT toward $addr: $R_TW;" \
		"slow_ok=$(json_get "$R_JSON" 'j.get("slow_ok")')" \
		"ok_latency_max=$(json_get "$R_JSON" 'j.get("ok_latency_max_s")')s" \
		"fail_kinds=$(json_get "$R_JSON" 'j.get("fail_kinds")') elapsed=$(json_get "$R_JSON" 'j.get("elapsed_s")')s"
}

# ok_upto N : 1..N of the last paced_run's connections succeeded.
ok_upto() {
	[ "$R_OK" -gt 0 ] && [ "$R_OK" -le "$1" ]
}
# all_refused : the last paced_run had failures, and each was refused or reset (RST).
all_refused() {
	[ "$R_FAIL" -gt 0 ] && [ "$R_REFUSED" -eq "$R_FAIL" ]
}
# refused_fast : the last paced_run's slowest failure took under 0.9 s: refused at once,
# not a SYN dropped and sent again (Linux retransmits a SYN after 1 s). Refusals take
# 0.0003-0.12 s here, and up to 0.7 s when the machine is busy.
refused_fast() {
	"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.9 else 1)' "$R_FAILMAX"
}

# nstat_now NS COUNTER... : the counters' current values in NS, on one line.
nstat_now() {
	local ns=$1
	shift
	nsx "$ns" nstat -asz "$@" | tail -n +2 | tr -s ' ' | tr '\n' ' '
}
# show_now WHAT ARGS... : one line "show WHAT ARGS: " and `sluicectl --json show WHAT ARGS`.
show_now() {
	echo "show $*: $(ctl --json show "$@" 2>&1)"
}
# diag_out TITLE : stdin, indented, to stderr between "--- diagnostics for TITLE" and "---".
diag_out() {
	{
		echo "--- diagnostics for $1"
		cat
		echo "---"
	} | sed 's/^/  /' >&2
}
