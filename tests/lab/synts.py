#!/usr/bin/python3
"""Capture the TCP timestamps of one connection's SYN and SYN-ACK. Run in a lab namespace.

Usage: synts.py --iface eth0 --port P [--ready FILE] [--timeout S]

Listens on IFACE (AF_PACKET, both directions), touches FILE once it listens, and reports the
first TCP SYN and the first SYN-ACK that have P as source or destination port. Prints one
JSON document:
  {"syn": {"sport": n, "dport": n, "tsval": n, "tsecr": n} or null, "synack": {...} or null}
(tsval/tsecr null if the segment had no timestamp option). Gives up after S seconds
(default 30), printing what it has.
"""
import argparse
import json
import socket
import struct
import time

ETH_P_ALL = 0x0003


def tcp_of(frame):
    """(sport, dport, flags, tsval, tsecr) of an IPv4/TCP Ethernet frame, else None."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 6 or len(ip) < ihl + 20:
        return None
    tcp = ip[ihl:]
    sport, dport = struct.unpack("!HH", tcp[0:4])
    doff = (tcp[12] >> 4) * 4
    flags = tcp[13]
    tsval = tsecr = None
    opts = tcp[20:min(doff, len(tcp))]
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        length = opts[i + 1]
        if kind == 8 and length == 10 and i + 10 <= len(opts):
            tsval, tsecr = struct.unpack("!II", opts[i + 2:i + 10])
        i += length
    return sport, dport, flags, tsval, tsecr


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iface", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ready")
    p.add_argument("--timeout", type=float, default=30.0)
    a = p.parse_args()

    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    s.settimeout(0.2)
    if a.ready:
        open(a.ready, "w").close()
    found = {"syn": None, "synack": None}
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline and None in found.values():
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        t = tcp_of(frame)
        if t is None or a.port not in (t[0], t[1]) or not t[2] & 0x02:
            continue
        key = "synack" if t[2] & 0x10 else "syn"
        if found[key] is None:
            found[key] = {"sport": t[0], "dport": t[1], "tsval": t[3], "tsecr": t[4]}
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
