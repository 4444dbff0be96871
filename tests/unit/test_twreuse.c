/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reuse with proof (palloc_reuse()): when no free tuple toward a backend is
 * left, a new flow may take a tuple that only the TIME_WAIT quarantine holds,
 * if the backend will accept its SYN there (RFC 6191, Linux
 * tcp_timewait_state_process()): the old flow used timestamps both ways,
 * closed cleanly (the backend is in TIME_WAIT proper), and the new SYN's
 * TSval' is newer than the last TSval' the old flow forwarded.
 *
 * Flows are driven as the worker drives them: palloc_get(), on -ENOSPC
 * palloc_reuse(), palloc_ts_open() at the SYN; then every segment is a real
 * frame through tcpstate_next(), palloc_on_segment() and tsrw_packet();
 * palloc_on_end() when the flow ends, palloc_expire() from the timer. Time is
 * injected.
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

#include <cmocka.h>

#include "cfg.h"
#include "flow.h"
#include "frame.h"
#include "palloc.h"
#include "pkt.h"
#include "tcpstate.h"
#include "tsrw.h"

#include "tcpnames.h"

#include "palloc_env.h"

#define BE1	TF_IP(10, 2, 0, 1)
#define SNAT2	TF_IP(10, 1, 0, 2)
#define TSBASE0 0x6b43a9b5u
#define TSBASE1 0x0badc0deu

/* @maxq: the quarantine pool, which live TCP flows and detached entries share. */
static void env_init_pool(struct env *e, uint64_t seed, uint32_t maxq)
{
	env_setup(e, 0, 1, 64, maxq, seed);
}

static void env_init_seed(struct env *e, uint64_t seed)
{
	env_init_pool(e, seed, 4096);
}

static void env_init(struct env *e)
{
	env_init_seed(e, 0x7e05e);
}

static void snat_add(struct env *e, int slot, uint32_t ip, uint16_t lo, uint16_t hi)
{
	e->c->snat[slot] = (struct cfg_snat){ .used = true,
					      .gen = e->c->next_gen++,
					      .ip = tf_n32(ip),
					      .lo = lo,
					      .hi = hi,
					      .ts_base = slot == 0 ? TSBASE0 : TSBASE1 };
}

static void snat_range(struct env *e, int slot, uint16_t lo, uint16_t hi)
{
	e->c->snat[slot].lo = lo;
	e->c->snat[slot].hi = hi;
}

/* A flow toward @bip:80 whose client clock reads @tsval; no tuple yet. */
static void conn_new(struct conn *c, uint32_t bip, uint32_t tsval)
{
	*c = (struct conn){ .nxt = { 1000, 50000 }, .ts = true, .ts_b = true, .tsval = tsval };
	c->f.proto = IPPROTO_TCP;
	c->f.cip = tf_n32(TF_CLIENT);
	c->f.cport = tf_n16(40000);
	c->f.vip = tf_n32(TF_VIP);
	c->f.vport = tf_n16(80);
	c->f.bip = tf_n32(bip);
	c->f.bport = tf_n16(80);
	c->f.state = FLOW_SYN;
}

static int conn_get(struct env *e, struct conn *c)
{
	uint64_t tried;

	return palloc_get(&e->pa, e->c, e->svc, &c->f, &tried);
}

static int conn_reuse(struct env *e, struct conn *c, bool rewrite)
{
	return palloc_reuse(&e->pa, e->c, e->svc, &c->f, c->tsval, rewrite, e->now);
}

/*
 * One segment as a frame: timestamps as RFC 7323 has them (the SYN if the
 * client uses them, everything else only if the backend agreed), then the
 * worker's per-segment glue. Checks TSecr' on the way back.
 */
