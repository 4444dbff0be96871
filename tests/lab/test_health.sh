#!/usr/bin/env bash
# Health checks sent by the dataplane, against real Linux backends.
#   A. `service set web check tcp interval 1 timeout 1 rise 2 fall 3`: every backend is
#      probed and up. b3's nginx is killed: its kernel answers the probes with RST, and b3
#      must be marked down within interval x fall (+ timeout); 200 new connections all
#      succeed and none reaches b3. nginx restarted: b3 is up again within
#      interval x rise (+ timeout) and gets new connections.
#   B. Probes of the backend of a live keep-alive connection are dropped on its host
#      (nftables, the probe source ports only): it goes down by timeouts, new connections avoid it,
#      and the live connection still gets its answers from it (checks take a backend out
#      of selection; they do not reset its flows).
#   C. `service set echo check icmp`: b1 stops answering pings and goes down; UDP requests
#      all get answered by the others. Pings answered again: b1 comes back.
# Measured times are printed; the bound allows 1 s for this script's own polling (each
# poll starts sluicectl and python; the timeout-driven downs take up to 4.16 s of the 4 s
# bound plus that, measured here). A late probe schedule would still exceed it: one more
# interval is 1 s.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

INTERVAL=1
TIMEOUT=1
RISE=2
FALL=3
SLACK=1.0
CFG_CHECK_PORTS=1000-1023 # the probes' source ports (dataplane/cfg.h)
SHORT_SRC=$(
	IFS=,
	echo "${LAB_CLIENTS[*]:0:8}"
)

# be_get SVC ADDR:PORT KEY : one key of a backend's entry in `show backends SVC --json`.
be_get() {
	json_get "$(ctl --json show backends "$1")" \
		"[b['$3'] for b in j if '%s:%s' % (b['addr'], b['port']) == '$2'][0]"
}

# wait_health SVC ADDR:PORT WANT LIMIT_S : prints the seconds until the backend's health is
# WANT (polled every 0.1 s), or "never" after LIMIT_S seconds.
wait_health() {
	local t0 now
	t0=$(date +%s.%N)
	for _ in $(seq 1 $(($4 * 10))); do
		if [ "$(be_get "$1" "$2" health)" = "$3" ]; then
			now=$(date +%s.%N)
			awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f", b - a }'
			return 0
		fi
		sleep 0.1
	done
	echo never
}

# both A WANT_A B WANT_B : A equals WANT_A and B equals WANT_B (numbers).
both() {
	[ "$1" -eq "$2" ] && [ "$3" -eq "$4" ]
}

# within T BOUND : T is a number not above BOUND.
within() {
	[ "$1" != never ] && awk -v t="$1" -v b="$2" 'BEGIN { exit !(t <= b) }'
}

nginx_stop() {
	local dir="$LAB_RUN/$1"
	kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
	for _ in $(seq 1 50); do
		[ -e "$dir/nginx.pid" ] || return 0
		sleep 0.1
	done
}

