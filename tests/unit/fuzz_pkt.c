/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target for the packet path that runs before any flow exists: pkt_parse,
 * then, on a copy of what it accepted, the rewrites the worker would apply
 * (nat_rewrite, nat_rewrite_icmp_error, icmp_tcp_rst, icmp_echo_reply,
 * icmp_error_build). Every buffer is a heap copy of exactly the frame's size,
 * so the sanitizers see any access past it. Beyond memory safety it checks
 * invariants that must hold for any input:
 *  - a rejected frame names a valid drop reason;
 *  - the metadata of an accepted frame lies inside the frame;
 *  - a rewritten frame still parses, its IP checksum still verifies, and an
 *    L4 checksum that verified before still verifies (UDP 0 stays 0); NAT
 *    changes no TCP byte past the ports but the checksum;
 *  - the TCP option walk agrees with an independent one (bad lists dropped as
 *    tcp_bad_option; two timestamp options of length 10 dropped as
 *    tcp_ts_duplicate; the offset of the one of length 10, also when
 *    tcp_ts_bad flags another of a wrong length);
 *  - timestamp rewriting (tsrw_packet(), with an offset drawn from the frame,
 *    both directions) changes only the TSval or TSecr field, by the offset,
 *    and the TCP checksum, which still verifies if it did;
 *  - the RST, echo reply and ICMP error we build parse and verify.
 *
 * Built two ways (tests/unit/meson.build):
 *  - with -DSLUICE_LIBFUZZER and -fsanitize=fuzzer: a libFuzzer target;
 *  - otherwise with a main() that replays files and directories, then a fixed
 *    number of generated frames (valid ones, then mutated):
 *      fuzz_pkt_replay [-n COUNT] [-s SEED] [-w DIR] [PATH...]
 *    -w writes the seed corpus (a handful of good frames) into DIR.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "icmp.h"
#include "nat.h"
#include "pkt.h"
#include "tsrw.h"

#define FUZZ_MAX_FRAME (65535u + 14u + 64u)

/* What the inputs reached, for the replay's summary line. */
static unsigned long fuzz_reached[12];
enum {
	FUZZ_DROP,
	FUZZ_ARP,
	FUZZ_TCP,
	FUZZ_UDP,
	FUZZ_ECHO,
	FUZZ_ICMP_ERR,
	FUZZ_INNER_OK,
	FUZZ_TCP_TS,
	FUZZ_TCP_TS_BAD,
	FUZZ_TCP_BAD_OPTION,
	FUZZ_TCP_TS_DUP
};

static void fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_pkt: invariant violated: %s\n", what);
		abort();
	}
}

/*
 * The L4 checksum of the packet at @ip verifies as a receiver checks it (the
 * sum over everything, field included, is 0xffff), or is an absent UDP one.
 */
static int l4_ok(const uint8_t *ip)
{
	uint32_t ihl = (ip[0] & 0x0fu) * 4, n = tf_rd16(ip + 2) - ihl, sum = 0;

	if (ip[9] == 17 && tf_rd16(ip + ihl + 6) == 0)
		return 1;
	if (ip[9] != 1)
		sum = ref_sum(ip + 12, 8, 0, -1) + ip[9] + n;
	return ref_fold(ref_sum(ip + ihl, n, sum, -1)) == 0xffff;
}

static void fuzz_nat(const uint8_t *f, size_t size, const struct pkt_meta *m)
{
	uint8_t *g = tf_exact(f, (uint32_t)size);
	const uint8_t *ip = f + m->l3_off;
	int was_ok = l4_ok(ip), udp0 = m->proto == 17 && tf_l4_csum_field(ip) == 0;
	struct pkt_meta m2;

	/* New tuple derived from the old one, so the fuzzer steers it too. */
	uint32_t src = ~m->dst;
	uint16_t dport = (uint16_t)(m->sport ^ 0xffffu);

	nat_rewrite(g, m, src, (uint16_t)(m->dport + 1), m->src ^ 0x0a0a0a0a, dport);
	fuzz_check(pkt_parse(g, (uint32_t)size, &m2) == 0, "rewritten frame parses");
	fuzz_check(ref_ip_ok(g + m->l3_off), "rewritten IP checksum verifies");
	fuzz_check(m2.src == src && m2.dport == dport, "rewritten tuple");
	if (m->proto == 6)
		for (uint32_t i = m->l4_off + 4u; i < size; i++)
			fuzz_check(g[i] == f[i] || i == m->l4_off + 16u || i == m->l4_off + 17u,
				   "NAT changes no TCP byte past the ports but the checksum");
	if (udp0)
		fuzz_check(tf_l4_csum_field(g + m->l3_off) == 0, "UDP checksum 0 stays 0");
	else if (was_ok)
		fuzz_check(l4_ok(g + m->l3_off), "L4 checksum still verifies");
	free(g);
}

