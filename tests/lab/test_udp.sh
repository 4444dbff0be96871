#!/usr/bin/env bash
# UDP through the VIP: from 8 client addresses, 3 request/response exchanges each, every one
# from a fresh socket (a new flow) to 198.18.0.100:5353. Every request must get the reply
# "bN <payload>" (the payload echoed exactly), and with round robin all three backends must
# have answered.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

ADDRS=("${LAB_CLIENTS[@]:0:8}")
PER_ADDR=3
WANT=$((PER_ADDR * ${#ADDRS[@]}))
src=$(
	IFS=,
	echo "${ADDRS[*]}"
)

res=$(labclient udp --vip "$LAB_VIP" --port "$LAB_ECHO_PORT" --src "$src" --count "$PER_ADDR" --timeout 2) ||
	res='{"ok":0,"fail":-1,"bodies":{},"errors":["labclient failed"]}'
ok=$(json_get "$res" 'j["ok"]')
check "udp: $ok/$WANT requests answered with 'bN <payload>' ($(json_get "$res" 'j["errors"][:3]'))" \
	[ "$ok" -eq "$WANT" ]
for b in b1 b2 b3; do
	n=$(json_get "$res" "j['bodies'].get('$b', 0)")
	check "udp: backend $b answered ($n replies)" [ "$n" -gt 0 ]
done
flows=$(json_get "$(ctl --json show services echo)" 'j[0]["total_flows"]')
check "show services echo: total_flows > 0 ($flows)" [ "$flows" -gt 0 ]

lab_test_end
