/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_ts: what TCP timestamp rewriting adds to a packet of an established
 * flow.
 *
 * The path. Each packet goes through what worker_process() and
 * worker_forward() run for an established TCP flow, with the real functions
 * of libsluice_dp: pkt_parse(), flow_lookup(), tcpstate_next(),
 * palloc_on_segment(), tsrw_packet() when both the flow (f->ts) and the
 * packet (pm->tcp_ts) have timestamps, flow_touch(), nat_rewrite().
 * bench_forward() below is the worker's glue between them, copied: keep the
 * two in step. What the worker does besides, the same whatever the
 * timestamps, is left out (mbufs, kmap_get() of the destination, the orphan
 * check, transmit), so the absolute figures are below a worker's per-packet
 * cost; the differences between the cases are the point.
 *
 * The cases differ in f->ts alone:
 *   on    FLOW_TS_SEEN | FLOW_TS_REWRITE, a random nonzero ts_off per flow:
 *         TSval += ts_off toward the backend, TSecr -= ts_off back
 *   off   FLOW_TS_SEEN alone: a flow of a service with ts-rewrite off, which
 *         still keeps its newest TSval for the port space
 *   none  f->ts = 0: tsrw_packet() is not called
 * The first two also have FLOW_TS_BACKEND, as every established flow whose
 * backend answered the SYN with the option. Every frame carries the option
 * in the Linux layout (NOP, NOP, TS), so pkt_parse() does the same work in
 * all cases. Client -> backend (c->b): a data segment of 100 bytes with ACK;
 * backend -> client (b->c): a pure ACK.
 *
 * Flows. Each set of established flows (default 1,000 and 100,000) is one
 * real flow table with a client and a backend frame per flow. The cases
 * share it: flow i plays case (i + rot) % 3, so each case has a third of the
 * flows, interleaved with the others' in the same memory, and rot moves on
 * every round (each flow's f->ts, ts_off and ts_max are then set to their
 * steady state, untimed), so every flow plays every case. 1,000 flows stay
 * in L1/L2; 100,000 (some 45 MB with their frames) do not, so the cache
 * misses of flow_lookup() and flow_touch() show. Two designs that did not
 * work on the 2-core VM: one table per case moved the differences by up to
 * +-20 cycles/pkt at 100,000 flows with the order the tables were allocated
 * in (placement, not timestamps); one table switched from case to case and
 * flushed (clflush) in between left the hash slots (private to flow.c) warm
 * for the second case of a round, 200 cycles/pkt faster than the first.
 *
 * A burst is WORKER_BURST distinct flows of one case, one set, one
 * direction, taken in turn from a fresh random permutation of the case's
 * flows on every pass (so the LRU neighbours flow_touch() unlinks are
 * unrelated flows, as in real traffic, not the previous packet's). Frames
 * sit 192 bytes apart, 64-byte aligned like mbuf data, so their headers use
 * every cache set.
 *
 * Restoring the input. nat_rewrite() rewrites addresses, ports and TTL of
 * every packet, in every case, and tsrw_packet() the timestamps, so a frame
 * cannot go through twice as it is. After each timed burst, outside its
 * timed window, the 66 header bytes of its frames (all the path may write)
 * are copied back from a pristine copy. Not inside the window with a copy
 * timed apart and subtracted: the copy's cost depends on the cache state of
 * two lines, which differs between 1,000 and 100,000 flows and from burst to
 * burst, and its noise would be as large as the effect measured (a few
 * cycles). Not by undoing the rewrite (+ts_off then -ts_off): nat_rewrite()
 * also moves addresses and ports and decrements the TTL, which the dataplane
 * never undoes. The copy touches only the lines the burst just touched, plus
 * the pristine copy, so it warms nothing for a later burst: a frame is used
 * again a whole pass later. The flow's state the path writes (ts_max, LRU
 * links, last_ms) stays the same from pass to pass: ts_max starts at the
 * TSval' of the flow's frame, which never passes it.
 *
 * Timing. Each burst is timed as a whole between two rte_rdtsc_precise()
 * (a full barrier, then rdtsc), like the worker's loop over a received
 * burst, prefetch of the next frame included; the median cost of an empty
 * window is subtracted; figures are per packet (burst / WORKER_BURST). TSC
 * ticks are reference cycles. The cases take turns burst by burst (on, off,
 * none, then off, none, on...), so a machine whose speed drifts (a busy
 * neighbour on a VM, a frequency change) weighs on all cases alike, and so
 * do the cache lines one case's burst leaves to the next. A round is a chunk
 * of such bursts per set and direction; the differences are also given per
 * round, to show their spread. Under valgrind --tool=callgrind
 * --toggle-collect='bench_burst*' (GCC may call it bench_burst.constprop.0),
 * the instructions of bench_burst() over the timed packets printed are the
 * instructions per packet: the checks run in bench_one(), apart; --case and
 * --dir pick one row.
 *
 * Checks. Before and after the timed rounds every frame goes through once
 * alone in every case and direction and its result is checked against an
 * independent computation (tests/unit/frame.h): addresses, ports, TTL, both
 * checksums in full, the timestamps, the flow's state and ts_max. A timed
 * packet that fails to parse or find its flow stops the run.
 *
 * No EAL. Not a test (nothing is asserted against a time); run by
 * tools/bench. Exit status 0; 1 if the dataplane misbehaved or memory ran
 * out; 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>