static void seg(struct env *e, struct conn *c, enum flow_dir dir, uint8_t flags)
{
	uint8_t fr[TF_MAX], opts[12] = { 1, 1, 8, 10 }, *tcp;
	bool opt = c->ts && (c->ts_b || (dir == FWD && (flags & SYN)));
	struct tf_spec s = {
		.proto = 6,
		.src = dir == FWD ? TF_CLIENT : tf_rd32((const uint8_t *)&c->f.bip),
		.dst = dir == FWD ? TF_VIP : TF_SNAT,
		.sport = dir == FWD ? 40000 : 80,
		.dport = dir == FWD ? 80 : 40000,
		.tcp_flags = flags,
		.seq = c->nxt[dir],
		.ack = (flags & ACK) ? c->rcv[dir] : 0,
	};
	struct pkt_meta pm;
	struct tcpstate_seg sg;
	uint32_t flen;

	if (opt) {
		tf_wr32(opts + 4, dir == FWD ? c->tsval : 0x4000 + c->nxt[REV]);
		tf_wr32(opts + 8, dir == FWD ? 0 : c->echo_p);
		s.opts = opts;
		s.optlen = 12;
	}
	c->nxt[dir] += ((flags & SYN) ? 1 : 0) + ((flags & FIN) ? 1 : 0);
	flen = tf_build(fr, &s);
	assert_int_equal(pkt_parse(fr, flen, &pm), 0);
	sg = (struct tcpstate_seg){ .flags = pm.tcp_flags, .seq = pm.tcp_seq, .ack = pm.tcp_ack };
	c->f.state = tcpstate_next(&c->f, dir, &sg);
	palloc_on_segment(&e->pa, &c->f, e->dur, e->now);
	if (c->f.ts != 0 && pm.tcp_ts != 0)
		assert_true(tsrw_packet(&c->f, fr + pm.l4_off, &pm, dir, e->now));
	tcp = fr + pm.l4_off;
	if (!opt)
		return;
	if (dir == FWD) {
		c->echo_p = tf_rd32(tcp + pm.tcp_ts + 2);
		c->echo_raw = c->tsval;
		assert_int_equal(c->echo_p - c->f.ts_off, c->tsval);
	} else if (flags & ACK) {
		assert_int_equal(tf_rd32(tcp + pm.tcp_ts + 6), c->echo_raw);
	}
}

/* The tuple is taken: the SYN (with its TSval' picked) and the handshake. */
static void conn_syn(struct env *e, struct conn *c, bool rewrite)
{
	if (c->ts)
		c->first = palloc_ts_open(&e->pa, e->c, &c->f, c->tsval, rewrite, e->now);
	sd(e, c, FWD, SYN);
	if (c->ts)
		assert_int_equal(c->echo_p, c->first);
	sd(e, c, REV, SYN | ACK);
	sd(e, c, FWD, ACK);
	assert_int_equal(c->f.state, FLOW_ESTABLISHED);
}

/* A new flow that finds a free tuple. */
static void conn_open(struct env *e, struct conn *c, uint32_t tsval, bool rewrite)
{
	conn_new(c, BE1, tsval);
	assert_int_equal(conn_get(e, c), 0);
	conn_syn(e, c, rewrite);
}

/* Client data at client clock @tsval, acknowledged. */
static void data_at(struct env *e, struct conn *c, uint32_t tsval)
{
	c->tsval = tsval;
	sd(e, c, FWD, ACK);
	sd(e, c, REV, ACK);
}

/* A flow with timestamps both ways, closed cleanly by the backend, ended. */
static void conn_proof(struct env *e, struct conn *c, uint32_t tsval, uint32_t last, bool rewrite)
{
	conn_open(e, c, tsval, rewrite);
	data_at(e, c, last);
	close_backend_first(e, c);
	conn_end(e, c);
	assert_true(palloc_held(&e->pa, IPPROTO_TCP, c->f.bip, c->f.bport, c->f.sip, c->f.sport));
}

static uint16_t sport(const struct conn *c)
{
	return tf_rd16((const uint8_t *)&c->f.sport);
}

static bool held(const struct env *e, const struct conn *c)
{
	return palloc_held(&e->pa, c->f.proto, c->f.bip, c->f.bport, c->f.sip, c->f.sport);
}

static const struct palloc_space *space_of(const struct env *e, const struct conn *c)
{
	return palloc_space_at(&e->pa, c->f.space);
}

/* ---- when reuse is allowed ---------------------------------------------------- */