static void fuzz_rst(const uint8_t *f, size_t size, const struct pkt_meta *m)
{
	uint8_t *g = tf_exact(f, (uint32_t)size);
	struct pkt_meta m2;
	uint32_t n = icmp_tcp_rst(g, m);

	fuzz_check(n == 40 && 14 + n <= size, "RST fits the frame");
	fuzz_check(pkt_parse(g, 14 + n, &m2) == 0, "RST parses");
	fuzz_check(m2.tcp_flags & 0x04, "RST has RST");
	fuzz_check(l4_ok(g + 14), "RST checksum verifies");
	free(g);
}

static void fuzz_error_build(const uint8_t *f, const struct pkt_meta *m)
{
	uint8_t out[14 + ICMP_ERROR_MAX_IP];
	struct pkt_meta m2;
	uint32_t n;

	memset(out, 0, 14);
	tf_wr16(out + 12, 0x0800);
	n = icmp_error_build(out + 14, ICMP_ERROR_MAX_IP, 11, 0, 0, m->dst, f + m->l3_off,
			     m->ip_len);
	fuzz_check(n >= 28 && n <= ICMP_ERROR_MAX_IP, "ICMP error length");
	fuzz_check(pkt_parse(out, 14 + n, &m2) == 0, "ICMP error parses");
	fuzz_check(l4_ok(out + 14), "ICMP error checksum verifies");
}

static void fuzz_echo(const uint8_t *f, size_t size, const struct pkt_meta *m)
{
	uint8_t *g = tf_exact(f, (uint32_t)size);
	int was_ok = l4_ok(f + m->l3_off);
	struct pkt_meta m2;

	icmp_echo_reply(g, m);
	fuzz_check(pkt_parse(g, (uint32_t)size, &m2) == 0, "echo reply parses");
	fuzz_check(m2.src == m->dst && m2.dst == m->src, "echo reply addresses");
	if (was_ok)
		fuzz_check(l4_ok(g + m->l3_off), "echo reply checksum verifies");
	free(g);
}

static void fuzz_icmp_error(const uint8_t *f, size_t size, struct pkt_meta *m)
{
	struct pkt_inner in;
	const uint8_t *iip;
	uint32_t ihl, itot;
	int inner_ip_ok, inner_l4_ok = 0, whole;
	struct pkt_meta m2;
	uint8_t *g;

	if (pkt_parse_icmp_inner(f, m, &in) != 0) {
		fuzz_check(m->drop == STATS_DROP_ICMP_TRUNCATED, "inner drop reason");
		return;
	}
	fuzz_reached[FUZZ_INNER_OK]++;
	fuzz_check(in.l3_off == m->l4_off + 8, "inner l3 offset");
	fuzz_check(in.l4_off + in.l4_avail == m->l4_off + m->l4_len, "inner l4 inside the ICMP");
	fuzz_check(in.l4_avail >= 8, "inner l4 has ports");
	iip = f + in.l3_off;
	ihl = in.l4_off - in.l3_off;
	itot = tf_rd16(iip + 2);
	inner_ip_ok = ref_ip_ok(iip);
	/* Only a packet quoted whole, checksum field included, can be verified. */
	whole = itot == ihl + in.l4_avail && in.l4_avail >= (in.proto == 6 ? 18 : 8);
	if (whole)
		inner_l4_ok = l4_ok(iip);

	g = tf_exact(f, (uint32_t)size);
	nat_rewrite_icmp_error(g, m, &in, m->dst, m->src ^ 1, in.dst, (uint16_t)(in.dport ^ 0x100),
			       in.src ^ 0x01000000, in.sport);
	fuzz_check(pkt_parse(g, (uint32_t)size, &m2) == 0, "translated error parses");
	fuzz_check(ref_ip_ok(g + m->l3_off), "translated outer IP checksum verifies");
	fuzz_check(l4_ok(g + m->l3_off), "translated ICMP checksum verifies");
	if (inner_ip_ok)
		fuzz_check(ref_ip_ok(g + in.l3_off), "translated inner IP checksum verifies");
	if (inner_l4_ok)
		fuzz_check(l4_ok(g + in.l3_off), "translated inner L4 checksum verifies");
	free(g);
}