#include "bench.h"
#include "cfg.h"
#include "flow.h"
#include "nat.h"
#include "palloc.h"
#include "pkt.h"
#include "tcpstate.h"
#include "tsrw.h"
#include "worker.h"

#include "frame.h" /* tests/unit: frame builder and reference checksums */

#define BENCH_BURST	 WORKER_BURST
#define BENCH_ITERS	 320000u /* timed packets per row */
#define BENCH_ROUNDS	 20u
#define BENCH_MAX_ROUNDS 1000u
#define BENCH_MAX_SETS	 4
#define BENCH_MAX_FLOWS	 1000000u
#define BENCH_MIN_FLOWS	 (3u * BENCH_BURST) /* a burst for each case */
#define BENCH_OVERHEAD_N 100000u	    /* empty windows timed */
#define BENCH_SEED	 0x75ee5eedULL
#define BENCH_SLOT	 192u /* bytes per frame buffer: 3 cache lines */
#define BENCH_HDR	 66u  /* Ethernet + IPv4 + TCP with NOP NOP TS: all the path writes */
#define BENCH_PAYLOAD	 100u /* of the client's data segments */
#define BENCH_TTL	 64u
#define BENCH_NOW_MS	 1000u
#define BENCH_TCP_PSH	 0x08

/* Where NOP NOP TS puts the two values in the TCP header. */
#define BENCH_TSVAL 24u
#define BENCH_TSECR 28u

enum bench_case {
	BENCH_ON,
	BENCH_OFF,
	BENCH_NONE,
	BENCH_NCASES
};

static const char *const bench_case_names[BENCH_NCASES] = { "on", "off", "none" };
static const char *const bench_dir_names[2] = { "c->b", "b->c" };
static const char *const bench_dir_json[2] = { "fwd", "rev" };
static const uint32_t bench_default_flows[] = { 1000, 100000 };

/* A flow's tuple and timestamps, host order: a function of its index alone. */
struct bench_tuple {
	uint32_t cip, vip, sip, bip;
	uint16_t cport, vport, sport, bport;
	uint32_t isn_c, isn_b;
	uint32_t tsval;	  /* the client's, on its data segment */
	uint32_t tsval_b; /* the backend's */
	uint32_t ts_off;  /* the offset when rewritten; never 0 */
};

/* A set of flows, shared by the cases: flow i plays case (i + rot) % BENCH_NCASES. */
struct bench_set {
	uint32_t n;
	uint32_t len[2]; /* frame length, by direction */
	struct flow_table *ft;
	struct flow **fl;     /* the flow of each index */
	uint8_t *frames[2];   /* by direction, BENCH_SLOT bytes each */
	uint8_t *pristine[2]; /* BENCH_HDR bytes per frame, by direction */
	uint32_t rot;
};

/* A row of the table: a case, a set and a direction. */
struct bench_cell {
	uint32_t *order; /* a permutation of the case's flows, drawn anew every pass */
	uint32_t count;	 /* the case's flows */
	uint32_t pos;	 /* next entry of order */
	uint64_t rng;
	uint32_t *s;	      /* cycles of every timed burst */
	uint32_t *round_med;  /* median burst of each round's chunk */
	struct bench_stat st; /* per packet, net of the timer */
};

/* What the worker hands along the path. */
struct bench_dp {
	const struct cfg *c;
	struct palloc pa;
	uint64_t now_ms;
	uint64_t ts_malformed;
};

/* A difference of two cases of one set and direction, per packet. */
struct bench_diff {
	double cycles, ratio;
	double round_min, round_med, round_max;
};

struct bench {
	struct bench_dp dp;
	struct cfg *c;
	uint32_t iters;	 /* timed packets per row, as asked */
	uint32_t rounds; /* chunks per row */
	uint32_t chunk;	 /* bursts per chunk */
	uint32_t bursts; /* timed bursts per row: rounds * chunk */
	uint32_t nsets;
	bool case_on[BENCH_NCASES], dir_on[2];
	struct bench_set sets[BENCH_MAX_SETS];
	struct bench_cell cells[BENCH_NCASES][BENCH_MAX_SETS][2];
	double overhead;  /* median cycles of an empty timer window */
	double tsc_hz;	  /* estimated */
	int cpu;	  /* pinned to, or -1 */
	uint32_t *tmp;	  /* scratch for medians */
	uint64_t checked; /* packets checked */
};

static void bench_die(const char *what)
{
	fprintf(stderr, "bench_ts: %s\n", what);
	exit(1);
}

static void *bench_alloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

static void bench_timer_overhead(struct bench *b)
{
	b->overhead = bench_timer_overhead_of(b->tmp, BENCH_OVERHEAD_N);
}

/* ---- the path ---------------------------------------------------------- */

/* worker_forward() for a flow found in the table, up to (not including) the output. */
static __rte_always_inline int bench_forward(struct bench_dp *dp, struct flow_table *ft,
					     uint8_t *frame, const struct pkt_meta *pm,
					     struct flow *f, enum flow_dir dir)
{
	uint8_t state = FLOW_UDP;

