#!/usr/bin/env bash
# tools/lib/bench_lab.sh [--json] [--seconds N] — the lab figure of tools/bench (tools/bench
# --lab): HTTP requests/s through Sluice against directly to the same backend, measured in
# one run with wrk, short connections, on this machine's Linux stacks.
#
#   1. install missing Debian packages, build (unless SLUICE_NO_BUILD=1), bring the lab up,
#      start sluice with conf/lab.conf
#   2. add service "bench" (VIP 198.18.0.100:81, one backend: nginx on b1, 198.19.0.11:8080)
#      and enough SNAT addresses (198.19.0.100 and up) for 50,000 new connections/s
#   3. add a direct path that bypasses Sluice: a veth pair sl-client "direct-c" <-> sl-b1
#      "direct-b", 198.18.200.0/24 (backend end 198.18.200.1)
#   4. two rounds of: direct, then through; in each, one wrk per client address in parallel
#   5. print the table (or one JSON object), tear everything down
#
# wrk cannot bind a source address, so each wrk runs under its own uid and a uidrange rule in
# sl-client gives that uid a routing table whose routes carry its source address.
#
# A benchmark reports, it does not judge: exit status 0 when every measurement ran, whatever
# the figures; 1 on failure; 2 usage.
set -euo pipefail
# shellcheck source=tools/lib/common.sh
source "$(dirname "$0")/common.sh"
# shellcheck source=tools/lib/deps.sh
source "$SLUICE_ROOT/tools/lib/deps.sh"
# shellcheck source=tools/lib/lab.sh
source "$SLUICE_ROOT/tools/lib/lab.sh"
# shellcheck source=tools/lib/sluice.sh
source "$SLUICE_ROOT/tools/lib/sluice.sh"

BENCH_CLIENTS=4
BENCH_CONNS=8
BENCH_THREADS=1
BENCH_ROUNDS=2
BENCH_SERVICE=bench
BENCH_PORT=81
BENCH_BACKEND_NS=${LAB_NS_BACKENDS[0]}
BENCH_BACKEND=${LAB_BACKENDS[0]}
# Direct path: 198.18.200.0/24 is not used by the lab. Round r, client i has the source
# 198.18.200.<10 (r + 1) + i>.
DIRECT_NET=198.18.200
DIRECT_GW=$DIRECT_NET.1
DIRECT_DEV_C=direct-c
DIRECT_DEV_B=direct-b
# uids and routing tables of the clients in sl-client: BASE + r * BENCH_CLIENTS + i. The uids
# are above the ranges accounts, systemd dynamic users and nspawn containers use.
BENCH_UID_BASE=2000000000
BENCH_TABLE_BASE=1100
# SNAT sizing: the backend holds each tuple in TIME_WAIT (Sluice quarantines it) for 60 s,
# longer than the whole run, so every through connection of the run needs its own tuple.
# Sized for this rate; above it alloc_failed would show in the table.
BENCH_RATE_CEIL=50000
BENCH_SNAT_BASE=100
BENCH_PORTS_PER_ADDR=64512

usage() {
	echo "usage: tools/bench --lab [--json] [--seconds N]   (or tools/lib/bench_lab.sh ..., --help: what it does)" >&2
	exit 2
}