static void reuse_only_when_no_tuple_is_free(void **state)
{
	struct env e;
	struct conn a, b, n;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5001);
	conn_proof(&e, &a, 1000, 1500, false);
	assert_int_equal(palloc_quarantine_used(&e.pa), 1);
	/* A free tuple is there: palloc_get takes it, the quarantine is untouched. */
	conn_new(&b, BE1, 2000);
	assert_int_equal(conn_get(&e, &b), 0);
	assert_int_not_equal(sport(&b), sport(&a));
	conn_syn(&e, &b, false);
	assert_int_equal(palloc_quarantine_used(&e.pa), 1);
	assert_int_equal(e.pa.reused_total, 0);
	/* None is: -ENOSPC first, then the quarantined tuple with proof. */
	conn_new(&n, BE1, 2000);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), 0);
	assert_int_equal(sport(&n), sport(&a));
	assert_int_equal(n.f.sip, a.f.sip);
	assert_int_equal(e.pa.reused_total, 1);
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	assert_int_equal(e.pa.q_detached, 0);
	assert_true(held(&e, &n));
	assert_int_equal(space_of(&e, &n)->live, 2);
	assert_int_equal(space_of(&e, &n)->quarantined, 0);
	env_free(&e);
}

static void reused_tuple_lives_a_normal_life(void **state)
{
	struct env e;
	struct conn a, n, m;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	at(&e, 10);
	conn_proof(&e, &a, 1000, 1500, true); /* quarantined until 10 + ENV_DUR */
	at(&e, 20);
	conn_new(&n, BE1, 7);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, true), 0);
	assert_int_equal(sport(&n), 5000);
	assert_int_equal(e.pa.live_tcp, 1);
	conn_syn(&e, &n, true);
	assert_true((int32_t)(n.first - a.f.ts_max) > 0);
	/* The old entry is gone: its expiry frees nothing. */
	assert_int_equal(at(&e, 10 + ENV_DUR), 0);
	assert_true(held(&e, &n));
	assert_int_equal(e.pa.expired_total, 0);
	/* The new flow closes as any other and is quarantined again... */
	data_at(&e, &n, 100);
	at(&e, 2000);
	close_backend_first(&e, &n);
	conn_end(&e, &n);
	assert_int_equal(palloc_quarantine_used(&e.pa), 1);
	assert_int_equal(e.pa.quarantined_total, 2);
	assert_true(held(&e, &n));
	/* ... for the full duration, and then the tuple is free. */
	assert_int_equal(at(&e, 2000 + ENV_DUR - 1), 0);
	assert_true(held(&e, &n));
	assert_int_equal(at(&e, 2000 + ENV_DUR), 1);
	assert_false(held(&e, &n));
	conn_new(&m, BE1, 5);
	assert_int_equal(conn_get(&e, &m), 0);
	assert_int_equal(sport(&m), 5000);
	assert_int_equal(e.pa.reused_total, 1);
	env_free(&e);
}

static void reuse_needs_an_ended_flow(void **state)
{
	struct env e;
	struct conn a, n;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_open(&e, &a, 1000, false);
	close_backend_first(&e, &a);
	/* Closed and quarantined, but the flow lives on (until its closed timeout). */
	conn_new(&n, BE1, 5000);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, true), -ENOSPC);
	assert_int_equal(e.pa.reused_total, 0);
	conn_end(&e, &a);
	assert_int_equal(conn_reuse(&e, &n, false), 0);
	assert_int_equal(sport(&n), 5000);
	env_free(&e);
}

/* The backend compares timestamps in TIME_WAIT only if both sides used them. */
static void reuse_needs_timestamps_both_ways(void **state)
{
	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		struct env e;
		struct conn a, n;

		env_init(&e);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		conn_new(&a, BE1, 1000);
		a.ts = variant != 0;   /* 0: no option in the client's SYN */
		a.ts_b = variant != 1; /* 1: the backend does not answer with it */
		assert_int_equal(conn_get(&e, &a), 0);
		conn_syn(&e, &a, true);
		data_at(&e, &a, 2000);
		assert_int_equal((a.f.ts & FLOW_TS_SEEN) != 0, variant != 0);
		assert_int_equal((a.f.ts & FLOW_TS_BACKEND) != 0, variant == 2);
		close_backend_first(&e, &a);
		conn_end(&e, &a);
		assert_true(held(&e, &a));
		conn_new(&n, BE1, 3000);
		assert_int_equal(conn_get(&e, &n), -ENOSPC);
		/* 2: both used them, the control case. */
		assert_int_equal(conn_reuse(&e, &n, true), variant == 2 ? 0 : -ENOSPC);
		assert_int_equal(e.pa.reused_total, variant == 2);
		assert_int_equal(palloc_quarantine_used(&e.pa), variant == 2 ? 0 : 1);
		env_free(&e);
	}
}

