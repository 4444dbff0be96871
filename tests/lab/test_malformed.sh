#!/usr/bin/env bash
# Malformed packets: tests/lab/craft.py sends, from the client namespace straight onto the
# wire, 5 of each malformed kind at the VIP (truncated IPv4 header, IPv4 length past the
# frame, IHL < 5, version 6 in an IPv4 frame, fragments, truncated TCP header, data offset
# < 5 and past the end, zero-length and overlong TCP options, TTL 1 and 0).
#   - `show drops --json`: each reason grows by at least the number of frames sent for it;
#   - an ICMP time exceeded comes back for the TTL-expired SYNs;
#   - the daemon keeps serving: 300 HTTP requests running during the barrage and 200 after
#     it all succeed, and the process is still alive.
# Fragments: DPDK's af_packet PMD joins a PACKET_FANOUT group with PACKET_FANOUT_FLAG_DEFRAG,
# so the kernel holds IPv4 fragments for reassembly and never hands lone fragments to the
# dataplane. On af_packet ports the ip_fragment count is therefore reported as SKIP unless
# it did grow; on any other port type it is a normal check.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

COUNT=5
SRC=${LAB_CLIENTS[12]}
DURING=("${LAB_CLIENTS[@]:0:2}")
AFTER=("${LAB_CLIENTS[@]:2:2}")
mac=$(cat "/sys/class/net/$LAB_EXT_DEV/address")

before=$(drops_json)

ab_parallel "$TEST_TMP/during" 150 2 "${DURING[@]}" &
during=$!

res=$(client timeout 120 "$PY" "$LAB_TEST_DIR/craft.py" --iface eth0 --dst-mac "$mac" \
	--src "$SRC" --vip "$LAB_VIP" --count "$COUNT") || die "craft.py failed: $res"
log "craft.py: $res"

wait "$during" || true
bad=0
ab_verify "$TEST_TMP/during" 150 "${DURING[@]}" || bad=$?
check "300 HTTP requests during the barrage all succeeded" [ "$bad" -eq 0 ]

after=$(drops_json)
device=$(json_get "$(ctl --json show interfaces 2>/dev/null || echo '[{}]')" 'j[0].get("device", "")' || true)

for reason in $(json_get "$res" '" ".join(sorted(j["sent"]))'); do
	sent=$(json_get "$res" "j['sent']['$reason']")
	present=$(json_get "$after" "'$reason' in j")
	if [ "$present" != True ]; then
		fail "show drops has no reason '$reason'"
		continue
	fi
	d=$(json_get "{\"a\": $before, \"b\": $after}" "j['b']['$reason'] - j['a'].get('$reason', 0)")
	if [ "$reason" = ip_fragment ] && [ "$d" -lt "$sent" ] && [[ $device == net_af_packet* ]]; then
		skip "drops.$reason +$d for $sent sent: the af_packet PMD's kernel defrag (PACKET_FANOUT_FLAG_DEFRAG) swallows lone fragments before the dataplane"
		continue
	fi
	check "drops.$reason grew by $d for $sent frames sent (want >= $sent)" [ "$d" -ge "$sent" ]
done

icmp=$(json_get "$res" 'j["icmp_time_exceeded"]')
check "ICMP time exceeded received for TTL-expired SYNs ($icmp)" [ "$icmp" -ge 1 ]

ab_parallel "$TEST_TMP/after" 100 2 "${AFTER[@]}" || true
bad=0
ab_verify "$TEST_TMP/after" 100 "${AFTER[@]}" || bad=$?
check "200 HTTP requests after the barrage all succeeded" [ "$bad" -eq 0 ]
check "daemon still running after the barrage" sluice_alive

lab_test_end