help() {
	cat <<EOF
usage: tools/bench --lab [--json] [--seconds N]
       tools/lib/bench_lab.sh [--json] [--seconds N]

As root. Installs missing Debian packages, builds (skipped with SLUICE_NO_BUILD=1), brings
the lab up (tools/lab), starts sluice with conf/lab.conf and adds service $BENCH_SERVICE,
$LAB_VIP:$BENCH_PORT, with one backend: nginx on $BENCH_BACKEND:$LAB_HTTP_PORT. Adds enough SNAT
addresses (198.19.0.$BENCH_SNAT_BASE and up) for $BENCH_RATE_CEIL new connections/s over the whole run,
and a path to the same nginx that bypasses Sluice: a veth pair between $LAB_NS_CLIENT and
$BENCH_BACKEND_NS, $DIRECT_NET.0/24. Then measures HTTP requests/s with short connections
(wrk -H 'Connection: close'): $BENCH_CLIENTS client addresses in parallel, one wrk -t$BENCH_THREADS -c$BENCH_CONNS
each, in $BENCH_ROUNDS rounds of: directly to the backend, then through the VIP. Each round
has its own client addresses.

Prints per round and path: requests/s (summed over the wrk processes), requests, wrk socket
errors and responses wrk counts as neither 2xx nor 3xx; the ratio through/direct per round and over both; the Sluice
counters that moved (drops by reason, port drops, SNAT alloc failures) and flows created.

The figure is kernel-bound: wrk, nginx and the Linux stacks of clients and backend run on
this machine beside Sluice, whose worker polls one CPU without sleeping during both paths.
wrk and the backend's nginx are pinned to the other CPUs in both; the kernel work of the
packets Sluice transmits runs on the worker's CPU, inside its transmit calls. Other load on
the machine shows as a spread between the rounds.

  --json       one JSON object instead of the table
  --seconds N  seconds per measurement, 1..60 (default 10); the run takes about
               $((BENCH_ROUNDS * 2)) x N s plus 10 s, after the build

Everything is torn down on exit; sluice's log stays in /run/sluice/bench-lab.log. Results on
stdout, progress on stderr. Exit status: 0 every measurement ran (whatever the figures); 1
failure; 2 usage.
EOF
	exit 0
}

json=false
BENCH_SECONDS=10
while [ $# -gt 0 ]; do
	case $1 in
	--json) json=true ;;
	--seconds)
		[ $# -ge 2 ] || usage
		BENCH_SECONDS=$2
		shift
		;;
	-h | --help) help ;;
	*) usage ;;
	esac
	shift
done
if ! [[ $BENCH_SECONDS =~ ^[0-9]+$ ]] || [ "$BENCH_SECONDS" -lt 1 ] || [ "$BENCH_SECONDS" -gt 60 ]; then
	usage
fi

require_root
cd "$SLUICE_ROOT"
# Before we add load: a busy machine makes the figures noisy, the reader should know.
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)

log "dependencies"
install_deps >&2
if [ "${SLUICE_NO_BUILD:-0}" != 1 ]; then
	log "building"
	build "$SLUICE_BUILD_DIR" >&2 || die "build failed"
fi

WORK=$(mktemp -d /tmp/sluice-bench-lab.XXXXXX)
install_traps
# shellcheck disable=SC2016 # expanded when the cleanup runs
add_cleanup 'rm -rf "$WORK"'
add_cleanup 'lab_down >&2 || true'
add_cleanup 'stop_sluice || true'

log "bringing the lab up"
lab_up >&2
start_sluice "$SLUICE_ROOT/conf/lab.conf" /run/sluice/lab.sock /run/sluice/bench-lab.log ||
	die "could not start sluice"

