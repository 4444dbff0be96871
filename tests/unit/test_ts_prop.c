/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Property test of per-flow timestamp rewriting: the reference clock of each
 * SNAT address (palloc_ts_open(), palloc_ts_end()), the per-packet rewrite
 * (tsrw_packet()) and reuse with proof (palloc_reuse()), with random client
 * clocks, driven as the worker drives them.
 *
 * The generator: flows from random clients through one or two SNAT addresses
 * toward one to three backends, many live at once, their segments interleaved
 * at random with each other and with steps of the clock (and the quarantine
 * timer). Every client has its own timestamp clock: a random 32-bit start
 * (one in four close below 2^32, so that the raw TSval wraps during the flow),
 * a random rate from 1 Hz to 1 MHz (log-uniform) and a random lifetime, from
 * milliseconds to minutes, so some long flows run far ahead of the 1 kHz
 * reference clock. Flows close in every way: client first, backend first,
 * both at once, a reset from either side (also after TIME_WAIT), idle-out
 * while established or after the backend's FIN only, a SYN never answered.
 * A few clients send no timestamps, a few backends do not answer with them.
 * Every segment is a real frame (the option at an odd, a 2-byte and a 4-byte
 * aligned offset) parsed by pkt_parse() and rewritten by tsrw_packet(). When
 * a small range runs out, the flow takes a quarantined tuple with proof as the
 * worker does (palloc_reuse()).
 *
 * The model keeps, per (SNAT address, backend), the newest TSval' forwarded
 * on every flow that has ended. Properties:
 *   - the first TSval' of every new flow (its SYN's) is newer, as a signed
 *     32-bit difference, than that of every earlier ended flow of the same
 *     (SNAT address, backend): the backend's TIME_WAIT (PAWS, RFC 6191)
 *     accepts the SYN whichever earlier tuple it lands on;
 *   - every client segment shows TSval' with TSval' - ts_off == TSval and
 *     ts_off fixed at the SYN; every backend ACK brings back TSecr' equal to
 *     the client's own TSval behind the echoed TSval', exactly; the backend's
 *     TSval and the client's TSecr pass untouched; checksums stay right;
 *   - f->ts_max is the newest TSval' the model saw forwarded.
 * "Newer than every one" is only meaningful while all TSval' of an address
 * lie within less than 2^31 of each other: a run lasts at most SPAN_MS, so
 * all lie within SPAN_MS * (1 + RATE_MAX / 1000) + flows of the address's
 * clock at the start (that clock moves at 1 kHz, plus the bumps past ended
 * flows, each at most as far as a client clock went), and the test checks
 * every TSval' against that window too.
 *
 * Each run also shows it met the hard cases: raw clocks that wrapped, fast
 * long flows, every kind of close, SYNs that a clock ticking only at 1 kHz
 * since the address's previous SYN would have sent too old (R had to move
 * past an ended flow), reuse where the range runs out, and in one setup
 * spaces recycled from a tiny pool, which forget their high-water marks.
 * With rewriting off (raw TSvals, unrelated across clients) the first
 * property does not hold; a run without it must find violations: the check
 * can fail. Separate tests pin the clock itself: 1 kHz while no ended flow
 * needs it to move, one random base per address.
 *
 * A failure prints the seed, the step and the last operations. To replay one
 * seed: TSPROP_SEED=0x... TSPROP_STEPS=n test_ts_prop
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "cfg.h"
#include "flow.h"
#include "frame.h"
#include "palloc.h"
#include "pkt.h"
#include "tcpstate.h"
#include "tsrw.h"

#include "tcpnames.h"

#define NADDR	 2
#define NBE	 3
#define MAXLIVE	 256
#define HIST	 32
#define SPAN_MS	 1000000ull /* simulated time of a run, at most (see the window above) */
#define RATE_MAX 1000000u   /* fastest client clock, Hz */

static const uint32_t be_ip[NBE] = { TF_IP(10, 2, 0, 1), TF_IP(10, 2, 0, 2), TF_IP(10, 2, 0, 3) };

/* How a flow ends. */
enum kind {
	K_CLIENT_FIRST,
	K_BACKEND_FIRST,
	K_SIMULTANEOUS,
	K_RST_C,
	K_RST_B,
	K_TW_RST, /* backend first, both FINs acknowledged, then a reset */
	K_IDLE,	  /* idle-out while established */
	K_IDLE_BFIN,
	K_NO_ANSWER, /* the backend never answers the SYN */
	K_COUNT
};

static const char *const kind_names[K_COUNT] = {
	"client-first", "backend-first", "simultaneous", "rst-c",     "rst-b",
	"tw-rst",	"idle",		 "idle-bfin",	 "no-answer",
};

/* The segments of each close, after the data; A_END: the flow ends. */
enum act {
	A_END,
	A_FIN_C,
	A_FIN_B, /* active: does not acknowledge a client FIN */
	A_FIN_B_PASSIVE,
	A_ACK_C,
	A_ACK_B,
	A_RST_C,
	A_RST_B,
};

