/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test helpers: build Ethernet/IPv4 frames by hand, and a reference checksum
 * written independently of the dataplane's (byte-wise, big-endian words), so
 * that the code under test is never checked against itself.
 *
 * Addresses and ports in struct tf_spec are in host order; the frame holds
 * them in network order, as on the wire.
 */
#ifndef SLUICE_TEST_FRAME_H
#define SLUICE_TEST_FRAME_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TF_MAX 2048u
#define TF_ETH 14u

#define TF_IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static inline uint16_t tf_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t tf_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void tf_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void tf_wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Network-order value of a host-order address/port, as pkt_meta holds it. */
static inline uint32_t tf_n32(uint32_t host)
{
	uint8_t b[4];
	uint32_t v;

	tf_wr32(b, host);
	memcpy(&v, b, 4);
	return v;
}

static inline uint16_t tf_n16(uint16_t host)
{
	uint8_t b[2];
	uint16_t v;

	tf_wr16(b, host);
	memcpy(&v, b, 2);
	return v;
}

/* Reference one's complement sum, byte by byte; @skip (even offset) is left out. */
static inline uint32_t ref_sum(const uint8_t *p, uint32_t n, uint32_t sum, int64_t skip)
{
	for (uint32_t i = 0; i < n; i++) {
		if (skip >= 0 && (i == (uint32_t)skip || i == (uint32_t)skip + 1))
			continue;
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	}
	return sum;
}

static inline uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The IPv4 header checksum a full computation gives (host order). */
static inline uint16_t ref_ip_csum(const uint8_t *ip)
{
	return (uint16_t)~ref_fold(ref_sum(ip, (ip[0] & 0x0fu) * 4, 0, 10));
}

/* True if the IPv4 header at @ip verifies. */
static inline int ref_ip_ok(const uint8_t *ip)
{
	return ref_fold(ref_sum(ip, (ip[0] & 0x0fu) * 4, 0, -1)) == 0xffff;
}

static inline int64_t ref_l4_csum_off(uint8_t proto)
{
	return proto == 6 ? 16 : proto == 17 ? 6 : proto == 1 ? 2 : -1;
}

/*
 * The L4 checksum a full computation gives for the packet at @ip (TCP/UDP with
 * the pseudo-header, ICMP without), over the IP payload of @l4_size bytes. UDP
 * sends a computed 0 as 0xffff.
 */
static inline uint16_t ref_l4_csum_n(const uint8_t *ip, uint32_t l4_size)
{
	uint32_t ihl = (ip[0] & 0x0fu) * 4;
	uint8_t proto = ip[9];
	uint32_t sum = 0;
	uint16_t c;

	if (proto != 1) {
		sum = ref_sum(ip + 12, 8, 0, -1);
		sum += proto;
		sum += l4_size;
	}
	c = (uint16_t)~ref_fold(ref_sum(ip + ihl, l4_size, sum, ref_l4_csum_off(proto)));
	if (proto == 17 && c == 0)
		c = 0xffff;
	return c;
}

static inline uint16_t ref_l4_csum(const uint8_t *ip)
{
	return ref_l4_csum_n(ip, tf_rd16(ip + 2) - (ip[0] & 0x0fu) * 4);
}

/* The checksum field of the L4 header of the packet at @ip (host order). */
static inline uint16_t tf_l4_csum_field(const uint8_t *ip)
{
	return tf_rd16(ip + (ip[0] & 0x0fu) * 4 + ref_l4_csum_off(ip[9]));
}

/* Recompute the IP header checksum of the frame @f. */
static inline void tf_fix_ip(uint8_t *f)
{
	uint8_t *ip = f + TF_ETH;

	tf_wr16(ip + 10, ref_ip_csum(ip));
}

/* Recompute the L4 and IP checksums of the frame @f (UDP checksum 0 stays 0). */
static inline void tf_fix(uint8_t *f)
{
	uint8_t *ip = f + TF_ETH;
	uint8_t *l4 = ip + (ip[0] & 0x0fu) * 4;
	int64_t off = ref_l4_csum_off(ip[9]);

	if (off >= 0 && !(ip[9] == 17 && tf_rd16(l4 + 6) == 0))
		tf_wr16(l4 + off, ref_l4_csum(ip));
	tf_fix_ip(f);
}

