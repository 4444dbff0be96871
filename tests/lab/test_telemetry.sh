#!/usr/bin/env bash
# DPDK telemetry, read the way an operator reads it (dpdk-telemetry.py on the daemon's EAL
# file prefix), against sluicectl:
#   - the telemetry socket is there, under the lab's --file-prefix;
#   - after HTTP and UDP traffic through the VIP has stopped, /sluice/stats, /sluice/drops,
#     /sluice/services, /sluice/backends and /sluice/snat each answer what
#     `sluicectl --json show stats|drops|services|backends|snat` prints (lists turned back into
#     arrays): read between two shows, it equals them where they agree and lies between them
#     where a counter or a clock moved meanwhile; the flows the traffic made are in
#     flows_created;
#   - the same after `clear stats` (flows_created starts again from 0 on both);
#   - a service with 300 backends: /sluice/backends is cut to fit DPDK's 16 KB, says so, and
#     stays valid JSON; `/sluice/backends,web` still answers in full.
# `clear stats` cannot be undone: the other tests only look at counter deltas.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

# The daemon's EAL file prefix, from the arguments start_sluice gives it.
TEL_PREFIX=
for ((i = 0; i < ${#SLUICE_EAL_ARGS[@]} - 1; i++)); do
	if [ "${SLUICE_EAL_ARGS[$i]}" = --file-prefix ]; then
		TEL_PREFIX=${SLUICE_EAL_ARGS[$((i + 1))]}
	fi
done
[ -n "$TEL_PREFIX" ] || die "no --file-prefix in SLUICE_EAL_ARGS"
TEL_SOCK=/var/run/dpdk/$TEL_PREFIX/dpdk_telemetry.v2

# tel CMD[,PARAM] : the reply to one command, the whole document {"CMD": value}, on one line.
# Non-interactive dpdk-telemetry.py reads commands from stdin and prints each reply as one
# line of JSON; it exits 0 even when it cannot connect, so the reply is checked to be JSON.
tel() {
	local out
	out=$(echo "$1" | timeout 10 dpdk-telemetry.py -f "$TEL_PREFIX" 2>&1) || {
		echo "dpdk-telemetry.py failed: $out" >&2
		return 1
	}
	if ! json_get "$out" 'len(j)' >/dev/null 2>&1; then
		echo "not a JSON reply: $out" >&2
		return 1
	fi
	echo "$out"
}

# same TELREPLY SHOW1 SHOW2 : the telemetry reply, read between two shows, holds what they
# printed. Strings, flags and the shape must equal both; every number must lie between its
# two readings, since counters and the seconds of health_since_s may move meanwhile (there
# is no traffic then, so nothing moves back and forth). A list reply
# {count, shown, truncated, WHAT: {"0": .., "1": ..}} becomes the array again (and must be
# complete); stats' workers too. JSON's true/false equal telemetry's 1/0 in Python.
same() {
	"$PY" - "$1" "$2" "$3" <<'PY'
import json, sys
tel, a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
(cmd, val), = tel.items()
def array(d):
    return [d[str(i)] for i in range(len(d))]
if isinstance(val, dict) and len(val) == 4 and {"count", "shown", "truncated"} <= set(val):
    (what,) = set(val) - {"count", "shown", "truncated"}
    if not (val["truncated"] == 0 and val["count"] == val["shown"] == len(val[what])):
        sys.exit("%s: a cut list: %s" % (cmd, {k: v for k, v in val.items() if k != what}))
    val = array(val[what])
elif isinstance(val, dict) and "workers" in val:
    val["workers"] = array(val["workers"])
def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)
def within(t, a, b, path):
    if number(t) and number(a) and number(b):
        if min(a, b) <= t <= max(a, b):
            return
        sys.exit("%s%s: telemetry %s, the shows %s and %s" % (cmd, path, t, a, b))
    if isinstance(t, dict) and isinstance(a, dict) and isinstance(b, dict):
        if not set(t) == set(a) == set(b):
            sys.exit("%s%s: keys differ: %s" % (cmd, path, sorted(set(t) ^ set(a) | set(a) ^ set(b))))
        for k in t:
            within(t[k], a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(t, list) and isinstance(a, list) and isinstance(b, list):
        if not len(t) == len(a) == len(b):
            sys.exit("%s%s: %d entries, the shows %d and %d" % (cmd, path, len(t), len(a), len(b)))
        for i, (x, y, z) in enumerate(zip(t, a, b)):
            within(x, y, z, "%s[%d]" % (path, i))
    elif not t == a == b:
        sys.exit("%s%s: telemetry %r, the shows %r and %r" % (cmd, path, t, a, b))
within(val, a, b, "")
PY
}

# agree TELCMD SHOW... : TELCMD answers what `sluicectl --json show SHOW...` prints, read
# between two of them.
agree() {
	local cmd=$1 a b t
	shift
	a=$(ctl --json show "$@") || return 1
	t=$(tel "$cmd") || return 1
	b=$(ctl --json show "$@") || return 1
	same "$t" "$a" "$b"
}

# tel_get CMD PYEXPR : PYEXPR with `v` bound to CMD's value.
tel_get() {
	local out
	out=$(tel "$1") || return 1
	json_get "$out" "(lambda v: $2)(j['${1%%,*}'])"
}

for _ in $(seq 1 50); do
	[ -S "$TEL_SOCK" ] && break
	sleep 0.1
done
check "telemetry socket $TEL_SOCK exists" [ -S "$TEL_SOCK" ]
cmds=$(tel /) || cmds='{"/": []}'
registered() {
	json_get "$cmds" "'$1' in j['/'] or exit(1)" >/dev/null
}
for c in /sluice/stats /sluice/drops /sluice/services /sluice/backends /sluice/snat; do
	check "$c is registered" registered "$c"
done

created0=$(tel_get /sluice/stats 'v["flows_created"]') || created0=-1

# Traffic through the VIP, then stopped: 20 HTTP connections and 8 UDP exchanges.
res=$(short_conns "${LAB_CLIENTS[0]},${LAB_CLIENTS[1]}" 20)
http_ok=$(json_get "$res" 'j["ok"]')
check "http: $http_ok/20 connections through the VIP" [ "$http_ok" -eq 20 ]
src=$(
	IFS=,
	echo "${LAB_CLIENTS[*]:2:8}"
)
res=$(labclient udp --vip "$LAB_VIP" --port "$LAB_ECHO_PORT" --src "$src" --count 1 --timeout 2) ||
	res='{"ok":0}'
udp_ok=$(json_get "$res" 'j["ok"]')
check "udp: $udp_ok/8 exchanges through the VIP" [ "$udp_ok" -eq 8 ]

created=$(tel_get /sluice/stats 'v["flows_created"]') || created=-1
[ "$created0" -ge 0 ] || created=-1
check "/sluice/stats: flows_created rose by at least 28 ($created0 -> $created)" \
	[ "$created" -ge $((created0 + 28)) ]
check "/sluice/stats is show stats" agree /sluice/stats stats
check "/sluice/drops is show drops" agree /sluice/drops drops
check "/sluice/services is show services" agree /sluice/services services
check "/sluice/backends is show backends" agree /sluice/backends backends
check "/sluice/snat is show snat" agree /sluice/snat snat
check "/sluice/backends,echo is show backends echo" agree /sluice/backends,echo backends echo
n=$(tel_get /sluice/backends 'sum(b["total_flows"] for b in v["backends"].values())') || n=-1
check "/sluice/backends: the backends' total_flows add up to at least 28 ($n)" [ "$n" -ge 28 ]

ctl clear stats
created=$(tel_get /sluice/stats 'v["flows_created"]') || created=-1
check "after clear stats: /sluice/stats flows_created is 0 ($created)" [ "$created" -eq 0 ]
res=$(short_conns "${LAB_CLIENTS[0]}" 5)
http_ok=$(json_get "$res" 'j["ok"]')
check "after clear stats: /sluice/stats is show stats" agree /sluice/stats stats
check "after clear stats: /sluice/backends is show backends" agree /sluice/backends backends
created=$(tel_get /sluice/stats 'v["flows_created"]') || created=-1
[ "$http_ok" -eq 5 ] || created="$created (only $http_ok connected)"
check "after clear stats: flows_created $created counts the 5 new connections" \
	[ "$created" = 5 ]

# 300 backends on a service of their own (nothing is sent to them): a reply cut to fit.
BIG=teltrunc
{
	echo "service add $BIG vip 198.18.0.101 port 8080 proto tcp sched rr"
	for i in $(seq 0 299); do
		echo "backend add $BIG 198.19.$((10 + i / 200)).$((1 + i % 200)):8080"
	done
} >"$TEST_TMP/big.conf"
add_cleanup "ctl service del $BIG >/dev/null 2>&1 || log 'could not delete service $BIG'"
ctl_must -f "$TEST_TMP/big.conf"
nbe=$(json_get "$(ctl --json show backends)" 'len(j)')
big=$(tel /sluice/backends) || big='{"/sluice/backends": null}'
# The reply as DPDK wrote it: compact JSON, keys in the same order.
size=$(json_get "$big" 'len(json.dumps(j, separators=(",", ":")))' 2>/dev/null || echo 99999)
count=$(json_get "$big" 'j["/sluice/backends"]["count"]' 2>/dev/null || echo -1)
shown=$(json_get "$big" 'j["/sluice/backends"]["shown"]' 2>/dev/null || echo -1)
trunc=$(json_get "$big" 'j["/sluice/backends"]["truncated"]' 2>/dev/null || echo -1)
keys=$(json_get "$big" 'len(j["/sluice/backends"]["backends"])' 2>/dev/null || echo -1)
cut=0
[ "$trunc" -eq 1 ] && [ "$shown" -eq "$keys" ] && [ "$shown" -ge 50 ] && [ "$shown" -lt "$nbe" ] &&
	cut=1
check "300 more backends: count $count is show backends' $nbe" [ "$count" -eq "$nbe" ]
check "300 more backends: truncated $trunc, $shown shown ($keys entries), 50 <= shown < $nbe" \
	[ "$cut" -eq 1 ]
check "300 more backends: the reply is $size bytes, under DPDK's 16384" [ "$size" -lt 16384 ]
check "300 more backends: /sluice/backends,web is show backends web" \
	agree /sluice/backends,web backends web

lab_test_end
