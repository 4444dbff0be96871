#!/usr/bin/python3
"""Lab backend UDP responder: replies b"<name> " + payload to every datagram.

Usage: udp_responder.py NAME BIND_ADDR PORT NETNS

Runs inside backend namespace NETNS (started by tools/lab). It exits on SIGTERM, and also on
its own once /run/netns/NETNS disappears or no longer names the namespace it runs in, so a
namespace deleted under it does not leave an orphan behind.
"""
import os
import signal
import socket
import sys
import time


def netns_gone(name, own_ino):
    try:
        return os.stat("/run/netns/" + name).st_ino != own_ino
    except OSError:
        return True


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    name, addr, port, netns = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    prefix = name.encode() + b" "
    own_ino = os.stat("/proc/self/ns/net").st_ino
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.settimeout(1.0)
    next_check = time.monotonic() + 1.0
    while True:
        if time.monotonic() >= next_check:
            if netns_gone(netns, own_ino):
                return 0
            next_check = time.monotonic() + 1.0
        try:
            data, peer = sock.recvfrom(65535)
        except socket.timeout:
            continue
        try:
            sock.sendto(prefix + data, peer)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