static const uint8_t scripts[K_COUNT][6] = {
	[K_CLIENT_FIRST] = { A_FIN_C, A_FIN_B_PASSIVE, A_ACK_C, A_END },
	[K_BACKEND_FIRST] = { A_FIN_B, A_ACK_C, A_FIN_C, A_ACK_B, A_END },
	[K_SIMULTANEOUS] = { A_FIN_C, A_FIN_B, A_ACK_C, A_ACK_B, A_END },
	[K_RST_C] = { A_RST_C, A_END },
	[K_RST_B] = { A_RST_B, A_END },
	[K_TW_RST] = { A_FIN_B, A_ACK_C, A_FIN_C, A_ACK_B, A_RST_C, A_END },
	[K_IDLE] = { A_END },
	[K_IDLE_BFIN] = { A_FIN_B, A_ACK_C, A_END },
	[K_NO_ANSWER] = { A_END },
};

enum phase {
	P_SYN, /* SYN sent */
	P_SYNACK,
	P_DATA,
	P_CLOSE, /* and on: the close script, step phase - P_CLOSE */
};

struct pflow {
	bool used;
	struct flow f;
	int addr, be;
	uint8_t kind, phase, layout;
	bool ts;   /* the client's SYN carried the option */
	bool ts_b; /* the backend answered with it */
	bool reused;
	uint32_t ts0;		    /* the client's clock at the SYN */
	uint32_t rate;		    /* of the client's clock, Hz */
	uint32_t bts0;		    /* the backend's clock at the SYN (1 kHz) */
	uint64_t open_ms, close_ms; /* close_ms: data until then */
	uint32_t off;		    /* TSval' - TSval, fixed at the SYN */
	uint32_t newest;	    /* newest TSval' forwarded */
	uint32_t echo_p, echo_raw;  /* TSval' the backend echoes, and the TSval behind it */
	uint32_t echo_b;	    /* backend TSval the client echoes */
	uint32_t nxt[2], fin_c;	    /* sequence numbers */
	bool cfin;		    /* the client sent its FIN (at fin_c) */
	uint64_t ticks;		    /* the client's clock advanced this far (for the tallies) */
};

struct hist {
	uint32_t step;
	uint64_t now;
	char what[96];
};

/* The newest TSval' of each ended flow, per (address, backend). */
struct ended {
	uint32_t *v;
	uint32_t len, cap;
};

struct setup {
	uint64_t seed;
	uint32_t steps;
	int naddr, nbe;
	uint16_t lo, hi; /* SNAT range of every address */
	uint32_t dur_ms; /* quarantine */
	bool rewrite;
	bool reuse;
	uint64_t age_ms;     /* palloc's clock origin lies this far back */
	uint32_t max_spaces; /* 0: 64 */
	uint32_t max_live;   /* 0: MAXLIVE */
	uint32_t life_ms;    /* lifetimes at most (0: up to minutes) */
};

struct run {
	const struct setup *su;
	uint64_t rng;
	uint32_t step;
	struct cfg *c;
	struct cfg_service *svc;
	struct palloc pa;
	uint64_t now, t0;
	uint32_t r_start[NADDR];    /* each address's clock at the start */
	uint32_t prev_first[NADDR]; /* the previous SYN's TSval' on each address, and when */
	uint64_t prev_open[NADDR];
	struct pflow fl[MAXLIVE];
	uint32_t nlive;
	struct ended ended[NADDR][NBE];
	struct hist hist[HIST];
	uint32_t nhist;
	/* Tallies, to show the run explored what it should. */
	uint64_t n_open, n_enospc, n_enomem, n_reused, n_plain_old, n_wrapped, n_fast_long;
	uint64_t n_pkts, n_cmp, n_violations, n_kind[K_COUNT], n_ts_ended;
};

static uint64_t rnd(struct run *r, uint64_t n)
{
	return tf_rand(&r->rng) % n;
}