nginx_start() {
	local name=$1 ns=$2 dir="$LAB_RUN/$1"
	[ -e "$dir/nginx.pid" ] && pid_running "$(cat "$dir/nginx.pid")" && return 0
	nsx "$ns" nginx -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

check_all_up() {
	local svc=$1 n
	for _ in $(seq 1 50); do
		n=$(json_get "$(ctl --json show backends "$svc")" \
			"sum(1 for b in j if b['health'] == 'up' and b['checks_ok'] > 0)")
		[ "$n" -eq 3 ] && break
		sleep 0.1
	done
	check "$svc: all 3 backends probed and up ($n)" [ "$n" -eq 3 ]
}

sent0=$(stat_get checks_sent)
unexpected0=$(json_get "$(drops_json)" 'j["check_unexpected"]')

# ---- A: a stopped server, refused probes ----------------------------------------------
ctl_must service set web check tcp interval $INTERVAL timeout $TIMEOUT rise $RISE fall $FALL
add_cleanup "ctl service set web check off >/dev/null 2>&1 || log 'could not restore: service set web check off'"
check_all_up web

target=198.19.0.13:$LAB_HTTP_PORT
add_cleanup "nginx_start b3 ${LAB_NS_BACKENDS[2]} || true"
nginx_stop b3
t=$(wait_health web "$target" down 15)
bound=$(awk -v i=$INTERVAL -v f=$FALL -v o=$TIMEOUT -v s=$SLACK 'BEGIN { print i * f + o + s }')
check "A: b3 stopped: marked down after ${t} s (bound interval x fall + timeout = $bound s)" \
	within "$t" "$bound"
check "A: show backends says why: last_check $(be_get web "$target" last_check)" \
	[ "$(be_get web "$target" last_check)" = refused ]
check "A: b3's admin state stays up (health is not state)" [ "$(be_get web "$target" state)" = up ]
flows0=$(backend_flows web "$target")
res=$(short_conns "$SHORT_SRC" 200)
check "A: $(json_get "$res" 'j["ok"]')/200 new connections answered while b3 is down" \
	[ "$(json_get "$res" 'j["ok"]')" -eq 200 ]
check "A: none reached b3 ($(json_get "$res" "j['bodies'].get('b3', 0)"), total_flows +$(($(backend_flows web "$target") - flows0)))" \
	both "$(json_get "$res" "j['bodies'].get('b3', 0)")" 0 "$(backend_flows web "$target")" "$flows0"

nginx_start b3 "${LAB_NS_BACKENDS[2]}"
t=$(wait_health web "$target" up 15)
bound=$(awk -v i=$INTERVAL -v r=$RISE -v o=$TIMEOUT -v s=$SLACK 'BEGIN { print i * r + o + s }')
check "A: b3 restarted: up again after ${t} s (bound interval x rise + timeout = $bound s)" \
	within "$t" "$bound"
res=$(short_conns "$SHORT_SRC" 200)
hit=$(json_get "$res" "j['bodies'].get('b3', 0)")
check "A: after the return, $(json_get "$res" 'j["ok"]')/200 answered, b3 got $hit (want > 0)" \
	both "$(json_get "$res" 'j["ok"]')" 200 "$((hit > 0))" 1

# ---- B: probes lost, a live connection continues -------------------------------------
keep_open "${LAB_CLIENTS[@]:8:4}"
first=$KEEP_FIRST
tbody=$(json_get "$first" 'j[0]["body"]')
idx=$((${tbody#b} - 1))
ns=${LAB_NS_BACKENDS[$idx]}
target=${LAB_BACKENDS[$idx]}:$LAB_HTTP_PORT
# Drop what arrives from the probe source ports (nftables, in the backend's namespace only).
add_cleanup "nsx $ns nft delete table inet sluice_hc_test 2>/dev/null || true"
nsx "$ns" nft add table inet sluice_hc_test
nsx "$ns" nft add chain inet sluice_hc_test in '{ type filter hook input priority 0; }'
nsx "$ns" nft add rule inet sluice_hc_test in tcp sport "$CFG_CHECK_PORTS" drop
t=$(wait_health web "$target" down 15)
bound=$(awk -v i=$INTERVAL -v f=$FALL -v o=$TIMEOUT -v s=$SLACK 'BEGIN { print i * f + o + s }')
check "B: $tbody's probes dropped: down after ${t} s (bound $bound s), last_check $(be_get web "$target" last_check)" \
	within "$t" "$bound"
res=$(short_conns "$SHORT_SRC" 100)
check "B: $(json_get "$res" 'j["ok"]')/100 new connections answered, $(json_get "$res" "j['bodies'].get('$tbody', 0)") reached $tbody (want 0)" \
	both "$(json_get "$res" 'j["ok"]')" 100 "$(json_get "$res" "j['bodies'].get('$tbody', 0)")" 0
keep_second
second=$KEEP_SECOND
same=$(json_get "{\"a\": $first, \"b\": $second}" \
	'sum(1 for x, y in zip(j["a"], j["b"]) if x["body"] == y["body"])')
check "B: every kept connection answered again by the same backend ($same/4: $second)" [ "$same" -eq 4 ]
nsx "$ns" nft delete table inet sluice_hc_test
t=$(wait_health web "$target" up 15)
check "B: probes pass again: $tbody up after ${t} s" [ "$t" != never ]

# ---- C: ICMP echo for a UDP service ----------------------------------------------------
ctl_must service set echo check icmp interval $INTERVAL timeout $TIMEOUT rise $RISE fall $FALL
add_cleanup "ctl service set echo check off >/dev/null 2>&1 || log 'could not restore: service set echo check off'"
check_all_up echo
target=198.19.0.11:$LAB_UDP_PORT
add_cleanup "nsx ${LAB_NS_BACKENDS[0]} sysctl -qw net.ipv4.icmp_echo_ignore_all=0 || true"
nsx "${LAB_NS_BACKENDS[0]}" sysctl -qw net.ipv4.icmp_echo_ignore_all=1
t=$(wait_health echo "$target" down 15)
bound=$(awk -v i=$INTERVAL -v f=$FALL -v o=$TIMEOUT -v s=$SLACK 'BEGIN { print i * f + o + s }')
check "C: b1 ignores pings: down after ${t} s (bound $bound s)" within "$t" "$bound"
res=$(labclient udp --vip "$LAB_VIP" --port "$LAB_ECHO_PORT" --src "$SHORT_SRC" --count 3 --timeout 2) ||
	res='{"ok":0,"fail":-1,"bodies":{},"errors":["labclient failed"]}'
check "C: $(json_get "$res" 'j["ok"]')/24 UDP requests answered, $(json_get "$res" "j['bodies'].get('b1', 0)") by b1 (want 0)" \
	both "$(json_get "$res" 'j["ok"]')" 24 "$(json_get "$res" "j['bodies'].get('b1', 0)")" 0
nsx "${LAB_NS_BACKENDS[0]}" sysctl -qw net.ipv4.icmp_echo_ignore_all=0
t=$(wait_health echo "$target" up 15)
check "C: pings answered again: b1 up after ${t} s" [ "$t" != never ]

sent=$(($(stat_get checks_sent) - sent0))
unexpected=$(($(json_get "$(drops_json)" 'j["check_unexpected"]') - unexpected0))
check "probes sent: $sent, check_replies $(stat_get check_replies), check_unexpected +$unexpected (want 0)" \
	both "$((sent > 0))" 1 "$unexpected" 0

lab_test_end
