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