static void run_log(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_log(struct run *r, const char *fmt, ...)
{
	struct hist *h = &r->hist[r->nhist++ % HIST];
	va_list ap;

	h->step = r->step;
	h->now = r->now;
	va_start(ap, fmt);
	vsnprintf(h->what, sizeof(h->what), fmt, ap);
	va_end(ap);
}

static void run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_fail(struct run *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	uint32_t from = r->nhist > HIST ? r->nhist - HIST : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ts_prop: seed 0x%" PRIx64 " step %u: %s\n", r->su->seed, r->step, msg);
	fprintf(stderr, "  replay: TSPROP_SEED=0x%" PRIx64 " TSPROP_STEPS=%u\n", r->su->seed,
		r->step + 1);
	fprintf(stderr, "  last operations (step, ms since start):\n");
	for (uint32_t i = from; i < r->nhist; i++) {
		const struct hist *h = &r->hist[i % HIST];

		fprintf(stderr, "    %8u %10" PRIu64 "  %s\n", h->step, h->now - r->t0, h->what);
	}
	fail_msg("ts_prop: seed 0x%" PRIx64 " step %u: %s", r->su->seed, r->step, msg);
}

#define CHECK(r, cond, ...)                         \
	do {                                        \
		if (!(cond))                        \
			run_fail((r), __VA_ARGS__); \
	} while (0)

/* ---- clocks ------------------------------------------------------------------ */

static uint64_t client_ticks(const struct pflow *pf, uint64_t now)
{
	return (uint64_t)pf->rate * (now - pf->open_ms) / 1000;
}

static uint32_t client_clock(const struct pflow *pf, uint64_t now)
{
	return pf->ts0 + (uint32_t)client_ticks(pf, now);
}

static uint32_t backend_clock(const struct pflow *pf, uint64_t now)
{
	return pf->bts0 + (uint32_t)(now - pf->open_ms);
}

/* 1 Hz to 1 MHz, about as many flows per decade. */
static uint32_t random_rate(struct run *r)
{
	uint32_t e = (uint32_t)rnd(r, 20);
	uint32_t v = (1u << e) + (uint32_t)rnd(r, 1u << e);

	return v > RATE_MAX ? RATE_MAX : v;
}

static uint64_t random_lifetime(struct run *r)
{
	uint32_t x = (uint32_t)rnd(r, 100);

	if (x < 55)
		return rnd(r, 50);
	if (x < 92)
		return 50 + rnd(r, 3000);
	if (x < 98)
		return 3000 + rnd(r, 30000);
	return 60000 + rnd(r, 400000);
}

/* ---- the model's checks --------------------------------------------------------- */

/*
 * Every TSval' of an address lies within the window that makes signed
 * comparisons meaningful (rewriting only: raw TSvals are anywhere).
 */
static void check_window(struct run *r, const struct pflow *pf, uint32_t v)
{
	uint64_t bound = (r->now - r->t0) * (1 + RATE_MAX / 1000) + r->n_open + 1;

	if (!r->su->rewrite)
		return;
	CHECK(r, (uint32_t)(v - r->r_start[pf->addr]) <= bound,
	      "addr%d: TSval' %#x is %#x past the clock at the start, beyond the window %#" PRIx64,
	      pf->addr, v, v - r->r_start[pf->addr], bound);
}

/* The SYN's TSval' against every ended flow of the same (address, backend). */
static void check_first(struct run *r, const struct pflow *pf, uint32_t first)
{
	const struct ended *en = &r->ended[pf->addr][pf->be];
	/* Had the clock only ticked at 1 kHz since the address's previous SYN. */
	uint32_t plain = r->prev_first[pf->addr] + (uint32_t)(r->now - r->prev_open[pf->addr]);
	bool violated = false, plain_old = false;

	for (uint32_t i = 0; i < en->len; i++) {
		r->n_cmp++;
		plain_old |= (int32_t)(plain - en->v[i]) <= 0;
		if ((int32_t)(first - en->v[i]) > 0 || violated)
			continue;
		violated = true;
		if (r->su->rewrite)
			run_fail(r,
				 "addr%d be%d: new flow (%s) starts at TSval' %#x, not newer than "
				 "%#x of ended flow #%u of %u",
				 pf->addr, pf->be, pf->reused ? "reused tuple" : "free tuple",
				 first, en->v[i], i, en->len);
	}
	r->n_violations += violated;
	r->n_plain_old += plain_old;
	r->prev_first[pf->addr] = first;
	r->prev_open[pf->addr] = r->now;
}

static void ended_add(struct ended *en, uint32_t v)
{
	if (en->len == en->cap) {
		en->cap = en->cap ? 2 * en->cap : 1024;
		en->v = realloc(en->v, en->cap * sizeof(*en->v));
		assert_non_null(en->v);
	}
	en->v[en->len++] = v;
}

/* ---- segments, as the worker feeds them ------------------------------------------ */

/* The timestamp option at TCP offset 20 + layout: 4-byte, odd, 2-byte aligned TSval. */
static void ts_opts(uint8_t opts[12], uint8_t layout, uint32_t tsval, uint32_t tsecr)
{
	uint8_t *o = opts + 2 - (layout == 2 ? 2 : layout == 1 ? 1 : 0);

	memset(opts, 1, 12); /* NOPs */
	o[0] = 8;
	o[1] = 10;
	tf_wr32(o + 2, tsval);
	tf_wr32(o + 6, tsecr);
}

/*
 * One segment of @pf in @dir: a frame with the option if @opt, parsed, then
 * close tracking, the quarantine and the rewrite as worker_forward() does them;
 * then every field the rewrite may touch is checked.
 */
static void wire(struct run *r, struct pflow *pf, enum flow_dir dir, uint8_t flags, uint32_t seq,
		 uint32_t ack, uint32_t len, bool opt)
{
	uint8_t fr[TF_MAX], opts[12], *tcp;
	uint32_t tsval = dir == FWD ? client_clock(pf, r->now) : backend_clock(pf, r->now);
	uint32_t tsecr = dir == FWD ? ((flags & ACK) ? pf->echo_b : 0) : pf->echo_p;
	struct tf_spec s = {
		.proto = 6,
		.src = dir == FWD ? TF_CLIENT : be_ip[pf->be],
		.dst = dir == FWD ? TF_VIP : TF_SNAT,
		.sport = dir == FWD ? 40000 : 80,
		.dport = dir == FWD ? 80 : 40000,
		.tcp_flags = flags,
		.seq = seq,
		.ack = ack,
		.payload = (uint16_t)len,
	};
	struct pkt_meta pm;
	struct tcpstate_seg sg;
	uint32_t flen;

	if (opt) {
		ts_opts(opts, pf->layout, tsval, tsecr);
		s.opts = opts;
		s.optlen = 12;
	}
	flen = tf_build(fr, &s);
	CHECK(r, pkt_parse(fr, flen, &pm) == 0, "frame does not parse");
	CHECK(r, (pm.tcp_ts != 0) == opt, "timestamp option %sfound", opt ? "not " : "");
	sg = (struct tcpstate_seg){ .flags = pm.tcp_flags,
				    .seq = pm.tcp_seq,
				    .ack = pm.tcp_ack,
				    .len = (uint32_t)pm.l4_len - pm.tcp_hlen };
	pf->f.state = tcpstate_next(&pf->f, dir, &sg);
	palloc_on_segment(&r->pa, &pf->f, r->su->dur_ms, r->now);
	/* Client clocks here run at most at 1 MHz: never beyond the credit. */
	if (pf->f.ts != 0 && pm.tcp_ts != 0)
		CHECK(r, tsrw_packet(&pf->f, fr + pm.l4_off, &pm, dir, r->now),
		      "a segment of a clock of at most 1 MHz was refused");
	r->n_pkts++;

	tcp = fr + pm.l4_off;
	CHECK(r, tf_l4_csum_field(fr + TF_ETH) == ref_l4_csum(fr + TF_ETH),
	      "TCP checksum %#x after the rewrite, should be %#x", tf_l4_csum_field(fr + TF_ETH),
	      ref_l4_csum(fr + TF_ETH));
	if (opt) {
		uint32_t v = tf_rd32(tcp + pm.tcp_ts + 2), e = tf_rd32(tcp + pm.tcp_ts + 6);

		if (dir == FWD) {
			CHECK(r, pf->f.ts_off == pf->off, "ts_off %#x changed from %#x",
			      pf->f.ts_off, pf->off);
			CHECK(r, v - pf->f.ts_off == tsval && v == tsval + pf->off,
			      "TSval %#x became %#x, offset %#x", tsval, v, pf->off);
			CHECK(r, e == tsecr, "client TSecr %#x became %#x", tsecr, e);
			check_window(r, pf, v);
			if ((int32_t)(v - pf->newest) > 0)
				pf->newest = v;
			/* The backend's ts_recent: it echoes the newest TSval' it got. */
			if ((int32_t)(v - pf->echo_p) >= 0) {
				pf->echo_p = v;
				pf->echo_raw = tsval;
			}
		} else {
			CHECK(r, v == tsval, "backend TSval %#x became %#x", tsval, v);
			/* TSecr is only valid, and only restored, with ACK set. */
			CHECK(r, e == ((flags & ACK) ? pf->echo_raw : tsecr),
			      "backend TSecr %#x (echoing TSval %#x) became %#x", tsecr,
			      pf->echo_raw, e);
			pf->echo_b = tsval;
		}
	}
	if (pf->ts)
		CHECK(r, pf->f.ts_max == pf->newest, "ts_max %#x, model's newest TSval' %#x",
		      pf->f.ts_max, pf->newest);
	else
		CHECK(r, pf->f.ts == 0, "flow without timestamps has ts %#x", pf->f.ts);
}

/* Does a segment of @pf in @dir carry the option? RFC 7323: only if both agreed. */
static bool has_opt(const struct pflow *pf, enum flow_dir dir)
{
	return pf->ts && (pf->ts_b || (dir == FWD && pf->phase == P_SYN));
}

static void send_data(struct run *r, struct pflow *pf, enum flow_dir dir)
{
	uint32_t len = (uint32_t)rnd(r, 100), seq = pf->nxt[dir];

	pf->nxt[dir] += len;
	wire(r, pf, dir, ACK, seq, pf->nxt[dir == FWD ? REV : FWD], len, has_opt(pf, dir));
}

static void send_ack(struct run *r, struct pflow *pf, enum flow_dir dir)
{
	wire(r, pf, dir, ACK, pf->nxt[dir], pf->nxt[dir == FWD ? REV : FWD], 0, has_opt(pf, dir));
}

/* ---- flows ------------------------------------------------------------------------ */

static void flow_end(struct run *r, struct pflow *pf)
{
	run_log(r, "end addr%d be%d port %u %s (seen %#x, newest %#x)", pf->addr, pf->be,
		tf_rd16((const uint8_t *)&pf->f.sport), kind_names[pf->kind], pf->f.tcp_seen,
		pf->newest);
	palloc_on_end(&r->pa, &pf->f, r->su->dur_ms, r->now);
	if (pf->ts) {
		ended_add(&r->ended[pf->addr][pf->be], pf->newest);
		r->n_ts_ended++;
		if ((uint64_t)pf->ts0 + pf->ticks > UINT32_MAX)
			r->n_wrapped++;
		if (pf->rate > 1000 && r->now - pf->open_ms > 60000)
			r->n_fast_long++;
	}
	r->n_kind[pf->kind]++;
	pf->used = false;
	r->nlive--;
}

static void op_open(struct run *r)
{
	struct pflow *pf = NULL;
	uint64_t tried;
	uint32_t first = 0, ref = 0;
	int rc;

	if (r->nlive >= (r->su->max_live ? r->su->max_live : MAXLIVE))
		return;
	for (int i = 0; i < MAXLIVE && pf == NULL; i++)
		if (!r->fl[i].used)
			pf = &r->fl[i];
	if (pf == NULL)
		return;
	*pf = (struct pflow){ 0 };
	pf->be = (int)rnd(r, (uint64_t)r->su->nbe);
	pf->f.proto = IPPROTO_TCP;
	pf->f.cip = tf_n32(TF_CLIENT + (uint32_t)rnd(r, 1000));
	pf->f.cport = tf_n16((uint16_t)(1024 + rnd(r, 60000)));
	pf->f.vip = tf_n32(TF_VIP);
	pf->f.vport = tf_n16(80);
	pf->f.bip = tf_n32(be_ip[pf->be]);
	pf->f.bport = tf_n16(80);
	pf->f.state = FLOW_SYN;
	pf->ts = rnd(r, 20) != 0;
	pf->ts_b = rnd(r, 10) != 0;
	pf->layout = (uint8_t)rnd(r, 3);
	pf->ts0 = rnd(r, 4) == 0 ? (uint32_t)(0u - 1u - (uint32_t)rnd(r, 1u << 26)) :
				   (uint32_t)tf_rand(&r->rng);
	pf->rate = random_rate(r);
	pf->bts0 = (uint32_t)tf_rand(&r->rng);
	pf->open_ms = r->now;
	pf->kind = (uint8_t)rnd(r, K_COUNT);
	pf->close_ms = r->now + random_lifetime(r) % (r->su->life_ms ? r->su->life_ms : UINT32_MAX);

	/* The worker's order: a free tuple, else one with proof, then the SYN's TSval'. */
	rc = palloc_get(&r->pa, r->c, r->svc, &pf->f, &tried);
	if (rc == -ENOSPC && pf->ts && r->su->reuse) {
		rc = palloc_reuse(&r->pa, r->c, r->svc, &pf->f, pf->ts0, r->su->rewrite, r->now);
		pf->reused = rc == 0;
	}
	run_log(r, "open be%d -> %d addr %u port %u%s ts %d/%d ts0 %#x rate %u %s", pf->be, rc,
		pf->f.snat_slot, rc == 0 ? tf_rd16((const uint8_t *)&pf->f.sport) : 0,
		pf->reused ? " (reused)" : "", pf->ts, pf->ts_b, pf->ts0, pf->rate,
		kind_names[pf->kind]);
	if (rc == -ENOSPC || rc == -ENOMEM) {
		r->n_enospc += rc == -ENOSPC;
		r->n_enomem += rc == -ENOMEM;
		return;
	}
	CHECK(r, rc == 0, "palloc_get %d", rc);
	pf->addr = pf->f.snat_slot; /* slot i holds address i */
	CHECK(r, pf->addr < r->su->naddr && pf->f.sip == tf_n32(TF_SNAT + (uint32_t)pf->addr),
	      "tuple from slot %u", pf->f.snat_slot);
	pf->used = true;
	r->nlive++;
	r->n_open++;
	r->n_reused += pf->reused;

	pf->nxt[FWD] = (uint32_t)tf_rand(&r->rng);
	pf->nxt[REV] = (uint32_t)tf_rand(&r->rng);
	if (pf->ts) {
		ref = palloc_ts_ref(&r->pa, r->c, pf->f.snat_slot, r->now);
		first = palloc_ts_open(&r->pa, r->c, &pf->f, pf->ts0, r->su->rewrite, r->now);
		if (r->su->rewrite) {
			CHECK(r, (int32_t)(first - ref) >= 0, "SYN's TSval' %#x older than R %#x",
			      first, ref);
		} else {
			CHECK(r, first == pf->ts0, "no rewrite, yet TSval' %#x for TSval %#x",
			      first, pf->ts0);
		}
		check_first(r, pf, first);
		pf->off = first - pf->ts0;
		pf->newest = pf->echo_p = first;
		pf->echo_raw = pf->ts0;
	}
	wire(r, pf, FWD, SYN, pf->nxt[FWD]++, 0, 0, pf->ts);
	if (pf->ts)
		CHECK(r, pf->newest == first, "the SYN went out with TSval' %#x, not %#x",
		      pf->newest, first);
}

/* The next segment of @pf's life. */
static void flow_act(struct run *r, struct pflow *pf)
{
	uint8_t a;

	pf->ticks = client_ticks(pf, r->now);
	switch (pf->phase) {
	case P_SYN:
		if (pf->kind == K_NO_ANSWER) {
			if (r->now >= pf->close_ms)
				flow_end(r, pf);
			return;
		}
		run_log(r, "addr%d be%d: syn-ack", pf->addr, pf->be);
		pf->phase = P_SYNACK;
		wire(r, pf, REV, SYN | ACK, pf->nxt[REV]++, pf->nxt[FWD], 0, pf->ts && pf->ts_b);
		return;
	case P_SYNACK:
		pf->phase = P_DATA;
		send_ack(r, pf, FWD);
		return;
	case P_DATA:
		if (r->now < pf->close_ms) {
			send_data(r, pf, rnd(r, 2) ? FWD : REV);
			return;
		}
		pf->phase = P_CLOSE;
		break;
	default:
		break;
	}
	a = scripts[pf->kind][pf->phase - P_CLOSE];
	pf->phase++;
	run_log(r, "addr%d be%d %s: act %u", pf->addr, pf->be, kind_names[pf->kind], a);
	switch (a) {
	case A_END:
		flow_end(r, pf);
		break;
	case A_FIN_C:
		pf->fin_c = pf->nxt[FWD]++;
		pf->cfin = true;
		wire(r, pf, FWD, FIN | ACK, pf->fin_c, pf->nxt[REV], 0, has_opt(pf, FWD));
		break;
	case A_FIN_B:
		/* Sent before the client's FIN arrived: it acknowledges up to it at most. */
		wire(r, pf, REV, FIN | ACK, pf->nxt[REV]++, pf->cfin ? pf->fin_c : pf->nxt[FWD], 0,
		     has_opt(pf, REV));
		break;
	case A_FIN_B_PASSIVE:
		wire(r, pf, REV, FIN | ACK, pf->nxt[REV]++, pf->nxt[FWD], 0, has_opt(pf, REV));
		break;
	case A_ACK_C:
		send_ack(r, pf, FWD);
		break;
	case A_ACK_B:
		send_ack(r, pf, REV);
		break;
	case A_RST_C:
	case A_RST_B: {
		enum flow_dir d = a == A_RST_C ? FWD : REV;

		wire(r, pf, d, RST | (rnd(r, 2) ? ACK : 0), pf->nxt[d],
		     pf->nxt[d == FWD ? REV : FWD], 0, has_opt(pf, d) && rnd(r, 2));
		break;
	}
	default:
		break;
	}
}

static void op_time(struct run *r)
{
	uint32_t x = (uint32_t)rnd(r, 1000);
	uint64_t d = x < 920 ? rnd(r, 8) : x < 999 ? rnd(r, 200) : 5000 + rnd(r, 10000);

	r->now += d;
	palloc_expire(&r->pa, r->now, UINT32_MAX);
	run_log(r, "time +%" PRIu64, d);
}

static void run_step(struct run *r)
{
	uint32_t x = (uint32_t)rnd(r, 100);

	if (x < 25) {
		op_open(r);
	} else if (x < 85) {
		uint32_t start = (uint32_t)rnd(r, MAXLIVE), burst = 1 + (uint32_t)rnd(r, 3);

		for (uint32_t i = 0; i < MAXLIVE; i++) {
			struct pflow *pf = &r->fl[(start + i) % MAXLIVE];

			if (!pf->used)
				continue;
			while (burst-- > 0 && pf->used)
				flow_act(r, pf);
			break;
		}
	} else {
		op_time(r);
	}
}

static void run_setup(const struct setup *su, struct run *r)
{
	r->su = su;
	r->rng = su->seed;
	r->now = (1ULL << 33) + rnd(r, 1ULL << 32);
	r->t0 = r->now;
	r->c = cfg_new();
	assert_non_null(r->c);
	r->svc = &r->c->services[0];
	r->svc->used = true;
	r->svc->gen = r->c->next_gen++;
	r->svc->proto = IPPROTO_TCP;
	r->svc->snat_all = true;
	r->svc->tw_quarantine = CFG_INHERIT;
	for (int a = 0; a < su->naddr; a++)
		r->c->snat[a] = (struct cfg_snat){ .used = true,
						   .gen = r->c->next_gen++,
						   .ip = tf_n32(TF_SNAT + (uint32_t)a),
						   .lo = su->lo,
						   .hi = su->hi,
						   .ts_base = (uint32_t)tf_rand(&r->rng) };
	assert_int_equal(palloc_init(&r->pa, 0, 1, su->seed ^ 0x7157,
				     su->max_spaces ? su->max_spaces : 64, 1u << 16, -1,
				     r->now - su->age_ms),
			 0);
	for (int a = 0; a < su->naddr; a++) {
		r->r_start[a] = palloc_ts_ref(&r->pa, r->c, (uint8_t)a, r->now);
		r->prev_first[a] = r->r_start[a];
		r->prev_open[a] = r->now;
		/* R = base + now: the address's random base hides the uptime. */
		CHECK(r, r->r_start[a] == r->c->snat[a].ts_base + (uint32_t)r->now,
		      "addr%d: R %#x at start, base %#x", a, r->r_start[a], r->c->snat[a].ts_base);
	}
}

static void run_teardown(struct run *r)
{
	palloc_free(&r->pa);
	cfg_free(r->c);
	for (int a = 0; a < NADDR; a++)
		for (int b = 0; b < NBE; b++)
			free(r->ended[a][b].v);
	free(r);
}

static void run_tally(const struct run *r)
{
	print_message("seed 0x%" PRIx64 " %s%s: %u steps, %" PRIu64 " s, %" PRIu64
		      " flows (%" PRIu64 " reused, %" PRIu64 " -ENOSPC, %" PRIu64
		      " -ENOMEM, %" PRIu64 " spaces recycled), %" PRIu64 " segments, %" PRIu64
		      " ended with timestamps, %" PRIu64 " clocks wrapped, %" PRIu64
		      " fast long flows, %" PRIu64 " SYNs that needed R moved, %" PRIu64
		      " comparisons, %" PRIu64 " violations\n",
		      r->su->seed, r->su->rewrite ? "rewrite" : "no rewrite",
		      r->su->reuse ? "+reuse" : "", r->step, (r->now - r->t0) / 1000, r->n_open,
		      r->n_reused, r->n_enospc, r->n_enomem, r->pa.spaces_evicted, r->n_pkts,
		      r->n_ts_ended, r->n_wrapped, r->n_fast_long, r->n_plain_old, r->n_cmp,
		      r->n_violations);
}

/* Run @su; returns the number of new flows that broke the property. */
static uint64_t run(const struct setup *su)
{
	struct run *r = calloc(1, sizeof(*r));
	uint64_t violations;
	bool full = true;

	assert_non_null(r);
	run_setup(su, r);
	for (r->step = 0; r->step < su->steps; r->step++) {
		if (r->now - r->t0 >= SPAN_MS) {
			full = false;
			break;
		}
		run_step(r);
	}
	for (int i = 0; i < MAXLIVE; i++)
		if (r->fl[i].used)
			flow_end(r, &r->fl[i]);
	r->now += su->dur_ms;
	palloc_expire(&r->pa, r->now, UINT32_MAX);
	CHECK(r, palloc_quarantine_used(&r->pa) == 0 && r->pa.live_tcp == 0,
	      "left over: %u entries, %u live TCP", palloc_quarantine_used(&r->pa), r->pa.live_tcp);
	run_tally(r);
	/* A run that met none of the hard cases tested little (replays may be short). */
	if (su->steps >= 100000) {
		CHECK(r, full, "the run hit its time span after %u steps", r->step);
		CHECK(r,
		      r->n_open > su->steps / 50 && r->n_wrapped > 0 &&
			      (r->n_fast_long > 0 || su->life_ms != 0),
		      "too few flows, wraps or fast long flows");
		for (int k = 0; k < K_COUNT; k++)
			CHECK(r, r->n_kind[k] > 0, "no flow closed %s", kind_names[k]);
		if (su->rewrite)
			CHECK(r, r->n_plain_old > 0, "R never had to move");
		if (su->max_spaces != 0) /* spaces forget their high-water marks */
			CHECK(r, r->pa.spaces_evicted > 0, "no space was recycled");
		if (su->reuse && su->hi - su->lo < 100) /* small enough to run out */
			CHECK(r, r->n_reused > 0 && r->n_enospc > 0, "no reuse");
	}
	violations = r->n_violations;
	run_teardown(r);
	return violations;
}

static bool selected(const struct setup *su, uint32_t *steps)
{
	const char *seed = getenv("TSPROP_SEED"), *n = getenv("TSPROP_STEPS");

	if (seed != NULL && strtoull(seed, NULL, 0) != su->seed)
		return false;
	*steps = n != NULL ? (uint32_t)strtoul(n, NULL, 0) : su->steps;
	return true;
}

/*
 * The seeds: one address, one backend, a wide range; two addresses, three
 * backends and a range small enough to run out (reuse with proof); palloc's
 * 32-bit millisecond clock wrapping during the run; a pool of spaces so small
 * that idle ones are recycled and forget their high-water marks (only the
 * address's clock remembers).
 */
#define WRAPS_SOON ((1ULL << 32) - 300000)

#define SETUP(sd, n, na, nb, l, h, dur, rw, ru)                                       \
	.seed = (sd), .steps = (n), .naddr = (na), .nbe = (nb), .lo = (l), .hi = (h), \
	.dur_ms = (dur), .rewrite = (rw), .reuse = (ru)

static const struct setup setups[] = {
	{ SETUP(0x75e00001, 250000, 1, 1, 1024, 65535, 60000, true, true) },
	{ SETUP(0x75e00002, 250000, 2, 3, 5000, 5031, 20000, true, true) },
	{ SETUP(0x75e00003, 250000, 2, 2, 6000, 6031, 10000, true, true), .age_ms = WRAPS_SOON },
	{ SETUP(0x75e00004, 200000, 1, 1, 1024, 65535, 1000, true, false) },
	{ SETUP(0x75e00005, 200000, 2, 3, 1024, 65535, 200, true, true), .max_spaces = 3,
	  .max_live = 8, .life_ms = 200 },
};

static void first_tsval_newer_than_every_ended_flow(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		struct setup su = setups[i];

		if (selected(&su, &su.steps))
			assert_int_equal(run(&su), 0);
	}
}

