/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include "nat.h"

uint16_t nat_csum_full(const void *data, uint32_t len, uint32_t initial)
{
	const uint8_t *p = data;
	uint64_t sum = initial;
	uint32_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += nat_rd16(p + i);
	if (i < len) {
		uint8_t last[2] = { p[i], 0 };

		sum += nat_rd16(last);
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void nat_ip_csum_set(uint8_t *ip)
{
	uint32_t hlen = (uint32_t)(ip[0] & 0x0f) * 4;

	nat_wr16(ip + 10, 0);
	nat_wr16(ip + 10, nat_csum_full(ip, hlen, 0));
}

/* Offset of the L4 checksum field, or 0 when it has none we may touch. */
static inline uint32_t nat_l4_csum_off(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 0;
}

/*
 * Change one address and one port of a header pair. @ip_field and @port_field
 * point into the IP and L4 headers; @l4csum is the L4 checksum field or NULL.
 */
static inline void nat_set_addr_port(uint8_t *ip, uint8_t *ip_field, uint8_t *port_field,
				     uint8_t *l4csum, int udp, uint32_t addr, uint16_t port)
{
	uint32_t old_addr = nat_rd32(ip_field);
	uint16_t old_port = nat_rd16(port_field);

	nat_wr16(ip + 10, nat_csum32(nat_rd16(ip + 10), old_addr, addr));
	if (l4csum != NULL && !(udp && nat_rd16(l4csum) == 0)) {
		uint16_t c = nat_rd16(l4csum);

		c = nat_csum32(c, old_addr, addr); /* pseudo-header */
		c = nat_csum16(c, old_port, port);
		if (udp && c == 0)
			c = 0xffff;
		nat_wr16(l4csum, c);
	}
	nat_wr32(ip_field, addr);
	nat_wr16(port_field, port);
}

static inline void nat_ttl_dec(uint8_t *ip)
{
	uint16_t old = nat_rd16(ip + 8); /* TTL and protocol share a word */

	ip[8]--;
	nat_wr16(ip + 10, nat_csum16(nat_rd16(ip + 10), old, nat_rd16(ip + 8)));
}

/* ~old + new of a 32-bit field, as 16-bit words still to fold (RFC 1624, eqn. 3). */
static inline uint64_t nat_delta32(uint32_t old, uint32_t new)
{
	return (uint64_t)(uint16_t) ~(old >> 16) + (uint16_t)~old + (new >> 16) + (uint16_t) new;
}

static inline uint64_t nat_delta16(uint16_t old, uint16_t new)
{
	return (uint64_t)(uint16_t)~old + new;
}

/* ~(~csum + delta), folded to 16 bits. */
static inline uint16_t nat_csum_apply(uint16_t csum, uint64_t delta)
{
	uint64_t sum = (uint16_t)~csum + delta;

	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * The per-packet rewrite: both addresses, both ports and the TTL, each
 * checksum folded once over all the changed words (the same arithmetic as
 * nat_set_addr_port() word by word, in fewer steps).
 */
void nat_rewrite(uint8_t *frame, const struct pkt_meta *m, uint32_t src, uint16_t sport,
		 uint32_t dst, uint16_t dport)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *l4 = frame + m->l4_off;
	uint32_t coff = nat_l4_csum_off(m->proto);
	uint16_t ttl_old = nat_rd16(ip + 8); /* TTL and protocol share a word */
	uint64_t d_addr = nat_delta32(nat_rd32(ip + 12), src) + nat_delta32(nat_rd32(ip + 16), dst);

	ip[8]--;
	nat_wr16(ip + 10, nat_csum_apply(nat_rd16(ip + 10),
					 d_addr + nat_delta16(ttl_old, nat_rd16(ip + 8))));
	nat_wr32(ip + 12, src);
	nat_wr32(ip + 16, dst);
	if (coff != 0) {
		uint16_t c = nat_rd16(l4 + coff);
		int udp = m->proto == IPPROTO_UDP;

		/* A UDP checksum of 0 means none: it stays 0. */
		if (!(udp && c == 0)) {
			c = nat_csum_apply(c, d_addr + nat_delta16(nat_rd16(l4), sport) +
						      nat_delta16(nat_rd16(l4 + 2), dport));
			nat_wr16(l4 + coff, udp && c == 0 ? 0xffff : c);
		}
	}
	nat_wr16(l4, sport);
	nat_wr16(l4 + 2, dport);
}

void nat_rewrite_icmp_error(uint8_t *frame, const struct pkt_meta *m, const struct pkt_inner *in,
			    uint32_t outer_src, uint32_t outer_dst, uint32_t isrc, uint16_t isport,
			    uint32_t idst, uint16_t idport)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	uint8_t *iip = frame + in->l3_off;
	uint8_t *il4 = frame + in->l4_off;
	uint32_t coff = nat_l4_csum_off(in->proto);
	/* The quoted L4 checksum is updated only if it was quoted whole. */
	uint8_t *icsum = in->l4_avail >= coff + 2 ? il4 + coff : NULL;
	int udp = in->proto == IPPROTO_UDP;

	nat_set_addr_port(iip, iip + 12, il4, icsum, udp, isrc, isport);
	nat_set_addr_port(iip, iip + 16, il4 + 2, icsum, udp, idst, idport);

	nat_wr16(ip + 10, nat_csum32(nat_rd16(ip + 10), nat_rd32(ip + 12), outer_src));
	nat_wr32(ip + 12, outer_src);
	nat_wr16(ip + 10, nat_csum32(nat_rd16(ip + 10), nat_rd32(ip + 16), outer_dst));
	nat_wr32(ip + 16, outer_dst);
	nat_ttl_dec(ip);

	/* Errors are rare; a full ICMP checksum is simplest and always right. */
	nat_wr16(icmp + 2, 0);
	nat_wr16(icmp + 2, nat_csum_full(icmp, m->l4_len, 0));
}
