/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsrw: TCP timestamp rewriting on real frames, driven as worker_forward()
 * drives it: pkt_parse(), then tsrw_packet() when the flow and the packet both
 * carry timestamps, then nat_rewrite(). Every frame is processed in a heap
 * copy of exactly its size, so the sanitizers see any access past it. What is
 * checked is what the peers read (the option bytes, the other bytes left
 * alone) and checksums recomputed in full by the reference in frame.h; the
 * option walk's verdicts on odd and malformed layouts; nat_tcp_add32() at
 * every offset; and the flow's newest TSval' (ts_max).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>

#include <cmocka.h>

#include "cfg.h"
#include "flow.h"
#include "frame.h"
#include "nat.h"
#include "palloc.h"
#include "pkt.h"
#include "tsrw.h"

#include "tcpnames.h"

#define ITERATIONS 3000

#define CPORT 40000
#define VPORT 80
#define SPORT 61000
#define BPORT 8080

#define PSH 0x08

/* A timestamp option; tseg_build() writes TSval and TSecr into it. */
#define TSOPT 8, 10, 0, 0, 0, 0, 0, 0, 0, 0

/* The case under test, named in EXPECT() failures. */
static char what[200];

#define EXPECT(expr, want)                                                                        \
	do {                                                                                      \
		uint64_t got_ = (expr), want_ = (want);                                           \
		if (got_ != want_)                                                                \
			fail_msg("%s: %s is %#" PRIx64 ", expected %#" PRIx64, what, #expr, got_, \
				 want_);                                                          \
	} while (0)

static uint32_t h32(uint32_t net)
{
	return tf_rd32((const uint8_t *)&net);
}

static uint16_t h16(uint16_t net)
{
	return tf_rd16((const uint8_t *)&net);
}

/* A TCP flow client:CPORT -> VIP:VPORT, SNAT:SPORT -> backend:BPORT. */
static void flow_init(struct flow *f, uint8_t ts, uint32_t ts_off, uint32_t ts_max)
{
	memset(f, 0, sizeof(*f));
	f->proto = IPPROTO_TCP;
	f->cip = tf_n32(TF_CLIENT);
	f->cport = tf_n16(CPORT);
	f->vip = tf_n32(TF_VIP);
	f->vport = tf_n16(VPORT);
	f->sip = tf_n32(TF_SNAT);
	f->sport = tf_n16(SPORT);
	f->bip = tf_n32(TF_BACKEND);
	f->bport = tf_n16(BPORT);
	f->state = FLOW_ESTABLISHED;
	f->ts = ts;
	f->ts_off = ts_off;
	f->ts_max = ts_max;
	/* As at a SYN long ago: the full credit (tsrw.h) by the time of NOW. */
	f->ts_credit = TSRW_CREDIT_MAX;
}

/* The clock the tests run tsrw_packet() at. */
#define NOW 5000000u

/* One segment as its sender puts it on the wire. */
struct tseg {
	const uint8_t *opts;
	uint8_t n;	  /* option bytes, padded with EOL to a multiple of 4 */
	uint8_t ts;	  /* where the sender put the timestamp option (TCP offset); 0: none */
	uint32_t tsval;	  /* written into the option at @ts */
	uint32_t tsecr;	  /* idem */
	uint8_t flags;	  /* TCP flags */
	uint16_t payload; /* bytes */
	uint8_t ihl;	  /* 0: 5 */
	uint64_t *rnd;	  /* random payload from this seed; NULL: a pattern */
};

/* Build @t sent by the client (FWD) or by the backend (REV) of @f into @fr. */
static uint32_t tseg_build(uint8_t *fr, const struct flow *f, enum flow_dir dir,
			   const struct tseg *t)
{
	uint8_t opts[40] = { 0 };
	struct tf_spec s = {
		.proto = 6,
		.ihl = t->ihl,
		.tcp_flags = t->flags,
		.seq = 1000,
		.ack = 2000,
		.payload = t->payload,
		.opts = opts,
		.optlen = (uint8_t)((t->n + 3u) & ~3u),
	};
	uint32_t len, l4;

	assert_true(t->n <= sizeof(opts));
	memcpy(opts, t->opts, t->n);
	if (t->ts != 0) {
		assert_true(t->ts >= 20 && t->ts + 10u <= 20u + t->n && opts[t->ts - 20] == 8);
		tf_wr32(opts + t->ts - 20 + 2, t->tsval);
		tf_wr32(opts + t->ts - 20 + 6, t->tsecr);
	}
	if (dir == FWD) {
		s.src = h32(f->cip);
		s.sport = h16(f->cport);
		s.dst = h32(f->vip);
		s.dport = h16(f->vport);
	} else {
		s.src = h32(f->bip);
		s.sport = h16(f->bport);
		s.dst = h32(f->sip);
		s.dport = h16(f->sport);
	}
	len = tf_build(fr, &s);
	if (t->rnd != NULL) {
		l4 = TF_ETH + (s.ihl ? s.ihl : 5u) * 4;
		for (uint32_t i = l4 + 20u + s.optlen; i < len; i++)
			fr[i] = (uint8_t)tf_rand(t->rnd);
		tf_fix(fr);
	}
	return len;
}

static void parse_ok(const uint8_t *fr, uint32_t len, struct pkt_meta *pm)
{
	uint8_t *p = tf_exact(fr, len);
	int rc;

	assert_non_null(p);
	rc = pkt_parse(p, len, pm);
	free(p);
	if (rc != 0)
		fail_msg("%s: frame does not parse: %s", what, stats_drop_name(pm->drop));
}

/*
 * What worker_forward() does to a TCP segment of @f arriving in @dir, on a
 * copy of exactly @len bytes: parse, timestamps when both the flow and the
 * packet have them, then addresses and ports. @fr gets the result.
 */
static bool dropped; /* the last worker_path() dropped its packet */

/* worker_path() at @now_ms. */
static void worker_path_at(uint8_t *fr, uint32_t len, struct flow *f, enum flow_dir dir,
			   struct pkt_meta *pm, uint64_t now_ms)
{
	uint8_t *p = tf_exact(fr, len);
	int rc;

	assert_non_null(p);
	rc = pkt_parse(p, len, pm);
	if (rc != 0) {
		free(p);
		fail_msg("%s: frame does not parse: %s", what, stats_drop_name(pm->drop));
	}
	if (f->ts != 0 && pm->tcp_ts != 0 && !tsrw_packet(f, p + pm->l4_off, pm, dir, now_ms)) {
		/* Dropped by the worker (ts_implausible): nothing was touched. */
		assert_memory_equal(p, fr, len);
		free(p);
		dropped = true;
		return;
	}
	dropped = false;
	if (dir == FWD)
		nat_rewrite(p, pm, f->sip, f->sport, f->bip, f->bport);
	else
		nat_rewrite(p, pm, f->vip, f->vport, f->cip, f->cport);
	memcpy(fr, p, len);
	free(p);
}

static void worker_path(uint8_t *fr, uint32_t len, struct flow *f, enum flow_dir dir,
			struct pkt_meta *pm)
{
	worker_path_at(fr, len, f, dir, pm, NOW);
}