/* Raw TSvals, unrelated across clients: the same check must find violations. */
static void without_rewriting_the_check_fails(void **state)
{
	struct setup su = { SETUP(0x75e0000f, 30000, 1, 1, 1024, 65535, 60000, false, false) };

	(void)state;
	if (selected(&su, &su.steps) && su.steps >= 30000)
		assert_true(run(&su) > 100);
}

/* ---- the reference clock itself ------------------------------------------------------ */

#define T0    7000000u
#define BASE0 0x9e3779b9u
#define BASE1 0x1234abcdu

struct env {
	struct cfg *c;
	struct palloc pa;
};

static void env_init(struct env *e)
{
	struct cfg_service *svc;

	e->c = cfg_new();
	assert_non_null(e->c);
	svc = &e->c->services[0];
	svc->used = true;
	svc->gen = e->c->next_gen++;
	svc->proto = IPPROTO_TCP;
	svc->snat_all = false;
	svc->snat_mask = 1;
	svc->tw_quarantine = CFG_INHERIT;
	e->c->snat[0] = (struct cfg_snat){ .used = true,
					   .gen = e->c->next_gen++,
					   .ip = tf_n32(TF_SNAT),
					   .lo = 5000,
					   .hi = 5099,
					   .ts_base = BASE0 };
	e->c->snat[1] = (struct cfg_snat){ .used = true,
					   .gen = e->c->next_gen++,
					   .ip = tf_n32(TF_SNAT + 1),
					   .lo = 5000,
					   .hi = 5099,
					   .ts_base = BASE1 };
	assert_int_equal(palloc_init(&e->pa, 0, 1, 0x5eed, 16, 1024, -1, T0), 0);
}

