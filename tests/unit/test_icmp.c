/* SPDX-License-Identifier: BSD-3-Clause */
/* icmp: echo replies, ICMP errors and TCP resets, checked with a reference checksum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "icmp.h"
#include "pkt.h"

static uint8_t fr[TF_MAX];

static void parse_ok(const uint8_t *f, uint32_t len, struct pkt_meta *m)
{
	uint8_t *p = tf_exact(f, len);
	int rc;

	assert_non_null(p);
	rc = pkt_parse(p, len, m);
	free(p);
	if (rc != 0)
		fail_msg("frame does not parse: %s", stats_drop_name(m->drop));
}

/* ---- echo ---- */

static void check_echo(uint16_t payload, uint8_t ihl)
{
	struct tf_spec s = { .proto = 1,
			     .src = TF_CLIENT,
			     .dst = TF_VIP,
			     .sport = 0x1234,
			     .dport = 0x0042,
			     .icmp_type = 8,
			     .ttl = 5,
			     .ihl = ihl,
			     .payload = payload };
	uint8_t orig[TF_MAX];
	uint32_t len = tf_build(fr, &s);
	uint8_t *ip = fr + TF_ETH;
	struct pkt_meta m;

	memcpy(orig, fr, len);
	parse_ok(fr, len, &m);
	icmp_echo_reply(fr, &m);
	assert_int_equal(tf_rd32(ip + 12), TF_VIP);
	assert_int_equal(tf_rd32(ip + 16), TF_CLIENT);
	assert_int_equal(ip[8], 64);
	assert_true(ref_ip_ok(ip));
	assert_int_equal(fr[m.l4_off], 0);
	assert_int_equal(fr[m.l4_off + 1], 0);
	assert_int_equal(tf_l4_csum_field(ip), ref_l4_csum(ip));
	/* Identifier, sequence and data are echoed unchanged. */
	assert_memory_equal(fr + m.l4_off + 4, orig + m.l4_off + 4, m.l4_len - 4u);
	assert_memory_equal(fr, orig, 14);
	parse_ok(fr, len, &m);
}

static void echo_reply_swaps_addresses_with_valid_checksums(void **state)
{
	(void)state;
	check_echo(56, 5);
	check_echo(0, 5);
	check_echo(1, 5);
	check_echo(1471, 5);
	check_echo(33, 9);
}

static void echo_reply_with_nonzero_code_clears_it(void **state)
{
	struct tf_spec s = { .proto = 1,
			     .src = TF_CLIENT,
			     .dst = TF_VIP,
			     .icmp_type = 8,
			     .icmp_code = 9,
			     .payload = 10 };
	uint32_t len = tf_build(fr, &s);
	struct pkt_meta m;

	(void)state;
	parse_ok(fr, len, &m);
	icmp_echo_reply(fr, &m);
	assert_int_equal(fr[m.l4_off + 1], 0);
	assert_int_equal(tf_l4_csum_field(fr + TF_ETH), ref_l4_csum(fr + TF_ETH));
}

/* ---- errors ---- */

static void check_error(uint32_t orig_len, uint8_t type, uint8_t code, uint16_t mtu)
{
	struct tf_spec s = {
		.proto = 17, .src = TF_CLIENT, .dst = TF_VIP, .sport = 9, .dport = 53
	};
	const uint32_t room = 1600;
	uint8_t orig[TF_MAX], out[1600 + 14 + 64];
	uint8_t *o = out + 14;
	uint32_t quote = orig_len < 548 ? orig_len : 548, n;
	struct pkt_meta m;
	struct pkt_inner in;

	s.payload = (uint16_t)(orig_len - 28);
	tf_build(orig, &s);
	memset(out, 0xcc, sizeof(out));
	n = icmp_error_build(o, room, type, code, mtu, tf_n32(TF_IP(10, 0, 0, 1)), orig + TF_ETH,
			     orig_len);
	assert_int_equal(n, 28 + quote);
	assert_true(n <= ICMP_ERROR_MAX_IP);
	assert_int_equal(o[0], 0x45);
	assert_int_equal(tf_rd16(o + 2), n);
	assert_int_equal(o[9], 1);
	assert_int_equal(tf_rd32(o + 12), TF_IP(10, 0, 0, 1));
	assert_int_equal(tf_rd32(o + 16), TF_CLIENT);
	assert_true(ref_ip_ok(o));
	assert_int_equal(o[20], type);
	assert_int_equal(o[21], code);
	assert_int_equal(tf_rd16(o + 20 + 2), ref_l4_csum(o));
	assert_int_equal(tf_rd16(o + 24), 0);
	assert_int_equal(tf_rd16(o + 26), type == 3 && code == 4 ? mtu : 0);
	assert_memory_equal(o + 28, orig + TF_ETH, quote);
	for (uint32_t i = 14 + n; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xcc);
	/* What we send is itself a well-formed ICMP error. */
	memset(out, 0, 12);
	tf_wr16(out + 12, 0x0800);
	parse_ok(out, 14 + n, &m);
	assert_int_equal(pkt_parse_icmp_inner(out, &m, &in), 0);
	assert_int_equal(in.dport, tf_n16(53));
}