/* Both checksums of @fr equal what a full computation gives. */
static void assert_csums_full(const uint8_t *fr)
{
	const uint8_t *ip = fr + TF_ETH;

	EXPECT(tf_rd16(ip + 10), ref_ip_csum(ip));
	EXPECT(ref_ip_ok(ip), 1);
	EXPECT(tf_l4_csum_field(ip), ref_l4_csum(ip));
}

/* @fr went through worker_path() in @dir: it carries the other side's tuple. */
static void assert_tuple(const uint8_t *fr, uint32_t len, const struct flow *f, enum flow_dir dir)
{
	struct pkt_meta m;

	parse_ok(fr, len, &m);
	EXPECT(m.src, dir == FWD ? f->sip : f->vip);
	EXPECT(m.sport, dir == FWD ? f->sport : f->vport);
	EXPECT(m.dst, dir == FWD ? f->bip : f->cip);
	EXPECT(m.dport, dir == FWD ? f->bport : f->cport);
}

/*
 * @now is @was after worker_path(): every byte is the same except what NAT
 * owns (TTL, IP checksum, addresses, ports, TCP checksum) and the TCP header
 * bytes [lo, hi).
 */
static void assert_same_except(const uint8_t *was, const uint8_t *now, uint32_t len,
			       const struct pkt_meta *pm, uint32_t lo, uint32_t hi)
{
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = i - pm->l3_off, t = i - pm->l4_off;

		if (i >= pm->l3_off && i < pm->l4_off && (o == 8 || o == 10 || o == 11 || o >= 12))
			continue;
		if (i >= pm->l4_off && (t < 4 || t == 16 || t == 17 || (t >= lo && t < hi)))
			continue;
		if (was[i] != now[i])
			fail_msg("%s: byte %u (TCP header %+d) changed from %#04x to %#04x", what,
				 i, (int)i - pm->l4_off, was[i], now[i]);
	}
}

/*
 * The client sends TSval @tsval with @t's options through @f, then the
 * backend answers with the same options, its own TSval @bts, echoing the
 * TSval' it read. Checks: the backend reads TSval' = TSval + ts_off mod 2^32
 * (TSval itself without rewriting), the client's TSecr untouched; the client
 * reads its own TSval back in TSecr (if the reply has ACK) and @bts untouched;
 * nothing else but the NAT fields changes, checksums are whole. Returns TSval'.
 */
static uint32_t round_trip(struct flow *f, const struct tseg *t, uint32_t tsval, uint32_t bts)
{
	uint8_t was[TF_MAX], fr[TF_MAX];
	struct tseg s = *t;
	struct pkt_meta pm;
	uint32_t len, seen, off = (f->ts & FLOW_TS_REWRITE) ? f->ts_off : 0;
	uint32_t want = (uint32_t)(((uint64_t)tsval + off) % (1ull << 32));

	s.tsval = tsval;
	s.tsecr = bts - 1000; /* an earlier TSval of the backend */
	len = tseg_build(was, f, FWD, &s);
	memcpy(fr, was, len);
	worker_path(fr, len, f, FWD, &pm);
	EXPECT(pm.tcp_ts, t->ts);
	EXPECT(pm.tcp_ts_bad, 0);
	seen = tf_rd32(fr + pm.l4_off + t->ts + 2);
	EXPECT(seen, want);
	EXPECT(tf_rd32(fr + pm.l4_off + t->ts + 6), s.tsecr);
	assert_same_except(was, fr, len, &pm, t->ts + 2u, t->ts + 6u);
	assert_csums_full(fr);
	assert_tuple(fr, len, f, FWD);

	s.tsval = bts;
	s.tsecr = seen;
	s.flags = (uint8_t)(t->flags | ACK);
	len = tseg_build(was, f, REV, &s);
	memcpy(fr, was, len);
	worker_path(fr, len, f, REV, &pm);
	EXPECT(pm.tcp_ts, t->ts);
	EXPECT(tf_rd32(fr + pm.l4_off + t->ts + 2), bts);
	EXPECT(tf_rd32(fr + pm.l4_off + t->ts + 6), tsval);
	assert_same_except(was, fr, len, &pm, t->ts + 6u, t->ts + 10u);
	assert_csums_full(fr);
	assert_tuple(fr, len, f, REV);
	EXPECT(f->ts & FLOW_TS_BACKEND, FLOW_TS_BACKEND);
	return seen;
}

/* NOP NOP TS: what Linux puts on every segment after the SYN. */
static const uint8_t nop_nop_ts[] = { 1, 1, TSOPT };

static const struct tseg data_seg = {
	.opts = nop_nop_ts, .n = sizeof(nop_nop_ts), .ts = 22, .flags = ACK | PSH, .payload = 100
};

/* ---- the round trip ---- */

static void tsecr_restored_exactly_on_reply(void **state)
{
	static const struct {
		uint32_t tsval, off, bts;
	} cases[] = {
		{ 1000, 5000, 777 },
		{ 123456789, 0x80000000, 0x12345678 },
		{ 0x7fffffff, 1, 1 },
		{ 42, 0, 43 }, /* an offset of 0 rewrites to the same bytes */
		{ 0x00010000, 0xffff0000, 0x00ff00ff },
		{ 0xdeadbeef, 0x21524111, 0xcafef00d },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow f;
		uint32_t seen;

		snprintf(what, sizeof(what), "tsval %#x off %#x", cases[i].tsval, cases[i].off);
		flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, cases[i].off,
			  cases[i].tsval + cases[i].off - 1);
		seen = round_trip(&f, &data_seg, cases[i].tsval, cases[i].bts);
		EXPECT(f.ts_max, seen);
		EXPECT(f.ts_off, cases[i].off); /* the flow's offset never moves */
	}
}

static void tsval_wraps_at_2_32_and_tsecr_comes_back(void **state)
{
	static const struct {
		uint32_t tsval, off, bts, want;
	} cases[] = {
		{ 0xffffffff, 1, 0xffffffff, 0 },
		{ 0xfffffff0, 0x20, 0, 0x10 },
		{ 0x10, 0xffffffe0, 0xfffffffe, 0xfffffff0 }, /* a "negative" offset */
		{ 0, 0xffffffff, 0x80000000, 0xffffffff },
		{ 0xffffffff, 0xffffffff, 5, 0xfffffffe },
		{ 0x80000000, 0x80000000, 0x7fffffff, 0 },
		{ 0xfffffffe, 0x7fffffff, 0xffffffff, 0x7ffffffd },
		{ 1, 0xfffffffe, 0xfffffff0, 0xffffffff },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow f;

		snprintf(what, sizeof(what), "tsval %#x off %#x", cases[i].tsval, cases[i].off);
		flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, cases[i].off, cases[i].want - 5);
		EXPECT(round_trip(&f, &data_seg, cases[i].tsval, cases[i].bts), cases[i].want);
		EXPECT(f.ts_max, cases[i].want);
		/* The next segment of the flow, one tick later, across the wrap too. */
		EXPECT(round_trip(&f, &data_seg, cases[i].tsval + 1, cases[i].bts + 1),
		       cases[i].want + 1);
		EXPECT(f.ts_max, cases[i].want + 1);
	}
}