	if (unlikely(pm->ttl <= 1))
		return -1;
	if (f->proto == IPPROTO_TCP) {
		const struct tcpstate_seg seg = {
			.flags = pm->tcp_flags,
			.seq = pm->tcp_seq,
			.ack = pm->tcp_ack,
			.len = (uint32_t)pm->l4_len - pm->tcp_hlen,
		};

		if (unlikely(pm->tcp_ts_bad))
			dp->ts_malformed++;
		if (f->ts != 0 && pm->tcp_ts != 0 &&
		    unlikely(!tsrw_packet(f, frame + pm->l4_off, pm, dir, dp->now_ms)))
			return -1;
		state = tcpstate_next(f, dir, &seg);
		palloc_on_segment(&dp->pa, f, cfg_tw_quarantine_ms(dp->c, f->svc, f->svc_gen),
				  dp->now_ms);
	}
	flow_touch(ft, f, state, dp->now_ms);
	if (dir == FLOW_DIR_FWD)
		nat_rewrite(frame, pm, f->sip, f->sport, f->bip, f->bport);
	else
		nat_rewrite(frame, pm, f->vip, f->vport, f->cip, f->cport);
	return 0;
}

/* worker_process() and worker_ipv4() over @n frames of @len bytes; returns how many failed. */
static __rte_always_inline uint32_t bench_packets(struct bench_dp *dp, struct flow_table *ft,
						  uint8_t *const *pk, uint32_t len, uint32_t n)
{
	struct pkt_meta pm;
	struct flow_key k;
	enum flow_dir dir;
	struct flow *f;
	uint32_t bad = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(pk[i + 1]);
		if (pkt_parse(pk[i], len, &pm) < 0 || pm.kind == PKT_ARP) {
			bad++;
			continue;
		}
		flow_key_set(&k, pm.proto, pm.src, pm.sport, pm.dst, pm.dport);
		f = flow_lookup(ft, &k, &dir);
		if (unlikely(f == NULL) || bench_forward(dp, ft, pk[i], &pm, f, dir) < 0)
			bad++;
	}
	return bad;
}

/* The timed bursts, and nothing else (callgrind counts this function alone). */
static __rte_noinline uint32_t bench_burst(struct bench_dp *dp, struct flow_table *ft,
					   uint8_t *const *pk, uint32_t len, uint32_t n)
{
	return bench_packets(dp, ft, pk, len, n);
}

/* The same path for the checks. */
static __rte_noinline uint32_t bench_one(struct bench_dp *dp, struct flow_table *ft, uint8_t *frame,
					 uint32_t len)
{
	return bench_packets(dp, ft, &frame, len, 1);
}

/* ---- flows and frames -------------------------------------------------- */

static void bench_tuple_of(uint32_t i, struct bench_tuple *t)
{
	uint64_t s = BENCH_SEED ^ ((uint64_t)i << 24);
	uint64_t r = tf_rand(&s), q = tf_rand(&s);

	t->cip = TF_IP(100, 64, 0, 0) + i;
	t->cport = (uint16_t)(32768 + i % 28000);
	t->vip = TF_IP(198, 18, 0, 100);
	t->vport = 80;
	/* Unique reverse keys: one SNAT address per 64512 flows, a port each. */
	t->bip = TF_IP(198, 19, 0, 11) + i % 8;
	t->bport = 8080;
	t->sip = TF_IP(198, 19, 1, 1) + i / 64512;
	t->sport = (uint16_t)(1024 + i % 64512);
	t->isn_c = (uint32_t)r;
	t->isn_b = (uint32_t)(r >> 32);
	t->tsval = (uint32_t)q;
	t->tsval_b = (uint32_t)(q >> 32);
	t->ts_off = (uint32_t)tf_rand(&s) | 1;
}

/* The client's data segment (fwd) or the backend's ACK (rev) of @t into @buf (TF_MAX). */
static uint32_t bench_frame(uint8_t *buf, const struct bench_tuple *t, enum flow_dir d)
{
	uint8_t opts[12] = { 1, 1, 8, 10 }; /* NOP NOP TS, as Linux sends it */
	struct tf_spec s = {
		.proto = IPPROTO_TCP,
		.ttl = BENCH_TTL,
		.opts = opts,
		.optlen = sizeof(opts),
	};

	if (d == FLOW_DIR_FWD) {
		s.src = t->cip;
		s.sport = t->cport;
		s.dst = t->vip;
		s.dport = t->vport;
		s.tcp_flags = TCPSTATE_ACK | BENCH_TCP_PSH;
		s.seq = t->isn_c + 1 + 1000;
		s.ack = t->isn_b + 1 + 5000;
		s.payload = BENCH_PAYLOAD;
		tf_wr32(opts + 4, t->tsval);
		tf_wr32(opts + 8, t->tsval_b);
	} else {
		s.src = t->bip;
		s.sport = t->bport;
		s.dst = t->sip;
		s.dport = t->sport;
		s.tcp_flags = TCPSTATE_ACK;
		s.seq = t->isn_b + 1 + 5000;
		s.ack = t->isn_c + 1 + 1000 + BENCH_PAYLOAD;
		tf_wr32(opts + 4, t->tsval_b + 1);
		/* It echoes TSval': what the client sent plus the offset, when on. */
		tf_wr32(opts + 8, t->tsval + t->ts_off);
	}
	return tf_build(buf, &s);
}

