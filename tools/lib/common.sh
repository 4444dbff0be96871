# shellcheck shell=bash
# shellcheck disable=SC2034 # constants for the scripts that source this file
# Shared shell helpers for tools/ and tests/lab/: lab constants, logging, cleanup traps.
#
# Source it; it sets nothing but variables and functions. Everything here assumes root and
# bash with `set -euo pipefail` in the caller.
#
# Safety contract of the lab (every script keeps it):
#   - all traffic stays inside namespaces and veth pairs created by tools/lab;
#   - addresses only from 198.18.0.0/15, and only inside those namespaces;
#   - the root-namespace veth ends carry no IP address, do not forward, do not answer ARP;
#   - the machine's own interfaces are never touched;
#   - every loop is bounded in count and in time; teardown runs from an EXIT trap.

SLUICE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SLUICE_ROOT

# Runtime state of the lab (nginx configs, pid files, logs). Not under the repo so a
# read-only checkout works too.
LAB_RUN=${LAB_RUN:-/run/sluice-lab}

# Topology (see tools/lab). Root-namespace veth ends, as given to the DPDK af_packet vdevs.
LAB_EXT_DEV=sl-ext
LAB_INT_DEV=sl-int
LAB_NS_CLIENT=sl-client
LAB_NS_LAN=sl-lan
LAB_NS_BACKENDS=(sl-b1 sl-b2 sl-b3)
LAB_BACKENDS=(198.19.0.11 198.19.0.12 198.19.0.13)
LAB_HTTP_PORT=8080
LAB_UDP_PORT=5353
# Client addresses 198.18.0.10 .. 198.18.0.25 on eth0 in sl-client.
LAB_CLIENTS=()
for _i in $(seq 10 25); do LAB_CLIENTS+=("198.18.0.$_i"); done
unset _i
LAB_GW=198.18.0.1
LAB_VIP=198.18.0.100
LAB_WEB_PORT=80
LAB_ECHO_PORT=5353

# The python that has scapy (a pyenv `python3` on PATH may not).
PY=/usr/bin/python3

log() { printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

require_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root"
}

# nsx NS CMD... : run CMD inside namespace NS.
nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# pid_running PID : PID exists and is not a zombie (an orphan may stay a zombie for a while
# before init reaps it, and `kill -0` succeeds on zombies).
pid_running() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

ns_exists() {
	[ -e "/run/netns/$1" ]
}

# Cleanup stack: add_cleanup CMD pushes a command; run_cleanups runs them last-in first-out.
# install_traps makes them run on EXIT and on INT/TERM/HUP (bash does not run the EXIT trap
# when killed by a signal it does not trap).
_CLEANUPS=()
add_cleanup() { _CLEANUPS+=("$*"); }
run_cleanups() {
	local i rc=$?
	set +e
	for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_CLEANUPS[$i]}"
	done
	_CLEANUPS=()
	return $rc
}
install_traps() {
	trap run_cleanups EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# json_get JSON PYEXPR : evaluate PYEXPR with `j` bound to the parsed JSON document.
# Example: json_get "$(ctl --json show stats)" 'j["flows_created"]'
json_get() {
	"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); r=eval(sys.argv[2]); print(json.dumps(r) if isinstance(r,(dict,list)) else r)' "$1" "$2"
}
