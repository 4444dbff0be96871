#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# sluice.service as `meson install` lays it out: installed into a scratch root
# (meson install --destdir), checked by systemd's own parser against that root
# (systemd-analyze verify --root: unknown keys, bad values, missing units, an
# ExecStart that is not an executable there), then the few things systemd
# cannot know: ExecStart names the sluice meson installed, with options the
# daemon's --help lists and the control socket sluicectl uses by default, and
# the EnvironmentFile sample defines exactly the variables the unit expands.
#
# Usage: test_service.sh SRCDIR BUILDDIR MESON
# Exit 77 (skipped) where systemd is not installed.
set -eu

src=$1
build=$2
meson=$3

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed"
	exit 77
fi
units=/usr/lib/systemd/system
[ -f "$units/multi-user.target" ] || units=/lib/systemd/system
if [ ! -f "$units/multi-user.target" ]; then
	echo "SKIP: no systemd units on this host"
	exit 77
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
"$meson" install -C "$build" --no-rebuild --quiet --destdir "$root" >/dev/null

# Where meson installed them, from its own record of the build.
installed() {
	"$meson" introspect --installed "$build" | python3 -c '
import json, sys
hits = [dst for built, dst in json.load(sys.stdin).items() if built.endswith(sys.argv[1])]
if len(hits) != 1:
    sys.exit("%s: %d install entries" % (sys.argv[1], len(hits)))
print(hits[0])' "$1"
}
bin=$(installed /dataplane/sluice)
unit=$(installed /conf/sluice.service)
[ -x "$root$bin" ] || fail "$bin: not installed"
[ -f "$root$unit" ] || fail "$unit: not installed"
echo "installed: $bin, $unit"

# verify resolves the unit's dependencies (multi-user.target, dev-hugepages.mount, ...) in
# the root too: give it the host's units next to the installed one.
mkdir -p "$root/usr/lib/systemd/system"
cp -R "$units/." "$root/usr/lib/systemd/system/"
if ! out=$(systemd-analyze verify --root="$root" "$root$unit" 2>&1) || [ -n "$out" ]; then
	fail "systemd-analyze verify: $out"
fi
echo "systemd-analyze verify --root: clean"

# conf/sluice.service is the installed file, but for the daemon's path under another prefix.
sed "s|^ExecStart=$bin |ExecStart=/usr/local/bin/sluice |" "$root$unit" |
	cmp -s - "$src/conf/sluice.service" ||
	fail "installed unit differs from conf/sluice.service beyond the ExecStart path"

# One key of the unit, continuation lines joined (systemd's "\" at the end of a line).
key() {
	sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$root$unit" | sed -n "s/^$1=//p"
}
execstart=$(key ExecStart)
set -f
# Word splitting is the point: systemd splits unquoted ExecStart words at blanks too.
# shellcheck disable=SC2086
set -- $execstart
set +f
[ "$1" = "$bin" ] || fail "ExecStart runs $1, meson installs $bin"

# The daemon's options: after "--", each known to sluice --help.
help=$("$root$bin" --help) || fail "$bin --help failed"
sock=
conffile=
seen_dashdash=false
shift
while [ $# -gt 0 ]; do
	case $1 in
	--) seen_dashdash=true ;;
	-f | -s)
		$seen_dashdash || fail "ExecStart: $1 before --, the EAL would take it"
		printf '%s\n' "$help" | grep -q -- "^ *$1, " || fail "sluice --help lacks $1"
		[ $# -ge 2 ] || fail "ExecStart: $1 without a value"
		if [ "$1" = -f ]; then conffile=$2; else sock=$2; fi
		shift
		;;
	esac
	shift
done
$seen_dashdash || fail "ExecStart: no -- between EAL and daemon arguments"
[ "$conffile" = /etc/sluice/sluice.conf ] || fail "ExecStart: -f $conffile"

# The socket is the one sluicectl uses without -s, in the unit's RuntimeDirectory.
default_sock=$(sed -n 's/^#define CTL_DEFAULT_SOCKET "\(.*\)"$/\1/p' "$src/dataplane/ctl_proto.h")
[ -n "$default_sock" ] || fail "CTL_DEFAULT_SOCKET not found in ctl_proto.h"
[ "$sock" = "$default_sock" ] || fail "ExecStart: -s $sock, sluicectl's default is $default_sock"
[ "/run/$(key RuntimeDirectory)" = "$(dirname "$sock")" ] ||
	fail "RuntimeDirectory=$(key RuntimeDirectory) does not hold $sock"

# The EnvironmentFile sample: written for that path, plain VAR="value" lines (read alike by
# systemd and sh), and exactly the variables ExecStart expands.
sample=$src/conf/sluice.default
envfile=$(key EnvironmentFile)
head -n 1 "$sample" | grep -q "^# $envfile:" || fail "sluice.default: not written for $envfile"
bad=$(grep -n -v -e '^#' -e '^$' -e '^[A-Z_][A-Z0-9_]*="[^"$`\\]*"$' "$sample" || true)
[ -z "$bad" ] || fail "sluice.default: not a plain VAR=\"value\" line: $bad"
used=$(printf '%s\n' "$execstart" | grep -o '[$][{]\{0,1\}[A-Z_][A-Z0-9_]*' | tr -d '{$' |
	sort -u | tr '\n' ' ')
defined=$(sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' "$sample" | sort -u | tr '\n' ' ')
[ "$used" = "$defined" ] || fail "ExecStart expands [$used], sluice.default defines [$defined]"
# shellcheck disable=SC2016 # expanded by the inner shell
eal=$(env -i sh -c 'set -a; . "$1"; printf "%s" "$SLUICE_EAL_ARGS"' sh "$sample")
case " $eal " in
*" -- "*) fail "SLUICE_EAL_ARGS holds --: the daemon's own arguments would be cut" ;;
*" -l "*) ;;
*) fail "SLUICE_EAL_ARGS names no lcores (-l): the EAL would take every core" ;;
esac
echo "ExecStart, RuntimeDirectory and $envfile sample: consistent"