/*
 * As the worker opens a flow: palloc_ts_open() fixes the offset at the SYN so
 * that the SYN reaches the backend with TSval' = R; the SYN-ACK's TSecr comes
 * back as the client's TSval. Without rewriting, the SYN passes unchanged.
 */
static void syn_reaches_backend_with_the_reference_clock(void **state)
{
	static const uint8_t syn_opts[] = { 2, 4, 5, 0xb4, 4, 2, TSOPT, 1, 3, 3, 7 };
	const struct tseg syn = { .opts = syn_opts, .n = sizeof(syn_opts), .ts = 26, .flags = SYN };
	struct cfg *c = cfg_new();
	struct cfg_service *svc;
	uint64_t now = 3000000, tried = 0;
	struct palloc pa;
	struct flow f;
	uint32_t r;

	(void)state;
	assert_non_null(c);
	svc = &c->services[0];
	svc->used = true;
	svc->gen = c->next_gen++;
	snprintf(svc->name, sizeof(svc->name), "web");
	svc->vip = tf_n32(TF_VIP);
	svc->l4port = tf_n16(VPORT);
	svc->proto = IPPROTO_TCP;
	svc->snat_all = true;
	svc->tw_quarantine = CFG_INHERIT;
	c->snat[0] = (struct cfg_snat){
		.used = true, .gen = c->next_gen++, .ip = tf_n32(TF_SNAT), .lo = 1024, .hi = 65535
	};
	assert_int_equal(palloc_init(&pa, 0, 1, 0x75c10c, 16, 64, -1, now), 0);

	for (int rewrite = 1; rewrite >= 0; rewrite--) {
		uint32_t tsval = rewrite ? 0xfffffff0u : 0x01020304u;

		snprintf(what, sizeof(what), "SYN, rewrite %d", rewrite);
		flow_init(&f, 0, 0, 0);
		f.state = FLOW_SYN;
		f.sip = 0;
		f.sport = 0;
		assert_int_equal(palloc_get(&pa, c, svc, &f, &tried), 0);
		EXPECT(f.sip, tf_n32(TF_SNAT));
		r = palloc_ts_open(&pa, c, &f, tsval, rewrite, now);
		EXPECT(f.ts, rewrite ? FLOW_TS_SEEN | FLOW_TS_REWRITE : FLOW_TS_SEEN);
		EXPECT(f.ts_off, r - tsval);
		if (!rewrite)
			EXPECT(r, tsval);
		/* SYN, SYN-ACK echoing R, then data both ways. */
		EXPECT(round_trip(&f, &syn, tsval, 0x55aa55aa), r);
		EXPECT(f.ts_max, r);
		EXPECT(round_trip(&f, &data_seg, tsval + 40, 0x55aa55ff), r + 40);
		EXPECT(f.ts_max, r + 40);
		palloc_release(&pa, &f);
		now += 1000;
	}
	palloc_free(&pa);
	cfg_free(c);
}

/* RFC 7323 s3.2: TSecr is valid only with ACK; without it, it is not ours to change. */
static void tsecr_untouched_without_ack(void **state)
{
	static const uint8_t no_ack[] = { SYN, RST, FIN, 0, PSH, SYN | FIN };
	uint8_t was[TF_MAX], fr[TF_MAX];
	struct tseg t = data_seg;
	struct pkt_meta pm;
	struct flow f;
	uint32_t len;

	(void)state;
	for (size_t i = 0; i <= sizeof(no_ack); i++) {
		int ack = i == sizeof(no_ack); /* the last one: control, with ACK */

		snprintf(what, sizeof(what), "REV flags %#x", ack ? ACK : no_ack[i]);
		flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, 0x10000, 0xabcd);
		t.flags = ack ? ACK : no_ack[i];
		t.tsval = 0x99999999; /* the backend's own */
		t.tsecr = 0x00001000;
		len = tseg_build(was, &f, REV, &t);
		memcpy(fr, was, len);
		worker_path(fr, len, &f, REV, &pm);
		EXPECT(tf_rd32(fr + pm.l4_off + 22 + 2), 0x99999999);
		EXPECT(tf_rd32(fr + pm.l4_off + 22 + 6), ack ? 0x00001000u - 0x10000u : 0x00001000);
		assert_same_except(was, fr, len, &pm, ack ? 28 : 0, ack ? 32 : 0);
		assert_csums_full(fr);
		EXPECT(f.ts_max, 0xabcd); /* the backend's TSval is not tracked */
		EXPECT(f.ts & FLOW_TS_BACKEND, FLOW_TS_BACKEND);
	}
}

/* ---- option layouts ---- */

struct layout {
	const char *name;
	uint8_t opts[40];
	uint8_t n;
	uint8_t ts; /* where the option is, as counted by hand */
};

#define LAYOUT(name, ts, ...)                                                       \
	{                                                                           \
		name, { __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }), ts \
	}

/* 8 bytes of a SACK block, 4 of MSS, 3 of window scale. */
#define SB  1, 2, 3, 4, 0x81, 0x82, 0x83, 0x84
#define MSS 2, 4, 5, 0xb4
#define WS  3, 3, 7
#define N5  1, 1, 1, 1, 1
#define N10 N5, N5

static const struct layout layouts[] = {
	LAYOUT("NOP NOP TS (2 mod 4)", 22, 1, 1, TSOPT),
	LAYOUT("TS first (0 mod 4)", 20, TSOPT, 1, 1),
	LAYOUT("Linux SYN: MSS SACKOK TS NOP WS", 26, MSS, 4, 2, TSOPT, 1, WS),
	LAYOUT("MSS NOP WS SACKOK TS", 30, MSS, 1, WS, 4, 2, TSOPT),
	LAYOUT("MSS WS NOP SACKOK NOP NOP TS (0 mod 4)", 32, MSS, WS, 1, 4, 2, 1, 1, TSOPT),
	LAYOUT("single NOP then TS (odd, 1 mod 4)", 21, 1, TSOPT),
	LAYOUT("MSS WS TS (odd, 3 mod 4)", 27, MSS, WS, TSOPT),
	LAYOUT("unknown kind, NOP, TS (odd)", 29, 0xfe, 8, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 1,
	       TSOPT),
	LAYOUT("TS then SACK block", 22, 1, 1, TSOPT, 1, 1, 5, 10, SB),
	LAYOUT("two SACK blocks then TS (0 mod 4)", 40, 1, 1, 5, 18, SB, SB, TSOPT),
	LAYOUT("three SACK blocks then TS (odd)", 47, 1, 5, 26, SB, SB, SB, TSOPT),
	LAYOUT("TS ending at the header's end", 50, N10, N10, N10, TSOPT),
	LAYOUT("TS at the last odd offset", 49, N10, N10, N5, 1, 1, 1, 1, TSOPT, 0),
	LAYOUT("EOL then garbage", 22, 1, 1, TSOPT, 0, 8, 10, 9, 9, 9, 9, 9, 9, 9, 9, 2, 0, 8, 1,
	       0xff, 1),
	LAYOUT("EOL then a zero length", 21, 1, TSOPT, 0, 5, 0, 0xee),
};

