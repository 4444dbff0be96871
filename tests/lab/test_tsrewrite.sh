#!/usr/bin/env bash
# Per-flow TCP timestamp rewriting, end to end with real Linux TCP stacks.
#
# A service "tsrw" (VIP 198.18.0.102:80, one backend b1 198.19.0.11:8080) with
# `tw-quarantine 0`: the balancer hands a tuple out again as soon as its closed flow has left
# the table (10 s after the close), while b1, which closes first (nginx, HTTP/1.0 via
# labclient http-paced), still holds it in TIME_WAIT for 60 s. Clients on 8 addresses with
# the kernel's default timestamps (Linux >= 6.18.y: a random TSval offset per 4-tuple), so
# behind the SNAT the TSvals b1 sees on one tuple jump back and forth unless the balancer
# rewrites them. Each run gets one fresh SNAT address with ports 40000-40199 (200 tuples):
# 300 connections at 12/s keep about 120 tuples in lingering flows, leave the rest free, and
# must reuse at least 100 tuples that b1 holds in TIME_WAIT. That reuse is measured, not
# assumed: after a run (shorter than 60 s) b1 holds one TIME_WAIT socket per distinct tuple,
# so connections - TIME_WAIT sockets connections were opened on a tuple in TIME_WAIT.
#   B. rewriting off for tsrw (`service set tsrw ts-rewrite off`): b1's TcpExtPAWSTimewait
#      plus the clients' TcpExtTCPSynRetrans must rise (shows the checks of A can fail);
#      ts_flows_rewritten does not move.
#   A. rewriting on for tsrw: all 300 connections succeed, b1's TcpExtPAWSTimewait and
#      TcpExtPAWSEstab and the clients' TcpExtTCPSynRetrans do not move, and
#      ts_flows_rewritten (show stats) grows by at least 300.
#   Bulk. a second service "tsbulk" (198.18.0.102:8081 -> b1 198.19.0.11:8081, an nginx this
#      test starts in sl-b1: the lab's own nginx answers every path with its name) serves a
#      64 MB random file; rewriting on, its own SNAT address. One download with curl, size
#      and SHA-256 verified. While it runs, `show flows` must show the flow with a non-null
#      ts_offset (a flow that already ended and lingers also shows it, if the download was
#      too quick to catch). The download's SYN and SYN-ACK, captured on both sides
#      (tests/lab/synts.py), must show TSval' - TSval = ts_offset on the SYN, the client's own
#      TSval back as the SYN-ACK's TSecr, and b1's TSval unchanged.
#   Over the whole test: the clients' TcpExtPAWSActive (a SYN-ACK whose TSecr the client did
#   not send) stays 0, their TcpExtPAWSEstab stays 0 over B and A, b1's TcpExtPAWSEstab stays
#   0 from A on, and ts_malformed does not move. The clients' TcpExtPAWSEstab during the bulk
#   download is only logged: the lab's kernel path from b1 to the balancer reorders b1's
#   segments (veth queues are per CPU, and the worker's busy CPU serves its queue late; a
#   capture measured b1's segments 35 times out of order, by up to 62 ms, at the balancer's
#   port, and the client saw exactly those 35), and an original that arrives after b1's
#   retransmission of it carries an older TSval than the client has recorded: a duplicate
#   the client drops as PAWSEstab. One clean run counted 45 over the whole test; the figure
#   per phase is logged to tell where such counts come from. Sluice does not touch b1's
#   TSval (checked on the SYN-ACK).
# SNAT addresses: B 198.19.0.8, A .9, bulk .10 (no other test uses them). While the test
# runs, "web" and "echo" may use only the lab's own pool (198.19.0.2, .3). At the end, also
# on failure: tsrw and tsbulk are deleted, then the addresses (the test waits up to 15 s for
# them to finish draining), web and echo go back to `snat all`, the extra nginx is stopped
# and its docroot removed. No global setting is changed.
#
# TS_COUNT, TS_RATE (default 300, 12) change runs A and B; with the defaults the test takes
# about 65 s. Reuse needs COUNT > 200 and RATE * 10 s well below 200.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