/*
 * The options of the TCP header at @tcp of @hlen bytes, walked independently
 * of pkt_tcp_options(): -1 if a length is 0, 1 or runs past the header; -2
 * if there are two or more timestamp options of length 10; else the offset of
 * the one of length 10 (0 if none), with *bad set if there is also a
 * timestamp option of another length.
 */
static int ref_tcp_options(const uint8_t *tcp, uint32_t hlen, int *bad)
{
	uint32_t i = 20, ts = 0, n_ts10 = 0, len;

	*bad = 0;
	while (i < hlen && tcp[i] != 0) {
		len = tcp[i] == 1 ? 1 : i + 1 < hlen ? tcp[i + 1] : 0;
		if (len == 0 || (tcp[i] != 1 && len < 2) || len > hlen - i)
			return -1;
		if (tcp[i] == 8 && len == 10) {
			n_ts10++;
			ts = i;
		} else if (tcp[i] == 8) {
			*bad = 1;
		}
		i += len;
	}
	return n_ts10 > 1 ? -2 : (int)ts;
}

/* A flow offset drawn from the frame's bytes (FNV-1a), so that the fuzzer steers it. */
static uint32_t fuzz_ts_offset(const uint8_t *f, size_t size)
{
	static const uint32_t edge[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff };
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ f[i]) * 16777619u;
	return h % 8 == 0 ? edge[(h >> 3) % 5] : h;
}

/*
 * tsrw_packet() on a packet with a timestamp option, as the worker applies it
 * to a rewritten flow, each direction on its own copy.
 */
static void fuzz_tsrw(const uint8_t *f, size_t size, const struct pkt_meta *m)
{
	const uint32_t opt = m->l4_off + m->tcp_ts, off = fuzz_ts_offset(f, size);
	int was_ok = l4_ok(f + m->l3_off);

	for (int dir = FLOW_DIR_FWD; dir <= FLOW_DIR_REV; dir++) {
		/* FWD: TSval += off; REV: TSecr -= off if ACK is set. */
		uint32_t field = opt + (dir == FLOW_DIR_FWD ? 2u : 6u), v = tf_rd32(f + field);
		int moves = dir == FLOW_DIR_FWD || (m->tcp_flags & 0x10);
		uint32_t want = !moves ? v : dir == FLOW_DIR_FWD ? v + off : v - off;
		struct flow fl = { .ts = FLOW_TS_SEEN | FLOW_TS_REWRITE, .ts_off = off };
		uint8_t *g = tf_exact(f, (uint32_t)size);
		struct pkt_meta m2;

		fl.ts_max = (uint32_t)size; /* anything */
		fl.ts_credit = TSRW_CREDIT_MAX;
		if (!tsrw_packet(&fl, g + m->l4_off, m, (enum flow_dir)dir, 0)) {
			/* Too far ahead of ts_max: refused, untouched. */
			fuzz_check(dir == FLOW_DIR_FWD && (int32_t)(want - (uint32_t)size) >
								  (int32_t)TSRW_CREDIT_MAX,
				   "tsrw refuses only a TSval' beyond the credit");
			fuzz_check(memcmp(g, f, size) == 0, "a refused packet is untouched");
			free(g);
			continue;
		}
		fuzz_check(tf_rd32(g + field) == want, "TSval/TSecr moved by the offset");
		for (uint32_t i = 0; i < size; i++)
			fuzz_check(g[i] == f[i] || (i >= field && i < field + 4) ||
					   i == m->l4_off + 16u || i == m->l4_off + 17u,
				   "tsrw changes only its field and the TCP checksum");
		if (dir == FLOW_DIR_FWD)
			fuzz_check(fl.ts_max == ((int32_t)(want - (uint32_t)size) > 0 ?
							 want :
							 (uint32_t)size),
				   "ts_max is the newest TSval'");
		else
			fuzz_check(fl.ts_max == (uint32_t)size && (fl.ts & FLOW_TS_BACKEND),
				   "REV leaves ts_max and marks the backend");
		if (was_ok)
			fuzz_check(l4_ok(g + m->l3_off), "TCP checksum verifies after tsrw");
		fuzz_check(pkt_parse(g, (uint32_t)size, &m2) == 0 && m2.tcp_ts == m->tcp_ts,
			   "rewritten frame parses, same option");
		free(g);
	}
}

