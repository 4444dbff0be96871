#!/usr/bin/env bash
# Drain: live flows finish, new flows go elsewhere.
#   1. Open 6 HTTP/1.1 keep-alive connections to the web VIP from 6 client addresses and
#      note which backend answered each (by body).
#   2. `backend set web <backend of the first connection> state drain`.
#   3. 300 new short connections: none may reach the drained backend (body and
#      total_flows).
#   4. A second request on every kept connection must still be answered, by the same
#      backend as before (its flows were not cut).
#   5. `state up` again: the backend receives new connections again.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

KEEP_ADDRS=("${LAB_CLIENTS[@]:8:6}")
SHORT_ADDRS=("${LAB_CLIENTS[@]:0:8}")
short_src=$(
	IFS=,
	echo "${SHORT_ADDRS[*]}"
)
body_to_backend() { echo "198.19.0.1${1#b}:$LAB_HTTP_PORT"; }

keep_open "${KEEP_ADDRS[@]}"
first=$KEEP_FIRST
nerr=$(json_get "$first" 'sum(1 for c in j if c["body"].startswith("ERROR"))')
check "drain: ${#KEEP_ADDRS[@]} keep-alive connections answered (first requests: $first)" [ "$nerr" -eq 0 ]
[ "$nerr" -eq 0 ] || die "cannot continue without live connections"

target_body=$(json_get "$first" 'j[0]["body"]')
target=$(body_to_backend "$target_body")
nkept=$(json_get "$first" "sum(1 for c in j if c['body'] == '$target_body')")
active=$(json_get "$(ctl --json show backends web)" \
	"[b['active_flows'] for b in j if '%s:%s' % (b['addr'], b['port']) == '$target'][0]")
check "drain: $target shows active_flows $active >= $nkept kept connections" [ "$active" -ge "$nkept" ]

ctl backend set web "$target" state drain
add_cleanup "ctl backend set web $target state up || true"
state=$(json_get "$(ctl --json show backends web)" \
	"[b['state'] for b in j if '%s:%s' % (b['addr'], b['port']) == '$target'][0]")
check "drain: show backends reports $target state '$state'" [ "$state" = drain ]

flows_before=$(backend_flows web "$target")
res=$(short_conns "$short_src" 300)
ok=$(json_get "$res" 'j["ok"]')
hit=$(json_get "$res" "j['bodies'].get('$target_body', 0)")
check "drain: $ok/300 new connections answered" [ "$ok" -eq 300 ]
check "drain: $hit of them reached drained $target_body (want 0)" [ "$hit" -eq 0 ]
d=$(($(backend_flows web "$target") - flows_before))
check "drain: $target total_flows grew by $d (want 0)" [ "$d" -eq 0 ]

keep_second
second=$KEEP_SECOND
same=$(json_get "{\"a\": $first, \"b\": $second}" \
	'sum(1 for x, y in zip(j["a"], j["b"]) if x["body"] == y["body"])')
check "drain: second request on every kept connection answered by the same backend ($same/${#KEEP_ADDRS[@]}: $second)" \
	[ "$same" -eq "${#KEEP_ADDRS[@]}" ]

ctl backend set web "$target" state up
res=$(short_conns "$short_src" 300)
ok=$(json_get "$res" 'j["ok"]')
hit=$(json_get "$res" "j['bodies'].get('$target_body', 0)")
check "up again: $ok/300 new connections answered" [ "$ok" -eq 300 ]
check "up again: $target_body received $hit of them (want > 0)" [ "$hit" -gt 0 ]

lab_test_end
