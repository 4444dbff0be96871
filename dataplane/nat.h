/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nat: header rewriting with incremental checksum updates (RFC 1624).
 *
 * All functions work in place on a frame already accepted by pkt_parse(),
 * whose metadata says where the headers are; they write only inside those
 * headers. Values are in network byte order. Checksum arithmetic is done on
 * raw 16-bit words, which is byte-order independent for one's complement sums.
 */
#ifndef SLUICE_NAT_H
#define SLUICE_NAT_H

#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>

#include "pkt.h"

/* HC' = ~(~HC + ~m + m') for one 16-bit word (RFC 1624, eqn. 3). */
static inline uint16_t nat_csum16(uint16_t csum, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint16_t)~csum + (uint32_t)(uint16_t)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint16_t nat_csum32(uint16_t csum, uint32_t old, uint32_t new)
{
	csum = nat_csum16(csum, (uint16_t)(old >> 16), (uint16_t)(new >> 16));
	return nat_csum16(csum, (uint16_t)old, (uint16_t) new);
}

static inline uint16_t nat_rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t nat_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline void nat_wr16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static inline void nat_wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/*
 * Add @delta (mod 2^32) to the big-endian 32-bit field at byte offset @off of
 * the TCP header at @tcp and update the TCP checksum incrementally. Options
 * may put the field at any byte offset: at an odd one it straddles three
 * checksum words, which are updated one by one. The field and the words
 * around it lie inside the header (a timestamp option at an odd offset ends
 * before the header's 4-byte boundary). Returns the new value, host order.
 */
static inline uint32_t nat_tcp_add32(uint8_t *tcp, uint32_t off, uint32_t delta)
{
	uint32_t old = nat_rd32(tcp + off);
	uint32_t val = rte_be_to_cpu_32(old) + delta;
	uint16_t c = nat_rd16(tcp + 16);

	if ((off & 1) == 0) {
		c = nat_csum32(c, old, rte_cpu_to_be_32(val));
		nat_wr32(tcp + off, rte_cpu_to_be_32(val));
	} else {
		uint8_t *w = tcp + off - 1;
		uint16_t w0 = nat_rd16(w), w1 = nat_rd16(w + 2), w2 = nat_rd16(w + 4);

		nat_wr32(tcp + off, rte_cpu_to_be_32(val));
		c = nat_csum16(c, w0, nat_rd16(w));
		c = nat_csum16(c, w1, nat_rd16(w + 2));
		c = nat_csum16(c, w2, nat_rd16(w + 4));
	}
	nat_wr16(tcp + 16, c);
	return val;
}

/* The 32-bit field at byte offset @off of @p, host order. */
static inline uint32_t nat_rd32_host(const uint8_t *p, uint32_t off)
{
	return rte_be_to_cpu_32(nat_rd32(p + off));
}

/* Full one's complement checksum over @len bytes (slow path and tests). */
uint16_t nat_csum_full(const void *data, uint32_t len, uint32_t initial);

/* Recompute an IPv4 header checksum in place (headers we build ourselves). */
void nat_ip_csum_set(uint8_t *ip);

/*
 * Rewrite the IPv4 addresses and TCP/UDP ports of the packet @m describes to
 * (@src, @sport) -> (@dst, @dport) and decrement its TTL, updating the IP and
 * L4 checksums incrementally. A UDP checksum of 0 (none) stays 0; a computed
 * 0 is sent as 0xffff. The caller has checked that TTL > 1.
 */
void nat_rewrite(uint8_t *frame, const struct pkt_meta *m, uint32_t src, uint16_t sport,
		 uint32_t dst, uint16_t dport);

/*
 * Rewrite an ICMP error about a translated flow: the outer destination to
 * @outer_dst and source to @outer_src (TTL decremented), the quoted packet's
 * addresses and ports to (@isrc,@isport) -> (@idst,@idport), its IP checksum
 * and, where the quoted L4 header holds it, its L4 checksum. The ICMP checksum
 * is recomputed over the whole message.
 */
void nat_rewrite_icmp_error(uint8_t *frame, const struct pkt_meta *m, const struct pkt_inner *in,
			    uint32_t outer_src, uint32_t outer_dst, uint32_t isrc, uint16_t isport,
			    uint32_t idst, uint16_t idport);

#endif