/* The newest TSval' the flow of @t has forwarded in case @k, once its data segment went. */
static uint32_t bench_ts_max(const struct bench_tuple *t, enum bench_case k)
{
	return k == BENCH_NONE ? 0 : t->tsval + (k == BENCH_ON ? t->ts_off : 0);
}

static void bench_flow_fill(struct flow *f, const struct bench_tuple *t,
			    const struct cfg_service *svc)
{
	f->proto = IPPROTO_TCP;
	f->cip = rte_cpu_to_be_32(t->cip);
	f->cport = rte_cpu_to_be_16(t->cport);
	f->vip = rte_cpu_to_be_32(t->vip);
	f->vport = rte_cpu_to_be_16(t->vport);
	f->sip = rte_cpu_to_be_32(t->sip);
	f->sport = rte_cpu_to_be_16(t->sport);
	f->bip = rte_cpu_to_be_32(t->bip);
	f->bport = rte_cpu_to_be_16(t->bport);
	f->state = FLOW_ESTABLISHED;
	f->svc = 0;
	f->svc_gen = svc->gen;
	f->qent = PALLOC_NONE;
	f->tcp_seen = TCPSTATE_SEEN_SYNACK;
	f->isn_c = t->isn_c;
}

/* The timestamp fields of case @k: f->ts as the table says, ts_off, ts_max. */
static const uint8_t bench_ts_flags[BENCH_NCASES] = {
	FLOW_TS_SEEN | FLOW_TS_REWRITE | FLOW_TS_BACKEND,
	FLOW_TS_SEEN | FLOW_TS_BACKEND,
	0,
};

static void bench_flow_case(struct flow *f, const struct bench_tuple *t, enum bench_case k,
			    bool behind)
{
	f->ts = bench_ts_flags[k];
	f->ts_off = k == BENCH_ON ? t->ts_off : 0;
	/* Behind (for the checks): the next data segment must move it. */
	f->ts_max = k == BENCH_NONE ? 0 : bench_ts_max(t, k) - (behind ? 1 : 0);
	f->ts_credit = TSRW_CREDIT_MAX;
}

static enum bench_case bench_case_of(const struct bench_set *st, uint32_t i)
{
	return (enum bench_case)((i + st->rot) % BENCH_NCASES);
}

/*
 * Flow i of set @s plays case (i + @rot) % BENCH_NCASES from now on: its
 * timestamp fields are set (@behind: for the checks), and each case's cells
 * get its flows, to be shuffled at their first burst.
 */
static void bench_set_assign(struct bench *b, uint32_t s, uint32_t rot, bool behind)
{
	struct bench_set *st = &b->sets[s];
	struct bench_tuple t;

	st->rot = rot;
	for (int k = 0; k < BENCH_NCASES; k++)
		for (int d = 0; d < 2; d++)
			b->cells[k][s][d].count = 0;
	for (uint32_t i = 0; i < st->n; i++) {
		enum bench_case k = bench_case_of(st, i);

		bench_tuple_of(i, &t);
		bench_flow_case(st->fl[i], &t, k, behind);
		for (int d = 0; d < 2; d++) {
			struct bench_cell *cell = &b->cells[k][s][d];

			cell->order[cell->count++] = i;
		}
	}
	for (int k = 0; k < BENCH_NCASES; k++)
		for (int d = 0; d < 2; d++)
			b->cells[k][s][d].pos = b->cells[k][s][d].count;
}

static void bench_set_build(struct bench *b, struct bench_set *st)
{
	static uint8_t buf[TF_MAX];
	const struct cfg_service *svc = &b->c->services[0];
	struct bench_tuple t;

	st->ft = flow_table_create(st->n, -1);
	if (st->ft == NULL)
		bench_die("flow_table_create failed");
	st->fl = bench_alloc((size_t)st->n * sizeof(*st->fl));
	for (int d = 0; d < 2; d++) {
		st->pristine[d] = bench_alloc((size_t)st->n * BENCH_HDR);
		/* mbuf data starts cache-aligned (RTE_PKTMBUF_HEADROOM). */
		st->frames[d] = aligned_alloc(64, (size_t)st->n * BENCH_SLOT);
		if (st->frames[d] == NULL)
			bench_die("out of memory");
		memset(st->frames[d], 0, (size_t)st->n * BENCH_SLOT);
	}
	for (uint32_t i = 0; i < st->n; i++) {
		struct flow *f = flow_new(st->ft);

		bench_tuple_of(i, &t);
		for (int d = 0; d < 2; d++) {
			st->len[d] = bench_frame(buf, &t, (enum flow_dir)d);
			memcpy(st->pristine[d] + (size_t)i * BENCH_HDR, buf, BENCH_HDR);
			memcpy(st->frames[d] + (size_t)i * BENCH_SLOT, buf, st->len[d]);
		}
		if (f == NULL)
			bench_die("flow table full");
		bench_flow_fill(f, &t, svc);
		if (flow_insert(st->ft, f, b->dp.now_ms) != 0)
			bench_die("flow_insert failed");
		st->fl[i] = f;
	}
}