/* pkt_tcp_options()'s verdict on the TCP frame @f, accepted or not, against the reference. */
static void fuzz_tcp_options(const uint8_t *f, size_t size, const struct pkt_meta *m, int rc)
{
	uint32_t l4, hlen;
	int ref, bad;

	if (rc != 0) {
		int dup = m->drop == STATS_DROP_TCP_TS_DUPLICATE;

		if (m->drop != STATS_DROP_TCP_BAD_OPTION && !dup)
			return;
		/* Parsing got as far as the options: the headers are there. */
		l4 = 14u + (f[14] & 0x0fu) * 4;
		hlen = (uint32_t)(f[l4 + 12] >> 4) * 4;
		fuzz_check(l4 + hlen <= size && hlen >= 20, "bad option inside a TCP header");
		ref = ref_tcp_options(f + l4, hlen, &bad);
		if (dup) {
			fuzz_check(ref == -2, "dropped duplicate has two timestamp options");
			fuzz_reached[FUZZ_TCP_TS_DUP]++;
		} else {
			fuzz_check(ref == -1, "dropped option list is bad");
			fuzz_reached[FUZZ_TCP_BAD_OPTION]++;
		}
		return;
	}
	ref = ref_tcp_options(f + m->l4_off, m->tcp_hlen, &bad);
	fuzz_check(ref >= 0, "accepted option list is sound, one timestamp option at most");
	fuzz_check(m->tcp_ts == (uint32_t)ref, "timestamp option offset");
	fuzz_check(m->tcp_ts_bad == bad, "tcp_ts_bad");
	fuzz_reached[FUZZ_TCP_TS] += m->tcp_ts != 0;
	fuzz_reached[FUZZ_TCP_TS_BAD] += m->tcp_ts_bad;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_meta m;
	uint8_t *f;

	if (size > FUZZ_MAX_FRAME)
		return 0;
	f = tf_exact(data, (uint32_t)size);
	if (pkt_parse(f, (uint32_t)size, &m) != 0) {
		fuzz_check(m.drop < STATS_DROP_COUNT, "drop reason in range");
		fuzz_tcp_options(f, size, &m, -1);
		fuzz_reached[FUZZ_DROP]++;
		goto out;
	}
	if (m.kind == PKT_ARP) {
		fuzz_reached[FUZZ_ARP]++;
		goto out;
	}
	fuzz_check(m.kind == PKT_IPV4 && m.l3_off == 14, "IPv4 at 14");
	fuzz_check(m.l4_off >= 34 && m.l4_off <= 74, "l4 offset within IHL bounds");
	fuzz_check((uint32_t)m.l4_off + m.l4_len <= size, "l4 inside the frame");
	fuzz_check(m.ip_len == m.l4_len + (m.l4_off - 14u), "ip_len = ihl + l4_len");
	switch (m.proto) {
	case 6:
		fuzz_check(m.tcp_hlen >= 20 && m.tcp_hlen <= m.l4_len && m.tcp_hlen % 4 == 0,
			   "TCP header length");
		if (m.tcp_ts) {
			fuzz_check(m.tcp_ts >= 20 && m.tcp_ts + 10u <= m.tcp_hlen, "TS in header");
			fuzz_check(f[m.l4_off + m.tcp_ts] == 8 && f[m.l4_off + m.tcp_ts + 1] == 10,
				   "TS option");
		}
		fuzz_reached[FUZZ_TCP]++;
		fuzz_tcp_options(f, size, &m, 0);
		if (m.tcp_ts != 0)
			fuzz_tsrw(f, size, &m);
		fuzz_nat(f, size, &m);
		fuzz_rst(f, size, &m);
		fuzz_error_build(f, &m);
		break;
	case 17:
		fuzz_check(m.l4_len >= 8, "UDP header");
		fuzz_reached[FUZZ_UDP]++;
		fuzz_nat(f, size, &m);
		fuzz_error_build(f, &m);
		break;
	case 1:
		fuzz_check(m.l4_len >= 8, "ICMP header");
		if (m.icmp_type == 8) {
			fuzz_reached[FUZZ_ECHO]++;
			fuzz_echo(f, size, &m);
		} else if (pkt_icmp_is_error(m.icmp_type)) {
			fuzz_reached[FUZZ_ICMP_ERR]++;
			fuzz_icmp_error(f, size, &m);
		}
		break;
	default:
		fuzz_check(0, "only TCP, UDP and ICMP are accepted");
	}
out:
	free(f);
	return 0;
}