enum close_how {
	CLOSE_SIMULTANEOUS,	   /* clean: reusable (the control case) */
	CLOSE_CLIENT_FIRST,	   /* the client holds TIME_WAIT: not even quarantined */
	CLOSE_RST_AFTER_TW,	   /* quarantined, but a reset came */
	CLOSE_IDLE_BFIN,	   /* idle-out after the backend's FIN only */
	CLOSE_CLIENT_FIN_UNACKED,  /* the backend's ACK of the client's FIN never seen */
	CLOSE_BACKEND_FIN_UNACKED, /* the client's ACK of the backend's FIN never seen */
	CLOSE_HOW_COUNT
};

static void reuse_needs_a_clean_close(void **state)
{
	(void)state;
	for (int how = 0; how < CLOSE_HOW_COUNT; how++) {
		struct env e;
		struct conn a, n;

		env_init(&e);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		conn_open(&e, &a, 1000, false);
		data_at(&e, &a, 1100);
		switch (how) {
		case CLOSE_SIMULTANEOUS:
			close_simultaneous(&e, &a);
			break;
		case CLOSE_CLIENT_FIRST:
			close_client_first(&e, &a);
			break;
		case CLOSE_RST_AFTER_TW:
			close_backend_first(&e, &a);
			sd(&e, &a, FWD, RST);
			break;
		case CLOSE_IDLE_BFIN:
			sd(&e, &a, REV, FIN | ACK);
			sd(&e, &a, FWD, ACK);
			break;
		case CLOSE_CLIENT_FIN_UNACKED:
			sd(&e, &a, REV, FIN | ACK);
			sd(&e, &a, FWD, ACK);
			sd(&e, &a, FWD, FIN | ACK);
			break;
		default: /* the FINs cross; only the backend acknowledges */
			seg(&e, &a, FWD, FIN | ACK);
			seg(&e, &a, REV, FIN | ACK);
			deliver(&a, FWD);
			sd(&e, &a, REV, ACK);
			break;
		}
		conn_end(&e, &a);
		conn_new(&n, BE1, 5000);
		if (how == CLOSE_CLIENT_FIRST) {
			/* The tuple is simply free. */
			assert_false(held(&e, &a));
			assert_int_equal(palloc_quarantine_used(&e.pa), 0);
			assert_int_equal(conn_get(&e, &n), 0);
			assert_int_equal(sport(&n), 5000);
		} else {
			assert_true(held(&e, &a));
			assert_int_equal(conn_get(&e, &n), -ENOSPC);
			if (how != CLOSE_SIMULTANEOUS) /* not even with the address's clock */
				assert_int_equal(conn_reuse(&e, &n, true), -ENOSPC);
			assert_int_equal(conn_reuse(&e, &n, false),
					 how == CLOSE_SIMULTANEOUS ? 0 : -ENOSPC);
		}
		assert_int_equal(e.pa.reused_total, how == CLOSE_SIMULTANEOUS);
		env_free(&e);
	}
}

/*
 * Without rewriting the raw TSval is the proof: it must be newer, and by less
 * than 2^30 (PALLOC_PROOF_MAX), since the backend's ts_recent may lag.
 */