static void timestamp_rewritten_in_every_option_layout(void **state)
{
	static const struct {
		uint32_t tsval, off;
	} vals[] = { { 1000, 0x10000 }, { 0xfffffffa, 9 }, { 7, 0xfffffff0 } };
	static const uint16_t payloads[] = { 0, 13, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct layout *l = &layouts[i];
		struct tseg t = { .opts = l->opts, .n = l->n, .ts = l->ts, .flags = ACK };

		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			for (size_t p = 0; p < sizeof(payloads) / sizeof(payloads[0]); p++) {
				struct flow f;

				snprintf(what, sizeof(what), "%s, tsval %#x off %#x, payload %u",
					 l->name, vals[v].tsval, vals[v].off, payloads[p]);
				t.payload = payloads[p];
				flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, vals[v].off, 0);
				round_trip(&f, &t, vals[v].tsval, 0x31337);
			}
		}
	}
}

/* ---- malformed options ---- */

/* Options @o (EOL-padded), no payload: the header ends where the frame does. */
static int parse_opts(const uint8_t *o, uint8_t n, struct pkt_meta *pm)
{
	struct tseg t = { .opts = o, .n = n, .flags = ACK };
	uint8_t fr[TF_MAX], *p;
	struct flow f;
	uint32_t len;
	int rc;

	flow_init(&f, 0, 0, 0);
	len = tseg_build(fr, &f, FWD, &t);
	p = tf_exact(fr, len);
	assert_non_null(p);
	rc = pkt_parse(p, len, pm);
	free(p);
	return rc;
}

static void bad_option_length_is_dropped(void **state)
{
	static const struct layout bad[] = {
		LAYOUT("zero length after TS", 0, 1, 1, TSOPT, 2, 0, 1, 1),
		LAYOUT("zero length SACK before TS", 0, 5, 0, 1, 1, TSOPT),
		LAYOUT("length 1 before TS", 0, 4, 1, 1, 1, TSOPT, 1, 1),
		LAYOUT("length 1 after TS", 0, TSOPT, 1, 3, 1, 1, 1, 1),
		LAYOUT("length 1 on a TS", 0, 1, 1, 8, 1, 1, 1),
		LAYOUT("length 0 on a TS", 0, 1, 1, 8, 0, 1, 1),
		LAYOUT("TS past the end", 0, 1, 1, 1, 1, 8, 10, 0, 0, 0, 0, 0, 0),
		LAYOUT("TS past the end at an odd offset", 0, 1, 1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0),
		LAYOUT("TS past the end of a full header", 0, N10, N10, N10, 1, 1, 1, 8, 10, 1, 2,
		       3, 4, 5),
		LAYOUT("SACK past the end after TS", 0, 1, 1, TSOPT, 1, 1, 5, 18, SB),
		LAYOUT("length 255 after TS", 0, 1, 1, TSOPT, 1, 0xfe, 255, 0),
		LAYOUT("kind in the last byte after TS", 0, 1, 1, TSOPT, 1, 1, 1, 3),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pkt_meta pm;

		snprintf(what, sizeof(what), "%s", bad[i].name);
		EXPECT((uint32_t)parse_opts(bad[i].opts, bad[i].n, &pm), (uint32_t)-1);
		if (pm.drop != STATS_DROP_TCP_BAD_OPTION)
			fail_msg("%s: drop %s", what, stats_drop_name(pm.drop));
	}
}

/*
 * Timestamp options of a length other than 10 and none of length 10: the
 * packet passes, flagged, but no byte of it changes beyond what NAT owns, in
 * either direction, and ts_max stays.
 */
static void malformed_timestamp_is_left_untouched(void **state)
{
	static const struct layout bad[] = {
		LAYOUT("TS of length 8", 0, 1, 1, 8, 8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66),
		LAYOUT("TS of length 12", 0, 8, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 1),
		LAYOUT("TS of length 2", 0, 1, 1, 8, 2),
		LAYOUT("TS of length 9 at an odd offset", 0, 1, 8, 9, 1, 2, 3, 4, 5, 6, 7),
		LAYOUT("two TS of length 8 and 12", 0, 8, 8, 1, 2, 3, 4, 5, 6, 8, 12, 1, 2, 3, 4, 5,
		       6, 7, 8, 9, 10),
		LAYOUT("TS of length 11 holding a TS of length 10", 0, 8, 11, 8, 10, 1, 2, 3, 4, 5,
		       6, 7, 1),
		LAYOUT("TS of length 8, a good one after EOL", 0, 8, 8, 1, 2, 3, 4, 5, 6, 0, 0,
		       TSOPT),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int dir = FWD; dir <= REV; dir++) {
			struct tseg t = {
				.opts = bad[i].opts, .n = bad[i].n, .flags = ACK, .payload = 21
			};
			uint8_t was[TF_MAX], fr[TF_MAX];
			struct pkt_meta pm;
			struct flow f;
			uint32_t len;

			snprintf(what, sizeof(what), "%s, %s", bad[i].name,
				 dir == FWD ? "FWD" : "REV");
			flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, 0x01010101, 0x1234);
			len = tseg_build(was, &f, (enum flow_dir)dir, &t);
			memcpy(fr, was, len);
			worker_path(fr, len, &f, (enum flow_dir)dir, &pm);
			EXPECT(dropped, false);
			EXPECT(pm.tcp_ts, 0);
			EXPECT(pm.tcp_ts_bad, 1);
			assert_same_except(was, fr, len, &pm, 0, 0);
			assert_csums_full(fr);
			assert_tuple(fr, len, &f, (enum flow_dir)dir);
			EXPECT(f.ts_max, 0x1234);
		}
	}
}

/*
 * Two timestamp options of length 10: Linux would use the last, which a
 * rewriter taking the first would let through raw, so the parser drops the
 * packet (tcp_ts_duplicate) before any flow sees it, whatever else is there.
 */
static void duplicate_timestamps_are_dropped(void **state)
{
	static const struct layout dup[] = {
		LAYOUT("two TS", 0, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 8, 10, 9, 9, 9, 9, 9,
		       9, 9, 9),
		LAYOUT("two TS, odd offsets", 0, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 9, 9, 9,
		       9, 9, 9, 9, 9),
		LAYOUT("two TS around one of length 8", 0, TSOPT, 8, 8, 1, 2, 3, 4, 5, 6, TSOPT),
		LAYOUT("three TS", 0, TSOPT, TSOPT, TSOPT),
		LAYOUT("two TS apart, after MSS and a SACK block", 0, MSS, TSOPT, 1, 5, 10, SB,
		       TSOPT),
		LAYOUT("two identical TS", 0, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 1, 2, 3, 4, 5,
		       6, 7, 8),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(dup) / sizeof(dup[0]); i++) {
		struct pkt_meta pm;

		snprintf(what, sizeof(what), "%s", dup[i].name);
		EXPECT((uint32_t)parse_opts(dup[i].opts, dup[i].n, &pm), (uint32_t)-1);
		if (pm.drop != STATS_DROP_TCP_TS_DUPLICATE)
			fail_msg("%s: drop %s", what, stats_drop_name(pm.drop));
		EXPECT(pm.tcp_ts, 0);
	}
}