#ifndef SLUICE_LIBFUZZER

/* ---- replay and generation ---- */

static const uint8_t *gen_opts(uint64_t *seed, uint8_t *n)
{
	static uint8_t o[40];
	uint8_t len = (uint8_t)(4 * (tf_rand(seed) % 11)), i = 0;

	memset(o, 0, sizeof(o));
	while (i < len) {
		uint64_t r = tf_rand(seed);
		uint8_t k = (uint8_t)(r % 10), want;

		switch (k) {
		case 0: /* NOP */
		case 1:
			o[i++] = 1;
			continue;
		case 2:
			o[i++] = 0; /* EOL: the rest is padding */
			continue;
		case 3:
			want = 10, o[i] = 8; /* timestamp */
			break;
		case 4:
			want = 4, o[i] = 2; /* MSS */
			break;
		case 5:
			want = 3, o[i] = 3; /* window scale */
			break;
		case 6:
			want = 2, o[i] = 4; /* SACK permitted */
			break;
		case 7: /* timestamp of a wrong length */
			want = (r >> 8) % 2 ? 8 : 12, o[i] = 8;
			break;
		default: /* anything, any length, including 0 and 1 */
			want = (uint8_t)((r >> 8) % 14), o[i] = (uint8_t)(r >> 16);
			break;
		}
		if (i + 1 < len)
			o[i + 1] = want;
		for (uint8_t j = 2; j < want && i + j < len; j++)
			o[i + j] = (uint8_t)tf_rand(seed);
		i = (uint8_t)(i + (want < 2 ? 2 : want));
	}
	*n = len;
	return o;
}