static void reuse_needs_a_newer_tsval(void **state)
{
	static const struct {
		uint32_t syn, last; /* the old flow's clock */
		uint32_t tsval;	    /* the new SYN's */
		int rc;
	} cases[] = {
		{ 1000, 1500, 1499, -ENOSPC },
		{ 1000, 1500, 1500, -ENOSPC },
		{ 1000, 1500, 1500 + 0x80000000u, -ENOSPC }, /* half the circle away: older */
		{ 1000, 1500, 1501, 0 },
		{ 1000, 1500, 1500 + 0x3fffffffu, 0 },	     /* the margin's edge */
		{ 1000, 1500, 1500 + 0x40000000u, -ENOSPC }, /* 2^30 ahead: no proof */
		{ 1000, 1500, 1500 + 0x7fffffffu, -ENOSPC },
		/* The clocks wrap: after the wrap is newer, before it older. */
		{ 0xfffffff0u, 0xfffffffeu, 5, 0 },
		{ 0xfffffff0u, 0xfffffffeu, 0xfffffff5u, -ENOSPC },
		{ 0xfffffff0u, 5, 3, -ENOSPC },
		{ 0xfffffff0u, 5, 6, 0 },
		/* Its SYN's TSval counts although no later segment is newer. */
		{ 1000, 900, 999, -ENOSPC },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct env e;
		struct conn a, n;

		env_init(&e);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		conn_proof(&e, &a, cases[i].syn, cases[i].last, false);
		conn_new(&n, BE1, cases[i].tsval);
		assert_int_equal(conn_get(&e, &n), -ENOSPC);
		if (conn_reuse(&e, &n, false) != cases[i].rc)
			fail_msg("case %zu: old flow %#x..%#x (ts_max %#x), new SYN %#x: not %d", i,
				 cases[i].syn, cases[i].last, a.f.ts_max, cases[i].tsval,
				 cases[i].rc);
		assert_int_equal(e.pa.reused_total, cases[i].rc == 0);
		env_free(&e);
	}
}

/* With rewriting, the address's clock is the proof, whatever the client's clock reads. */
static void reuse_with_rewrite_starts_newer_than_the_old_flow(void **state)
{
	(void)state;
	for (int fast = 0; fast < 2; fast++) {
		struct env e;
		struct conn a, n;
		uint32_t v;

		env_init(&e);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		at(&e, 100);
		conn_open(&e, &a, 0xfff00000u, true);
		/* A client clock far ahead of 1 kHz (1 MHz for 1000 s, as fast as
		 * tsrw lets a flow's TSval' advance), or a slow one; a segment
		 * every 100 s. */
		for (uint32_t k = 1; k <= 10; k++) {
			at(&e, 100 + k * 100000u);
			data_at(&e, &a, 0xfff00000u + k * (fast ? 100000000u : 1u));
		}
		at(&e, 1000200);
		close_backend_first(&e, &a);
		conn_end(&e, &a);
		at(&e, 1000300);
		/* Its raw TSval is older than anything the old flow sent. */
		conn_new(&n, BE1, 0xffe00000u);
		assert_int_equal(conn_get(&e, &n), -ENOSPC);
		assert_int_equal(conn_reuse(&e, &n, true), 0);
		assert_int_equal(sport(&n), 5000);
		conn_syn(&e, &n, true);
		/* The backend's TIME_WAIT last saw a.f.ts_max: the SYN's TSval' is newer. */
		assert_true((int32_t)(n.first - a.f.ts_max) > 0);
		assert_true((int32_t)(n.echo_p - a.f.ts_max) > 0);
		/* And the flow's later segments too. */
		v = n.first;
		data_at(&e, &n, 0xffe00000u + 10);
		assert_int_equal(n.echo_p - v, 10);
		env_free(&e);
	}
}

/* ---- what reuse leaves alone -------------------------------------------------- */

static void expired_entry_is_not_reusable(void **state)
{
	struct env e;
	struct conn a, b, n;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	at(&e, 50);
	conn_proof(&e, &a, 1000, 1500, false);
	assert_int_equal(at(&e, 50 + ENV_DUR), 1);
	assert_false(held(&e, &a));
	/* The tuple is simply free: no reuse needed. */
	conn_new(&b, BE1, 2000);
	assert_int_equal(conn_get(&e, &b), 0);
	assert_int_equal(sport(&b), 5000);
	conn_syn(&e, &b, false);
	/* And no entry is left to reuse: the live flow has the tuple. */
	conn_new(&n, BE1, 3000);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, true), -ENOSPC);
	assert_int_equal(e.pa.reused_total, 0);
	/* An entry that expires while its flow still lives leaves nothing either. */
	close_backend_first(&e, &b);
	assert_int_equal(at(&e, 60 + 2 * ENV_DUR), 1);
	conn_end(&e, &b);
	assert_false(held(&e, &b));
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	assert_int_equal(conn_get(&e, &n), 0);
	assert_int_equal(e.pa.reused_total, 0);
	env_free(&e);
}

