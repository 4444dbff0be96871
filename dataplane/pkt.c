/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "nat.h"
#include "pkt.h"

int pkt_tcp_options(const uint8_t *tcp, uint32_t hlen, uint8_t *ts_off)
{
	uint32_t i = 20;
	int bad_ts = 0, two = 0;

	/* What Linux puts on every segment after the SYN: NOP, NOP, timestamps. */
	if (hlen == 32 && nat_rd32(tcp + 20) == rte_cpu_to_be_32(0x0101080a)) {
		*ts_off = 22;
		return 0;
	}
	*ts_off = 0;
	while (i < hlen) {
		uint8_t kind = tcp[i];
		uint8_t olen;

		if (kind == 0) /* EOL: the rest is padding */
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hlen)
			return -1;
		olen = tcp[i + 1];
		if (olen < 2 || i + olen > hlen)
			return -1;
		/* Linux uses the last timestamp option of length 10 and skips
		 * others (tcp_parse_options()). */
		if (kind == 8 && olen != 10)
			bad_ts = 1;
		else if (kind == 8 && *ts_off != 0)
			two = 1;
		else if (kind == 8)
			*ts_off = (uint8_t)i;
		i += olen;
	}
	if (two) {
		*ts_off = 0;
		return 2;
	}
	return bad_ts;
}

/*
 * The IPv4 header checksum over @ihl bytes (a multiple of 4, at least 20):
 * 0 when it is right. 32-bit words into a 64-bit sum, folded once.
 */
static inline uint16_t pkt_ip_csum(const uint8_t *ip, uint32_t ihl)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < ihl; i += 4)
		sum += nat_rd32(ip + i);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int pkt_fail(struct pkt_meta *m, enum stats_drop reason)
{
	m->drop = (uint16_t)reason;
	return -1;
}

static int pkt_parse_l4(const uint8_t *frame, struct pkt_meta *m)
{
	const uint8_t *l4 = frame + m->l4_off;

	switch (m->proto) {
	case IPPROTO_TCP: {
		uint32_t hlen;
		int rc;

		if (m->l4_len < 20)
			return pkt_fail(m, STATS_DROP_TCP_TRUNCATED);
		hlen = (uint32_t)(l4[12] >> 4) * 4;
		if (hlen < 20 || hlen > m->l4_len)
			return pkt_fail(m, STATS_DROP_TCP_BAD_DOFF);
		rc = pkt_tcp_options(l4, hlen, &m->tcp_ts);
		if (rc < 0)
			return pkt_fail(m, STATS_DROP_TCP_BAD_OPTION);
		if (rc == 2)
			return pkt_fail(m, STATS_DROP_TCP_TS_DUPLICATE);
		m->tcp_ts_bad = (uint8_t)rc;
		m->tcp_hlen = (uint8_t)hlen;
		m->tcp_flags = l4[13];
		m->tcp_seq = rte_be_to_cpu_32(nat_rd32(l4 + 4));
		m->tcp_ack = rte_be_to_cpu_32(nat_rd32(l4 + 8));
		m->sport = nat_rd16(l4);
		m->dport = nat_rd16(l4 + 2);
		return 0;
	}
	case IPPROTO_UDP: {
		uint16_t ulen;

		if (m->l4_len < 8)
			return pkt_fail(m, STATS_DROP_UDP_TRUNCATED);
		ulen = rte_be_to_cpu_16(nat_rd16(l4 + 4));
		if (ulen < 8 || ulen > m->l4_len)
			return pkt_fail(m, STATS_DROP_UDP_TRUNCATED);
		m->sport = nat_rd16(l4);
		m->dport = nat_rd16(l4 + 2);
		return 0;
	}
	case IPPROTO_ICMP:
		if (m->l4_len < 8)
			return pkt_fail(m, STATS_DROP_ICMP_TRUNCATED);
		m->icmp_type = l4[0];
		m->icmp_code = l4[1];
		m->sport = nat_rd16(l4 + 4); /* echo identifier */
		return 0;
	default:
		return pkt_fail(m, STATS_DROP_L4_UNSUPPORTED);
	}
}

