# shellcheck shell=bash
# Build and run helpers for the sluice daemon and sluicectl, for the lab.
#
#   build [DIR [MESON_SETUP_ARGS...]]   meson setup DIR (only if not configured) + ninja -C DIR
#   start_sluice CONF SOCK LOG          start the daemon in the background on the lab ports;
#                                       returns once `sluicectl -s SOCK show version` works
#                                       (at most 15 s), else fails printing the log tail
#   stop_sluice                         SIGTERM, bounded wait, SIGKILL fallback; returns 1 if
#                                       the daemon did not exit cleanly with status 0
#   ctl ARGS...                         sluicectl -s $SLUICE_SOCK ARGS...
#   sluice_alive                        the daemon started by start_sluice is still running
#
# Variables: SLUICE_BUILD_DIR (default build), SLUICE_BIN, SLUICECTL_BIN, SLUICE_SOCK,
# SLUICE_PID, SLUICE_LOG. Requires tools/lib/common.sh.

SLUICE_BUILD_DIR=${SLUICE_BUILD_DIR:-$SLUICE_ROOT/build}
SLUICE_BIN=${SLUICE_BIN:-$SLUICE_BUILD_DIR/dataplane/sluice}
SLUICECTL_BIN=${SLUICECTL_BIN:-$SLUICE_BUILD_DIR/control/sluicectl}
SLUICE_SOCK=${SLUICE_SOCK:-/run/sluice/lab.sock}
SLUICE_PID=${SLUICE_PID:-}
SLUICE_LOG=${SLUICE_LOG:-}
# EAL arguments for the lab: no hugepages, no PCI, lcore 0 main + lcore 1 worker, the two
# root-namespace veth ends as af_packet ports 0 (ext) and 1 (int).
# shellcheck disable=SC2054 # the commas belong to EAL options
SLUICE_EAL_ARGS=(--no-huge -m 512 --no-pci -l 0,1 --file-prefix sluice-lab
	--vdev "net_af_packet0,iface=$LAB_EXT_DEV" --vdev "net_af_packet1,iface=$LAB_INT_DEV")

build() {
	local dir=${1:-$SLUICE_BUILD_DIR}
	[ $# -gt 0 ] && shift
	# Explicit error checks: callers often run this as an `if` condition, where set -e is off.
	(
		cd "$SLUICE_ROOT" || exit 1
		if [ ! -f "$dir/build.ninja" ]; then
			if [ -f "$dir/meson-private/coredata.dat" ]; then
				# A setup that failed half-way: start it over.
				meson setup --wipe "$dir" "$@" || exit 1
			else
				meson setup "$dir" "$@" || exit 1
			fi
		fi
		ninja -C "$dir" || exit 1
	)
}

ctl() {
	"$SLUICECTL_BIN" -s "$SLUICE_SOCK" "$@"
}

sluice_alive() {
	[ -n "$SLUICE_PID" ] && pid_running "$SLUICE_PID"
}

start_sluice() {
	local conf=$1 sock=$2 logf=$3 i
	local b
	for b in "$SLUICE_BIN" "$SLUICECTL_BIN"; do
		if [ ! -x "$b" ]; then
			log "$b not built (run: ninja -C $SLUICE_BUILD_DIR)"
			return 1
		fi
	done
	mkdir -p "$(dirname "$sock")" "$(dirname "$logf")"
	if "$SLUICECTL_BIN" -s "$sock" show version >/dev/null 2>&1; then
		log "a sluice daemon already answers on $sock"
		return 1
	fi
	SLUICE_SOCK=$sock
	SLUICE_LOG=$logf
	"$SLUICE_BIN" "${SLUICE_EAL_ARGS[@]}" -- -f "$conf" -s "$sock" </dev/null >"$logf" 2>&1 &
	SLUICE_PID=$!
	export SLUICE_SOCK SLUICE_PID SLUICE_LOG
	for i in $(seq 1 150); do
		if ! pid_running "$SLUICE_PID"; then
			wait "$SLUICE_PID" 2>/dev/null && i=0 || i=$?
			log "sluice exited during start-up (status $i); last lines of $logf:"
			tail -n 30 "$logf" >&2
			SLUICE_PID=
			return 1
		fi
		if "$SLUICECTL_BIN" -s "$sock" show version >/dev/null 2>&1; then
			log "sluice running (pid $SLUICE_PID, socket $sock, log $logf)"
			return 0
		fi
		sleep 0.1
	done
	log "sluice did not answer on $sock within 15 s; last lines of $logf:"
	tail -n 30 "$logf" >&2
	stop_sluice || true
	return 1
}

stop_sluice() {
	local pid=$SLUICE_PID i rc=0
	[ -n "$pid" ] || return 0
	SLUICE_PID=
	if kill -TERM "$pid" 2>/dev/null; then
		for i in $(seq 1 100); do
			pid_running "$pid" || break
			sleep 0.1
		done
		if pid_running "$pid"; then
			log "sluice (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			rc=1
		fi
	fi
	# Reap it (only possible if it is our child) to learn how it ended.
	local st=0
	wait "$pid" 2>/dev/null || st=$?
	if [ "$st" -ne 0 ] && [ "$st" -ne 127 ]; then
		log "sluice (pid $pid) exited with status $st"
		rc=1
	fi
	return $rc
}
