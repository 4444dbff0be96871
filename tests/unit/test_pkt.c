/* SPDX-License-Identifier: BSD-3-Clause */
/* pkt: parsing of good frames, and every malformed case with its drop reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "pkt.h"

static uint8_t fr[TF_MAX];

static struct tf_spec tcp_spec(void)
{
	struct tf_spec s = {
		.proto = 6,
		.src = TF_CLIENT,
		.dst = TF_VIP,
		.sport = 40000,
		.dport = 80,
		.tcp_flags = 0x02,
		.seq = 1000,
	};
	return s;
}

static struct tf_spec udp_spec(void)
{
	struct tf_spec s = { .proto = 17,
			     .src = TF_CLIENT,
			     .dst = TF_VIP,
			     .sport = 5000,
			     .dport = 53,
			     .payload = 11 };
	return s;
}

/* Parse @len bytes of @f from an exact-size copy (ASan catches over-reads). */
static int parse(const uint8_t *f, uint32_t len, struct pkt_meta *m)
{
	uint8_t *p = tf_exact(f, len);
	int rc;

	assert_non_null(p);
	rc = pkt_parse(p, len, m);
	free(p);
	return rc;
}

static void expect_drop(const uint8_t *f, uint32_t len, enum stats_drop reason)
{
	struct pkt_meta m;

	assert_int_equal(parse(f, len, &m), -1);
	if (m.drop != reason)
		fail_msg("drop %s, expected %s", stats_drop_name(m.drop), stats_drop_name(reason));
}

static uint8_t *ipof(uint8_t *f)
{
	return f + TF_ETH;
}

/* ---- good frames ---- */

static void arp_frame_parses_as_arp(void **state)
{
	struct pkt_meta m;

	(void)state;
	memset(fr, 0, sizeof(fr));
	tf_wr16(fr + 12, 0x0806);
	assert_int_equal(parse(fr, 42, &m), 0);
	assert_int_equal(m.kind, PKT_ARP);
	assert_int_equal(m.l3_off, 14);
}

static void tcp_frame_fields_are_parsed(void **state)
{
	struct tf_spec s = tcp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	s.ttl = 17;
	s.tcp_flags = 0x18;
	s.payload = 100;
	len = tf_build(fr, &s);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.kind, PKT_IPV4);
	assert_int_equal(m.proto, 6);
	assert_int_equal(m.ttl, 17);
	assert_int_equal(m.tcp_flags, 0x18);
	assert_int_equal(m.l3_off, 14);
	assert_int_equal(m.l4_off, 34);
	assert_int_equal(m.l4_len, 120);
	assert_int_equal(m.ip_len, 140);
	assert_int_equal(m.src, tf_n32(TF_CLIENT));
	assert_int_equal(m.dst, tf_n32(TF_VIP));
	assert_int_equal(m.sport, tf_n16(40000));
	assert_int_equal(m.dport, tf_n16(80));
	assert_int_equal(m.tcp_hlen, 20);
	assert_int_equal(m.tcp_ts, 0);
}

static void udp_frame_fields_are_parsed(void **state)
{
	struct tf_spec s = udp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.proto, 17);
	assert_int_equal(m.l4_len, 19);
	assert_int_equal(m.sport, tf_n16(5000));
	assert_int_equal(m.dport, tf_n16(53));
}

static void udp_checksum_zero_is_accepted(void **state)
{
	struct tf_spec s = udp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	s.udp_no_csum = 1;
	len = tf_build(fr, &s);
	assert_int_equal(tf_rd16(ipof(fr) + 20 + 6), 0);
	assert_int_equal(parse(fr, len, &m), 0);
}

static void icmp_echo_fields_are_parsed(void **state)
{
	struct tf_spec s = { .proto = 1,
			     .src = TF_CLIENT,
			     .dst = TF_VIP,
			     .sport = 0xbeef,
			     .dport = 7,
			     .icmp_type = 8,
			     .payload = 56 };
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.proto, 1);
	assert_int_equal(m.icmp_type, 8);
	assert_int_equal(m.icmp_code, 0);
	assert_int_equal(m.sport, tf_n16(0xbeef));
	assert_int_equal(m.l4_len, 64);
}