static void error_quotes_whole_small_packet(void **state)
{
	(void)state;
	check_error(28, 11, 0, 0);
	check_error(29, 3, 3, 0);
	check_error(100, 3, 3, 0);
	check_error(547, 3, 4, 1400);
	check_error(548, 3, 4, 1400);
}

static void error_is_truncated_to_576_bytes(void **state)
{
	(void)state;
	check_error(549, 11, 0, 0);
	check_error(1500, 3, 4, 1280);
	check_error(1501, 3, 3, 0);
}

static void error_refuses_too_little_room(void **state)
{
	struct tf_spec s = { .proto = 17, .src = TF_CLIENT, .dst = TF_VIP, .payload = 72 };
	uint8_t orig[TF_MAX], out[256];

	(void)state;
	tf_build(orig, &s);
	memset(out, 0xcc, sizeof(out));
	assert_int_equal(icmp_error_build(out, 127, 3, 3, 0, 1, orig + TF_ETH, 100), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xcc);
	assert_int_equal(icmp_error_build(out, 128, 3, 3, 0, 1, orig + TF_ETH, 100), 128);
}

static void error_refuses_quote_shorter_than_ip_header(void **state)
{
	uint8_t orig[20] = { 0x45 }, out[128];

	(void)state;
	for (uint32_t l = 0; l < 20; l++)
		assert_int_equal(icmp_error_build(out, sizeof(out), 3, 3, 0, 1, orig, l), 0);
}

/* ---- TCP resets ---- */

struct rst {
	uint32_t seq, ack;
	uint8_t flags;
};

static struct rst check_rst(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t payload,
			    uint8_t ihl, uint8_t optlen)
{
	static const uint8_t opts[40] = { 2, 4, 5, 0xb4, 1, 1, 1, 1, 1, 1, 1, 1,
					  1, 1, 8, 10,	 1, 2, 3, 4, 5, 6, 7, 8 };
	struct tf_spec s = { .proto = 6,
			     .src = TF_CLIENT,
			     .dst = TF_VIP,
			     .sport = 40000,
			     .dport = 80,
			     .tcp_flags = flags,
			     .seq = seq,
			     .ack = ack,
			     .payload = payload,
			     .ihl = ihl,
			     .opts = opts,
			     .optlen = optlen };
	uint32_t len = tf_build(fr, &s);
	uint8_t *ip = fr + TF_ETH, *tcp = ip + 20;
	uint8_t eth[14];
	struct pkt_meta m;
	struct rst r;

	memcpy(eth, fr, 14);
	parse_ok(fr, len, &m);
	assert_int_equal(icmp_tcp_rst(fr, &m), 40);
	assert_memory_equal(fr, eth, 14);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(tf_rd16(ip + 2), 40);
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], 6);
	assert_int_equal(tf_rd32(ip + 12), TF_VIP);
	assert_int_equal(tf_rd32(ip + 16), TF_CLIENT);
	assert_true(ref_ip_ok(ip));
	assert_int_equal(tf_rd16(tcp), 80);
	assert_int_equal(tf_rd16(tcp + 2), 40000);
	assert_int_equal(tcp[12], 5 << 4);
	assert_int_equal(tf_rd16(tcp + 16), ref_l4_csum(ip));
	parse_ok(fr, 14 + 40, &m);
	r.seq = tf_rd32(tcp + 4);
	r.ack = tf_rd32(tcp + 8);
	r.flags = tcp[13];
	return r;
}

static void rst_for_syn_acks_seq_plus_one(void **state)
{
	struct rst r;

	(void)state;
	r = check_rst(0x02, 1000, 0, 0, 5, 8);
	assert_int_equal(r.flags, 0x14);
	assert_int_equal(r.seq, 0);
	assert_int_equal(r.ack, 1001);
	/* Options, IP options: still a bare 40-byte RST. */
	r = check_rst(0x02, 77, 0, 0, 8, 40);
	assert_int_equal(r.ack, 78);
}

static void rst_for_syn_with_data_acks_the_data(void **state)
{
	struct rst r;

	(void)state;
	r = check_rst(0x02, 5000, 0, 100, 5, 0);
	assert_int_equal(r.flags, 0x14);
	assert_int_equal(r.ack, 5101);
	r = check_rst(0x03, 5000, 0, 7, 5, 0); /* SYN+FIN: two */
	assert_int_equal(r.ack, 5009);
}

static void rst_ack_wraps_around(void **state)
{
	struct rst r;

	(void)state;
	r = check_rst(0x02, 0xffffffff, 0, 0, 5, 0);
	assert_int_equal(r.ack, 0);
	r = check_rst(0x00, 0xfffffff0, 0, 20, 5, 0);
	assert_int_equal(r.ack, 4);
}