# cpu_list_expand LIST : "0-2,5" -> "0 1 2 5".
cpu_list_expand() {
	local part
	for part in ${1//,/ }; do
		if [[ $part == *-* ]]; then
			seq "${part%-*}" "${part#*-}"
		else
			echo "$part"
		fi
	done | tr '\n' ' '
}

# wrk and nginx go to the CPUs the worker lcores are not bound to, for both paths, so that
# neither preempts the polling worker (a preempted worker stalls every flow for a time slice).
worker_cpus=""
for t in /proc/"$SLUICE_PID"/task/*; do
	case $(cat "$t/comm") in rte-worker*) ;; *) continue ;; esac
	worker_cpus+=" $(cpu_list_expand "$(awk '/^Cpus_allowed_list:/ {print $2}' "$t/status")")"
done
host_cpus=""
for c in $(cpu_list_expand "$(cat /sys/devices/system/cpu/online)"); do
	[[ " $worker_cpus " == *" $c "* ]] || host_cpus+="${host_cpus:+,}$c"
done
worker_cpus=$(echo "$worker_cpus" | xargs | tr ' ' ',')
PIN=()
if [ -n "$host_cpus" ]; then
	PIN=(taskset -c "$host_cpus")
	for pid in $(ip netns pids "$BENCH_BACKEND_NS"); do
		taskset -a -p -c "$host_cpus" "$pid" >/dev/null
	done
else
	log "no CPU left beside the worker's ($worker_cpus): wrk and nginx not pinned"
fi

log "service $BENCH_SERVICE: $LAB_VIP:$BENCH_PORT -> $BENCH_BACKEND:$LAB_HTTP_PORT"
ctl service add "$BENCH_SERVICE" vip "$LAB_VIP" port "$BENCH_PORT" proto tcp >/dev/null
ctl backend add "$BENCH_SERVICE" "$BENCH_BACKEND:$LAB_HTTP_PORT" >/dev/null
nsnat=$(((BENCH_ROUNDS * BENCH_SECONDS * BENCH_RATE_CEIL + BENCH_PORTS_PER_ADDR - 1) /
	BENCH_PORTS_PER_ADDR))
log "adding $nsnat SNAT addresses 198.19.0.$BENCH_SNAT_BASE-$((BENCH_SNAT_BASE + nsnat - 1))"
for ((k = 0; k < nsnat; k++)); do
	ctl snat add "198.19.0.$((BENCH_SNAT_BASE + k))" dev int >/dev/null
done

# The direct path lives inside the lab's namespaces only, so lab_down removes it even after
# a kill -9 of this script; this cleanup removes it first in the normal case.
direct_down() {
	ip -n "$LAB_NS_CLIENT" link del "$DIRECT_DEV_C" 2>/dev/null || true
	local k
	for ((k = 0; k < BENCH_ROUNDS * BENCH_CLIENTS; k++)); do
		ip -n "$LAB_NS_CLIENT" rule del pref $((BENCH_TABLE_BASE + k)) 2>/dev/null || true
		ip -n "$LAB_NS_CLIENT" route flush table $((BENCH_TABLE_BASE + k)) 2>/dev/null || true
	done
}
add_cleanup direct_down

log "direct path: $LAB_NS_CLIENT $DIRECT_DEV_C <-> $BENCH_BACKEND_NS $DIRECT_DEV_B ($DIRECT_NET.0/24)"
ip link add name "$DIRECT_DEV_C" netns "$LAB_NS_CLIENT" type veth \
	peer name "$DIRECT_DEV_B" netns "$BENCH_BACKEND_NS"
# The same settings as the lab's veths (IPv6 off, offloads off: software checksums on both paths).
_lab_ns_dev_setup "$LAB_NS_CLIENT" "$DIRECT_DEV_C"
_lab_ns_dev_setup "$BENCH_BACKEND_NS" "$DIRECT_DEV_B"
nsx "$BENCH_BACKEND_NS" ip addr add "$DIRECT_GW/24" dev "$DIRECT_DEV_B"
nsx "$BENCH_BACKEND_NS" ip link set "$DIRECT_DEV_B" up

# client_uid R I, direct_src R I, through_src R I.
client_uid() { echo $((BENCH_UID_BASE + $1 * BENCH_CLIENTS + $2)); }
direct_src() { echo "$DIRECT_NET.$((10 * ($1 + 1) + $2))"; }
through_src() { echo "${LAB_CLIENTS[$(($1 * BENCH_CLIENTS + $2))]}"; }

for ((r = 0; r < BENCH_ROUNDS; r++)); do
	for ((i = 0; i < BENCH_CLIENTS; i++)); do
		nsx "$LAB_NS_CLIENT" ip addr add "$(direct_src $r $i)/24" dev "$DIRECT_DEV_C"
	done
done
nsx "$LAB_NS_CLIENT" ip link set "$DIRECT_DEV_C" up
for ((r = 0; r < BENCH_ROUNDS; r++)); do
	for ((i = 0; i < BENCH_CLIENTS; i++)); do
		k=$((r * BENCH_CLIENTS + i))
		tbl=$((BENCH_TABLE_BASE + k))
		nsx "$LAB_NS_CLIENT" ip route add "$BENCH_BACKEND/32" via "$DIRECT_GW" \
			dev "$DIRECT_DEV_C" src "$(direct_src $r $i)" table $tbl
		nsx "$LAB_NS_CLIENT" ip route add "$LAB_VIP/32" dev eth0 src "$(through_src $r $i)" table $tbl
		uid=$(client_uid $r $i)
		nsx "$LAB_NS_CLIENT" ip rule add uidrange "$uid-$uid" lookup $tbl pref $tbl
	done
done

# as_client R I CMD... : CMD in sl-client as client I of round R, on the host CPUs.
as_client() {
	local uid
	uid=$(client_uid "$1" "$2")
	shift 2
	ip netns exec "$LAB_NS_CLIENT" "${PIN[@]}" \
		setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}

path_url() {
	case $1 in
	direct) echo "http://$BENCH_BACKEND:$LAB_HTTP_PORT/" ;;
	through) echo "http://$LAB_VIP:$BENCH_PORT/" ;;
	esac
}

# Every client reaches b1 on both paths, from the source address it is meant to use.
log "checking both paths from every client"
for ((r = 0; r < BENCH_ROUNDS; r++)); do
	for ((i = 0; i < BENCH_CLIENTS; i++)); do
		uid=$(client_uid $r $i)
		src=$(nsx "$LAB_NS_CLIENT" ip -o route get "$BENCH_BACKEND" uid "$uid" |
			sed -n 's/.* src \([0-9.]*\).*/\1/p')
		[ "$src" = "$(direct_src $r $i)" ] || die "uid $uid routes to $BENCH_BACKEND from '$src'"
		src=$(nsx "$LAB_NS_CLIENT" ip -o route get "$LAB_VIP" uid "$uid" |
			sed -n 's/.* src \([0-9.]*\).*/\1/p')
		[ "$src" = "$(through_src $r $i)" ] || die "uid $uid routes to $LAB_VIP from '$src'"
		for p in direct through; do
			body=$(as_client $r $i curl -s -m 3 -H 'Connection: close' "$(path_url $p)") || true
			[ "$body" = b1 ] || die "$p path from $(${p}_src $r $i): got '$body', expected 'b1'"
		done
	done
done

# measure R PATH : one wrk per client of round R, in parallel, on PATH; outputs in
# $WORK/R-PATH-I.out. Fails if a wrk printed no rate.
measure() {
	local r=$1 path=$2 i pids=() rc=0 out
	log "round $((r + 1)) $path: $BENCH_CLIENTS x wrk -t$BENCH_THREADS -c$BENCH_CONNS" \
		"-d${BENCH_SECONDS}s $(path_url "$path")"
	for ((i = 0; i < BENCH_CLIENTS; i++)); do
		as_client "$r" "$i" timeout -k 5 $((BENCH_SECONDS + 20)) \
			wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"${BENCH_SECONDS}s" --timeout 5s \
			-H 'Connection: close' "$(path_url "$path")" >"$WORK/$r-$path-$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || rc=1
	done
	for ((i = 0; i < BENCH_CLIENTS; i++)); do
		out="$WORK/$r-$path-$i.out"
		if ! grep -q '^Requests/sec:' "$out"; then
			log "wrk from client $i of round $((r + 1)) ($path) printed no rate:"
			tail -n 5 "$out" >&2
			rc=1
		fi
	done
	return $rc
}

snapshot() {
	{
		ctl --json show stats
		echo
		ctl --json show interfaces
		echo
		ctl --json show snat
		echo
	} >"$1"
}

# Direct and through alternate, twice: the machine is small and may be shared, so each pair
# is measured close in time and the two pairs show how far the figures drift. Each round has
# its own client addresses, so no round meets a tuple an earlier one left in TIME_WAIT.
snapshot "$WORK/before.json"
for ((r = 0; r < BENCH_ROUNDS; r++)); do
	measure $r direct || die "the direct measurement failed"
	sluice_alive || die "sluice is no longer running (log: $SLUICE_LOG)"
	measure $r through || die "the measurement through Sluice failed"
done
sluice_alive || die "sluice is no longer running (log: $SLUICE_LOG)"
snapshot "$WORK/after.json"

"$PY" - "$WORK" "$json" "$BENCH_ROUNDS" "$BENCH_CLIENTS" "$BENCH_CONNS" "$BENCH_THREADS" \
	"$BENCH_SECONDS" "$host_cpus" "$worker_cpus" "$LOADAVG" "$nsnat" <<'EOF'
import json, re, sys

work, as_json = sys.argv[1], sys.argv[2] == "true"
rounds, clients, conns, threads, seconds = map(int, sys.argv[3:8])
host_cpus, worker_cpus, loadavg, nsnat = sys.argv[8], sys.argv[9], float(sys.argv[10]), int(sys.argv[11])


def wrk(r, path):
    res = {"requests_per_s": 0.0, "requests": 0,
           "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non_2xx": 0}
    for i in range(clients):
        text = open(f"{work}/{r}-{path}-{i}.out").read()
        res["requests_per_s"] += float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)[1])
        res["requests"] += int(re.search(r"(\d+) requests in", text)[1])
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if m:
            for k, v in zip(("connect", "read", "write", "timeout"), m.groups()):
                res["socket_errors"][k] += int(v)
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        res["non_2xx"] += int(m[1]) if m else 0
    res["requests_per_s"] = round(res["requests_per_s"], 1)
    return res