static void bench_set_free(struct bench_set *st)
{
	flow_table_free(st->ft);
	free(st->fl);
	for (int d = 0; d < 2; d++) {
		free(st->frames[d]);
		free(st->pristine[d]);
	}
}

/* ---- checks ------------------------------------------------------------ */

/* Is frame @fr, sent through the path as flow @f of case @k in @d, what it should be? */
static bool bench_verify(const uint8_t *fr, const struct flow *f, const struct bench_tuple *t,
			 enum bench_case k, enum flow_dir d)
{
	const uint8_t *ip = fr + TF_ETH, *tcp = ip + 20;
	bool fwd = d == FLOW_DIR_FWD;
	uint32_t tsval, tsecr;

	if (fwd) {
		tsval = t->tsval + (k == BENCH_ON ? t->ts_off : 0);
		tsecr = t->tsval_b;
	} else {
		/* On: exactly the client's own TSval comes back. */
		tsval = t->tsval_b + 1;
		tsecr = t->tsval + (k == BENCH_ON ? 0 : t->ts_off);
	}
	return ref_ip_ok(ip) && tf_l4_csum_field(ip) == ref_l4_csum(ip) && ip[8] == BENCH_TTL - 1 &&
	       tf_rd32(ip + 12) == (fwd ? t->sip : t->vip) &&
	       tf_rd32(ip + 16) == (fwd ? t->bip : t->cip) &&
	       tf_rd16(tcp) == (fwd ? t->sport : t->vport) &&
	       tf_rd16(tcp + 2) == (fwd ? t->bport : t->cport) &&
	       tf_rd32(tcp + BENCH_TSVAL) == tsval && tf_rd32(tcp + BENCH_TSECR) == tsecr &&
	       f->state == FLOW_ESTABLISHED && f->ts == bench_ts_flags[k] &&
	       f->ts_off == (k == BENCH_ON ? t->ts_off : 0) && f->ts_max == bench_ts_max(t, k);
}

/* Every frame once in every case and direction, alone, checked, then restored. */
static void bench_check_all(struct bench *b)
{
	struct bench_tuple t;

	for (uint32_t s = 0; s < b->nsets; s++) {
		struct bench_set *st = &b->sets[s];

		for (uint32_t rot = 0; rot < BENCH_NCASES; rot++) {
			bench_set_assign(b, s, rot, true);
			for (int d = 0; d < 2; d++) {
				for (uint32_t i = 0; i < st->n; i++) {
					uint8_t *fr = st->frames[d] + (size_t)i * BENCH_SLOT;

					bench_tuple_of(i, &t);
					if (bench_one(&b->dp, st->ft, fr, st->len[d]) != 0)
						bench_die("a checked packet failed to parse or to "
							  "find its flow");
					if (!bench_verify(fr, st->fl[i], &t, bench_case_of(st, i),
							  (enum flow_dir)d))
						bench_die("the path rewrote a packet wrongly");
					memcpy(fr, st->pristine[d] + (size_t)i * BENCH_HDR,
					       BENCH_HDR);
					b->checked++;
				}
			}
			if (flow_count(st->ft) != st->n)
				bench_die("flow count drifted");
		}
	}
	if (b->dp.ts_malformed != 0)
		bench_die("a timestamp option was taken as malformed");
}

/* ---- the timed rounds -------------------------------------------------- */

/* The next WORKER_BURST distinct flows of @cell's case. */
static void bench_next_burst(struct bench_cell *cell, uint32_t *idx)
{
	if (cell->pos + BENCH_BURST > cell->count) {
		/* A new pass, in a new order (Fisher-Yates); what is left of the old one
		 * is skipped so that a burst never holds one flow twice. */
		for (uint32_t i = cell->count - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(tf_rand(&cell->rng) % (i + 1));
			uint32_t x = cell->order[i];

			cell->order[i] = cell->order[j];
			cell->order[j] = x;
		}
		cell->pos = 0;
	}
	memcpy(idx, cell->order + cell->pos, BENCH_BURST * sizeof(*idx));
	cell->pos += BENCH_BURST;
}

/* One timed burst of case @k of set @s in direction @d; its cycles. */
static uint32_t bench_one_burst(struct bench *b, uint32_t s, enum bench_case k, enum flow_dir d)
{
	struct bench_set *st = &b->sets[s];
	const uint8_t *pristine = st->pristine[d];
	uint8_t *pk[BENCH_BURST];
	uint32_t idx[BENCH_BURST];
	uint32_t bad;
	uint64_t t0, t1;

	bench_next_burst(&b->cells[k][s][d], idx);
	for (uint32_t j = 0; j < BENCH_BURST; j++)
		pk[j] = st->frames[d] + (size_t)idx[j] * BENCH_SLOT;
	t0 = rte_rdtsc_precise();
	bad = bench_burst(&b->dp, st->ft, pk, st->len[d], BENCH_BURST);
	t1 = rte_rdtsc_precise();
	if (unlikely(bad != 0))
		bench_die("a timed packet failed to parse or to find its flow");
	/* Outside the window; see the top comment. */
	for (uint32_t j = 0; j < BENCH_BURST; j++)
		memcpy(pk[j], pristine + (size_t)idx[j] * BENCH_HDR, BENCH_HDR);
	return (uint32_t)(t1 - t0);
}