struct tf_spec {
	uint8_t proto; /* 6, 17, 1 or anything (raw payload) */
	uint32_t src, dst;
	uint16_t sport, dport; /* ICMP: identifier and sequence */
	uint8_t ihl;	       /* 0: 5; options are NOPs */
	uint8_t ttl;	       /* 0: 64 */
	uint8_t tcp_flags;
	uint32_t seq, ack;
	const uint8_t *opts; /* TCP options, @optlen a multiple of 4 */
	uint8_t optlen;
	uint16_t payload; /* L4 payload bytes (pattern) */
	uint8_t icmp_type, icmp_code;
	uint16_t pad;	 /* Ethernet padding after the IP packet */
	int udp_no_csum; /* UDP checksum 0 */
};

static inline uint32_t tf_l4_hdr_size(const struct tf_spec *s)
{
	switch (s->proto) {
	case 6:
		return 20u + s->optlen;
	case 17:
	case 1:
		return 8;
	default:
		return 0;
	}
}

/* Build the frame @s describes into @f (TF_MAX bytes); returns its length. */
static inline uint32_t tf_build(uint8_t *f, const struct tf_spec *s)
{
	static const uint8_t mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t mac_src[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint32_t ihl = (s->ihl ? s->ihl : 5u) * 4;
	uint32_t l4size = tf_l4_hdr_size(s) + s->payload;
	uint8_t *ip = f + TF_ETH, *l4 = ip + ihl, *pl = l4 + tf_l4_hdr_size(s);

	memset(f, 0, TF_MAX);
	memcpy(f, mac_dst, 6);
	memcpy(f + 6, mac_src, 6);
	tf_wr16(f + 12, 0x0800);
	ip[0] = (uint8_t)(0x40 | ihl / 4);
	memset(ip + 20, 1, ihl - 20);
	tf_wr16(ip + 2, (uint16_t)(ihl + l4size));
	tf_wr16(ip + 4, 0x1234);
	tf_wr16(ip + 6, 0x4000); /* DF */
	ip[8] = s->ttl ? s->ttl : 64;
	ip[9] = s->proto;
	tf_wr32(ip + 12, s->src);
	tf_wr32(ip + 16, s->dst);
	switch (s->proto) {
	case 6:
		tf_wr16(l4, s->sport);
		tf_wr16(l4 + 2, s->dport);
		tf_wr32(l4 + 4, s->seq);
		tf_wr32(l4 + 8, s->ack);
		l4[12] = (uint8_t)(((20u + s->optlen) / 4) << 4);
		l4[13] = s->tcp_flags;
		tf_wr16(l4 + 14, 65535);
		if (s->optlen)
			memcpy(l4 + 20, s->opts, s->optlen);
		break;
	case 17:
		tf_wr16(l4, s->sport);
		tf_wr16(l4 + 2, s->dport);
		tf_wr16(l4 + 4, (uint16_t)l4size);
		break;
	case 1:
		l4[0] = s->icmp_type;
		l4[1] = s->icmp_code;
		tf_wr16(l4 + 4, s->sport);
		tf_wr16(l4 + 6, s->dport);
		break;
	default:
		break;
	}
	for (uint32_t i = 0; i < s->payload; i++)
		pl[i] = (uint8_t)(i * 7 + 3);
	if (s->proto == 17 && s->udp_no_csum) {
		tf_fix_ip(f);
	} else {
		if (s->proto == 17)
			tf_wr16(l4 + 6, 1); /* any non-zero: tf_fix fills it in */
		tf_fix(f);
	}
	return TF_ETH + ihl + l4size + s->pad;
}

/* Default endpoints: a client talking to a VIP. */
#define TF_CLIENT  TF_IP(192, 0, 2, 10)
#define TF_VIP	   TF_IP(198, 51, 100, 1)
#define TF_SNAT	   TF_IP(10, 1, 0, 1)
#define TF_BACKEND TF_IP(10, 2, 0, 7)

/* A heap copy of exactly @len bytes, so that ASan sees any over-read. */
static inline uint8_t *tf_exact(const uint8_t *f, uint32_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (p != NULL && len)
		memcpy(p, f, len);
	return p;
}

/* splitmix64: fixed-seed randomness for property tests. */
static inline uint64_t tf_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif
