#!/usr/bin/env bash
# Weighted round robin: service web has weights b1:b2:b3 = 1:2:3. 1,200 short connections
# from 8 client addresses; each backend's share, counted both by response body and by the
# `show backends --json` total_flows delta, must be within +-3 percentage points of its
# weighted share (1/6, 2/6, 3/6). wrr is deterministic, so the real error is ~0; 3 points
# (36 connections out of 1,200) only absorbs connections of other tests or retries.
# Then weight 0 for b1: 300 new connections, none may reach b1 (body and total_flows);
# weight 1 again: b1 receives new connections again.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

N=1200
TOL=3
ADDRS=("${LAB_CLIENTS[@]:0:8}")
src=$(
	IFS=,
	echo "${ADDRS[*]}"
)
B=("198.19.0.11:8080" "198.19.0.12:8080" "198.19.0.13:8080")
W=(1 2 3)

flows_snapshot() {
	local b
	for b in "${B[@]}"; do backend_flows web "$b"; done
}

# within PCT_GOT PCT_WANT : |got - want| <= TOL (floats)
within() {
	"$PY" -c 'import sys; g,w,t=map(float,sys.argv[1:]); sys.exit(0 if abs(g-w)<=t else 1)' "$1" "$2" "$TOL"
}
pct() {
	"$PY" -c 'import sys; n,d=map(float,sys.argv[1:]); print("%.2f" % (100.0*n/d if d else 0.0))' "$1" "$2"
}

mapfile -t before < <(flows_snapshot)
res=$(labclient http-short --vip "$LAB_VIP" --port "$LAB_WEB_PORT" --src "$src" --count "$N" --threads 4) ||
	res='{"ok":0,"fail":-1,"bodies":{},"errors":["labclient failed"]}'
mapfile -t after < <(flows_snapshot)
ok=$(json_get "$res" 'j["ok"]')
check "weights: $ok/$N connections answered ($(json_get "$res" 'j["errors"][:3]'))" [ "$ok" -eq "$N" ]

total_flows=0
for i in 0 1 2; do
	total_flows=$((total_flows + after[i] - before[i]))
done
for i in 0 1 2; do
	want=$(pct "${W[$i]}" 6)
	body=$(json_get "$res" "j['bodies'].get('b$((i + 1))', 0)")
	got=$(pct "$body" "$N")
	check "weights: b$((i + 1)) (weight ${W[$i]}) by body: $body/$N = $got% (want $want% +-$TOL)" \
		within "$got" "$want"
	d=$((after[i] - before[i]))
	got=$(pct "$d" "$total_flows")
	check "weights: ${B[$i]} total_flows delta: $d/$total_flows = $got% (want $want% +-$TOL)" \
		within "$got" "$want"
done

# Weight 0 takes b1 out of the choice for new connections.
ctl backend set web "${B[0]}" weight 0
add_cleanup "ctl backend set web ${B[0]} weight 1 || true"
b1_before=$(backend_flows web "${B[0]}")
res=$(short_conns "$src" 300)
ok=$(json_get "$res" 'j["ok"]')
b1=$(json_get "$res" "j['bodies'].get('b1', 0)")
check "weight 0: $ok/300 connections answered" [ "$ok" -eq 300 ]
check "weight 0: b1 answered $b1 of them (want 0)" [ "$b1" -eq 0 ]
d=$(($(backend_flows web "${B[0]}") - b1_before))
check "weight 0: ${B[0]} total_flows grew by $d (want 0)" [ "$d" -eq 0 ]

ctl backend set web "${B[0]}" weight 1
res=$(short_conns "$src" 300)
ok=$(json_get "$res" 'j["ok"]')
b1=$(json_get "$res" "j['bodies'].get('b1', 0)")
check "weight restored: $ok/300 connections answered" [ "$ok" -eq 300 ]
check "weight restored: b1 answered $b1 of them (want > 0)" [ "$b1" -gt 0 ]

lab_test_end