static void entry_outside_the_range_is_skipped(void **state)
{
	struct env e;
	struct conn a, b, c, n, m;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	/* One port at a time, so that each flow's port is known. */
	conn_open(&e, &a, 1000, false);
	snat_range(&e, 0, 5001, 5001);
	conn_open(&e, &b, 1000, false);
	snat_range(&e, 0, 5002, 5002);
	conn_open(&e, &c, 1000, false);
	assert_int_equal(sport(&a), 5000);
	assert_int_equal(sport(&b), 5001);
	assert_int_equal(sport(&c), 5002);
	/* a's entry first, then b's. */
	close_backend_first(&e, &a);
	conn_end(&e, &a);
	close_backend_first(&e, &b);
	conn_end(&e, &b);
	/* Both outside the range: nothing to reuse. */
	conn_new(&n, BE1, 5000);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), -ENOSPC);
	/* The first entry outside, the second inside. */
	snat_range(&e, 0, 5001, 5002);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), 0);
	assert_int_equal(sport(&n), 5001);
	/* The whole range again: the first entry is there still. */
	snat_range(&e, 0, 5000, 5002);
	conn_new(&m, BE1, 5000);
	assert_int_equal(conn_get(&e, &m), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &m, false), 0);
	assert_int_equal(sport(&m), 5000);
	assert_int_equal(e.pa.reused_total, 2);
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	env_free(&e);
}

/*
 * Entries whose last TSval is too new for the SYN, one by one, ahead of one
 * that would do: @bad of them on @slot's address (SNAT port base + i), then
 * the good one. Each flow ends 1 ms after the previous one.
 */
static void proof_list(struct env *e, struct conn *c, int slot, uint16_t base, int bad, uint64_t *t)
{
	uint32_t ip = tf_rd32((const uint8_t *)&e->c->snat[slot].ip);

	for (int i = 0; i <= bad; i++) {
		e->svc->snat_all = false;
		e->svc->snat_mask = 1ULL << slot;
		snat_range(e, slot, (uint16_t)(base + i), (uint16_t)(base + i));
		at(e, (*t)++);
		conn_proof(e, &c[i], 10, i < bad ? 1000000 : 100, false);
		assert_int_equal(tf_rd32((const uint8_t *)&c[i].f.sip), ip);
	}
	snat_range(e, slot, base, (uint16_t)(base + bad));
	e->svc->snat_all = true;
}

static void at_most_reuse_look_entries_are_examined(void **state)
{
	(void)state;
	/* The good entry is the LOOK-th: found; the (LOOK+1)-th: not looked at. */
	for (int bad = PALLOC_REUSE_LOOK - 1; bad <= PALLOC_REUSE_LOOK; bad++) {
		struct conn c[PALLOC_REUSE_LOOK + 1], n;
		struct env e;
		uint64_t t = 10;
		bool found = bad < PALLOC_REUSE_LOOK;

		env_init(&e);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		proof_list(&e, c, 0, 5000, bad, &t);
		conn_new(&n, BE1, 500);
		assert_int_equal(conn_get(&e, &n), -ENOSPC);
		assert_int_equal(conn_reuse(&e, &n, false), found ? 0 : -ENOSPC);
		if (found)
			assert_int_equal(sport(&n), 5000 + bad);
		assert_int_equal(palloc_quarantine_used(&e.pa), bad + (found ? 0 : 1));
		assert_int_equal(e.pa.reused_total, found);
		env_free(&e);
	}
}

/*
 * The entries examined and refused go to the tail of the list: a good entry
 * behind LOOK bad ones is found on the next attempt, and the bad ones stay.
 */
static void refused_entries_rotate_so_a_later_attempt_finds_the_good_one(void **state)
{
	struct conn c[PALLOC_REUSE_LOOK + 1], n, m;
	struct env e;
	uint64_t t = 10;

	(void)state;
	env_init(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	proof_list(&e, c, 0, 5000, PALLOC_REUSE_LOOK, &t);
	conn_new(&n, BE1, 500);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), -ENOSPC);
	assert_int_equal(e.pa.reused_total, 0);
	/* Nothing expired, nothing changed but the order. */
	assert_int_equal(at(&e, t), 0);
	assert_int_equal(conn_get(&e, &n), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &n, false), 0);
	assert_int_equal(sport(&n), 5000 + PALLOC_REUSE_LOOK);
	assert_int_equal(e.pa.reused_total, 1);
	conn_syn(&e, &n, false);
	/* The bad entries are all still held, and still no proof for this clock. */
	assert_int_equal(palloc_quarantine_used(&e.pa), PALLOC_REUSE_LOOK);
	for (int i = 0; i < PALLOC_REUSE_LOOK; i++)
		assert_true(held(&e, &c[i]));
	conn_new(&m, BE1, 600);
	assert_int_equal(conn_get(&e, &m), -ENOSPC);
	assert_int_equal(conn_reuse(&e, &m, false), -ENOSPC);
	assert_int_equal(e.pa.reused_total, 1);
	env_free(&e);
}