/*
 * Round @round of set @s in direction @d: b->chunk bursts of each case, the
 * cases taking turns burst by burst, a different one first each time.
 */
static void bench_chunk(struct bench *b, uint32_t s, enum flow_dir d, uint32_t round)
{
	for (uint32_t u = 0; u < b->chunk; u++)
		for (uint32_t j = 0; j < BENCH_NCASES; j++) {
			enum bench_case k = (enum bench_case)((u + j) % BENCH_NCASES);

			if (b->case_on[k])
				b->cells[k][s][d].s[(size_t)round * b->chunk + u] =
					bench_one_burst(b, s, k, d);
		}
	for (int k = 0; k < BENCH_NCASES; k++) {
		struct bench_cell *cell = &b->cells[k][s][d];

		if (!b->case_on[k])
			continue;
		memcpy(b->tmp, cell->s + (size_t)round * b->chunk, b->chunk * sizeof(*b->tmp));
		qsort(b->tmp, b->chunk, sizeof(*b->tmp), bench_cmp_u32);
		cell->round_med[round] = b->tmp[b->chunk / 2];
	}
}

static void bench_cells_init(struct bench *b)
{
	for (int k = 0; k < BENCH_NCASES; k++)
		for (uint32_t s = 0; s < b->nsets; s++)
			for (int d = 0; d < 2; d++) {
				struct bench_cell *cell = &b->cells[k][s][d];

				cell->order =
					bench_alloc(((size_t)b->sets[s].n / BENCH_NCASES + 1) *
						    sizeof(*cell->order));
				cell->rng =
					BENCH_SEED + 0x100u * s + 0x10u * (uint64_t)k + (uint64_t)d;
				cell->s = bench_alloc((size_t)b->bursts * sizeof(*cell->s));
				cell->round_med =
					bench_alloc((size_t)b->rounds * sizeof(*cell->round_med));
			}
}

/* The rounds: each moves every flow to the next case, then runs both directions of every set. */
static void bench_run(struct bench *b)
{
	for (uint32_t r = 0; r < b->rounds; r++)
		for (uint32_t s = 0; s < b->nsets; s++) {
			bench_set_assign(b, s, r % BENCH_NCASES, false);
			for (uint32_t i = 0; i < 2; i++) {
				enum flow_dir d = (enum flow_dir)((r + i) % 2);

				if (b->dir_on[d])
					bench_chunk(b, s, d, r);
			}
		}
	for (int k = 0; k < BENCH_NCASES; k++)
		for (uint32_t s = 0; s < b->nsets; s++)
			for (int d = 0; d < 2; d++)
				if (b->case_on[k] && b->dir_on[d])
					b->cells[k][s][d].st =
						bench_stat_of(b->cells[k][s][d].s, b->bursts,
							      b->overhead, BENCH_BURST);
}

/* @a minus @b (cases) for set @s and direction @d, overall and per round. */
static struct bench_diff bench_diff_of(const struct bench *b, enum bench_case a, enum bench_case c,
				       uint32_t s, int d)
{
	const struct bench_cell *x = &b->cells[a][s][d], *y = &b->cells[c][s][d];
	double per_round[BENCH_MAX_ROUNDS];
	struct bench_diff df;

	df.cycles = x->st.median - y->st.median;
	df.ratio = x->st.median / y->st.median;
	for (uint32_t r = 0; r < b->rounds; r++)
		per_round[r] = ((double)x->round_med[r] - y->round_med[r]) / BENCH_BURST;
	qsort(per_round, b->rounds, sizeof(per_round[0]), bench_cmp_double);
	df.round_min = per_round[0];
	df.round_med = per_round[b->rounds / 2];
	df.round_max = per_round[b->rounds - 1];
	return df;
}

static void bench_free(struct bench *b)
{
	for (int k = 0; k < BENCH_NCASES; k++)
		for (uint32_t s = 0; s < b->nsets; s++)
			for (int d = 0; d < 2; d++) {
				free(b->cells[k][s][d].order);
				free(b->cells[k][s][d].s);
				free(b->cells[k][s][d].round_med);
			}
	for (uint32_t s = 0; s < b->nsets; s++)
		bench_set_free(&b->sets[s]);
	palloc_free(&b->dp.pa);
	free(b->tmp);
	cfg_free(b->c);
}

/* ---- output ------------------------------------------------------------ */

static double bench_ns(const struct bench *b, double cycles)
{
	return cycles * 1e9 / b->tsc_hz;
}

static bool bench_has(const struct bench *b, enum bench_case k, int d)
{
	return b->case_on[k] && b->dir_on[d];
}

static void bench_print_diff(const struct bench *b, enum bench_case a, enum bench_case c,
			     uint32_t s, int d)
{
	struct bench_diff df;

	if (!bench_has(b, a, d) || !bench_has(b, c, d)) {
		printf(" %-36s", "-");
		return;
	}
	df = bench_diff_of(b, a, c, s, d);
	printf(" %+6.1f %5.3fx (%+5.1f %+5.1f %+5.1f)", df.cycles, df.ratio, df.round_min,
	       df.round_med, df.round_max);
}