/*
 * A timestamp option of a wrong length beside one of length 10: Linux ignores
 * the bad one and uses the good one, so the good one is rewritten as on any
 * packet (TSval' in FWD, TSecr back in REV) and the bad one's bytes stay.
 */
static void bad_and_good_timestamp_rewrites_the_good_one(void **state)
{
	static const struct layout mixed[] = {
		LAYOUT("TS of length 8, then a good one", 30, 8, 8, 1, 2, 3, 4, 5, 6, 1, 1, TSOPT),
		LAYOUT("good TS, then one of length 12", 22, 1, 1, TSOPT, 8, 12, 1, 2, 3, 4, 5, 6,
		       7, 8, 9, 10),
		LAYOUT("length 2, good at an odd offset, length 6", 23, 1, 8, 2, TSOPT, 8, 6, 1, 2,
		       3, 4),
		LAYOUT("length 18 around garbage, then a good one", 38, 8, 18, 8, 10, 1, 2, 3, 4, 5,
		       6, 7, 8, 9, 9, 9, 9, 9, 9, TSOPT),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++) {
		const struct layout *l = &mixed[i];
		struct tseg t = { .opts = l->opts, .n = l->n, .ts = l->ts, .flags = ACK };
		struct flow f;

		snprintf(what, sizeof(what), "%s", l->name);
		flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, 0x01010101, 0x1234);
		/* round_trip() wants tcp_ts_bad 0; check the parse here. */
		{
			struct pkt_meta pm;

			EXPECT((uint32_t)parse_opts(l->opts, l->n, &pm), 0);
			EXPECT(pm.tcp_ts, l->ts);
			EXPECT(pm.tcp_ts_bad, 1);
		}
		for (int dir = FWD; dir <= REV; dir++) {
			uint8_t was[TF_MAX], fr[TF_MAX];
			uint32_t len, at = dir == FWD ? l->ts + 2u : l->ts + 6u;
			struct pkt_meta pm;

			snprintf(what, sizeof(what), "%s, %s", l->name, dir == FWD ? "FWD" : "REV");
			t.tsval = dir == FWD ? 0x2000 : 0x77777777;
			t.tsecr = dir == FWD ? 0x55555555 : 0x2000 + 0x01010101;
			len = tseg_build(was, &f, (enum flow_dir)dir, &t);
			memcpy(fr, was, len);
			worker_path(fr, len, &f, (enum flow_dir)dir, &pm);
			EXPECT(dropped, false);
			EXPECT(pm.tcp_ts, l->ts);
			EXPECT(pm.tcp_ts_bad, 1);
			EXPECT(tf_rd32(fr + pm.l4_off + at),
			       0x2000 + (dir == FWD ? 0x01010101 : 0));
			assert_same_except(was, fr, len, &pm, at, at + 4u);
			assert_csums_full(fr);
			assert_tuple(fr, len, &f, (enum flow_dir)dir);
			EXPECT(f.ts_max, 0x2000 + 0x01010101);
		}
	}
}

/* ---- checksums ---- */

/*
 * Random options with a timestamp option at a random offset: before it any
 * mix of NOP, MSS, window scale, SACK-permitted, SACK blocks and unknown
 * kinds; after it NOPs, then sometimes EOL and garbage. Returns the length (a
 * multiple of 4); the option's offset in the TCP header goes to *ts.
 */
static uint8_t random_opts(uint8_t *o, uint8_t *ts, uint64_t *seed)
{
	uint8_t pre = (uint8_t)(tf_rand(seed) % 31), i = 0, n, eol;

	while (i < pre) {
		uint64_t r = tf_rand(seed);
		uint8_t room = (uint8_t)(pre - i), len = 1;

		switch (r % 6) {
		case 1:
			len = 4, o[i] = 2;
			break;
		case 2:
			len = 3, o[i] = 3;
			break;
		case 3:
			len = 2, o[i] = 4;
			break;
		case 4:
			len = (uint8_t)(2 + 8 * (1 + (r >> 8) % 3)), o[i] = 5;
			break;
		case 5:
			len = (uint8_t)(2 + (r >> 8) % 12), o[i] = (uint8_t)(9 + (r >> 16) % 247);
			break;
		default:
			break;
		}
		if (len > room)
			len = 1;
		if (len == 1) {
			o[i++] = 1;
			continue;
		}
		o[i + 1] = len;
		for (uint8_t j = 2; j < len; j++)
			o[i + j] = (uint8_t)tf_rand(seed);
		i = (uint8_t)(i + len);
	}
	*ts = (uint8_t)(20 + pre);
	o[pre] = 8;
	o[pre + 1] = 10;
	i = (uint8_t)(pre + 10);
	n = (uint8_t)((i + 3) & ~3);
	n = (uint8_t)(n + 4 * (tf_rand(seed) % ((40u - n) / 4 + 1)));
	eol = (uint8_t)(i + tf_rand(seed) % (n - i + 1u)); /* n - i: no EOL */
	/* n <= 40: the bound is spelled out for GCC's -O3 overflow check. */
	for (; i < n && i < 40; i++)
		o[i] = i < eol ? 1 : i == eol ? 0 : (uint8_t)tf_rand(seed);
	return n;
}

static uint32_t random_u32(uint64_t *seed)
{
	static const uint32_t edge[] = { 0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff };
	uint64_t r = tf_rand(seed);

	if (r % 8 == 0)
		return edge[(r >> 8) % 6] + (uint32_t)((r >> 16) % 5) - 2u;
	return (uint32_t)(r >> 16);
}