static void ip_options_move_the_l4_offset(void **state)
{
	(void)state;
	for (uint8_t ihl = 5; ihl <= 15; ihl++) {
		struct tf_spec s = tcp_spec();
		struct pkt_meta m;
		uint32_t len;

		s.ihl = ihl;
		s.payload = 3;
		len = tf_build(fr, &s);
		assert_int_equal(parse(fr, len, &m), 0);
		assert_int_equal(m.l4_off, 14 + ihl * 4);
		assert_int_equal(m.l4_len, 23);
		assert_int_equal(m.sport, tf_n16(40000));
	}
}

static void ethernet_padding_is_ignored(void **state)
{
	struct tf_spec s = udp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	s.payload = 0;
	s.pad = 18; /* 42 bytes of frame padded to the 60-byte minimum */
	len = tf_build(fr, &s);
	memset(fr + len - s.pad, 0xaa, s.pad);
	assert_int_equal(len, 60);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.ip_len, 28);
	assert_int_equal(m.l4_len, 8);
}

/* ---- Ethernet ---- */

static void frame_shorter_than_ethernet_header_is_eth_truncated(void **state)
{
	struct tf_spec s = tcp_spec();

	(void)state;
	tf_build(fr, &s);
	for (uint32_t len = 0; len < 14; len++)
		expect_drop(fr, len, STATS_DROP_ETH_TRUNCATED);
}

static void ipv6_ethertype_is_ipv6_unsupported(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	tf_wr16(fr + 12, 0x86dd);
	expect_drop(fr, len, STATS_DROP_IPV6_UNSUPPORTED);
}

static void vlan_and_unknown_ethertypes_are_eth_unsupported(void **state)
{
	static const uint16_t types[] = { 0x8100, 0x88a8, 0x88cc, 0x0000, 0xffff, 0x0801 };
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		tf_wr16(fr + 12, types[i]);
		expect_drop(fr, len, STATS_DROP_ETH_UNSUPPORTED);
	}
}

/* ---- IPv4 ---- */

static void ipv4_ethertype_without_ip_bytes_is_ip_truncated(void **state)
{
	struct tf_spec s = tcp_spec();

	(void)state;
	tf_build(fr, &s);
	expect_drop(fr, 14, STATS_DROP_IP_TRUNCATED);
}

static void frame_shorter_than_ihl_is_ip_truncated(void **state)
{
	struct tf_spec s = tcp_spec();

	(void)state;
	tf_build(fr, &s);
	expect_drop(fr, 14 + 19, STATS_DROP_IP_TRUNCATED);
	s.ihl = 8;
	tf_build(fr, &s);
	expect_drop(fr, 14 + 31, STATS_DROP_IP_TRUNCATED);
}

static void ip_total_length_past_frame_is_ip_truncated(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	tf_wr16(ipof(fr) + 2, (uint16_t)(len - 14 + 1));
	tf_fix_ip(fr);
	expect_drop(fr, len, STATS_DROP_IP_TRUNCATED);
	tf_wr16(ipof(fr) + 2, 0xffff);
	tf_fix_ip(fr);
	expect_drop(fr, len, STATS_DROP_IP_TRUNCATED);
}

static void ip_total_length_below_ihl_is_ip_truncated(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (uint16_t tot = 0; tot < 20; tot++) {
		tf_wr16(ipof(fr) + 2, tot);
		tf_fix_ip(fr);
		expect_drop(fr, len, STATS_DROP_IP_TRUNCATED);
	}
	s.ihl = 6;
	len = tf_build(fr, &s);
	tf_wr16(ipof(fr) + 2, 23);
	tf_fix_ip(fr);
	expect_drop(fr, len, STATS_DROP_IP_TRUNCATED);
}

