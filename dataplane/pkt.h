/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pkt: bounds-checked parsing of a received frame into metadata.
 *
 * pkt_parse() never reads a byte past @len and never trusts a length field
 * before checking it against what is really there; on failure it names the
 * drop reason. It works on a plain buffer so that it can be unit-tested and
 * fuzzed without the EAL. Offsets are from the start of the frame; addresses
 * and ports are copied in network byte order.
 */
#ifndef SLUICE_PKT_H
#define SLUICE_PKT_H

#include <stdint.h>

#include "stats.h"

enum pkt_kind {
	PKT_ARP,
	PKT_IPV4,
};

struct pkt_meta {
	uint8_t kind; /* enum pkt_kind */
	uint8_t proto;
	uint8_t ttl;
	uint8_t tcp_flags;
	uint16_t l3_off;
	uint16_t l4_off;
	uint16_t l4_len; /* IP payload length from the IP header, checked */
	uint16_t ip_len; /* IP total length */
	uint32_t src, dst;
	uint16_t sport, dport; /* TCP/UDP ports; ICMP: id in sport */
	uint8_t icmp_type, icmp_code;
	uint8_t tcp_hlen;	   /* TCP header length in bytes */
	uint8_t tcp_ts;		   /* offset of the timestamp option in the TCP header, 0 if none */
	uint8_t tcp_ts_bad;	   /* a timestamp option of a length other than 10 (ignored) */
	uint32_t tcp_seq, tcp_ack; /* host byte order */
	uint16_t drop;		   /* enum stats_drop when pkt_parse() fails */
};

/* Parse Ethernet + ARP or IPv4 + TCP/UDP/ICMP. 0, or -1 with m->drop set. */
int pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_meta *m);

/*
 * Walk TCP options in [20, hlen) of the TCP header at @tcp, trusting no
 * length: EOL ends the list, NOP is one byte, every other kind (MSS, wscale,
 * SACK, unknown ones) is skipped by its length. Returns 0 and the timestamp
 * option's offset in *ts_off (0 if none; any byte offset); 1 likewise when
 * there is also a timestamp option of another length than 10, which Linux
 * ignores and so does Sluice (counted as malformed); 2 with *ts_off 0 if two
 * options of length 10 are present (Linux would use the last one, unseen by
 * a rewriter that took the first: dropped as tcp_ts_duplicate); -1 if an
 * option's length is 0, 1 or runs past the header.
 */
int pkt_tcp_options(const uint8_t *tcp, uint32_t hlen, uint8_t *ts_off);

/* The packet quoted inside an ICMP error. */
struct pkt_inner {
	uint16_t l3_off; /* from the start of the frame */
	uint16_t l4_off;
	uint16_t l4_avail; /* bytes of the inner L4 header present (>= 8) */
	uint8_t proto;
	uint32_t src, dst;
	uint16_t sport, dport;
};

/*
 * Parse the IP header + first 8 bytes quoted by the ICMP error that @m
 * describes (TCP or UDP only). 0, or -1 with m->drop set.
 */
int pkt_parse_icmp_inner(const uint8_t *frame, struct pkt_meta *m, struct pkt_inner *in);

static inline int pkt_icmp_is_error(uint8_t type)
{
	return type == 3 || type == 11 || type == 12 || type == 4;
}

#endif