def load(name):
    return [json.loads(line) for line in open(f"{work}/{name}") if line.strip()]


(s0, if0, sn0), (s1, if1, sn1) = load("before.json"), load("after.json")
drops = {k: v - s0["drops"].get(k, 0) for k, v in s1["drops"].items() if v != s0["drops"].get(k, 0)}
port_drops = {}
for a, b in zip(if0, if1):
    for k in ("rx_dropped", "tx_dropped"):
        if b[k] != a[k]:
            port_drops[f'{b["name"]}.{k}'] = b[k] - a[k]
alloc_failures = sum(x["alloc_failures"] for x in sn1) - sum(x["alloc_failures"] for x in sn0)

out = {"seconds": seconds, "clients": clients, "connections_per_client": conns,
       "threads_per_client": threads, "host_cpus": host_cpus, "worker_cpus": worker_cpus,
       "loadavg_before": loadavg, "snat_addresses_added": nsnat, "rounds": []}
for r in range(rounds):
    d, t = wrk(r, "direct"), wrk(r, "through")
    ratio = t["requests_per_s"] / d["requests_per_s"] if d["requests_per_s"] else None
    out["rounds"].append({"direct": d, "through": t,
                          "ratio": round(ratio, 3) if ratio is not None else None})
sum_d = sum(x["direct"]["requests_per_s"] for x in out["rounds"])
sum_t = sum(x["through"]["requests_per_s"] for x in out["rounds"])
out["requests_per_s"] = {"direct": round(sum_d / rounds, 1), "through": round(sum_t / rounds, 1)}
out["ratio"] = round(sum_t / sum_d, 3) if sum_d else None
out["sluice"] = {"flows_created": s1["flows_created"] - s0["flows_created"], "drops": drops,
                 "port_drops": port_drops, "snat_alloc_failures": alloc_failures}