static void rewrite_checksums_match_full_recompute(void **state)
{
	static const uint32_t edge_ahead[] = { 1, TSRW_CREDIT_MAX - 1, TSRW_CREDIT_MAX,
					       TSRW_CREDIT_MAX + 1, 0x7fffffff };
	uint64_t seed = 0x75c5;
	unsigned long odd = 0, acks = 0, refused = 0, raised = 0;

	(void)state;
	for (int it = 0; it < ITERATIONS; it++) {
		uint8_t opts[40], was[TF_MAX], fr[TF_MAX];
		struct tseg t = { .opts = opts, .rnd = &seed };
		uint32_t len, tsval, seen, bts, tsecr;
		struct pkt_meta pm;
		struct flow f;
		int ack;

		snprintf(what, sizeof(what), "iteration %d", it);
		t.n = random_opts(opts, &t.ts, &seed);
		t.ihl = (uint8_t)(5 + tf_rand(&seed) % 11);
		t.payload = (uint16_t)(tf_rand(&seed) % 1401);
		t.flags = (uint8_t)tf_rand(&seed);
		ack = tf_rand(&seed) % 4 != 0;
		t.flags = (uint8_t)(ack ? t.flags | ACK : t.flags & ~ACK);
		flow_init(&f, FLOW_TS_SEEN | FLOW_TS_REWRITE, random_u32(&seed), 0);
		t.tsval = tsval = random_u32(&seed);
		t.tsecr = tsecr = random_u32(&seed);
		/* ts_max: mostly within the credit of TSval' (ahead or behind), else
		 * at the credit's edge or anywhere. */
		switch (tf_rand(&seed) % 8) {
		case 0:
			f.ts_max = random_u32(&seed);
			break;
		case 1:
			f.ts_max = tsval + f.ts_off - edge_ahead[tf_rand(&seed) % 5];
			break;
		case 2:
		case 3:
			f.ts_max = tsval + f.ts_off + (uint32_t)(tf_rand(&seed) % 0x80000001u);
			break;
		default:
			f.ts_max = tsval + f.ts_off -
				   (uint32_t)(tf_rand(&seed) % (TSRW_CREDIT_MAX + 1ull));
			break;
		}
		odd += t.ts & 1;
		acks += (unsigned long)ack;

		/* Client to backend: TSval' = TSval + off. */
		len = tseg_build(was, &f, FWD, &t);
		memcpy(fr, was, len);
		{
			uint32_t max0 = f.ts_max, want = tsval + f.ts_off;
			int32_t ahead = (int32_t)(want - max0);
			bool refuse = ahead > (int32_t)TSRW_CREDIT_MAX;

			worker_path(fr, len, &f, FWD, &pm);
			EXPECT(pm.tcp_ts, t.ts);
			EXPECT(dropped, refuse);
			if (refuse) {
				/* Beyond the credit: frame (worker_path() checks) and flow
				 * untouched. */
				refused++;
				EXPECT(f.ts_max, max0);
				EXPECT(f.ts_credit, TSRW_CREDIT_MAX);
				EXPECT(f.ts_raised, 0);
				seen = want; /* what the backend would have read */
			} else {
				seen = tf_rd32(fr + pm.l4_off + t.ts + 2);
				EXPECT(seen, want);
				EXPECT(tf_rd32(fr + pm.l4_off + t.ts + 6), tsecr);
				EXPECT(f.ts_max, ahead > 0 ? want : max0);
				EXPECT(f.ts_credit,
				       TSRW_CREDIT_MAX - (ahead > 0 ? (uint32_t)ahead : 0));
				raised += ahead > 0;
				assert_same_except(was, fr, len, &pm, t.ts + 2u, t.ts + 6u);
				assert_csums_full(fr);
			}
		}

		/* Backend to client: TSecr - off, with ACK only. */
		t.tsval = bts = random_u32(&seed);
		t.tsecr = seen;
		len = tseg_build(was, &f, REV, &t);
		memcpy(fr, was, len);
		worker_path(fr, len, &f, REV, &pm);
		EXPECT(tf_rd32(fr + pm.l4_off + t.ts + 2), bts);
		EXPECT(tf_rd32(fr + pm.l4_off + t.ts + 6), ack ? tsval : seen);
		assert_same_except(was, fr, len, &pm, t.ts + 6u, t.ts + 10u);
		assert_csums_full(fr);
	}
	/* The generator reached what it is meant to. */
	assert_true(odd > ITERATIONS / 4 && odd < ITERATIONS * 3 / 4);
	assert_true(acks > ITERATIONS / 2 && acks < ITERATIONS);
	assert_true(refused > ITERATIONS / 40 && refused < ITERATIONS / 5);
	assert_true(raised > ITERATIONS / 3 && raised < ITERATIONS * 3 / 4);
}

/* A TCP frame with a 60-byte header of random bytes (nat_tcp_add32() does not walk options). */
static uint32_t random_tcp_frame(uint8_t *fr, uint16_t max_payload, uint64_t *seed)
{
	uint8_t opts[40];
	struct tf_spec s = {
		.proto = 6,
		.src = (uint32_t)tf_rand(seed),
		.dst = (uint32_t)tf_rand(seed),
		.sport = (uint16_t)tf_rand(seed),
		.dport = (uint16_t)tf_rand(seed),
		.ihl = (uint8_t)(5 + tf_rand(seed) % 11),
		.tcp_flags = (uint8_t)tf_rand(seed),
		.seq = (uint32_t)tf_rand(seed),
		.ack = (uint32_t)tf_rand(seed),
		.opts = opts,
		.optlen = 40,
		.payload = (uint16_t)(tf_rand(seed) % (max_payload + 1u)),
	};
	uint32_t len;

	for (size_t i = 0; i < sizeof(opts); i++)
		opts[i] = (uint8_t)tf_rand(seed);
	len = tf_build(fr, &s);
	for (uint32_t i = TF_ETH + s.ihl * 4u + 60u; i < len; i++)
		fr[i] = (uint8_t)tf_rand(seed);
	tf_fix(fr);
	return len;
}

static void add32_at_any_offset_matches_full_checksum(void **state)
{
	uint64_t seed = 0xadd32;

	(void)state;
	for (int it = 0; it < ITERATIONS * 2; it++) {
		uint8_t was[TF_MAX], fr[TF_MAX];
		uint32_t len = random_tcp_frame(was, 300, &seed);
		uint32_t l4 = TF_ETH + (was[TF_ETH] & 0x0fu) * 4;
		/* Every offset a 4-byte field can have in the options, odd ones included. */
		uint32_t off = 20 + (uint32_t)(tf_rand(&seed) % 37), delta = random_u32(&seed);
		uint32_t old = tf_rd32(was + l4 + off), v;

		snprintf(what, sizeof(what), "iteration %d, offset %u, delta %#x", it, off, delta);
		memcpy(fr, was, len);
		{
			uint8_t *p = tf_exact(fr, len);

			assert_non_null(p);
			v = nat_tcp_add32(p + l4, off, delta);
			memcpy(fr, p, len);
			free(p);
		}
		EXPECT(v, old + delta);
		EXPECT(tf_rd32(fr + l4 + off), old + delta);
		assert_csums_full(fr);
		for (uint32_t i = 0; i < len; i++)
			if (fr[i] != was[i] && !(i >= l4 + off && i < l4 + off + 4) &&
			    i != l4 + 16 && i != l4 + 17)
				fail_msg("%s: byte %u changed", what, i);
	}
}

/*
 * Step a field by a small delta some 70,000 times, so that the TCP checksum
 * takes every value, 0x0000 included, and the incremental update starts from
 * each (RFC 1624's case); then step back to the original bytes.
 */
static void add32_checksum_through_every_value(void **state)
{
	static const struct {
		uint32_t off, step; /* a step that moves the sum by one */
	} cases[] = { { 22, 1 }, { 24, 0x10000 }, { 21, 0x100 }, { 55, 0x100 } };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t was[TF_MAX], fr[TF_MAX];
		uint64_t seed = 0x0ffff + i;
		uint32_t len = random_tcp_frame(was, 0, &seed), zeros = 0;
		uint32_t l4 = TF_ETH + (was[TF_ETH] & 0x0fu) * 4;

		memcpy(fr, was, len);
		for (int back = 0; back <= 1; back++) {
			snprintf(what, sizeof(what), "offset %u, step %#x%s", cases[i].off,
				 cases[i].step, back ? " back" : "");
			for (int n = 0; n < 70000; n++) {
				nat_tcp_add32(fr + l4, cases[i].off,
					      back ? 0u - cases[i].step : cases[i].step);
				EXPECT(tf_rd16(fr + l4 + 16), ref_l4_csum(fr + TF_ETH));
				zeros += tf_rd16(fr + l4 + 16) == 0;
			}
		}
		snprintf(what, sizeof(what), "offset %u", cases[i].off);
		EXPECT(zeros >= 2, 1);
		assert_memory_equal(fr, was, len);
	}
}