TS_SVC=tsrw
TS_VIP=198.18.0.102
TS_PORT=80
TS_BACKEND="${LAB_BACKENDS[0]}:$LAB_HTTP_PORT"
TS_NS_BACKEND=${LAB_NS_BACKENDS[0]}
TS_PORTS=40000-40199
NPORTS=200
BULK_SVC=tsbulk
BULK_PORT=8081
BULK_BACKEND="${LAB_BACKENDS[0]}:$BULK_PORT"
BULK_MB=64
BULK_DIR="$LAB_RUN/b1-tsbulk"
SYNTS="$LAB_TEST_DIR/synts.py"
ADDR_B=198.19.0.8
ADDR_A=198.19.0.9
ADDR_BULK=198.19.0.10
COUNT=${TS_COUNT:-300}
RATE=${TS_RATE:-12}
# Connections that must have found their tuple in b1's TIME_WAIT (pigeonhole: b1 holds at
# most NPORTS tuples of a run's address); at least 1, so a run too small to reuse fails.
WANT_REUSE=$((COUNT - NPORTS > 0 ? COUNT - NPORTS : 1))
# diag TITLE : what a reader needs when a check failed.
diag() {
	{
		echo "client: ${R_JSON:-}"
		echo "deltas: TcpExtTCPSynRetrans(client)=${R_RETRANS:-} TcpExtPAWSTimewait(b1)=${R_PAWS:-}" \
			"ts_flows_rewritten=${R_REWR:-} b1 TIME-WAIT sockets of ${R_ADDR:-}=${R_TW:-}"
		echo "client now: $(nstat_now "$LAB_NS_CLIENT" TcpExtTCPSynRetrans TcpExtPAWSActive TcpExtPAWSEstab)"
		echo "b1 now: $(nstat_now "$TS_NS_BACKEND" TcpExtPAWSTimewait TcpExtPAWSEstab TcpExtTW)"
		show_now snat
		show_now services
		show_now settings
		echo "show stats: $(ctl --json show stats 2>&1 | cut -c 1-400)"
		echo "show flows (first 5): $(ctl --json show flows limit 5 2>&1)"
	} | diag_out "$1"
}

# ts_run LABEL ADDR COUNT RATE : paced_run to the tsrw VIP via ADDR; also sets R_REWR (the
# ts_flows_rewritten delta).
ts_run() {
	local rewr0
	rewr0=$(stat_get ts_flows_rewritten)
	paced_run "$1" "$TS_SVC" "$TS_VIP" "$TS_PORT" "$TS_NS_BACKEND" "$2" "$3" "$4"
	R_REWR=$(($(stat_get ts_flows_rewritten) - rewr0))
	log "run $1: ts_flows_rewritten=+$R_REWR"
}