static void every_truncation_of_a_good_frame_is_dropped(void **state)
{
	static const uint8_t opts[] = { 2, 4, 5, 0xb4, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct tf_spec s = tcp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	s.ihl = 7;
	s.opts = opts;
	s.optlen = sizeof(opts);
	s.payload = 33;
	len = tf_build(fr, &s);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.tcp_ts, 26);
	for (uint32_t l = 0; l < len; l++)
		expect_drop(fr, l, l < 14 ? STATS_DROP_ETH_TRUNCATED : STATS_DROP_IP_TRUNCATED);
}

static void ip_version_other_than_4_is_bad_version(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (uint8_t v = 0; v < 16; v++) {
		if (v == 4)
			continue;
		ipof(fr)[0] = (uint8_t)(v << 4 | 5);
		tf_fix_ip(fr);
		expect_drop(fr, len, STATS_DROP_IP_BAD_VERSION);
	}
}

static void ihl_below_5_is_bad_ihl(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		ipof(fr)[0] = (uint8_t)(0x40 | ihl);
		expect_drop(fr, len, STATS_DROP_IP_BAD_IHL);
	}
}

static void bad_ip_checksum_is_dropped(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	ipof(fr)[11] ^= 0x01;
	expect_drop(fr, len, STATS_DROP_IP_BAD_CHECKSUM);
	/* A changed option byte is covered by the checksum too. */
	s.ihl = 6;
	len = tf_build(fr, &s);
	ipof(fr)[21] ^= 0x80;
	expect_drop(fr, len, STATS_DROP_IP_BAD_CHECKSUM);
}

static void fragments_are_dropped(void **state)
{
	/* MF; offset; last fragment (offset, no MF); MF with DF; smallest offset. */
	static const uint16_t frags[] = { 0x2000, 0x00b9, 0x1fff, 0x6000, 0x0001, 0x2001 };
	struct tf_spec s = tcp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		tf_wr16(ipof(fr) + 6, frags[i]);
		tf_fix_ip(fr);
		expect_drop(fr, len, STATS_DROP_IP_FRAGMENT);
	}
	/* DF alone, and no flags, are whole packets. */
	tf_wr16(ipof(fr) + 6, 0x0000);
	tf_fix_ip(fr);
	assert_int_equal(parse(fr, len, &m), 0);
	tf_wr16(ipof(fr) + 6, 0x4000);
	tf_fix_ip(fr);
	assert_int_equal(parse(fr, len, &m), 0);
}

static void unsupported_l4_protocol_is_dropped(void **state)
{
	static const uint8_t protos[] = { 0, 2, 4, 41, 47, 50, 58, 132, 255 };

	(void)state;
	for (size_t i = 0; i < sizeof(protos); i++) {
		struct tf_spec s = {
			.proto = protos[i], .src = TF_CLIENT, .dst = TF_VIP, .payload = 40
		};
		uint32_t len = tf_build(fr, &s);

		expect_drop(fr, len, STATS_DROP_L4_UNSUPPORTED);
	}
}

/* ---- TCP ---- */

static void tcp_shorter_than_20_is_tcp_truncated(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	s.payload = 30;
	len = tf_build(fr, &s);
	for (uint16_t l4 = 0; l4 < 20; l4++) {
		tf_wr16(ipof(fr) + 2, (uint16_t)(20 + l4));
		tf_fix_ip(fr);
		/* The rest of the frame is Ethernet padding now. */
		expect_drop(fr, len, STATS_DROP_TCP_TRUNCATED);
	}
}

static void tcp_doff_below_5_is_bad_doff(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	s.payload = 40;
	len = tf_build(fr, &s);
	for (uint8_t doff = 0; doff < 5; doff++) {
		ipof(fr)[20 + 12] = (uint8_t)(doff << 4);
		expect_drop(fr, len, STATS_DROP_TCP_BAD_DOFF);
	}
}