/* ---- flows without rewriting ---- */

/*
 * A SYN without the option: palloc_ts_open() is not called, f->ts stays 0,
 * and the worker leaves every option byte alone, on the SYN and on any later
 * segment that carries the option after all.
 */
static void syn_without_timestamps_is_not_touched(void **state)
{
	static const uint8_t syn_opts[] = { MSS, 4, 2, 1, WS };
	struct tseg syn = { .opts = syn_opts, .n = sizeof(syn_opts), .flags = SYN };
	struct tseg later = data_seg;
	uint8_t was[TF_MAX], fr[TF_MAX];
	struct pkt_meta pm;
	struct flow f;
	uint32_t len;

	(void)state;
	snprintf(what, sizeof(what), "SYN without timestamps");
	flow_init(&f, 0, 0x5000, 0);
	f.state = FLOW_SYN;
	len = tseg_build(was, &f, FWD, &syn);
	memcpy(fr, was, len);
	worker_path(fr, len, &f, FWD, &pm);
	EXPECT(pm.tcp_ts, 0);
	EXPECT(pm.tcp_ts_bad, 0);
	assert_same_except(was, fr, len, &pm, 0, 0);
	assert_csums_full(fr);

	for (int dir = FWD; dir <= REV; dir++) {
		snprintf(what, sizeof(what), "later segment with timestamps, %s",
			 dir == FWD ? "FWD" : "REV");
		later.tsval = 0x10203040;
		later.tsecr = 0x50607080;
		len = tseg_build(was, &f, (enum flow_dir)dir, &later);
		memcpy(fr, was, len);
		worker_path(fr, len, &f, (enum flow_dir)dir, &pm);
		EXPECT(pm.tcp_ts, 22);
		assert_same_except(was, fr, len, &pm, 0, 0);
		assert_csums_full(fr);
		EXPECT(f.ts, 0);
		EXPECT(f.ts_max, 0);
	}
}

/*
 * FLOW_TS_SEEN without FLOW_TS_REWRITE (rewriting off): the flow's newest
 * TSval is tracked, within the credit, but no byte changes, whatever ts_off
 * holds. A jump beyond the credit is dropped, even without rewriting.
 */
static void seen_without_rewrite_only_tracks_ts_max(void **state)
{
	static const struct {
		uint32_t tsval, max;
		bool drop;
	} seq[] = {
		{ 1000, 1000, false },		   /* credit 2^30 - 1 left */
		{ 1005, 1005, false },		   /* 2^30 - 6 */
		{ 1001, 1005, false },		   /* older */
		{ 0x7fffffff, 1005, true },	   /* far ahead: beyond the credit */
		{ 0x80000010, 1005, true },	   /* nearly 2^31 ahead: beyond too */
		{ 0x400003e8, 1005, true },	   /* 1005 + 2^30 - 5: one past the credit */
		{ 0x400003e7, 0x400003e7, false }, /* 1005 + 2^30 - 6: the whole credit */
		{ 0x400003e8, 0x400003e7, true },  /* none left at the same time */
		{ 0x400003e7, 0x400003e7, false }, /* the same again: not ahead */
		{ 0x00000010, 0x400003e7, false }, /* older */
	};
	uint8_t was[TF_MAX], fr[TF_MAX];
	struct tseg t = data_seg;
	struct pkt_meta pm;
	struct flow f;
	uint32_t len;

	(void)state;
	flow_init(&f, FLOW_TS_SEEN, 0x12345678, 999);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		snprintf(what, sizeof(what), "FWD tsval %#x", seq[i].tsval);
		t.tsval = seq[i].tsval;
		t.tsecr = 0xbbbb0000 + (uint32_t)i;
		len = tseg_build(was, &f, FWD, &t);
		memcpy(fr, was, len);
		worker_path(fr, len, &f, FWD, &pm);
		EXPECT(dropped, seq[i].drop);
		assert_same_except(was, fr, len, &pm, 0, 0);
		assert_csums_full(fr);
		EXPECT(f.ts_max, seq[i].max);

		snprintf(what, sizeof(what), "REV echoing %#x", seq[i].tsval);
		t.tsval = 0xbbbb0001 + (uint32_t)i;
		t.tsecr = seq[i].tsval;
		len = tseg_build(was, &f, REV, &t);
		memcpy(fr, was, len);
		worker_path(fr, len, &f, REV, &pm);
		EXPECT(dropped, false);
		assert_same_except(was, fr, len, &pm, 0, 0);
		assert_csums_full(fr);
		EXPECT(f.ts_max, seq[i].max);
		EXPECT(f.ts, FLOW_TS_SEEN | FLOW_TS_BACKEND);
	}
	EXPECT(f.ts_credit, 0);
}

/*
 * The rate limit on TSval' (tsrw.h), from the SYN on: TSRW_CREDIT_START at
 * the SYN, TSRW_RATE more per ms, consumed by each raise of ts_max, capped at
 * TSRW_CREDIT_MAX however long the flow idles. A refused segment leaves the
 * frame (worker_path_at() checks every byte) and the flow as they were; the
 * backend's segments are never refused. Also across the wrap of the 32-bit
 * millisecond clock that ts_raised keeps.
 */