static void bench_print_text(const struct bench *b)
{
	printf("ts rewrite: the established TCP path per packet (pkt_parse, flow_lookup, "
	       "tcpstate_next, palloc_on_segment,\ntsrw_packet, flow_touch, nat_rewrite), bursts "
	       "of %u distinct flows, 1 worker; the cases share each table\n(a third of its flows "
	       "each, rotated every round) and take turns burst by burst\n",
	       BENCH_BURST);
	printf("%u timed packets per row in %u interleaved rounds, CPU %d, TSC ~%.2f GHz; "
	       "%llu packets checked\n",
	       b->bursts * BENCH_BURST, b->rounds, b->cpu, b->tsc_hz / 1e9,
	       (unsigned long long)b->checked);
	printf("cycles: TSC ticks per packet, bursts timed whole, net of the timer (empty window: "
	       "%.0f per burst, subtracted)\n",
	       b->overhead);
	printf("on: f->ts SEEN|REWRITE, ts_off != 0; off: SEEN only (ts-rewrite off); none: f->ts "
	       "0; same frames, NOP NOP TS\n\n");
	printf("case   flows dir  | cycles/pkt              ns | vs none\n");
	printf("                  |  median    mean     p99     |\n");
	for (uint32_t s = 0; s < b->nsets; s++)
		for (int d = 0; d < 2; d++)
			for (int k = 0; k < BENCH_NCASES; k++) {
				const struct bench_stat *st = &b->cells[k][s][d].st;

				if (!bench_has(b, (enum bench_case)k, d))
					continue;
				printf("%-4s %7u %-4s | %7.1f %7.1f %7.1f %5.1f |",
				       bench_case_names[k], b->sets[s].n, bench_dir_names[d],
				       st->median, st->mean, st->p99, bench_ns(b, st->median));
				if (k == BENCH_NONE || !bench_has(b, BENCH_NONE, d))
					printf(" -\n");
				else
					printf(" %+.1f (%.3fx)\n",
					       b->cells[k][s][d].st.median -
						       b->cells[BENCH_NONE][s][d].st.median,
					       b->cells[k][s][d].st.median /
						       b->cells[BENCH_NONE][s][d].st.median);
			}
	printf("\nadded cycles/pkt of the medians, ratio, and per round (min median max)\n");
	printf("  flows dir  | on - none                           | on - off\n");
	for (uint32_t s = 0; s < b->nsets; s++)
		for (int d = 0; d < 2; d++) {
			if (!b->dir_on[d])
				continue;
			printf("%7u %-4s |", b->sets[s].n, bench_dir_names[d]);
			bench_print_diff(b, BENCH_ON, BENCH_NONE, s, d);
			printf(" |");
			bench_print_diff(b, BENCH_ON, BENCH_OFF, s, d);
			printf("\n");
		}
}

static void bench_json_diff(const struct bench *b, const char *name, enum bench_case a,
			    enum bench_case c, uint32_t s, int d, const char *end)
{
	struct bench_diff df;

	if (!bench_has(b, a, d) || !bench_has(b, c, d)) {
		printf("\"%s\": null%s", name, end);
		return;
	}
	df = bench_diff_of(b, a, c, s, d);
	printf("\"%s\": {\"cycles\": %.2f, \"ratio\": %.4f, \"round_min\": %.2f, "
	       "\"round_median\": %.2f, \"round_max\": %.2f}%s",
	       name, df.cycles, df.ratio, df.round_min, df.round_med, df.round_max, end);
}

static void bench_print_json(const struct bench *b)
{
	bool first = true;

	printf("{\n  \"path\": [\"pkt_parse\", \"flow_lookup\", \"tcpstate_next\", "
	       "\"palloc_on_segment\", \"tsrw_packet\", \"flow_touch\", \"nat_rewrite\"],\n");
	printf("  \"burst\": %u, \"packets_per_row\": %u, \"rounds\": %u, \"checked_packets\": "
	       "%llu,\n",
	       BENCH_BURST, b->bursts * BENCH_BURST, b->rounds, (unsigned long long)b->checked);
	printf("  \"cpu\": %d, \"tsc_hz\": %.0f, \"timer_overhead_cycles_per_burst\": %.0f,\n",
	       b->cpu, b->tsc_hz, b->overhead);
	printf("  \"rows\": [\n");
	for (uint32_t s = 0; s < b->nsets; s++)
		for (int d = 0; d < 2; d++)
			for (int k = 0; k < BENCH_NCASES; k++) {
				const struct bench_stat *st = &b->cells[k][s][d].st;

				if (!bench_has(b, (enum bench_case)k, d))
					continue;
				printf("%s    {\"case\": \"%s\", \"flows\": %u, \"dir\": \"%s\", "
				       "\"cycles_per_pkt\": {\"median\": %.2f, \"mean\": %.2f, "
				       "\"p99\": %.2f}, \"ns_median\": %.2f}",
				       first ? "" : ",\n", bench_case_names[k], b->sets[s].n,
				       bench_dir_json[d], st->median, st->mean, st->p99,
				       bench_ns(b, st->median));
				first = false;
			}
	printf("\n  ],\n  \"added\": [\n");
	first = true;
	for (uint32_t s = 0; s < b->nsets; s++)
		for (int d = 0; d < 2; d++) {
			if (!b->dir_on[d])
				continue;
			printf("%s    {\"flows\": %u, \"dir\": \"%s\", ", first ? "" : ",\n",
			       b->sets[s].n, bench_dir_json[d]);
			bench_json_diff(b, "on_minus_none", BENCH_ON, BENCH_NONE, s, d, ", ");
			bench_json_diff(b, "on_minus_off", BENCH_ON, BENCH_OFF, s, d, ", ");
			bench_json_diff(b, "off_minus_none", BENCH_OFF, BENCH_NONE, s, d, "}");
			first = false;
		}
	printf("\n  ]\n}\n");
}

