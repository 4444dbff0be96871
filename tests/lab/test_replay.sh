#!/usr/bin/env bash
# The crafted malformed frames of craft.py, replayed into a second sluice through a
# net_pcap port (rx_pcap), so that nothing in the kernel filters them first. This is
# where IP fragments are checked: the af_packet PMD of the lab ports asks the kernel to
# defragment (PACKET_FANOUT_FLAG_DEFRAG), so lone fragments never reach the dataplane
# there. Each reason of `show drops` must grow by exactly the number of frames crafted
# for it, and the daemon must still answer afterwards. A valid SYN for the service is
# appended: it must create exactly one flow (the parser does not reject good frames).
#
# Needs no lab namespaces: the second daemon has one pcap port and its own socket and
# EAL file prefix.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
TEST_NAME=test_replay
TEST_TMP=$(mktemp -d /tmp/sluice-replay.XXXXXX)
install_traps
# shellcheck disable=SC2016 # expanded when the cleanup runs
add_cleanup 'rm -rf "$TEST_TMP"'

COUNT=7
MAC=02:00:00:00:00:aa
SOCK=$TEST_TMP/replay.sock
cat >"$TEST_TMP/replay.conf" <<CONF
interface 0 name ext
addr add 198.18.0.1/24 dev ext
addr add 198.19.0.1/24 dev ext
snat add 198.19.0.2 dev ext
service add web vip $LAB_VIP port 80 proto tcp sched rr
backend add web 198.19.0.11:8080
CONF

res=$("$PY" "$LAB_TEST_DIR/craft.py" --pcap "$TEST_TMP/bad.pcap" --dst-mac "$MAC" \
	--src 198.18.0.10 --vip "$LAB_VIP" --count "$COUNT")
"$PY" - "$TEST_TMP/bad.pcap" "$TEST_TMP/in.pcap" "$LAB_VIP" <<'PY'
import sys
from scapy.all import IP, TCP, Ether, rdpcap, wrpcap
frames = list(rdpcap(sys.argv[1]))
frames.append(Ether(dst="02:00:00:00:00:aa", src="02:00:00:00:00:01") /
              IP(src="198.18.0.10", dst=sys.argv[3]) / TCP(sport=40000, dport=80, flags="S"))
wrpcap(sys.argv[2], frames)
PY

"$SLUICE_BIN" --no-huge -m 256 --no-pci -l 0,1 --file-prefix sluice-replay \
	--vdev "net_pcap0,rx_pcap=$TEST_TMP/in.pcap,tx_pcap=$TEST_TMP/out.pcap" \
	-- -f "$TEST_TMP/replay.conf" -s "$SOCK" --max-flows 4096 </dev/null >"$TEST_TMP/log" 2>&1 &
pid=$!
add_cleanup "kill $pid 2>/dev/null; wait $pid 2>/dev/null || true"

ready=no
for _ in $(seq 1 100); do
	if "$SLUICECTL_BIN" -s "$SOCK" show version >/dev/null 2>&1; then
		ready=yes
		break
	fi
	pid_running "$pid" || break
	sleep 0.1
done
if [ "$ready" != yes ]; then
	fail "replay daemon did not start: $(tail -n 5 "$TEST_TMP/log")"
	exit 1
fi

# The pcap is read at once; wait (bounded) until every frame was received.
want=$(($(json_get "$res" 'sum(j["sent"].values())') + 1))
rx=0
for _ in $(seq 1 50); do
	rx=$(json_get "$("$SLUICECTL_BIN" -s "$SOCK" --json show stats)" 'j["rx_packets"]')
	[ "$rx" -ge "$want" ] && break
	sleep 0.1
done
check "replay daemon received all $want frames (rx_packets $rx)" [ "$rx" -ge "$want" ]

drops=$("$SLUICECTL_BIN" -s "$SOCK" --json show drops)
for reason in $(json_get "$res" '" ".join(sorted(j["sent"]))'); do
	sent=$(json_get "$res" "j['sent']['$reason']")
	got=$(json_get "$drops" "j.get('$reason', -1)")
	check "drops.$reason is $got for $sent crafted frames" [ "$got" -eq "$sent" ]
done
created=$(json_get "$("$SLUICECTL_BIN" -s "$SOCK" --json show stats)" 'j["flows_created"]')
check "the valid SYN created one flow ($created)" [ "$created" -eq 1 ]
check "replay daemon still answers" "$SLUICECTL_BIN" -s "$SOCK" show version

[ "$TEST_CHECKS" -gt 0 ] && [ "$TEST_FAILS" -eq 0 ]
