#!/usr/bin/env bash
# ICMP errors about a translated flow travel back translated. A UDP service whose backend
# port has no listener: the backend's kernel answers each datagram with ICMP port
# unreachable (to the SNAT address, quoting SNAT -> backend); Sluice must rewrite the outer
# and the quoted headers so that the client's connected UDP socket sees ECONNREFUSED, the
# same path that carries "fragmentation needed" for path-MTU discovery.
set -euo pipefail
# shellcheck source=tests/lab/lib.sh
source "$(dirname "$0")/lib.sh"
lab_test_begin

PORT=5399
ctl service add void vip "$LAB_VIP" port "$PORT" proto udp sched rr >/dev/null
add_cleanup 'ctl service del void >/dev/null 2>&1 || true'
ctl backend add void "${LAB_BACKENDS[0]}:5999" >/dev/null

before=$(json_get "$(ctl --json show stats)" 'j.get("icmp_errors_translated", 0)')
res=$(client timeout 30 "$PY" - "${LAB_CLIENTS[4]}" "$LAB_VIP" "$PORT" <<'PY'
import socket, sys
src, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
refused = 0
for i in range(5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.connect((vip, port))
    s.settimeout(2)
    try:
        s.send(b"hello %d" % i)
        s.recv(100)
    except ConnectionRefusedError:
        refused += 1
    except socket.timeout:
        pass
    s.close()
print(refused)
PY
)
after=$(json_get "$(ctl --json show stats)" 'j.get("icmp_errors_translated", 0)')
check "client saw ECONNREFUSED for $res of 5 datagrams (want >= 4; the first may wait for ARP)" [ "$res" -ge 4 ]
check "icmp_errors_translated grew by $((after - before)) (want >= $res)" [ $((after - before)) -ge "$res" ]

lab_test_end