/* ---- options ----------------------------------------------------------- */

static void bench_usage(FILE *out)
{
	fprintf(out,
		"usage: bench_ts [--json] [--iters N] [--rounds R] [--flows N[,N...]]\n"
		"                [--case on|off|none[,...]] [--dir fwd|rev[,...]]\n"
		"  --json       one JSON document instead of the table\n"
		"  --iters N    timed packets per row (default %u, at least 100; rounded to\n"
		"               whole bursts of %u per round)\n"
		"  --rounds R   rounds, each giving every flow the next case (default %u, at most %u)\n"
		"  --flows      flow sets, %u to %u flows each, at most %d (default 1000,100000)\n"
		"  --case       only these cases (default all; the others' flows stay idle)\n"
		"  --dir        only these directions (default both); the checks run all\n",
		BENCH_ITERS, BENCH_BURST, BENCH_ROUNDS, BENCH_MAX_ROUNDS, BENCH_MIN_FLOWS,
		BENCH_MAX_FLOWS, BENCH_MAX_SETS);
}

static int bench_arg(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int bench_arg_flows(struct bench *b, char *s)
{
	b->nsets = 0;
	for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
		if (b->nsets == BENCH_MAX_SETS ||
		    bench_arg(tok, BENCH_MIN_FLOWS, BENCH_MAX_FLOWS, &b->sets[b->nsets].n) < 0)
			return -1;
		b->nsets++;
	}
	return b->nsets > 0 ? 0 : -1;
}

/* A comma-separated list of @names into @on[@count]. */
static int bench_arg_list(char *s, const char *const *names, int count, bool *on)
{
	int any = 0;

	for (int i = 0; i < count; i++)
		on[i] = false;
	for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
		int i = 0;

		while (i < count && strcmp(tok, names[i]) != 0)
			i++;
		if (i == count)
			return -1;
		on[i] = true;
		any = 1;
	}
	return any ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "iters", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "flows", required_argument, NULL, 'f' },
		{ "case", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench b = {
		.iters = BENCH_ITERS,
		.rounds = BENCH_ROUNDS,
		.case_on = { true, true, true },
		.dir_on = { true, true },
	};
	struct cfg_service *svc;
	bool json = false;
	int opt;

	for (size_t i = 0; i < RTE_DIM(bench_default_flows); i++)
		b.sets[i].n = bench_default_flows[i];
	b.nsets = RTE_DIM(bench_default_flows);
	while ((opt = getopt_long(argc, argv, "jn:r:f:c:d:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'n':
			if (bench_arg(optarg, 100, 100000000, &b.iters) < 0)
				goto usage;
			break;
		case 'r':
			if (bench_arg(optarg, 1, BENCH_MAX_ROUNDS, &b.rounds) < 0)
				goto usage;
			break;
		case 'f':
			if (bench_arg_flows(&b, optarg) < 0)
				goto usage;
			break;
		case 'c':
			if (bench_arg_list(optarg, bench_case_names, BENCH_NCASES, b.case_on) < 0)
				goto usage;
			break;
		case 'd':
			if (bench_arg_list(optarg, bench_dir_json, 2, b.dir_on) < 0)
				goto usage;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	/* Whole bursts, the same number per round for every row. */
	b.bursts = (b.iters + BENCH_BURST - 1) / BENCH_BURST;
	if (b.rounds > b.bursts)
		b.rounds = b.bursts;
	b.chunk = b.bursts / b.rounds;
	b.bursts = b.chunk * b.rounds;

	b.cpu = bench_pin();
	b.c = cfg_new();
	if (b.c == NULL)
		bench_die("cfg_new failed");
	svc = &b.c->services[0];
	svc->used = true;
	svc->gen = b.c->next_gen++;
	snprintf(svc->name, sizeof(svc->name), "bench");
	svc->proto = IPPROTO_TCP;
	b.dp.c = b.c;
	b.dp.now_ms = BENCH_NOW_MS;
	if (palloc_init(&b.dp.pa, 0, 1, BENCH_SEED, 16, 16, -1, 0) < 0)
		bench_die("palloc_init failed");
	b.tmp = bench_alloc((size_t)RTE_MAX(b.chunk, BENCH_OVERHEAD_N) * sizeof(*b.tmp));
	for (uint32_t s = 0; s < b.nsets; s++)
		bench_set_build(&b, &b.sets[s]);
	bench_cells_init(&b);
	b.tsc_hz = bench_tsc_hz();
	bench_timer_overhead(&b);
	bench_check_all(&b); /* also the warm-up */
	bench_run(&b);
	bench_check_all(&b);
	if (json)
		bench_print_json(&b);
	else
		bench_print_text(&b);
	bench_free(&b);
	return 0;

usage:
	bench_usage(stderr);
	return 2;
}