static void env_free(struct env *e)
{
	palloc_free(&e->pa);
	cfg_free(e->c);
}

/* A flow through SNAT slot @slot; its SYN carries @tsval. Returns the SYN's TSval'. */
static uint32_t open_ts(struct env *e, struct flow *f, uint8_t slot, uint32_t tsval, uint64_t now)
{
	uint64_t tried;

	*f = (struct flow){ .proto = IPPROTO_TCP, .bip = tf_n32(TF_BACKEND), .bport = tf_n16(80) };
	e->c->services[0].snat_mask = 1ULL << slot;
	assert_int_equal(palloc_get(&e->pa, e->c, &e->c->services[0], f, &tried), 0);
	assert_int_equal(f->snat_slot, slot);
	return palloc_ts_open(&e->pa, e->c, f, tsval, true, now);
}

/* A client segment with @tsval, as tsrw_packet() keeps ts_max. */
static void client_ts(struct flow *f, uint32_t tsval)
{
	uint32_t v = tsval + f->ts_off;

	if ((int32_t)(v - f->ts_max) > 0)
		f->ts_max = v;
}

static void reference_clock_ticks_at_1khz(void **state)
{
	struct env e;
	struct flow fast, a, b, c, d;
	uint32_t ta, tb, tc, td;

	(void)state;
	env_init(&e);
	/* A live flow whose client clock runs at 1 MHz does not move R... */
	open_ts(&e, &fast, 0, 0xfffff000u, T0);
	assert_int_equal(palloc_ts_ref(&e.pa, e.c, 0, T0 + 5), BASE0 + T0 + 5);
	ta = open_ts(&e, &a, 0, 77, T0 + 5);
	assert_int_equal(ta, BASE0 + T0 + 5);
	client_ts(&fast, 0xfffff000u + 1000000);
	/* ... nor do others that live on: 1000 ms later, R is 1000 further. */
	client_ts(&a, 1077);
	tb = open_ts(&e, &b, 0, 5, T0 + 1005);
	assert_int_equal(tb - ta, 1000);
	/* An ended flow ahead of R moves it past its newest TSval', not further. */
	palloc_on_end(&e.pa, &fast, 1000, T0 + 1005);
	tc = open_ts(&e, &c, 0, 5, T0 + 2005);
	assert_true((int32_t)(tc - fast.ts_max) > 0);
	assert_true(tc - fast.ts_max <= 1001);
	/* And from there on at 1 kHz again. */
	td = open_ts(&e, &d, 0, 5, T0 + 3005);
	assert_int_equal(td - tc, 1000);
	/* An ended flow behind R changes nothing. */
	palloc_on_end(&e.pa, &a, 1000, T0 + 3005);
	assert_int_equal(palloc_ts_ref(&e.pa, e.c, 0, T0 + 4005), td + 1000);
	env_free(&e);
}