/*
 * The quarantine pool full (palloc_get() says -ENOBUFS, the worker then tries
 * palloc_reuse()): reuse takes a detached entry for a live flow, so the
 * pool's use (q_detached + live_tcp) is unchanged.
 */
static void reuse_works_with_the_pool_full(void **state)
{
	struct env e;
	struct conn a, b, n;
	uint32_t used;

	(void)state;
	env_init_pool(&e, 0x7e05e, 2);
	snat_add(&e, 0, TF_SNAT, 5000, 5002);
	conn_proof(&e, &a, 1000, 1500, false);
	conn_open(&e, &b, 1000, false);
	assert_int_equal(e.pa.q_detached, 1);
	assert_int_equal(e.pa.live_tcp, 1);
	used = e.pa.q_detached + e.pa.live_tcp;
	/* A tuple is free, but the pool is not. */
	conn_new(&n, BE1, 2000);
	assert_int_equal(conn_get(&e, &n), -ENOBUFS);
	assert_int_equal(conn_reuse(&e, &n, false), 0);
	assert_int_equal(sport(&n), sport(&a));
	assert_int_equal(e.pa.reused_total, 1);
	assert_int_equal(e.pa.q_detached, 0);
	assert_int_equal(e.pa.live_tcp, 2);
	assert_int_equal(e.pa.q_detached + e.pa.live_tcp, used);
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	conn_syn(&e, &n, false);
	assert_true(held(&e, &n));
	env_free(&e);
}

/* The limit is per address: another address's list is searched in full. */
static void reuse_look_limit_is_per_address(void **state)
{
	(void)state;
	/* Whichever address palloc_reuse() tries first (a random one: these seeds
	 * try each first four times). */
	for (uint64_t seed = 1; seed <= 8; seed++) {
		struct conn c0[PALLOC_REUSE_LOOK + 1], c1[PALLOC_REUSE_LOOK], n;
		struct env e;
		uint64_t t = 10;

		env_init_seed(&e, seed);
		snat_add(&e, 0, TF_SNAT, 5000, 5000);
		snat_add(&e, 1, SNAT2, 6000, 6000);
		proof_list(&e, c0, 0, 5000, PALLOC_REUSE_LOOK, &t);
		proof_list(&e, c1, 1, 6000, PALLOC_REUSE_LOOK - 1, &t);
		conn_new(&n, BE1, 500);
		assert_int_equal(conn_get(&e, &n), -ENOSPC);
		assert_int_equal(conn_reuse(&e, &n, false), 0);
		assert_int_equal(n.f.sip, tf_n32(SNAT2));
		assert_int_equal(sport(&n), 6000 + PALLOC_REUSE_LOOK - 1);
		env_free(&e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reuse_only_when_no_tuple_is_free),
		cmocka_unit_test(reused_tuple_lives_a_normal_life),
		cmocka_unit_test(reuse_needs_an_ended_flow),
		cmocka_unit_test(reuse_needs_timestamps_both_ways),
		cmocka_unit_test(reuse_needs_a_clean_close),
		cmocka_unit_test(reuse_needs_a_newer_tsval),
		cmocka_unit_test(reuse_with_rewrite_starts_newer_than_the_old_flow),
		cmocka_unit_test(expired_entry_is_not_reusable),
		cmocka_unit_test(entry_outside_the_range_is_skipped),
		cmocka_unit_test(at_most_reuse_look_entries_are_examined),
		cmocka_unit_test(refused_entries_rotate_so_a_later_attempt_finds_the_good_one),
		cmocka_unit_test(reuse_works_with_the_pool_full),
		cmocka_unit_test(reuse_look_limit_is_per_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