static void rst_for_ack_segment_takes_seq_from_ack(void **state)
{
	struct rst r;

	(void)state;
	r = check_rst(0x10, 1000, 0xdeadbeef, 0, 5, 0);
	assert_int_equal(r.flags, 0x04);
	assert_int_equal(r.seq, 0xdeadbeef);
	assert_int_equal(r.ack, 0);
	r = check_rst(0x18, 1000, 42, 500, 5, 12);
	assert_int_equal(r.flags, 0x04);
	assert_int_equal(r.seq, 42);
	r = check_rst(0x11, 1000, 43, 0, 6, 0); /* FIN+ACK */
	assert_int_equal(r.flags, 0x04);
	assert_int_equal(r.seq, 43);
}

/* ---- health-check probes ---- */

/* An Ethernet header for IPv4 in front of a probe built at fr + TF_ETH. */
static void probe_frame(struct pkt_meta *m, uint32_t iplen)
{
	memset(fr, 0, TF_ETH);
	fr[12] = 0x08;
	parse_ok(fr, TF_ETH + iplen, m);
	assert_true(ref_ip_ok(fr + TF_ETH));
	assert_int_equal(tf_l4_csum_field(fr + TF_ETH), ref_l4_csum(fr + TF_ETH));
}

static void probe_syn_is_a_plain_syn_with_mss(void **state)
{
	const uint32_t src = 0x020013c6, dst = 0x0b0013c6; /* 198.19.0.2 -> .11 */
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	assert_int_equal(
		icmp_probe_syn(fr + TF_ETH, ICMP_PROBE_SYN_LEN - 1, src, dst, 0xe803, 0x901f, 7),
		0);
	len = icmp_probe_syn(fr + TF_ETH, ICMP_PROBE_SYN_LEN, src, dst, 0xe803, 0x901f, 0xfffff123);
	assert_int_equal(len, ICMP_PROBE_SYN_LEN);
	probe_frame(&m, len);
	assert_int_equal(m.proto, 6);
	assert_int_equal(m.src, src);
	assert_int_equal(m.dst, dst);
	assert_int_equal(m.sport, 0xe803);
	assert_int_equal(m.dport, 0x901f);
	assert_int_equal(m.tcp_flags, 0x02);
	assert_int_equal(m.tcp_seq, 0xfffff123);
	assert_int_equal(m.tcp_hlen, 24);
	assert_int_equal(m.tcp_ts, 0);
	assert_int_equal(m.l4_len, 24);
	/* MSS option 536. */
	assert_int_equal(fr[m.l4_off + 20], 2);
	assert_int_equal(fr[m.l4_off + 21], 4);
	assert_int_equal(fr[m.l4_off + 22] << 8 | fr[m.l4_off + 23], 536);
	/* Its answer, a SYN-ACK, gets the RST that ends the half-open connection. */
	fr[m.l4_off + 13] = 0x12;
	tf_wr32(fr + m.l4_off + 8, 0xfffff124);
	parse_ok(fr, TF_ETH + len, &m);
	len = icmp_tcp_rst(fr, &m);
	parse_ok(fr, TF_ETH + len, &m);
	assert_int_equal(m.tcp_flags, 0x04);
	assert_int_equal(m.tcp_seq, 0xfffff124);
	assert_int_equal(m.dst, src);
}

static void probe_echo_is_a_valid_echo_request(void **state)
{
	const uint32_t src = 0x020013c6, dst = 0x150013c6;
	struct pkt_meta m;
	uint32_t len;

	(void)state;
	assert_int_equal(icmp_probe_echo(fr + TF_ETH, 10, src, dst, 1, 2), 0);
	len = icmp_probe_echo(fr + TF_ETH, ICMP_PROBE_ECHO_LEN, src, dst, 0x0fff, 0xabcd);
	assert_int_equal(len, ICMP_PROBE_ECHO_LEN);
	probe_frame(&m, len);
	assert_int_equal(m.proto, 1);
	assert_int_equal(m.icmp_type, 8);
	assert_int_equal(m.icmp_code, 0);
	assert_int_equal(m.sport, 0xff0f); /* the id, network byte order */
	assert_int_equal(fr[m.l4_off + 6] << 8 | fr[m.l4_off + 7], 0xabcd);
	/* The backend's echo reply carries them back. */
	icmp_echo_reply(fr, &m);
	probe_frame(&m, len);
	assert_int_equal(m.icmp_type, 0);
	assert_int_equal(m.dst, src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(echo_reply_swaps_addresses_with_valid_checksums),
		cmocka_unit_test(echo_reply_with_nonzero_code_clears_it),
		cmocka_unit_test(error_quotes_whole_small_packet),
		cmocka_unit_test(error_is_truncated_to_576_bytes),
		cmocka_unit_test(error_refuses_too_little_room),
		cmocka_unit_test(error_refuses_quote_shorter_than_ip_header),
		cmocka_unit_test(rst_for_syn_acks_seq_plus_one),
		cmocka_unit_test(rst_for_syn_with_data_acks_the_data),
		cmocka_unit_test(rst_ack_wraps_around),
		cmocka_unit_test(rst_for_ack_segment_takes_seq_from_ack),
		cmocka_unit_test(probe_syn_is_a_plain_syn_with_mss),
		cmocka_unit_test(probe_echo_is_a_valid_echo_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