static void tcp_doff_past_ip_payload_is_bad_doff(void **state)
{
	struct tf_spec s = tcp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	ipof(fr)[20 + 12] = 6 << 4;
	expect_drop(fr, len, STATS_DROP_TCP_BAD_DOFF);
	ipof(fr)[20 + 12] = 15 << 4;
	expect_drop(fr, len, STATS_DROP_TCP_BAD_DOFF);
	/* Bytes past the IP packet (padding) do not count as header. */
	s.pad = 40;
	len = tf_build(fr, &s);
	ipof(fr)[20 + 12] = 6 << 4;
	expect_drop(fr, len, STATS_DROP_TCP_BAD_DOFF);
}

static void tcp_doff_exactly_ip_payload_is_accepted(void **state)
{
	static const uint8_t opts[40] = { 1, 1, 1, 1 };
	struct tf_spec s = tcp_spec();
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	s.opts = opts; /* 36 zero bytes after the NOPs: EOL padding */
	s.optlen = 40;
	len = tf_build(fr, &s);
	assert_int_equal(parse(fr, len, &m), 0);
	assert_int_equal(m.tcp_hlen, 60);
	assert_int_equal(m.l4_len, 60);
}

/*
 * Parse a SYN with options @o (padded with EOL to a multiple of 4) and no
 * payload: the header ends where the frame does, so an option walk that reads
 * one byte too far is caught by ASan.
 */
static int parse_opts(const uint8_t *o, uint8_t n, struct pkt_meta *m)
{
	uint8_t opts[40] = { 0 };
	struct tf_spec s = tcp_spec();
	uint32_t len;

	memcpy(opts, o, n);
	s.opts = opts;
	s.optlen = (uint8_t)((n + 3) & ~3u);
	len = tf_build(fr, &s);
	return parse(fr, len, m);
}

#define OPTS(m, ...) \
	parse_opts((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }), (m))