# bulk_nginx_start : an nginx of this test in b1's namespace on BULK_BACKEND, serving
# BULK_DIR/www (the lab's own nginx answers every path with its name).
BULK_NGINX_PID=
bulk_nginx_start() {
	mkdir -p "$BULK_DIR/www" "$BULK_DIR/tmp"
	chmod 755 "$BULK_DIR" "$BULK_DIR/www"
	cat >"$BULK_DIR/nginx.conf" <<EOF
# Written by tests/lab/test_tsrewrite.sh for its bulk download; removed at its end.
worker_processes 1;
daemon on;
pid $BULK_DIR/nginx.pid;
error_log $BULK_DIR/error.log warn;
events {
	worker_connections 64;
}
http {
	access_log $BULK_DIR/access.log;
	client_body_temp_path $BULK_DIR/tmp/body;
	proxy_temp_path $BULK_DIR/tmp/proxy;
	fastcgi_temp_path $BULK_DIR/tmp/fastcgi;
	uwsgi_temp_path $BULK_DIR/tmp/uwsgi;
	scgi_temp_path $BULK_DIR/tmp/scgi;
	sendfile on;
	keepalive_timeout 0;
	server {
		listen $BULK_BACKEND;
		root $BULK_DIR/www;
	}
}
EOF
	nsx "$TS_NS_BACKEND" nginx -q -p "$BULK_DIR" -e "$BULK_DIR/error.log" -c "$BULK_DIR/nginx.conf"
	for _ in $(seq 1 50); do
		[ -s "$BULK_DIR/nginx.pid" ] && nsx "$TS_NS_BACKEND" ss -Hltn "src $BULK_BACKEND" | grep -q . && break
		sleep 0.1
	done
	BULK_NGINX_PID=$(cat "$BULK_DIR/nginx.pid" 2>/dev/null || true)
	[ -n "$BULK_NGINX_PID" ] && nsx "$TS_NS_BACKEND" ss -Hltn "src $BULK_BACKEND" | grep -q .
}
bulk_nginx_stop() {
	local pid=${BULK_NGINX_PID:-}
	[ -n "$pid" ] || pid=$(cat "$BULK_DIR/nginx.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 1 30); do
			pid_running "$pid" || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$BULK_DIR"
}

# ---- set-up. Cleanups run last-in first-out.
own_snat_begin
add_cleanup bulk_nginx_stop
addr_add "$ADDR_B" "$TS_PORTS"
svc_add "$TS_SVC" vip "$TS_VIP" port "$TS_PORT" proto tcp sched rr snat "$ADDR_B"
ctl_must backend add "$TS_SVC" "$TS_BACKEND"
ctl_must service set "$TS_SVC" tw-quarantine 0
ctl_must service set "$TS_SVC" tw-reuse off

closed=$(json_get "$(ctl --json show settings)" 'j["tcp"]["timeout"]["closed"]')
[ "$closed" -ge 5 ] || log "set tcp timeout closed is $closed s (expected 10): tuples come back sooner"

# The test is about timestamps: the clients and b1 must use them (the kernel's default).
ts_client=$(nsx "$LAB_NS_CLIENT" sysctl -n net.ipv4.tcp_timestamps)
ts_b1=$(nsx "$TS_NS_BACKEND" sysctl -n net.ipv4.tcp_timestamps)
ts_on() { [ "$ts_client" = 1 ] && [ "$ts_b1" = 1 ]; }
check "net.ipv4.tcp_timestamps is $ts_client in $LAB_NS_CLIENT and $ts_b1 in $TS_NS_BACKEND (want 1 and 1)" \
	ts_on
paws_active0=$(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSActive)
paws_estab_c0=$(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSEstab)
malformed0=$(stat_get ts_malformed)

# ---- B: rewriting off, tuples reused inside b1's TIME_WAIT
fails0=$TEST_FAILS
ctl_must service set "$TS_SVC" ts-rewrite off
ts_run B "$ADDR_B" "$COUNT" "$RATE"
if [ "$R_OK" -eq 0 ]; then
	fail "B: no connection to $TS_VIP:$TS_PORT succeeded"
	diag "run B"
	die "the tsrw service does not work at all; not running the other runs"
fi
reused_b=$((COUNT - R_TW))
check "B (rewriting off): $reused_b of $COUNT connections opened on a tuple b1 held in TIME_WAIT (want >= $WANT_REUSE)" \
	[ "$reused_b" -ge "$WANT_REUSE" ]
check "B (rewriting off): b1's PAWS rejections $R_PAWS + clients' SYN retransmissions $R_RETRANS > 0" \
	[ $((R_PAWS + R_RETRANS)) -gt 0 ]
check "B (rewriting off): ts_flows_rewritten moved by $R_REWR (want 0)" [ "$R_REWR" -eq 0 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag "run B"
paws_estab_c_b=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSEstab) - paws_estab_c0))

# ---- A: rewriting on, the same traffic
fails0=$TEST_FAILS
addr_add "$ADDR_A" "$TS_PORTS"
ctl_must service set "$TS_SVC" ts-rewrite on
estab_b0=$(nstat_get "$TS_NS_BACKEND" TcpExtPAWSEstab)
paws_estab_b0=$estab_b0
ts_run A "$ADDR_A" "$COUNT" "$RATE"
estab_b=$(($(nstat_get "$TS_NS_BACKEND" TcpExtPAWSEstab) - estab_b0))
reused_a=$((COUNT - R_TW))
check "A: $R_OK/$COUNT connections succeeded ($R_FAIL failed)" [ "$R_OK" -eq "$COUNT" ]
check "A: $reused_a of $COUNT connections opened on a tuple b1 held in TIME_WAIT (want >= $WANT_REUSE)" \
	[ "$reused_a" -ge "$WANT_REUSE" ]
check "A: b1's TcpExtPAWSTimewait moved by $R_PAWS (want 0)" [ "$R_PAWS" -eq 0 ]
check "A: clients' TcpExtTCPSynRetrans moved by $R_RETRANS (want 0)" [ "$R_RETRANS" -eq 0 ]
check "A: b1's TcpExtPAWSEstab moved by $estab_b (want 0)" [ "$estab_b" -eq 0 ]
check "A: ts_flows_rewritten grew by $R_REWR (want >= $COUNT)" [ "$R_REWR" -ge "$COUNT" ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag "run A"
paws_estab_c_a=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSEstab) - paws_estab_c0))

