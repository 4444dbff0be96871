#!/usr/bin/env bash
# The CLI contract (shared/spec/cli.md), as a user sees it:
#   - a command the daemon refuses exits 1, prints exactly one line on stderr and nothing on
#     stdout, and changes nothing: `show services|backends|snat --json` are byte-identical
#     before and after. No traffic runs meanwhile, but counters that move with time alone
#     (rates, flows and quarantined tuples expiring from earlier tests) are masked first:
#     new_flows_per_s, active_flows, in_use, quarantined become "#".
#   - no command, or an unknown option, exits 2; an unreachable socket exits 2;
#   - `sluicectl -f FILE` with a bad 3rd line exits 1 and names FILE:3;
#   - `sluice -f BAD` refuses to start: exit 1 with "FILE:LINE: message". That daemon runs in
#     a scratch namespace on its own veth pair named like the lab's (same vdev arguments,
#     own EAL file prefix and socket) so it cannot disturb the running lab daemon.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

snapshot() {
	local dir=$1 what
	mkdir -p "$dir"
	for what in services backends snat; do
		ctl --json show "$what" |
			sed -E 's/"(new_flows_per_s|active_flows|in_use|quarantined|health_since_s)": ?[0-9.]+/"\1":"#"/g' \
				>"$dir/$what.json"
	done
}

same_state() {
	local what rc=0
	for what in services backends snat; do
		if ! cmp -s "$TEST_TMP/before/$what.json" "$1/$what.json"; then
			echo "  show $what changed:" >&2
			diff "$TEST_TMP/before/$what.json" "$1/$what.json" >&2 || true
			rc=1
		fi
	done
	return $rc
}

snapshot "$TEST_TMP/before"

BAD=(
	"frobnicate"
	"backend add web 1.2.3:80"
	"service add x vip 300.1.1.1 port 80 proto tcp"
	"set tcp timeout bogus 5"
	"backend add nosuchservice 198.19.0.11:8080"
	"backend set web 198.19.0.11:8080 weight 65536"
)
for cmd in "${BAD[@]}"; do
	rc=0
	# shellcheck disable=SC2086 # the command is split into words on purpose
	ctl $cmd >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
	lines=$(wc -l <"$TEST_TMP/err")
	# A single line that is not blank.
	[ -n "$(tr -d '[:space:]' <"$TEST_TMP/err")" ] || lines=0
	check "refused '$cmd': exit $rc (want 1)" [ "$rc" -eq 1 ]
	check "refused '$cmd': $lines line(s) on stderr (want 1): $(head -c 200 "$TEST_TMP/err")" \
		[ "$lines" -eq 1 ]
	check "refused '$cmd': nothing on stdout" [ ! -s "$TEST_TMP/out" ]
done
snapshot "$TEST_TMP/after"
check "refused commands changed nothing (show services/backends/snat --json identical)" \
	same_state "$TEST_TMP/after"

rc=0
"$SLUICECTL_BIN" -s "$SLUICE_SOCK" >/dev/null 2>&1 || rc=$?
check "no command: exit $rc (want 2)" [ "$rc" -eq 2 ]
rc=0
"$SLUICECTL_BIN" -s "$SLUICE_SOCK" --no-such-option show version >/dev/null 2>&1 || rc=$?
check "unknown option: exit $rc (want 2)" [ "$rc" -eq 2 ]
rc=0
"$SLUICECTL_BIN" -s /run/sluice/no-such-daemon.sock show version >/dev/null 2>&1 || rc=$?
check "unreachable socket: exit $rc (want 2)" [ "$rc" -eq 2 ]

cmdfile="$TEST_TMP/cmds.txt"
cat >"$cmdfile" <<'CMDS'
# line 1 is a comment, line 2 a no-op (the weight b1 already has), line 3 is bad
backend set web 198.19.0.11:8080 weight 1
backend add web 1.2.3:80
service add never vip 198.18.0.101 port 80 proto tcp
CMDS
rc=0
"$SLUICECTL_BIN" -s "$SLUICE_SOCK" -f "$cmdfile" >/dev/null 2>"$TEST_TMP/err" || rc=$?
check "sluicectl -f with a bad line 3: exit $rc (want 1)" [ "$rc" -eq 1 ]
check "sluicectl -f reports $cmdfile:3 ($(head -c 200 "$TEST_TMP/err"))" grep -qF "$cmdfile:3" "$TEST_TMP/err"
snapshot "$TEST_TMP/after-f"
check "sluicectl -f stopped at line 3 (service 'never' not added, state identical)" \
	same_state "$TEST_TMP/after-f"

# sluice -f with a bad config, in a scratch namespace with its own sl-ext/sl-int pair.
CFG_NS=sl-cfgtest
ip netns del "$CFG_NS" 2>/dev/null || true
add_cleanup "ip netns del $CFG_NS 2>/dev/null || true"
ip netns add "$CFG_NS"
nsx "$CFG_NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
nsx "$CFG_NS" ip link add name "$LAB_EXT_DEV" type veth peer name "$LAB_INT_DEV"
nsx "$CFG_NS" ip link set "$LAB_EXT_DEV" up
nsx "$CFG_NS" ip link set "$LAB_INT_DEV" up

badconf="$TEST_TMP/bad.conf"
cat >"$badconf" <<'CONF'
# deliberately broken on line 4
interface 0 name ext
interface 1 name int
addr add 198.18.0.1/33 dev ext
CONF
eal=()
for a in "${SLUICE_EAL_ARGS[@]}"; do
	[ "$a" = sluice-lab ] && a=sluice-cfgtest
	eal+=("$a")
done
rc=0
start=$SECONDS
ip netns exec "$CFG_NS" timeout 60 "$SLUICE_BIN" "${eal[@]}" -- -f "$badconf" \
	-s /run/sluice/cfgtest.sock >"$TEST_TMP/bad.log" 2>&1 || rc=$?
took=$((SECONDS - start))
check "sluice -f bad config: exit $rc (want 1) after ${took}s" [ "$rc" -eq 1 ]
check "sluice -f bad config: says '$badconf:4: ...' ($(grep -F "$badconf" "$TEST_TMP/bad.log" | head -n 1))" \
	grep -qE "$(printf '%s' "$badconf" | sed 's/[.[\*^$]/\\&/g'):4: ." "$TEST_TMP/bad.log"

lab_test_end
