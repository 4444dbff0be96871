/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nat: incremental checksum updates checked against a full recomputation by
 * an independent reference, over many random packets (fixed seeds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "nat.h"
#include "pkt.h"

#define ITERATIONS 4000

static uint8_t fr[TF_MAX];

static void parse_ok(const uint8_t *f, uint32_t len, struct pkt_meta *m)
{
	int rc = pkt_parse(f, len, m);

	if (rc != 0)
		fail_msg("frame does not parse: %s", stats_drop_name(m->drop));
}

/* Both checksums of the frame equal what a full computation gives. */
static void assert_csums_full(const uint8_t *f)
{
	const uint8_t *ip = f + TF_ETH;

	assert_int_equal(tf_rd16(ip + 10), ref_ip_csum(ip));
	assert_true(ref_ip_ok(ip));
	if (ip[9] == 17 && tf_l4_csum_field(ip) == 0)
		return;
	assert_int_equal(tf_l4_csum_field(ip), ref_l4_csum(ip));
}

/* A random TCP or UDP frame: addresses, ports, IP/TCP options, payload. */
static uint32_t random_frame(uint8_t *f, uint8_t proto, uint64_t *seed)
{
	static uint8_t opts[40];
	struct tf_spec s = {
		.proto = proto,
		.src = (uint32_t)tf_rand(seed),
		.dst = (uint32_t)tf_rand(seed),
		.sport = (uint16_t)tf_rand(seed),
		.dport = (uint16_t)tf_rand(seed),
		.ihl = (uint8_t)(5 + tf_rand(seed) % 11),
		.ttl = (uint8_t)(2 + tf_rand(seed) % 254),
		.tcp_flags = (uint8_t)tf_rand(seed),
		.seq = (uint32_t)tf_rand(seed),
		.ack = (uint32_t)tf_rand(seed),
		.payload = (uint16_t)(tf_rand(seed) % 1401),
	};
	uint32_t len, ihl;

	if (proto == 6) {
		memset(opts, 1, sizeof(opts)); /* NOPs */
		s.opts = opts;
		s.optlen = (uint8_t)(4 * (tf_rand(seed) % 11));
	}
	len = tf_build(f, &s);
	ihl = s.ihl * 4u;
	/* Random payload, then the right checksums for it. */
	for (uint32_t i = TF_ETH + ihl + tf_l4_hdr_size(&s); i < len; i++)
		f[i] = (uint8_t)tf_rand(seed);
	tf_fix(f);
	return len;
}

static void check_rewrite(uint8_t proto, uint64_t seed)
{
	for (int it = 0; it < ITERATIONS; it++) {
		uint8_t orig[TF_MAX];
		struct pkt_meta m, m2;
		uint32_t len = random_frame(fr, proto, &seed);
		uint32_t src = (uint32_t)tf_rand(&seed), dst = (uint32_t)tf_rand(&seed);
		uint16_t sport = (uint16_t)tf_rand(&seed), dport = (uint16_t)tf_rand(&seed);
		uint8_t *ip = fr + TF_ETH, *l4;

		memcpy(orig, fr, len);
		parse_ok(fr, len, &m);
		l4 = fr + m.l4_off;
		/* Client -> backend. */
		nat_rewrite(fr, &m, src, sport, dst, dport);
		assert_int_equal(nat_rd32(ip + 12), src);
		assert_int_equal(nat_rd32(ip + 16), dst);
		assert_int_equal(nat_rd16(l4), sport);
		assert_int_equal(nat_rd16(l4 + 2), dport);
		assert_int_equal(ip[8], orig[TF_ETH + 8] - 1);
		assert_csums_full(fr);
		/* And back: everything but TTL and IP checksum is restored. */
		parse_ok(fr, len, &m2);
		nat_rewrite(fr, &m2, m.src, m.sport, m.dst, m.dport);
		assert_int_equal(ip[8], orig[TF_ETH + 8] - 2);
		assert_csums_full(fr);
		fr[TF_ETH + 8] = orig[TF_ETH + 8];
		fr[TF_ETH + 10] = orig[TF_ETH + 10];
		fr[TF_ETH + 11] = orig[TF_ETH + 11];
		assert_memory_equal(fr, orig, len);
	}
}

static void tcp_rewrite_matches_full_checksum(void **state)
{
	(void)state;
	check_rewrite(6, 0x7c9);
}

static void udp_rewrite_matches_full_checksum(void **state)
{
	(void)state;
	check_rewrite(17, 0x11d9);
}

static void ttl_decrement_keeps_ip_checksum(void **state)
{
	(void)state;
	for (unsigned ttl = 1; ttl <= 255; ttl++) {
		struct tf_spec s = { .proto = 6,
				     .src = TF_CLIENT,
				     .dst = TF_VIP,
				     .sport = 1,
				     .dport = 2,
				     .ttl = (uint8_t)ttl };
		struct pkt_meta m;
		uint32_t len = tf_build(fr, &s);

		parse_ok(fr, len, &m);
		nat_rewrite(fr, &m, m.src, m.sport, m.dst, m.dport);
		assert_int_equal(fr[TF_ETH + 8], ttl - 1);
		assert_csums_full(fr);
	}
}

static void udp_checksum_zero_stays_zero(void **state)
{
	uint64_t seed = 0x2e0;

	(void)state;
	for (int it = 0; it < 1000; it++) {
		struct tf_spec s = { .proto = 17, .udp_no_csum = 1 };
		struct pkt_meta m;
		uint32_t len;

		s.src = (uint32_t)tf_rand(&seed);
		s.dst = (uint32_t)tf_rand(&seed);
		s.sport = (uint16_t)tf_rand(&seed);
		s.payload = (uint16_t)(tf_rand(&seed) % 200);
		len = tf_build(fr, &s);
		parse_ok(fr, len, &m);
		nat_rewrite(fr, &m, (uint32_t)tf_rand(&seed), (uint16_t)tf_rand(&seed),
			    (uint32_t)tf_rand(&seed), (uint16_t)tf_rand(&seed));
		assert_int_equal(tf_rd16(fr + m.l4_off + 6), 0);
		assert_int_equal(tf_rd16(fr + TF_ETH + 10), ref_ip_csum(fr + TF_ETH));
	}
}

/*
 * Make the UDP packet in @f, once rewritten to the given tuple, checksum to
 * exactly 0 (by choosing its first payload word), then restore its tuple and
 * give it a correct checksum for that.
 */
static void make_udp_sum_zero_after(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst,
				    uint16_t dport)
{
	uint8_t *ip = f + TF_ETH, *udp = ip + 20;
	uint8_t keep[12];
	uint16_t c;

	memcpy(keep, ip + 12, 8);
	memcpy(keep + 8, udp, 4);
	nat_wr32(ip + 12, src);
	nat_wr32(ip + 16, dst);
	nat_wr16(udp, sport);
	nat_wr16(udp + 2, dport);
	tf_wr16(udp + 8, 0);
	/* With w = C the sum becomes 0xffff, so the checksum is 0. */
	c = ref_l4_csum(ip);
	tf_wr16(udp + 8, c);
	assert_int_equal(ref_l4_csum(ip), 0xffff); /* a computed 0, as UDP sends it */
	memcpy(ip + 12, keep, 8);
	memcpy(udp, keep + 8, 4);
	tf_fix(f);
}

static void udp_checksum_that_would_be_zero_is_sent_as_ffff(void **state)
{
	uint64_t seed = 0xffff;

	(void)state;
	for (int it = 0; it < 200; it++) {
		struct tf_spec s = { .proto = 17, .payload = 6 };
		uint32_t src = (uint32_t)tf_rand(&seed), dst = (uint32_t)tf_rand(&seed);
		uint16_t sport = (uint16_t)tf_rand(&seed), dport = (uint16_t)tf_rand(&seed);
		struct pkt_meta m;
		uint32_t len;

		s.src = (uint32_t)tf_rand(&seed);
		s.dst = (uint32_t)tf_rand(&seed);
		s.sport = (uint16_t)tf_rand(&seed);
		s.dport = (uint16_t)tf_rand(&seed);
		len = tf_build(fr, &s);
		make_udp_sum_zero_after(fr, src, sport, dst, dport);
		assert_int_not_equal(tf_rd16(fr + TF_ETH + 20 + 6), 0);
		parse_ok(fr, len, &m);
		nat_rewrite(fr, &m, src, sport, dst, dport);
		assert_int_equal(tf_rd16(fr + TF_ETH + 20 + 6), 0xffff);
		assert_csums_full(fr);
	}
}

static void tcp_checksum_that_becomes_zero_is_zero(void **state)
{
	uint64_t seed = 0x7c0;

	(void)state;
	for (int it = 0; it < 200; it++) {
		struct tf_spec s = { .proto = 6, .payload = 2 };
		uint32_t src = (uint32_t)tf_rand(&seed), dst = (uint32_t)tf_rand(&seed);
		uint16_t sport = (uint16_t)tf_rand(&seed), dport = (uint16_t)tf_rand(&seed);
		uint8_t *ip = fr + TF_ETH, *tcp = ip + 20;
		struct pkt_meta m;
		uint32_t len;

		s.src = (uint32_t)tf_rand(&seed);
		s.dst = (uint32_t)tf_rand(&seed);
		s.sport = (uint16_t)tf_rand(&seed);
		s.dport = (uint16_t)tf_rand(&seed);
		len = tf_build(fr, &s);
		parse_ok(fr, len, &m);
		/* Choose the payload word so that the rewritten checksum is 0. */
		nat_rewrite(fr, &m, src, sport, dst, dport);
		tf_wr16(tcp + 20, 0);
		tf_wr16(tcp + 20, ref_l4_csum(ip));
		tf_fix(fr);
		assert_int_equal(tf_rd16(tcp + 16), 0);
		/* Now rewrite back, fix, and forward again. */
		nat_rewrite(fr, &m, m.src, m.sport, m.dst, m.dport);
		tf_fix(fr);
		fr[TF_ETH + 8] = 64;
		tf_fix_ip(fr);
		parse_ok(fr, len, &m);
		nat_rewrite(fr, &m, src, sport, dst, dport);
		assert_int_equal(tf_rd16(tcp + 16), 0);
		assert_csums_full(fr);
	}
}

static void csum16_update_matches_full_for_every_word_pair(void **state)
{
	uint64_t seed = 0x16;

	(void)state;
	for (int it = 0; it < 200000; it++) {
		uint8_t buf[8];
		uint16_t c0, c1, old, new = (uint16_t)tf_rand(&seed);

		for (int i = 0; i < 8; i++)
			buf[i] = (uint8_t)tf_rand(&seed);
		if (it % 7 == 0)
			memset(buf, 0, 6); /* sums near the 0/0xffff edge */
		c0 = nat_csum_full(buf, 8, 0);
		memcpy(&old, buf + 2, 2);
		memcpy(buf + 2, &new, 2);
		c1 = nat_csum_full(buf, 8, 0);
		/* Any data with at least one non-zero word. */
		if (tf_rd16(buf) | tf_rd16(buf + 2) | tf_rd16(buf + 4) | tf_rd16(buf + 6))
			assert_int_equal(nat_csum16(c0, old, new), c1);
	}
}

static void csum_full_matches_reference_on_odd_lengths(void **state)
{
	uint64_t seed = 0x0dd;
	uint8_t buf[1501];

	(void)state;
	for (int it = 0; it < 2000; it++) {
		uint32_t n = (uint32_t)(tf_rand(&seed) % sizeof(buf));
		uint16_t c;

		for (uint32_t i = 0; i < n; i++)
			buf[i] = (uint8_t)tf_rand(&seed);
		c = nat_csum_full(buf, n, 0);
		assert_int_equal(tf_rd16((const uint8_t *)&c),
				 (uint16_t)~ref_fold(ref_sum(buf, n, 0, -1)));
	}
}

/* ---- ICMP errors ---- */

/*
 * The FULLNAT case of worker.c: client C:cp -> V:vp was sent on as S:sp ->
 * B:bp; a router on the backend side answers it with an ICMP error quoting
 * @quote bytes; we translate the error back for the client.
 */
static void check_icmp_error(uint8_t proto, uint32_t quote, uint16_t payload, uint8_t inner_ihl,
			     int udp_no_csum)
{
	const uint32_t C = tf_n32(TF_CLIENT), V = tf_n32(TF_VIP), S = tf_n32(TF_SNAT),
		       B = tf_n32(TF_BACKEND);
	const uint16_t cp = tf_n16(40001), vp = tf_n16(80), sp = tf_n16(1025), bp = tf_n16(8080);
	struct tf_spec cs = { .proto = proto,
			      .src = TF_CLIENT,
			      .dst = TF_VIP,
			      .sport = 40001,
			      .dport = 80,
			      .ihl = inner_ihl,
			      .tcp_flags = 0x18,
			      .seq = 7,
			      .payload = payload,
			      .udp_no_csum = udp_no_csum };
	struct tf_spec es = { .proto = 1,
			      .src = TF_IP(10, 2, 0, 254),
			      .dst = TF_SNAT,
			      .icmp_type = 3,
			      .icmp_code = 4,
			      .ttl = 30,
			      .pad = 16 };
	uint8_t client[TF_MAX], sent[TF_MAX];
	uint32_t clen = tf_build(client, &cs), ilen = clen - TF_ETH, len;
	struct pkt_meta m;
	struct pkt_inner in;
	uint8_t *ip = fr + TF_ETH, *iip, *il4;

	memcpy(sent, client, clen);
	parse_ok(sent, clen, &m);
	nat_rewrite(sent, &m, S, sp, B, bp);

	if (quote > ilen)
		quote = ilen;
	es.payload = (uint16_t)quote;
	len = tf_build(fr, &es);
	memcpy(ip + 28, sent + TF_ETH, quote);
	memset(fr + len - es.pad, 0xee, es.pad);
	tf_fix(fr);
	parse_ok(fr, len, &m);
	assert_int_equal(pkt_parse_icmp_inner(fr, &m, &in), 0);
	assert_int_equal(in.src, S);
	assert_int_equal(in.sport, sp);

	nat_rewrite_icmp_error(fr, &m, &in, V, C, C, cp, V, vp);
	iip = fr + in.l3_off;
	il4 = fr + in.l4_off;
	/* Outer: from the VIP to the client, TTL down, checksum right. */
	assert_int_equal(nat_rd32(ip + 12), V);
	assert_int_equal(nat_rd32(ip + 16), C);
	assert_int_equal(ip[8], 29);
	assert_int_equal(tf_rd16(ip + 10), ref_ip_csum(ip));
	/* Inner: the client's own packet again. */
	assert_int_equal(nat_rd32(iip + 12), C);
	assert_int_equal(nat_rd32(iip + 16), V);
	assert_int_equal(nat_rd16(il4), cp);
	assert_int_equal(nat_rd16(il4 + 2), vp);
	assert_true(ref_ip_ok(iip));
	/* Its L4 checksum: the client's, wherever it was quoted; nothing past the quote. */
	if (in.l4_avail >= (proto == 6 ? 18 : 8)) {
		uint32_t co = proto == 6 ? 16 : 6;

		assert_int_equal(tf_rd16(il4 + co), tf_rd16(client + TF_ETH + inner_ihl * 4 + co));
		if (quote == ilen && !(proto == 17 && udp_no_csum))
			assert_int_equal(tf_l4_csum_field(iip), ref_l4_csum(iip));
	}
	/*
	 * The whole quoted packet is the client's bar the TTL and IP checksum,
	 * and an L4 checksum cut in half by the quote, which cannot be updated.
	 */
	for (uint32_t i = 0; i < quote; i++) {
		uint32_t co = inner_ihl * 4u + (proto == 6 ? 16 : 6);

		if (i == 8 || i == 10 || i == 11 || (i == co && quote == co + 1))
			continue;
		if (iip[i] != client[TF_ETH + i])
			fail_msg("quoted byte %u differs (quote %u)", i, quote);
	}
	/* ICMP checksum over the whole message. */
	assert_int_equal(tf_rd16(fr + m.l4_off + 2), ref_l4_csum(ip));
	for (uint32_t i = len - es.pad; i < len; i++)
		assert_int_equal(fr[i], 0xee);
}

static void icmp_error_quoting_8_bytes_of_tcp_is_translated(void **state)
{
	(void)state;
	check_icmp_error(6, 28, 100, 5, 0);
	check_icmp_error(6, 28 + 4, 100, 6, 0);
}

static void icmp_error_quoting_tcp_checksum_updates_it(void **state)
{
	(void)state;
	for (uint32_t q = 20 + 18; q <= 20 + 20 + 101; q++)
		check_icmp_error(6, q, 101, 5, 0);
}

static void icmp_error_quoting_udp_updates_its_checksum(void **state)
{
	(void)state;
	for (uint32_t q = 28; q <= 28 + 51; q++)
		check_icmp_error(17, q, 51, 5, 0);
	check_icmp_error(17, 1000, 300, 9, 0);
}

static void icmp_error_quoting_udp_checksum_zero_keeps_it(void **state)
{
	(void)state;
	check_icmp_error(17, 1000, 40, 5, 1);
	check_icmp_error(17, 28, 40, 5, 1);
}

static void icmp_error_random_quotes_are_translated(void **state)
{
	uint64_t seed = 0x1c;

	(void)state;
	for (int it = 0; it < 2000; it++) {
		uint8_t proto = tf_rand(&seed) & 1 ? 6 : 17;
		uint8_t ihl = (uint8_t)(5 + tf_rand(&seed) % 11);
		uint16_t payload = (uint16_t)(tf_rand(&seed) % 300);

		check_icmp_error(proto, (uint32_t)(ihl * 4 + 8 + tf_rand(&seed) % 400), payload,
				 ihl, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tcp_rewrite_matches_full_checksum),
		cmocka_unit_test(udp_rewrite_matches_full_checksum),
		cmocka_unit_test(ttl_decrement_keeps_ip_checksum),
		cmocka_unit_test(udp_checksum_zero_stays_zero),
		cmocka_unit_test(udp_checksum_that_would_be_zero_is_sent_as_ffff),
		cmocka_unit_test(tcp_checksum_that_becomes_zero_is_zero),
		cmocka_unit_test(csum16_update_matches_full_for_every_word_pair),
		cmocka_unit_test(csum_full_matches_reference_on_odd_lengths),
		cmocka_unit_test(icmp_error_quoting_8_bytes_of_tcp_is_translated),
		cmocka_unit_test(icmp_error_quoting_tcp_checksum_updates_it),
		cmocka_unit_test(icmp_error_quoting_udp_updates_its_checksum),
		cmocka_unit_test(icmp_error_quoting_udp_checksum_zero_keeps_it),
		cmocka_unit_test(icmp_error_random_quotes_are_translated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