static uint32_t gen_frame(uint8_t *f, uint64_t *seed, int depth)
{
	static const uint8_t protos[] = { 6, 6, 6, 17, 17, 1, 1, 47 };
	static const uint8_t icmp_types[] = { 8, 3, 11, 0, 4, 12, 5, 13 };
	struct tf_spec s = { 0 };
	uint8_t inner[TF_MAX];
	uint32_t len, ilen = 0, quote = 0, hdr;
	uint64_t r = tf_rand(seed);

	s.proto = protos[r % sizeof(protos)];
	s.src = (uint32_t)tf_rand(seed);
	s.dst = (uint32_t)tf_rand(seed);
	s.sport = (uint16_t)tf_rand(seed);
	s.dport = (uint16_t)tf_rand(seed);
	s.ihl = (uint8_t)((r >> 8) % 4 == 0 ? 5 + (r >> 16) % 11 : 5);
	s.ttl = (uint8_t)(r >> 24);
	s.tcp_flags = (uint8_t)(r >> 32);
	s.seq = (uint32_t)tf_rand(seed);
	s.ack = (uint32_t)tf_rand(seed);
	s.payload = (uint16_t)((r >> 40) % 4 == 0 ? (r >> 44) % 1400 : (r >> 44) % 40);
	s.udp_no_csum = (r >> 60) % 8 == 0;
	s.pad = (uint16_t)((r >> 56) % 4 == 0 ? (r >> 48) % 40 : 0);
	if (s.proto == 6)
		s.opts = gen_opts(seed, &s.optlen);
	if (s.proto == 1) {
		s.icmp_type = icmp_types[tf_rand(seed) % sizeof(icmp_types)];
		if (pkt_icmp_is_error(s.icmp_type) && depth == 0) {
			ilen = gen_frame(inner, seed, 1);
			ilen = ilen > 14 ? ilen - 14 : 0;
			quote = (uint32_t)(tf_rand(seed) % (ilen + 1));
			if (tf_rand(seed) & 1 && ilen > 0)
				quote = ilen; /* whole packet: inner L4 checksum is checked */
			s.payload = (uint16_t)quote;
		}
	}
	len = tf_build(f, &s);
	hdr = TF_ETH + s.ihl * 4u + tf_l4_hdr_size(&s);
	if (quote > 0)
		memcpy(f + hdr, inner + 14, quote);
	else
		for (uint32_t i = hdr; i < len - s.pad; i++)
			f[i] = (uint8_t)tf_rand(seed);
	tf_fix(f);

	/* Mutate half of them. */
	r = tf_rand(seed);
	if (depth == 0 && r % 2) {
		int n = 1 + (int)((r >> 1) % 4);

		for (int i = 0; i < n; i++) {
			uint64_t x = tf_rand(seed);
			uint32_t lim = len < 100 ? len : 100;

			if (lim == 0)
				break;

			switch (x % 6) {
			case 0: /* flip a header byte */
				f[(x >> 8) % lim] ^= (uint8_t)(1u << ((x >> 40) % 8));
				break;
			case 1: /* a random header byte */
				f[(x >> 8) % lim] = (uint8_t)(x >> 40);
				break;
			case 2: /* truncate */
				len = (uint32_t)((x >> 8) % (len + 1));
				break;
			case 3: /* IP total length */
				tf_wr16(f + 16, (uint16_t)(x >> 8));
				break;
			case 4: /* TCP data offset or UDP length */
				if (s.proto == 6)
					f[TF_ETH + s.ihl * 4u + 12] = (uint8_t)(x >> 8);
				else
					tf_wr16(f + TF_ETH + s.ihl * 4u + 4, (uint16_t)(x >> 8));
				break;
			default: /* ethertype */
				tf_wr16(f + 12, (x >> 8) % 2 ? 0x0806 : (uint16_t)(x >> 16));
				break;
			}
		}
		if ((r >> 8) % 4 != 0)
			tf_fix_ip(f); /* so that deeper checks are reached */
	}
	return len;
}