# ---- Bulk: one large download with rewriting on
fails0=$TEST_FAILS
if ! bulk_nginx_start; then
	fail "bulk: could not start nginx on $BULK_BACKEND in $TS_NS_BACKEND: $(tail -n 3 "$BULK_DIR/error.log" 2>/dev/null | tr '\n' ' ')"
	lab_test_end
	exit
fi
head -c $((BULK_MB << 20)) /dev/urandom >"$BULK_DIR/www/bulk.bin"
chmod 644 "$BULK_DIR/www/bulk.bin"
want_sum=$(sha256sum "$BULK_DIR/www/bulk.bin" | cut -d' ' -f1)
addr_add "$ADDR_BULK" 40000-40099
svc_add "$BULK_SVC" vip "$TS_VIP" port "$BULK_PORT" proto tcp sched rr snat "$ADDR_BULK"
ctl_must backend add "$BULK_SVC" "$BULK_BACKEND"
ctl_must service set "$BULK_SVC" ts-rewrite on
# The download's SYN and SYN-ACK, on the client's and on b1's side of the balancer.
cap_pids=()
for side in client b1; do
	ns=$LAB_NS_CLIENT
	[ "$side" = b1 ] && ns=$TS_NS_BACKEND
	ip netns exec "$ns" timeout 70 "$PY" "$SYNTS" --iface eth0 --port "$BULK_PORT" \
		--ready "$TEST_TMP/syn-$side.ready" --timeout 60 >"$TEST_TMP/syn-$side.json" \
		2>"$TEST_TMP/syn-$side.err" &
	cap_pids+=($!)
	add_cleanup "kill $! 2>/dev/null || true"
done
for _ in $(seq 1 100); do
	[ -e "$TEST_TMP/syn-client.ready" ] && [ -e "$TEST_TMP/syn-b1.ready" ] && break
	sleep 0.1
done
rewr0=$(stat_get ts_flows_rewritten)
log "bulk: downloading $BULK_MB MB from $TS_VIP:$BULK_PORT via SNAT $ADDR_BULK"
t0=$SECONDS
ip netns exec "$LAB_NS_CLIENT" timeout 90 curl -sS --interface "${LAB_CLIENTS[0]}" \
	--connect-timeout 5 --max-time 80 -o "$TEST_TMP/bulk.bin" \
	-w '%{http_code} %{size_download} %{speed_download}\n' \
	"http://$TS_VIP:$BULK_PORT/bulk.bin" >"$TEST_TMP/curl.out" 2>"$TEST_TMP/curl.err" &
curl_pid=$!
add_cleanup "kill $curl_pid 2>/dev/null || true"
# Catch the flow while it is established (bounded: 80 s of polling at most).
live=
for _ in $(seq 1 800); do
	flows=$(ctl --json show flows service "$BULK_SVC" limit 10 2>/dev/null || echo '[]')
	live=$(json_get "$flows" \
		"next((json.dumps(f) for f in j if f['state'] == 'established' and f['ts_offset'] is not None), '')")
	[ -n "$live" ] && break
	pid_running "$curl_pid" || break
	sleep 0.1
done
rc=0
wait "$curl_pid" || rc=$?
secs=$((SECONDS - t0))
read -r code got_size speed <"$TEST_TMP/curl.out" || true
got_sum=$(sha256sum "$TEST_TMP/bulk.bin" 2>/dev/null | cut -d' ' -f1 || true)
rm -f "$TEST_TMP/bulk.bin" "$BULK_DIR/www/bulk.bin"
log "bulk: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} bytes in ~${secs}s (${speed:-?} B/s)"
bulk_ok() { [ "$rc" -eq 0 ] && [ "${code:-}" = 200 ] && [ "${got_size:-}" = $((BULK_MB << 20)) ]; }
check "bulk: download of $BULK_MB MB: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} bytes $(head -c 200 "$TEST_TMP/curl.err")" \
	bulk_ok
check "bulk: SHA-256 of the download matches the file" [ "$got_sum" = "$want_sum" ]
rewr=$(($(stat_get ts_flows_rewritten) - rewr0))
check "bulk: ts_flows_rewritten grew by $rewr (want >= 1)" [ "$rewr" -ge 1 ]
if [ -z "$live" ]; then
	# Too fast to catch while established: closed flows linger, with their offset.
	flows=$(ctl --json show flows service "$BULK_SVC" limit 10 2>/dev/null || echo '[]')
	live=$(json_get "$flows" "next((json.dumps(f) for f in j if f['ts_offset'] is not None), '')")
	log "bulk: no established flow caught; a lingering one: ${live:-none}"
