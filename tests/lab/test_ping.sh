#!/usr/bin/env bash
# ICMP echo: the VIP 198.18.0.100 and Sluice's own address 198.18.0.1 answer ping from the
# client namespace, from several source addresses. 5 echo requests each; at least 4 replies
# are required (the first may be spent while Sluice resolves the client's MAC).
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

for dst in "$LAB_VIP" "$LAB_GW"; do
	for src in "${LAB_CLIENTS[0]}" "${LAB_CLIENTS[5]}" "${LAB_CLIENTS[15]}"; do
		out=$(client ping -n -c 5 -i 0.2 -W 1 -w 10 -I "$src" "$dst" 2>&1 || true)
		got=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
		check "ping $dst from $src: ${got:-0}/5 replies" [ "${got:-0}" -ge 4 ]
	done
done

lab_test_end