if as_json:
    print(json.dumps(out, indent=2))
    sys.exit(0)

print(f"lab figure: HTTP GET, 'Connection: close', {clients} client addresses x wrk "
      f"-t{threads} -c{conns}, {seconds} s per measurement, one backend (nginx, 1 worker)")
print(f"{'round':<6} {'path':<8} {'requests/s':>11} {'requests':>9} {'errors':>7} {'non-2xx':>8}")
for r, x in enumerate(out["rounds"], 1):
    for p in ("direct", "through"):
        y = x[p]
        print(f"{r:<6} {p:<8} {y['requests_per_s']:>11.1f} {y['requests']:>9} "
              f"{sum(y['socket_errors'].values()):>7} {y['non_2xx']:>8}")
fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
print("ratio through/direct: " + ", ".join(f"round {r} {fmt(x['ratio'])}"
                                           for r, x in enumerate(out["rounds"], 1))
      + f"; both rounds {fmt(out['ratio'])}")
for r, x in enumerate(out["rounds"], 1):
    for p in ("direct", "through"):
        e = {k: v for k, v in x[p]["socket_errors"].items() if v}
        if e:
            print(f"wrk socket errors, round {r} {p}: " + ", ".join(f"{k} {v}" for k, v in e.items()))
moved = [f"{k} +{v}" for k, v in {**drops, **port_drops}.items()]
if alloc_failures:
    moved.append(f"snat alloc_failures +{alloc_failures}")
print(f"sluice: {out['sluice']['flows_created']} flows created; counters that moved: "
      + (", ".join(moved) if moved else "none (no drops, no SNAT alloc failures)"))
print(f"note: kernel-bound: wrk, nginx and the clients' and backend's Linux stacks run on this "
      f"machine beside Sluice; not Sluice's own capacity (that is tools/bench)")
print(f"note: sluice's worker polls CPU {worker_cpus} without sleeping during both paths; "
      + (f"wrk and nginx are pinned to CPU {host_cpus} in both; " if host_cpus else
         "wrk and nginx are not pinned (no other CPU); ")
      + "the kernel work of the packets Sluice transmits runs on the worker's CPU")
print(f"note: load average before the run {loadavg}; other load shows as a spread between rounds")
EOF