fi
check "bulk: show flows shows the download's flow with a ts_offset: ${live:-none}" [ -n "$live" ]
# The SYN's TSval on both sides, and the SYN-ACK's TSecr (a capture ends once it has both;
# bounded by its --timeout anyway).
for p in "${cap_pids[@]}"; do
	for _ in $(seq 1 50); do
		pid_running "$p" || break
		sleep 0.1
	done
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
done
cs=$(cat "$TEST_TMP/syn-client.json" 2>/dev/null || true)
bs=$(cat "$TEST_TMP/syn-b1.json" 2>/dev/null || true)
log "bulk: SYN and SYN-ACK timestamps on the client's side: ${cs:-none}; on b1's side: ${bs:-none}"
[ -n "$cs" ] || cs='{}'
[ -n "$bs" ] || bs='{}'
ts_verdict=$("$PY" - "$cs" "$bs" "${live:-null}" <<'EOF'
import json, sys
c, b, flow = (json.loads(x) for x in sys.argv[1:4])
def ts(d, k):
    return None if not d.get(k) or d[k]["tsval"] is None else (d[k]["tsval"], d[k]["tsecr"])
cs, ca, bs, ba = ts(c, "syn"), ts(c, "synack"), ts(b, "syn"), ts(b, "synack")
if None in (cs, ca, bs, ba):
    print(f"capture incomplete or without timestamps: client {c} b1 {b}")
    sys.exit(1)
off = (bs[0] - cs[0]) % 2**32
off = off - 2**32 if off >= 2**31 else off
bad = []
if flow is None or flow.get("ts_offset") != off:
    bad.append(f"ts_offset {flow and flow.get('ts_offset')} != TSval'-TSval {off}")
if ba[1] != bs[0]:
    bad.append(f"b1's SYN-ACK TSecr {ba[1]} != SYN TSval' {bs[0]}")
if ca[1] != cs[0]:
    bad.append(f"the client's SYN-ACK TSecr {ca[1]} != its SYN TSval {cs[0]}")
if ca[0] != ba[0]:
    bad.append(f"b1's TSval changed on the way: {ba[0]} -> {ca[0]}")
print("; ".join(bad) if bad else
      f"offset {off}: SYN TSval {cs[0]} -> {bs[0]}, SYN-ACK TSecr {ba[1]} -> {ca[1]}, b1's TSval {ba[0]} kept")
sys.exit(1 if bad else 0)
EOF
) && ts_ok=1 || ts_ok=0
check "bulk: SYN/SYN-ACK timestamps on both sides agree with the flow: $ts_verdict" [ "$ts_ok" -eq 1 ]
[ "$TEST_FAILS" -eq "$fails0" ] || diag bulk

# ---- the whole test
paws_active=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSActive) - paws_active0))
paws_estab_bulk=$(($(nstat_get "$LAB_NS_CLIENT" TcpExtPAWSEstab) - paws_estab_c0 - paws_estab_c_a))
paws_estab_b=$(($(nstat_get "$TS_NS_BACKEND" TcpExtPAWSEstab) - paws_estab_b0))
malformed=$(($(stat_get ts_malformed) - malformed0))
log "whole test: client PAWSActive=+$paws_active; client PAWSEstab over B and A +$paws_estab_c_a" \
	"(B +$paws_estab_c_b, A +$((paws_estab_c_a - paws_estab_c_b))), bulk +$paws_estab_bulk (logged only); b1 PAWSEstab=+$paws_estab_b (since A), ts_malformed=+$malformed"
check "clients' TcpExtPAWSActive moved by $paws_active over the test (want 0)" [ "$paws_active" -eq 0 ]
check "clients' TcpExtPAWSEstab moved by $paws_estab_c_a over B and A (want 0)" [ "$paws_estab_c_a" -eq 0 ]
check "b1's TcpExtPAWSEstab moved by $paws_estab_b over A and bulk (want 0)" [ "$paws_estab_b" -eq 0 ]
check "ts_malformed moved by $malformed over the test (want 0)" [ "$malformed" -eq 0 ]

lab_test_end