static void tcp_option_zero_length_is_rejected(void **state)
{
	struct pkt_meta m;

	(void)state;
	assert_int_equal(OPTS(&m, 2, 0, 5, 0xb4), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	assert_int_equal(OPTS(&m, 1, 1, 3, 0, 1, 1, 1, 1), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
}

static void tcp_option_one_length_is_rejected(void **state)
{
	struct pkt_meta m;

	(void)state;
	assert_int_equal(OPTS(&m, 4, 1, 1, 1), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	assert_int_equal(OPTS(&m, 1, 1, 1, 1, 8, 1, 1, 1), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
}

static void tcp_option_past_header_is_rejected(void **state)
{
	struct pkt_meta m;

	(void)state;
	/* Timestamp (10 bytes) with 8 bytes of option space. */
	assert_int_equal(OPTS(&m, 8, 10, 0, 0, 0, 0, 0, 0), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	/* Length byte itself past the header: kind in the last byte. */
	assert_int_equal(OPTS(&m, 1, 1, 1, 2), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	/* One byte too long. */
	assert_int_equal(OPTS(&m, 2, 5, 5, 0xb4), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	/* Exactly to the end is fine. */
	assert_int_equal(OPTS(&m, 2, 4, 5, 0xb4), 0);
	assert_int_equal(OPTS(&m, 1, 1, 30, 6, 0, 0, 0, 0), 0);
}

static void tcp_eol_ends_the_option_walk(void **state)
{
	struct pkt_meta m;

	(void)state;
	/* After EOL, even a zero-length option or a timestamp is padding. */
	assert_int_equal(OPTS(&m, 0, 2, 0, 0), 0);
	assert_int_equal(OPTS(&m, 1, 0, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8), 0);
	assert_int_equal(m.tcp_ts, 0);
}

static void tcp_nops_are_skipped(void **state)
{
	struct pkt_meta m;

	(void)state;
	assert_int_equal(OPTS(&m, 1, 1, 1, 1, 1, 1, 1, 1), 0);
	assert_int_equal(m.tcp_hlen, 28);
	assert_int_equal(m.tcp_ts, 0);
}

static void tcp_timestamp_is_found_at_any_offset(void **state)
{
	struct pkt_meta m;

	(void)state;
	/* Offset 20 (0 mod 4). */
	assert_int_equal(OPTS(&m, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1), 0);
	assert_int_equal(m.tcp_ts, 20);
	/* Offset 22 (2 mod 4): the usual NOP NOP TS layout. */
	assert_int_equal(OPTS(&m, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8), 0);
	assert_int_equal(m.tcp_ts, 22);
	/* Offset 21 (1 mod 4). */
	assert_int_equal(OPTS(&m, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1), 0);
	assert_int_equal(m.tcp_ts, 21);
	/* After MSS, SACK-permitted: offset 26 (2 mod 4), as Linux sends SYNs. */
	assert_int_equal(OPTS(&m, 2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7),
			 0);
	assert_int_equal(m.tcp_ts, 26);
	assert_int_equal(m.tcp_hlen, 40);
}

static void tcp_timestamp_with_wrong_length_is_not_recorded(void **state)
{
	struct pkt_meta m;

	(void)state;
	assert_int_equal(OPTS(&m, 8, 6, 1, 2, 3, 4, 1, 1), 0);
	assert_int_equal(m.tcp_ts, 0);
	assert_int_equal(m.tcp_ts_bad, 1);
}

/*
 * Two timestamp options of length 10: Linux would take the last, which a
 * rewriter taking the first would let through raw, so the packet is dropped.
 */
static void tcp_two_timestamps_are_not_recorded(void **state)
{
	struct pkt_meta m;
	uint8_t tcp[60] = { 0 };
	uint8_t ts = 0xff;

	(void)state;
	assert_int_equal(
		OPTS(&m, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8),
		-1);
	assert_int_equal(m.drop, STATS_DROP_TCP_TS_DUPLICATE);
	assert_int_equal(m.tcp_ts, 0);
	/* Adjacent, at odd offsets, and with a malformed one between them. */
	assert_int_equal(OPTS(&m, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8),
			 -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_TS_DUPLICATE);
	assert_int_equal(OPTS(&m, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 6, 1, 2, 3, 4, 8, 10, 1, 2,
			      3, 4, 5, 6, 7, 8),
			 -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_TS_DUPLICATE);
	/* A bad list still counts as a bad option, even after two timestamps. */
	assert_int_equal(
		OPTS(&m, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 2, 0), -1);
	assert_int_equal(m.drop, STATS_DROP_TCP_BAD_OPTION);
	/* Directly: 2, with no offset reported. */
	for (int i = 20; i < 40; i += 10) {
		tcp[i] = 8;
		tcp[i + 1] = 10;
	}
	assert_int_equal(pkt_tcp_options(tcp, 40, &ts), 2);
	assert_int_equal(ts, 0);
	/* One of them after EOL is padding: only the first counts. */
	tcp[30] = 0;
	assert_int_equal(pkt_tcp_options(tcp, 40, &ts), 0);
	assert_int_equal(ts, 20);
}

/*
 * A timestamp option of a wrong length beside a valid one: Linux ignores the
 * bad one and uses the good one, so the good one is recorded (and rewritten),
 * with the bad one counted.
 */
static void tcp_bad_and_valid_timestamp_records_the_valid_one(void **state)
{
	struct pkt_meta m;

	(void)state;
	/* Bad first, valid at 28. */
	assert_int_equal(OPTS(&m, 8, 6, 1, 2, 3, 4, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8), 0);
	assert_int_equal(m.tcp_ts, 28);
	assert_int_equal(m.tcp_ts_bad, 1);
	/* Valid first at 22, bad after it. */
	assert_int_equal(OPTS(&m, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 3, 9, 1), 0);
	assert_int_equal(m.tcp_ts, 22);
	assert_int_equal(m.tcp_ts_bad, 1);
	/* A bad one of length 2 on each side of a valid one at an odd offset. */
	assert_int_equal(OPTS(&m, 8, 2, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 2), 0);
	assert_int_equal(m.tcp_ts, 23);
	assert_int_equal(m.tcp_ts_bad, 1);
	/* The valid one alone: not flagged. */
	assert_int_equal(OPTS(&m, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8), 0);
	assert_int_equal(m.tcp_ts_bad, 0);
}

static void tcp_options_walk_direct(void **state)
{
	uint8_t tcp[60] = { 0 };
	uint8_t ts = 0xff;

	(void)state;
	assert_int_equal(pkt_tcp_options(tcp, 20, &ts), 0);
	assert_int_equal(ts, 0);
	tcp[20] = 1;
	tcp[21] = 1;
	tcp[22] = 8;
	tcp[23] = 10;
	assert_int_equal(pkt_tcp_options(tcp, 32, &ts), 0);
	assert_int_equal(ts, 22);
	/* The same header cut short at 28 bytes: the timestamp runs past it. */
	assert_int_equal(pkt_tcp_options(tcp, 28, &ts), -1);
	/* Kind as the very last byte: no room for its length. */
	assert_int_equal(pkt_tcp_options(tcp, 23, &ts), -1);
}

/* ---- UDP ---- */

static void udp_shorter_than_8_is_udp_truncated(void **state)
{
	struct tf_spec s = udp_spec();
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (uint16_t l4 = 0; l4 < 8; l4++) {
		tf_wr16(ipof(fr) + 2, (uint16_t)(20 + l4));
		tf_fix_ip(fr);
		expect_drop(fr, len, STATS_DROP_UDP_TRUNCATED);
	}
}

static void udp_bad_length_is_udp_truncated(void **state)
{
	struct tf_spec s = udp_spec();
	struct pkt_meta m;
	uint8_t *udp = ipof(fr) + 20;
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	/* Longer than the IP payload, even if the frame had the bytes. */
	tf_wr16(udp + 4, 20);
	expect_drop(fr, len, STATS_DROP_UDP_TRUNCATED);
	tf_wr16(udp + 4, 0xffff);
	expect_drop(fr, len, STATS_DROP_UDP_TRUNCATED);
	for (uint16_t ulen = 0; ulen < 8; ulen++) {
		tf_wr16(udp + 4, ulen);
		expect_drop(fr, len, STATS_DROP_UDP_TRUNCATED);
	}
	tf_wr16(udp + 4, 19);
	assert_int_equal(parse(fr, len, &m), 0);
}

/* ---- ICMP ---- */

static void icmp_shorter_than_8_is_icmp_truncated(void **state)
{
	struct tf_spec s = { .proto = 1, .src = TF_CLIENT, .dst = TF_VIP, .icmp_type = 8 };
	uint32_t len;

	(void)state;
	len = tf_build(fr, &s);
	for (uint16_t l4 = 0; l4 < 8; l4++) {
		tf_wr16(ipof(fr) + 2, (uint16_t)(20 + l4));
		tf_fix_ip(fr);
		expect_drop(fr, len, STATS_DROP_ICMP_TRUNCATED);
	}
}

static void icmp_error_types_are_recognised(void **state)
{
	(void)state;
	assert_true(pkt_icmp_is_error(3));
	assert_true(pkt_icmp_is_error(4));
	assert_true(pkt_icmp_is_error(11));
	assert_true(pkt_icmp_is_error(12));
	assert_false(pkt_icmp_is_error(0));
	assert_false(pkt_icmp_is_error(8));
	assert_false(pkt_icmp_is_error(5));
}

/*
 * An ICMP error (type 3 code 3) from a router quoting @quote bytes of the
 * packet @is describes. Returns the frame length.
 */
static uint32_t build_icmp_error(uint8_t *f, const struct tf_spec *is, uint32_t quote)
{
	uint8_t inner[TF_MAX];
	uint32_t ilen = tf_build(inner, is) - 14;
	struct tf_spec s = { .proto = 1,
			     .src = TF_IP(10, 2, 0, 254),
			     .dst = TF_SNAT,
			     .icmp_type = 3,
			     .icmp_code = 3 };
	uint32_t len;

	if (quote > ilen)
		quote = ilen;
	s.payload = (uint16_t)quote;
	len = tf_build(f, &s);
	memcpy(f + 14 + 20 + 8, inner + 14, quote);
	tf_fix(f);
	return len;
}

static int parse_inner(const uint8_t *f, uint32_t len, struct pkt_meta *m, struct pkt_inner *in)
{
	uint8_t *p = tf_exact(f, len);
	int rc;

	assert_non_null(p);
	assert_int_equal(pkt_parse(p, len, m), 0);
	rc = pkt_parse_icmp_inner(p, m, in);
	free(p);
	return rc;
}

static void icmp_inner_tcp_with_8_bytes_is_parsed(void **state)
{
	struct tf_spec is = { .proto = 6,
			      .src = TF_SNAT,
			      .dst = TF_BACKEND,
			      .sport = 1024,
			      .dport = 8080,
			      .tcp_flags = 0x02 };
	struct pkt_meta m;
	struct pkt_inner in;
	uint32_t len;

	(void)state;
	len = build_icmp_error(fr, &is, 28);
	assert_int_equal(parse_inner(fr, len, &m, &in), 0);
	assert_int_equal(in.proto, 6);
	assert_int_equal(in.l3_off, 14 + 20 + 8);
	assert_int_equal(in.l4_off, 14 + 20 + 8 + 20);
	assert_int_equal(in.l4_avail, 8);
	assert_int_equal(in.src, tf_n32(TF_SNAT));
	assert_int_equal(in.dst, tf_n32(TF_BACKEND));
	assert_int_equal(in.sport, tf_n16(1024));
	assert_int_equal(in.dport, tf_n16(8080));
}

static void icmp_inner_udp_with_options_is_parsed(void **state)
{
	struct tf_spec is = { .proto = 17,
			      .src = TF_SNAT,
			      .dst = TF_BACKEND,
			      .sport = 1024,
			      .dport = 53,
			      .ihl = 7,
			      .payload = 100 };
	struct pkt_meta m;
	struct pkt_inner in;
	uint32_t len;

	(void)state;
	len = build_icmp_error(fr, &is, 1000);
	assert_int_equal(parse_inner(fr, len, &m, &in), 0);
	assert_int_equal(in.proto, 17);
	assert_int_equal(in.l4_off, 14 + 20 + 8 + 28);
	assert_int_equal(in.l4_avail, 108);
	assert_int_equal(in.dport, tf_n16(53));
}

static void icmp_inner_too_short_is_icmp_truncated(void **state)
{
	struct tf_spec is = {
		.proto = 6, .src = TF_SNAT, .dst = TF_BACKEND, .sport = 1, .dport = 2
	};
	struct pkt_meta m;
	struct pkt_inner in;
	uint32_t len;

	(void)state;
	for (uint32_t q = 0; q < 28; q++) {
		len = build_icmp_error(fr, &is, q);
		assert_int_equal(parse_inner(fr, len, &m, &in), -1);
		assert_int_equal(m.drop, STATS_DROP_ICMP_TRUNCATED);
	}
	/* Inner options that leave less than 8 bytes of L4. */
	is.ihl = 6;
	len = build_icmp_error(fr, &is, 31);
	assert_int_equal(parse_inner(fr, len, &m, &in), -1);
	len = build_icmp_error(fr, &is, 32);
	assert_int_equal(parse_inner(fr, len, &m, &in), 0);
}

static void icmp_inner_bad_header_is_icmp_truncated(void **state)
{
	struct tf_spec is = {
		.proto = 17, .src = TF_SNAT, .dst = TF_BACKEND, .sport = 1, .dport = 2, .payload = 4
	};
	uint8_t *iip = fr + 14 + 20 + 8;
	struct pkt_meta m;
	struct pkt_inner in;
	uint32_t len;

	(void)state;
	len = build_icmp_error(fr, &is, 64);
	iip[0] = 0x65; /* version 6 */
	tf_fix(fr);
	assert_int_equal(parse_inner(fr, len, &m, &in), -1);
	assert_int_equal(m.drop, STATS_DROP_ICMP_TRUNCATED);
	iip[0] = 0x44; /* IHL 4 */
	tf_fix(fr);
	assert_int_equal(parse_inner(fr, len, &m, &in), -1);
	iip[0] = 0x4f; /* IHL 15: 60 + 8 > 32 quoted */
	tf_fix(fr);
	assert_int_equal(parse_inner(fr, len, &m, &in), -1);
	iip[0] = 0x45;
	iip[9] = 1; /* ICMP about ICMP: not ours */
	tf_fix(fr);
	assert_int_equal(parse_inner(fr, len, &m, &in), -1);
	iip[9] = 17;
	tf_fix(fr);
	assert_int_equal(parse_inner(fr, len, &m, &in), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arp_frame_parses_as_arp),
		cmocka_unit_test(tcp_frame_fields_are_parsed),
		cmocka_unit_test(udp_frame_fields_are_parsed),
		cmocka_unit_test(udp_checksum_zero_is_accepted),
		cmocka_unit_test(icmp_echo_fields_are_parsed),
		cmocka_unit_test(ip_options_move_the_l4_offset),
		cmocka_unit_test(ethernet_padding_is_ignored),
		cmocka_unit_test(frame_shorter_than_ethernet_header_is_eth_truncated),
		cmocka_unit_test(ipv6_ethertype_is_ipv6_unsupported),
		cmocka_unit_test(vlan_and_unknown_ethertypes_are_eth_unsupported),
		cmocka_unit_test(ipv4_ethertype_without_ip_bytes_is_ip_truncated),
		cmocka_unit_test(frame_shorter_than_ihl_is_ip_truncated),
		cmocka_unit_test(ip_total_length_past_frame_is_ip_truncated),
		cmocka_unit_test(ip_total_length_below_ihl_is_ip_truncated),
		cmocka_unit_test(every_truncation_of_a_good_frame_is_dropped),
		cmocka_unit_test(ip_version_other_than_4_is_bad_version),
		cmocka_unit_test(ihl_below_5_is_bad_ihl),
		cmocka_unit_test(bad_ip_checksum_is_dropped),
		cmocka_unit_test(fragments_are_dropped),
		cmocka_unit_test(unsupported_l4_protocol_is_dropped),
		cmocka_unit_test(tcp_shorter_than_20_is_tcp_truncated),
		cmocka_unit_test(tcp_doff_below_5_is_bad_doff),
		cmocka_unit_test(tcp_doff_past_ip_payload_is_bad_doff),
		cmocka_unit_test(tcp_doff_exactly_ip_payload_is_accepted),
		cmocka_unit_test(tcp_option_zero_length_is_rejected),
		cmocka_unit_test(tcp_option_one_length_is_rejected),
		cmocka_unit_test(tcp_option_past_header_is_rejected),
		cmocka_unit_test(tcp_eol_ends_the_option_walk),
		cmocka_unit_test(tcp_nops_are_skipped),
		cmocka_unit_test(tcp_timestamp_is_found_at_any_offset),
		cmocka_unit_test(tcp_timestamp_with_wrong_length_is_not_recorded),
		cmocka_unit_test(tcp_two_timestamps_are_not_recorded),
		cmocka_unit_test(tcp_bad_and_valid_timestamp_records_the_valid_one),
		cmocka_unit_test(tcp_options_walk_direct),
		cmocka_unit_test(udp_shorter_than_8_is_udp_truncated),
		cmocka_unit_test(udp_bad_length_is_udp_truncated),
		cmocka_unit_test(icmp_shorter_than_8_is_icmp_truncated),
		cmocka_unit_test(icmp_error_types_are_recognised),
		cmocka_unit_test(icmp_inner_tcp_with_8_bytes_is_parsed),
		cmocka_unit_test(icmp_inner_udp_with_options_is_parsed),
		cmocka_unit_test(icmp_inner_too_short_is_icmp_truncated),
		cmocka_unit_test(icmp_inner_bad_header_is_icmp_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