static int replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (fp == NULL) {
		perror(path);
		return -1;
	}
	buf = malloc(FUZZ_MAX_FRAME + 1);
	if (buf == NULL) {
		fclose(fp);
		return -1;
	}
	n = fread(buf, 1, FUZZ_MAX_FRAME + 1, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int replay_path(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int count = 0;

	if (d == NULL)
		return replay_file(path) == 0 ? 1 : -1;
	while ((de = readdir(d)) != NULL) {
		char p[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (replay_file(p) < 0) {
			closedir(d);
			return -1;
		}
		count++;
	}
	closedir(d);
	return count;
}

/* The seed corpus: one good frame of each kind the parser accepts. */
static int write_corpus(const char *dir)
{
	static const uint8_t ts_opts[20] = { 2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 1,
					     2, 3, 0, 0,    0, 0, 1, 3,	 3, 7 };
	struct tf_spec specs[] = {
		{ .proto = 6,
		  .src = TF_CLIENT,
		  .dst = TF_VIP,
		  .sport = 40000,
		  .dport = 80,
		  .tcp_flags = 0x02,
		  .seq = 1,
		  .opts = ts_opts,
		  .optlen = 20 },
		{ .proto = 6,
		  .src = TF_CLIENT,
		  .dst = TF_VIP,
		  .sport = 40000,
		  .dport = 80,
		  .tcp_flags = 0x18,
		  .seq = 2,
		  .ack = 3,
		  .payload = 100,
		  .ihl = 6 },
		{ .proto = 17,
		  .src = TF_CLIENT,
		  .dst = TF_VIP,
		  .sport = 5353,
		  .dport = 53,
		  .payload = 33,
		  .pad = 0 },
		{ .proto = 17,
		  .src = TF_CLIENT,
		  .dst = TF_VIP,
		  .sport = 1,
		  .dport = 2,
		  .udp_no_csum = 1,
		  .pad = 18 },
		{ .proto = 1,
		  .src = TF_CLIENT,
		  .dst = TF_VIP,
		  .icmp_type = 8,
		  .sport = 7,
		  .dport = 1,
		  .payload = 56 },
	};
	uint8_t f[TF_MAX], inner[TF_MAX];
	uint32_t len, n = 0;
	char p[4096];
	FILE *fp;

	for (size_t i = 0; i <= sizeof(specs) / sizeof(specs[0]) + 1; i++) {
		if (i < sizeof(specs) / sizeof(specs[0])) {
			len = tf_build(f, &specs[i]);
		} else if (i == sizeof(specs) / sizeof(specs[0])) {
			/* ICMP port unreachable quoting the first TCP SYN whole */
			struct tf_spec e = { .proto = 1,
					     .src = TF_BACKEND,
					     .dst = TF_SNAT,
					     .icmp_type = 3,
					     .icmp_code = 3 };
			uint32_t ilen = tf_build(inner, &specs[0]) - 14;

			e.payload = (uint16_t)ilen;
			len = tf_build(f, &e);
			memcpy(f + 14 + 28, inner + 14, ilen);
			tf_fix(f);
		} else {
			/* ARP request */
			memset(f, 0, 42);
			memset(f, 0xff, 6);
			tf_wr16(f + 12, 0x0806);
			tf_wr16(f + 14, 1);
			tf_wr16(f + 16, 0x0800);
			f[18] = 6;
			f[19] = 4;
			tf_wr16(f + 20, 1);
			len = 42;
		}
		snprintf(p, sizeof(p), "%s/seed-%02u", dir, n++);
		fp = fopen(p, "wb");
		if (fp == NULL || fwrite(f, 1, len, fp) != len) {
			perror(p);
			if (fp)
				fclose(fp);
			return -1;
		}
		fclose(fp);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long count = 200000;
	uint64_t seed = 0x5110ce;
	uint8_t f[TF_MAX];
	int files = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			count = strtoul(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
			return write_corpus(argv[++i]) == 0 ? 0 : 1;
		} else {
			int n = replay_path(argv[i]);

			if (n < 0)
				return 1;
			files += n;
		}
	}
	for (unsigned long i = 0; i < count; i++) {
		uint32_t len = gen_frame(f, &seed, 0);

		LLVMFuzzerTestOneInput(f, len);
	}
	printf("fuzz_pkt: %d files and %lu generated frames, no invariant violated\n"
	       "  dropped %lu, arp %lu, tcp %lu, udp %lu, echo %lu, icmp errors %lu (inner ok %lu)\n"
	       "  tcp with a timestamp option %lu, with a malformed one %lu, bad option lists %lu,\n"
	       "  duplicate timestamp options %lu\n",
	       files, count, fuzz_reached[FUZZ_DROP], fuzz_reached[FUZZ_ARP],
	       fuzz_reached[FUZZ_TCP], fuzz_reached[FUZZ_UDP], fuzz_reached[FUZZ_ECHO],
	       fuzz_reached[FUZZ_ICMP_ERR], fuzz_reached[FUZZ_INNER_OK], fuzz_reached[FUZZ_TCP_TS],
	       fuzz_reached[FUZZ_TCP_TS_BAD], fuzz_reached[FUZZ_TCP_BAD_OPTION],
	       fuzz_reached[FUZZ_TCP_TS_DUP]);
	return 0;
}

#endif
