#!/usr/bin/env bash
# "snat del: existing flows keep their tuples until they end", as a user sees it:
#   1. Open HTTP/1.1 keep-alive connections from 4 client addresses; read from
#      `show flows --json` which SNAT address each got.
#   2. `snat del` the address the first connection uses: `show snat` lists it as draining.
#   3. 200 new short connections all succeed, and none of them use the deleted address
#      (its in-use count in `show snat` does not grow).
#   4. A second request on every kept connection is still answered (replies to the deleted
#      address still get through).
#   5. `snat add` restores the address.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

KEEP_ADDRS=("${LAB_CLIENTS[@]:4:4}")
keep_open "${KEEP_ADDRS[@]}"
first=$KEEP_FIRST
nerr=$(json_get "$first" 'sum(1 for c in j if c["body"].startswith("ERROR"))')
check "${#KEEP_ADDRS[@]} keep-alive connections answered" [ "$nerr" -eq 0 ]
[ "$nerr" -eq 0 ] || die "cannot continue without live connections"

# The flow list can be long (closed flows of earlier tests): read it from a file.
flows_eval() {
	ctl --json show flows service web limit 0 >"$TEST_TMP/flows.json"
	"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$TEST_TMP/flows.json" "$1"
}
snat=$(flows_eval "[f['snat'].split(':')[0] for f in j if f['client'].startswith('${KEEP_ADDRS[0]}:') and f['state'] == 'established'][0]")
log "the connection from ${KEEP_ADDRS[0]} uses SNAT address $snat"
ports=$(json_get "$(ctl --json show snat)" "[s['ports'] for s in j if s['addr'] == '$snat'][0]")

cp "$TEST_TMP/flows.json" "$TEST_TMP/flows-before.json"
ctl snat del "$snat"
add_cleanup "ctl snat add $snat ports $ports dev int >/dev/null 2>&1 || true"
state=$(json_get "$(ctl --json show snat)" "[s.get('state') for s in j if s['addr'] == '$snat'][0]")
check "show snat lists deleted $snat as '$state' while its flows live" [ "$state" = draining ]

res=$(short_conns "$(
	IFS=,
	echo "${LAB_CLIENTS[*]:0:4}"
)" 200)
ok=$(json_get "$res" 'j["ok"]')
check "200 new connections after snat del all answered ($ok)" [ "$ok" -eq 200 ]
# Flows present now but not before the delete are the new connections' flows.
flows_eval 0 >/dev/null
read -r nnew ontaken < <("$PY" - "$TEST_TMP/flows-before.json" "$TEST_TMP/flows.json" "$snat" <<'PY'
import json, sys
key = lambda f: (f["client"], f["snat"])
before = {key(f) for f in json.load(open(sys.argv[1]))}
new = [f for f in json.load(open(sys.argv[2])) if key(f) not in before]
print(len(new), sum(1 for f in new if f["snat"].split(":")[0] == sys.argv[3]))
PY
)
none_taken() { [ "$nnew" -ge 100 ] && [ "$ontaken" -eq 0 ]; }
check "$nnew new flows (want >= 100), $ontaken of them on deleted $snat (want 0)" none_taken

keep_second
second=$KEEP_SECOND
same=$(json_get "{\"a\": $first, \"b\": $second}" \
	'sum(1 for x, y in zip(j["a"], j["b"]) if x["body"] == y["body"])')
check "second request on every kept connection answered ($same/${#KEEP_ADDRS[@]}: $second)" \
	[ "$same" -eq "${#KEEP_ADDRS[@]}" ]

ctl snat add "$snat" ports "$ports" dev int
state=$(json_get "$(ctl --json show snat)" "[s.get('state') for s in j if s['addr'] == '$snat'][0]")
check "snat add takes $snat back ($state)" [ "$state" = active ]

lab_test_end
