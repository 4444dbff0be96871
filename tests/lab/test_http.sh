#!/usr/bin/env bash
# HTTP through the VIP: 2,000 short HTTP/1.0 connections (the backend closes first), 250
# from each of 8 client addresses in parallel (ab -B). Every request must succeed: ab reports
# 250 complete, 0 failed and no non-2xx per address; the backends' access logs grow by
# exactly 2,000; `show services web` counts at least 2,000 new flows.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

PER_ADDR=250
ADDRS=("${LAB_CLIENTS[@]:0:8}")
WANT=$((PER_ADDR * ${#ADDRS[@]}))

logs_before=$(($(access_lines 1) + $(access_lines 2) + $(access_lines 3)))
flows_before=$(json_get "$(ctl --json show services web)" 'j[0]["total_flows"]')

ab_parallel "$TEST_TMP/ab" "$PER_ADDR" 4 "${ADDRS[@]}" || true
bad=0
ab_verify "$TEST_TMP/ab" "$PER_ADDR" "${ADDRS[@]}" || bad=$?
check "all $WANT requests from ${#ADDRS[@]} addresses succeeded" [ "$bad" -eq 0 ]

# nginx writes the access log line after the response; give the last ones a moment.
for _ in $(seq 1 20); do
	logs_after=$(($(access_lines 1) + $(access_lines 2) + $(access_lines 3)))
	[ $((logs_after - logs_before)) -ge "$WANT" ] && break
	sleep 0.1
done
check "backends logged exactly $WANT requests (got $((logs_after - logs_before)))" \
	[ $((logs_after - logs_before)) -eq "$WANT" ]

flows_after=$(json_get "$(ctl --json show services web)" 'j[0]["total_flows"]')
check "show services web: total_flows grew by >= $WANT (got $((flows_after - flows_before)))" \
	[ $((flows_after - flows_before)) -ge "$WANT" ]

lab_test_end