static void addresses_have_their_own_random_clocks(void **state)
{
	struct env e;
	struct flow f0, f1, g0, g1;
	uint32_t r0, r1;

	(void)state;
	env_init(&e);
	r0 = palloc_ts_ref(&e.pa, e.c, 0, T0 + 10);
	r1 = palloc_ts_ref(&e.pa, e.c, 1, T0 + 10);
	/* No uptime leak: R at T is not T, and two addresses differ by their bases. */
	assert_int_not_equal(r0, T0 + 10);
	assert_int_not_equal(r1, T0 + 10);
	assert_int_equal(r0 - r1, BASE0 - BASE1);
	assert_int_equal(open_ts(&e, &f0, 0, 1, T0 + 10), r0);
	assert_int_equal(open_ts(&e, &f1, 1, 1, T0 + 10), r1);
	/* A flow far ahead on address 0 moves address 0's clock only. */
	client_ts(&f0, 1 + 0x20000000u);
	palloc_on_end(&e.pa, &f0, 1000, T0 + 20);
	assert_true((int32_t)(open_ts(&e, &g0, 0, 1, T0 + 30) - f0.ts_max) > 0);
	assert_int_equal(open_ts(&e, &g1, 1, 1, T0 + 30), r1 + 20);
	/* Without rewriting the SYN keeps its TSval. */
	{
		struct flow h;
		uint64_t tried;

		h = (struct flow){ .proto = IPPROTO_TCP,
				   .bip = tf_n32(TF_BACKEND),
				   .bport = tf_n16(81) };
		assert_int_equal(palloc_get(&e.pa, e.c, &e.c->services[0], &h, &tried), 0);
		assert_int_equal(palloc_ts_open(&e.pa, e.c, &h, 12345, false, T0 + 30), 12345);
		assert_int_equal(h.ts_off, 0);
		assert_int_equal(h.ts, FLOW_TS_SEEN);
	}
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reference_clock_ticks_at_1khz),
		cmocka_unit_test(addresses_have_their_own_random_clocks),
		cmocka_unit_test(first_tsval_newer_than_every_ended_flow),
		cmocka_unit_test(without_rewriting_the_check_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