int pkt_parse(const uint8_t *frame, uint32_t len, struct pkt_meta *m)
{
	const uint8_t *ip;
	uint32_t avail, ihl, tot;
	uint16_t type, frag;

	memset(m, 0, sizeof(*m));
	if (len < RTE_ETHER_HDR_LEN)
		return pkt_fail(m, STATS_DROP_ETH_TRUNCATED);
	type = rte_be_to_cpu_16(nat_rd16(frame + 12));
	m->l3_off = RTE_ETHER_HDR_LEN;
	if (type == RTE_ETHER_TYPE_ARP) {
		m->kind = PKT_ARP;
		return 0;
	}
	if (type == RTE_ETHER_TYPE_IPV6)
		return pkt_fail(m, STATS_DROP_IPV6_UNSUPPORTED);
	if (type != RTE_ETHER_TYPE_IPV4)
		return pkt_fail(m, STATS_DROP_ETH_UNSUPPORTED);

	m->kind = PKT_IPV4;
	ip = frame + RTE_ETHER_HDR_LEN;
	avail = len - RTE_ETHER_HDR_LEN;
	if (avail < 1)
		return pkt_fail(m, STATS_DROP_IP_TRUNCATED);
	if ((ip[0] >> 4) != 4)
		return pkt_fail(m, STATS_DROP_IP_BAD_VERSION);
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	if (ihl < 20)
		return pkt_fail(m, STATS_DROP_IP_BAD_IHL);
	if (avail < ihl)
		return pkt_fail(m, STATS_DROP_IP_TRUNCATED);
	tot = rte_be_to_cpu_16(nat_rd16(ip + 2));
	/* Ethernet may pad past the IP packet; the reverse is truncation. */
	if (tot < ihl || tot > avail)
		return pkt_fail(m, STATS_DROP_IP_TRUNCATED);
	if (pkt_ip_csum(ip, ihl) != 0) /* 0 when the checksum is right */
		return pkt_fail(m, STATS_DROP_IP_BAD_CHECKSUM);
	frag = rte_be_to_cpu_16(nat_rd16(ip + 6));
	if (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
		return pkt_fail(m, STATS_DROP_IP_FRAGMENT);

	m->ttl = ip[8];
	m->proto = ip[9];
	m->src = nat_rd32(ip + 12);
	m->dst = nat_rd32(ip + 16);
	m->ip_len = (uint16_t)tot;
	m->l4_off = (uint16_t)(RTE_ETHER_HDR_LEN + ihl);
	m->l4_len = (uint16_t)(tot - ihl);
	return pkt_parse_l4(frame, m);
}

int pkt_parse_icmp_inner(const uint8_t *frame, struct pkt_meta *m, struct pkt_inner *in)
{
	const uint8_t *ip = frame + m->l4_off + 8;
	uint32_t avail = m->l4_len - 8u, ihl;

	memset(in, 0, sizeof(*in));
	if (m->l4_len < 8 + 20 || (ip[0] >> 4) != 4)
		goto bad;
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	if (ihl < 20 || avail < ihl + 8)
		goto bad;
	in->proto = ip[9];
	if (in->proto != IPPROTO_TCP && in->proto != IPPROTO_UDP)
		goto bad;
	/* A later fragment has no ports where we would read them. */
	if (rte_be_to_cpu_16(nat_rd16(ip + 6)) & RTE_IPV4_HDR_OFFSET_MASK)
		goto bad;
	in->l3_off = (uint16_t)(m->l4_off + 8);
	in->l4_off = (uint16_t)(in->l3_off + ihl);
	in->l4_avail = (uint16_t)(avail - ihl);
	in->src = nat_rd32(ip + 12);
	in->dst = nat_rd32(ip + 16);
	in->sport = nat_rd16(ip + ihl);
	in->dport = nat_rd16(ip + ihl + 2);
	return 0;
bad:
	m->drop = STATS_DROP_ICMP_TRUNCATED;
	return -1;
}
