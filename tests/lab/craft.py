#!/usr/bin/python3
"""Send malformed packets at the Sluice VIP and report what was sent. Run in sl-client.

Usage: craft.py --iface eth0 --dst-mac MAC --src SRC_IP --vip VIP [--count N]
       craft.py --pcap FILE --dst-mac MAC --src SRC_IP --vip VIP [--count N]

With --pcap the frames are written to FILE instead of being sent (for a net_pcap port's
rx_pcap, which replays them into the dataplane with no kernel in between), and the JSON
has no "icmp_time_exceeded".

Every kind is sent N times (default 5), one frame at a time, straight onto the wire with
sendp (no kernel stack on the way). Prints one JSON document:
  {"sent": {"<drop reason>": frames, ...}, "icmp_time_exceeded": replies seen}
where the keys are the `show drops` reasons each kind must be counted under
(see the crafted-packet mapping in the lab notes):

  ip_truncated    frame shorter than Ethernet + 20-byte IPv4 header;
                  IPv4 total length larger than the frame
  ip_bad_ihl      IHL 4 (< 5)
  ip_bad_version  version 6 inside an IPv4-ethertype frame
  ip_fragment     first fragment (MF set); later fragment (offset != 0)
  tcp_truncated   TCP header shorter than 20 bytes
  tcp_bad_doff    data offset 4 (< 5); data offset 15 past the end of the segment
  tcp_bad_option  SYN with option kind 0x1e length 0; MSS (kind 2) length 0;
                  timestamp option (kind 8, length 10) running past the header
  ttl_exceeded    SYN with TTL 1 (and one with TTL 0); an ICMP time exceeded must come back

Only the given VIP is addressed; the source is one of the lab client addresses.
"""
import argparse
import json
import random
import sys
import time

from scapy.all import (ICMP, IP, TCP, AsyncSniffer, Ether, Raw, conf,  # noqa: E402
                       get_if_hwaddr, sendp, wrpcap)

conf.verb = 0


def tcp_syn(**kw):
    return TCP(sport=random.randint(20000, 60000), dport=80, flags="S", seq=random.getrandbits(32), **kw)


def kinds(src, vip):
    """(reason, frame-builder) pairs; builders return the bytes after the Ethernet header."""
    ip = lambda **kw: IP(src=src, dst=vip, **kw)  # noqa: E731

    def truncated_header():
        return bytes(ip() / tcp_syn())[:10]

    def total_len_past_frame():
        return bytes(ip(len=200) / tcp_syn())

    def bad_ihl():
        return bytes(ip(ihl=4) / tcp_syn())

    def bad_version():
        return bytes(ip(version=6) / tcp_syn())

    def first_fragment():
        return bytes(ip(flags="MF", id=random.getrandbits(16)) / tcp_syn() / Raw(b"x" * 16))

    def later_fragment():
        return bytes(ip(frag=100, id=random.getrandbits(16), proto=6) / Raw(b"y" * 24))

    def tcp_short():
        return bytes(ip(proto=6) / Raw(bytes(tcp_syn())[:12]))

    def doff_small():
        return bytes(ip() / tcp_syn(dataofs=4))

    def doff_past_end():
        return bytes(ip() / tcp_syn(dataofs=15))

    def opt_zero_len():
        # 24-byte header: option 0x1e with length 0, then two NOPs.
        return bytes(ip() / tcp_syn(dataofs=6) / Raw(b"\x1e\x00\x01\x01"))

    def opt_mss_zero_len():
        return bytes(ip() / tcp_syn(dataofs=6) / Raw(b"\x02\x00\x01\x01"))

    def opt_past_header():
        # 24-byte header: NOP NOP then a timestamp option claiming 10 bytes, only 2 left.
        return bytes(ip() / tcp_syn(dataofs=6) / Raw(b"\x01\x01\x08\x0a"))

    def ttl_one():
        return bytes(ip(ttl=1) / tcp_syn())

    def ttl_zero():
        return bytes(ip(ttl=0) / tcp_syn())

    return [
        ("ip_truncated", truncated_header),
        ("ip_truncated", total_len_past_frame),
        ("ip_bad_ihl", bad_ihl),
        ("ip_bad_version", bad_version),
        ("ip_fragment", first_fragment),
        ("ip_fragment", later_fragment),
        ("tcp_truncated", tcp_short),
        ("tcp_bad_doff", doff_small),
        ("tcp_bad_doff", doff_past_end),
        ("tcp_bad_option", opt_zero_len),
        ("tcp_bad_option", opt_mss_zero_len),
        ("tcp_bad_option", opt_past_header),
        ("ttl_exceeded", ttl_one),
        ("ttl_exceeded", ttl_zero),
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iface", default="eth0")
    p.add_argument("--pcap")
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--vip", required=True)
    p.add_argument("--count", type=int, default=5)
    a = p.parse_args()
    if not 1 <= a.count <= 1000:
        sys.exit("--count must be 1..1000")

    if a.pcap:
        eth = Ether(dst=a.dst_mac, src="02:00:00:00:00:01", type=0x0800)
        frames, sent = [], {}
        for _ in range(a.count):
            for reason, build in kinds(a.src, a.vip):
                frames.append(eth / Raw(build()))
                sent[reason] = sent.get(reason, 0) + 1
        wrpcap(a.pcap, frames)
        print(json.dumps({"sent": sent}))
        return 0

    def is_time_exceeded(pkt):
        return (pkt.haslayer(ICMP) and pkt[ICMP].type == 11 and pkt.haslayer(IP)
                and pkt[IP].dst == a.src)

    sniffer = AsyncSniffer(iface=a.iface, lfilter=is_time_exceeded, store=True)
    sniffer.start()
    time.sleep(0.5)

    eth = Ether(dst=a.dst_mac, src=get_if_hwaddr(a.iface), type=0x0800)
    sent = {}
    for _ in range(a.count):
        for reason, build in kinds(a.src, a.vip):
            sendp(eth / Raw(build()), iface=a.iface)
            sent[reason] = sent.get(reason, 0) + 1
            time.sleep(0.002)

    time.sleep(1.5)
    sniffer.stop()
    print(json.dumps({"sent": sent, "icmp_time_exceeded": len(sniffer.results or [])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