static void implausible_jump_is_refused(void **state)
{
	static const uint64_t starts[] = { 7000000, (1ull << 32) - 500, (1ull << 33) + 123 };
	static const uint32_t offs[] = { 0, 0x9abcdef0 };
	struct tseg t = data_seg;

	(void)state;
	for (size_t si = 0; si < sizeof(starts) / sizeof(starts[0]); si++) {
		for (size_t oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
			const uint64_t t0 = starts[si];
			const uint32_t off = offs[oi], syn = 0xfff00000; /* TSval' wraps soon */
			uint32_t max = syn;
			uint8_t was[TF_MAX], fr[TF_MAX];
			struct pkt_meta pm;
			struct flow f, keep;
			uint32_t len;
			/* One client segment of TSval' @v at @now: accepted or refused. */
#define SEND(v, now, accept)                                                                   \
	do {                                                                                   \
		snprintf(what, sizeof(what),                                                   \
			 "start %#" PRIx64 " off %#x: TSval' %#x at +%" PRIu64 " ms", t0, off, \
			 (uint32_t)(v), (uint64_t)(now)-t0);                                   \
		t.tsval = (uint32_t)(v)-off;                                                   \
		t.tsecr = 0x600d;                                                              \
		len = tseg_build(was, &f, FWD, &t);                                            \
		memcpy(fr, was, len);                                                          \
		keep = f;                                                                      \
		worker_path_at(fr, len, &f, FWD, &pm, (now));                                  \
		EXPECT(dropped, !(accept));                                                    \
		if (accept) {                                                                  \
			EXPECT(tf_rd32(fr + pm.l4_off + 24), (uint32_t)(v));                   \
			assert_same_except(was, fr, len, &pm, 24, 28);                         \
		} else {                                                                       \
			assert_memory_equal(&f, &keep, sizeof(f));                             \
		}                                                                              \
		assert_csums_full(fr);                                                         \
	} while (0)

			flow_init(&f, FLOW_TS_SEEN | (off ? FLOW_TS_REWRITE : 0), off, syn);
			f.ts_credit = 0xdead; /* tsrw_start() sets it */
			tsrw_start(&f, t0);
			EXPECT(f.ts_credit, TSRW_CREDIT_START);
			EXPECT(f.ts_raised, (uint32_t)t0);

			/* At the SYN's time: the starting credit exactly, then nothing more. */
			SEND(max + TSRW_CREDIT_START + 1, t0, false);
			SEND(max + TSRW_CREDIT_START, t0, true);
			max += TSRW_CREDIT_START;
			EXPECT(f.ts_max, max);
			EXPECT(f.ts_credit, 0);
			SEND(max + 1, t0, false);
			SEND(max, t0, true);	    /* not ahead: passes */
			SEND(max - 5000, t0, true); /* older: passes */
			EXPECT(f.ts_max, max);
			/* The backend's segments pass with no credit left. */
			t.tsval = 0x10;
			t.tsecr = max;
			len = tseg_build(was, &f, REV, &t);
			memcpy(fr, was, len);
			worker_path_at(fr, len, &f, REV, &pm, t0);
			EXPECT(dropped, false);
			EXPECT(tf_rd32(fr + pm.l4_off + 28), max - off);

			/* 1000 ms later: 1,000,000 more, in two steps, then no more. */
			SEND(max + 1000 * TSRW_RATE + 1, t0 + 1000, false);
			SEND(max + 400000, t0 + 1000, true);
			SEND(max + 1000 * TSRW_RATE, t0 + 1000, true);
			max += 1000 * TSRW_RATE;
			EXPECT(f.ts_credit, 0);
			EXPECT(f.ts_raised, (uint32_t)(t0 + 1000));
			SEND(max + 1, t0 + 1000, false);
			/* 1 ms more: TSRW_RATE. */
			SEND(max + TSRW_RATE + 1, t0 + 1001, false);
			SEND(max + TSRW_RATE, t0 + 1001, true);
			max += TSRW_RATE;

			/* A day of idling: capped at 2^30, not 86.4e9. */
			SEND(max + TSRW_CREDIT_MAX + 1, t0 + 1001 + 86400000, false);
			SEND(max + 0x7fffffff, t0 + 1001 + 86400000, false);
			SEND(max + TSRW_CREDIT_MAX, t0 + 1001 + 86400000, true);
			max += TSRW_CREDIT_MAX;
			EXPECT(f.ts_max, max);
			EXPECT(f.ts_credit, 0);
			SEND(max + 1, t0 + 1001 + 86400000, false);
			/* Just under the time to refill: one short. */
			SEND(max + TSRW_CREDIT_MAX,
			     t0 + 1001 + 86400000 + TSRW_CREDIT_MAX / TSRW_RATE, false);
			SEND(max + TSRW_CREDIT_MAX / TSRW_RATE * TSRW_RATE,
			     t0 + 1001 + 86400000 + TSRW_CREDIT_MAX / TSRW_RATE, true);
#undef SEND
		}
	}
}

/* ---- ts_max ---- */

/*
 * ts_max is the newest TSval' in signed 32-bit order: it follows the flow
 * across the wrap, an older (reordered) segment does not lower it, and the
 * backend's TSvals never move it. The same sequence with rewriting (ts_max
 * counts TSval', which wraps where TSval does not) and without.
 */
static void ts_max_is_newest_in_signed_order(void **state)
{
	static const struct {
		uint32_t tsv; /* TSval' the client sends (rewritten) */
		uint32_t max; /* ts_max after it */
		bool drop;    /* newer by more than the credit: dropped */
	} seq[] = {
		{ 0xfffffff5, 0xfffffff5, false }, /* newer */
		{ 0xfffffff2, 0xfffffff5, false }, /* reordered: older */
		{ 0xfffffff5, 0xfffffff5, false }, /* the same again */
		{ 0x00000003, 0x00000003, false }, /* newer, across the wrap */
		{ 0xfffffffe, 0x00000003, false }, /* late, from before the wrap */
		{ 0x3fffff00, 0x3fffff00, false }, /* 2^30 - 259 ahead: newer, within credit */
		{ 0x7fffff00, 0x3fffff00, true },  /* 2^30 more: newer, but beyond the credit */
		{ 0xbfffff00, 0x3fffff00, false }, /* exactly 2^31 ahead: not newer */
		{ 0xbfffff01, 0x3fffff00, false }, /* 2^31 + 1 ahead: older */
		{ 0x3ffffeff, 0x3fffff00, false }, /* just behind: older */
	};
	uint8_t fr[TF_MAX];
	struct tseg t = data_seg;
	struct pkt_meta pm;
	struct flow f;
	uint32_t len;

	(void)state;
	for (int rewrite = 0; rewrite <= 1; rewrite++) {
		uint32_t off = rewrite ? 0x100 : 0;

		flow_init(&f, (uint8_t)(FLOW_TS_SEEN | (rewrite ? FLOW_TS_REWRITE : 0)), off,
			  0xfffffff0);
		for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
			snprintf(what, sizeof(what), "rewrite %d, TSval' %#x", rewrite, seq[i].tsv);
			t.tsval = seq[i].tsv - off;
			t.tsecr = 77;
			len = tseg_build(fr, &f, FWD, &t);
			worker_path(fr, len, &f, FWD, &pm);
			EXPECT(dropped, seq[i].drop);
			EXPECT(f.ts_max, seq[i].max);
			if (seq[i].drop)
				continue;
			EXPECT(tf_rd32(fr + pm.l4_off + 24), seq[i].tsv);
			/* The backend, far "ahead" of the flow: ts_max is the client's. */
			t.tsval = seq[i].max + 0x40000000;
			t.tsecr = seq[i].tsv;
			len = tseg_build(fr, &f, REV, &t);
			worker_path(fr, len, &f, REV, &pm);
			EXPECT(tf_rd32(fr + pm.l4_off + 28), seq[i].tsv - off);
			EXPECT(f.ts_max, seq[i].max);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tsecr_restored_exactly_on_reply),
		cmocka_unit_test(tsval_wraps_at_2_32_and_tsecr_comes_back),
		cmocka_unit_test(syn_reaches_backend_with_the_reference_clock),
		cmocka_unit_test(tsecr_untouched_without_ack),
		cmocka_unit_test(timestamp_rewritten_in_every_option_layout),
		cmocka_unit_test(bad_option_length_is_dropped),
		cmocka_unit_test(malformed_timestamp_is_left_untouched),
		cmocka_unit_test(duplicate_timestamps_are_dropped),
		cmocka_unit_test(bad_and_good_timestamp_rewrites_the_good_one),
		cmocka_unit_test(rewrite_checksums_match_full_recompute),
		cmocka_unit_test(add32_at_any_offset_matches_full_checksum),
		cmocka_unit_test(add32_checksum_through_every_value),
		cmocka_unit_test(syn_without_timestamps_is_not_touched),
		cmocka_unit_test(seen_without_rewrite_only_tracks_ts_max),
		cmocka_unit_test(implausible_jump_is_refused),
		cmocka_unit_test(ts_max_is_newest_in_signed_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
