#!/usr/bin/env bash
# Run the lab suite: bring the lab up once, start one sluice daemon with conf/lab.conf, run
# every test (or the ones named on the command line, e.g. `run_all.sh http drain`), and
# always tear everything down. Tests share the daemon (so its TIME_WAIT quarantine memory
# carries across tests, as it would in production) and restore whatever state they change.
# If a test leaves the daemon dead, it is restarted for the next test.
#
# Prints each test's PASS/FAIL/SKIP lines and ends with the line "N passed, M failed"
# (counting tests). Exit status 0 only if every test passed.
#
# Environment: SLUICE_BUILD_DIR (default build) picks the binaries; LAB_TEST_TIMEOUT
# bounds each test (default 450 s).
set -euo pipefail
# shellcheck source=tools/lib/common.sh
source "$(dirname "$0")/../../tools/lib/common.sh"
# shellcheck source=tools/lib/lab.sh
source "$SLUICE_ROOT/tools/lib/lab.sh"
# shellcheck source=tools/lib/sluice.sh
source "$SLUICE_ROOT/tools/lib/sluice.sh"

ORDER=(ping udp http weights drain health snat_del cli malformed icmp_errors replay live timewait tsrewrite twreuse telemetry capture)
TIMEOUT=${LAB_TEST_TIMEOUT:-450}
SOCK=/run/sluice/lab.sock
LOGF=/run/sluice/lab.log

require_root
cd "$SLUICE_ROOT"
if [ $# -gt 0 ]; then
	ORDER=("$@")
fi
for t in "${ORDER[@]}"; do
	[ -x "tests/lab/test_$t.sh" ] || die "no such lab test: tests/lab/test_$t.sh"
done

install_traps
add_cleanup 'lab_down || true'
add_cleanup 'stop_sluice || true'

log "lab up"
lab_up
passed=0
failed=0
if ! start_sluice "$SLUICE_ROOT/conf/lab.conf" "$SOCK" "$LOGF"; then
	echo "FAIL run_all: sluice did not start (log: $LOGF)"
	echo "0 passed, ${#ORDER[@]} failed"
	exit 1
fi
export SLUICE_SOCK SLUICE_PID

for t in "${ORDER[@]}"; do
	if ! sluice_alive; then
		log "sluice is not running any more (log $LOGF); restarting it for test_$t"
		tail -n 20 "$LOGF" >&2 || true
		stop_sluice || true
		mv -f "$LOGF" "$LOGF.$(date +%s)" 2>/dev/null || true
		start_sluice "$SLUICE_ROOT/conf/lab.conf" "$SOCK" "$LOGF" || true
		export SLUICE_SOCK SLUICE_PID
	fi
	echo "== test_$t"
	start=$SECONDS
	rc=0
	timeout --kill-after=20 "$TIMEOUT" "tests/lab/test_$t.sh" || rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "== test_$t: ok ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1))
		[ "$rc" -eq 124 ] && echo "FAIL test_$t: timed out after ${TIMEOUT}s"
		echo "== test_$t: FAILED (exit $rc, $((SECONDS - start)) s)"
	fi
done

if ! stop_sluice; then
	echo "FAIL run_all: sluice did not shut down cleanly on SIGTERM (log: $LOGF)"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
