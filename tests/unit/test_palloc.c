/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * palloc: four-tuple-aware SNAT tuples, per-worker shares, exhaustion and its
 * errors, spaces, random increments; and the TIME_WAIT quarantine driven as
 * the worker drives it (tcpstate_next() then palloc_on_segment() per segment,
 * palloc_on_end() when a flow ends, palloc_expire() from the timer), with the
 * time injected.
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
#include "tcpstate.h"

#include "tcpnames.h"

#include "palloc_env.h"

#define BE1 TF_IP(10, 2, 0, 1)
#define BE2 TF_IP(10, 2, 0, 2)
#define BE3 TF_IP(10, 2, 0, 3)
#define BE4 TF_IP(10, 2, 0, 4)
#define BE5 TF_IP(10, 2, 0, 5)

static void env_init(struct env *e, uint16_t worker, uint16_t nworkers, uint32_t max_spaces,
		     uint32_t max_quarantine)
{
	env_setup(e, worker, nworkers, max_spaces, max_quarantine, 0x5eed + worker);
}

static void env_default(struct env *e)
{
	env_init(e, 0, 1, 64, 4096);
}

static void snat_add(struct env *e, int slot, uint32_t ip, uint16_t lo, uint16_t hi)
{
	e->c->snat[slot] = (struct cfg_snat){
		.used = true, .gen = e->c->next_gen++, .ip = tf_n32(ip), .lo = lo, .hi = hi
	};
}

/* One segment through the worker's glue. */
static void seg(struct env *e, struct conn *c, enum flow_dir dir, uint8_t flags)
{
	struct tcpstate_seg s = { .flags = flags, .seq = c->nxt[dir], .ack = c->rcv[dir] };

	c->nxt[dir] += ((flags & SYN) ? 1 : 0) + ((flags & FIN) ? 1 : 0);
	c->f.state = tcpstate_next(&c->f, dir, &s);
	palloc_on_segment(&e->pa, &c->f, e->dur, e->now);
}

/* A new flow toward @bip:@bport; TCP goes through the handshake. */
static int conn_open(struct env *e, struct conn *c, uint8_t proto, uint32_t bip, uint16_t bport,
		     uint64_t *tried)
{
	uint64_t t;
	int rc;

	*c = (struct conn){ .nxt = { 1000, 50000 } };
	c->f.proto = proto;
	c->f.cip = tf_n32(TF_CLIENT);
	c->f.cport = tf_n16(40000);
	c->f.vip = tf_n32(TF_VIP);
	c->f.vport = tf_n16(80);
	c->f.bip = tf_n32(bip);
	c->f.bport = tf_n16(bport);
	c->f.state = proto == IPPROTO_TCP ? FLOW_SYN : FLOW_UDP;
	rc = palloc_get(&e->pa, e->c, e->svc, &c->f, tried != NULL ? tried : &t);
	if (rc == 0 && proto == IPPROTO_TCP) {
		sd(e, c, FWD, SYN);
		sd(e, c, REV, SYN | ACK);
		sd(e, c, FWD, ACK);
		assert_int_equal(c->f.state, FLOW_ESTABLISHED);
	}
	return rc;
}

static void conn_tcp(struct env *e, struct conn *c, uint32_t bip)
{
	assert_int_equal(conn_open(e, c, IPPROTO_TCP, bip, 80, NULL), 0);
}

static uint16_t sport(const struct conn *c)
{
	return tf_rd16((const uint8_t *)&c->f.sport);
}

static bool held(const struct env *e, const struct conn *c)
{
	return palloc_held(&e->pa, c->f.proto, c->f.bip, c->f.bport, c->f.sip, c->f.sport);
}

static bool held_port(const struct env *e, uint32_t bip, uint32_t sip, uint16_t port)
{
	return palloc_held(&e->pa, IPPROTO_TCP, tf_n32(bip), tf_n16(80), tf_n32(sip), tf_n16(port));
}

static void same_snat_port_live_toward_two_backends(void **state)
{
	struct env e;
	struct conn a, b, a81, a2, u;
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &a, BE1);
	conn_tcp(&e, &b, BE2);
	assert_int_equal(conn_open(&e, &a81, IPPROTO_TCP, BE1, 81, NULL), 0);
	assert_int_equal(conn_open(&e, &u, IPPROTO_UDP, BE1, 80, NULL), 0);
	/* One SNAT address, one port: four live tuples that differ only on the backend side. */
	assert_int_equal(sport(&a), 5000);
	assert_int_equal(sport(&b), 5000);
	assert_int_equal(sport(&a81), 5000);
	assert_int_equal(sport(&u), 5000);
	assert_int_equal(a.f.sip, b.f.sip);
	assert_true(held(&e, &a) && held(&e, &b) && held(&e, &a81) && held(&e, &u));
	/* But the whole tuple is unique. */
	assert_int_equal(conn_open(&e, &a2, IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	assert_int_equal(tried, 1);
	/* One ending frees its tuple alone. */
	close_client_first(&e, &a);
	conn_end(&e, &a);
	assert_false(held(&e, &a));
	assert_true(held(&e, &b) && held(&e, &a81) && held(&e, &u));
	conn_tcp(&e, &a2, BE1);
	assert_int_equal(sport(&a2), 5000);
	env_free(&e);
}

static void share_sizes_sum_to_the_range(void **state)
{
	static const uint16_t ranges[][2] = { { 0, 65535 }, { 1024, 65535 }, { 1000, 1003 },
					      { 7, 7 },	    { 5, 12 },	     { 65530, 65535 },
					      { 0, 0 },	    { 65535, 65535 } };

	(void)state;
	for (uint16_t nw = 1; nw <= 4; nw++) {
		for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
			uint32_t sum = 0;

			for (uint16_t w = 0; w < nw; w++) {
				struct palloc pa;
				uint32_t n = 0;

				assert_int_equal(palloc_init(&pa, w, nw, 1, 1, 1, -1, 0), 0);
				sum += palloc_share_size(&pa, ranges[r][0], ranges[r][1]);
				for (uint32_t p = ranges[r][0]; p <= ranges[r][1]; p++)
					n += p % nw == w;
				assert_int_equal(palloc_share_size(&pa, ranges[r][0], ranges[r][1]),
						 n);
				/* An empty range. */
				assert_int_equal(palloc_share_size(&pa, 10, 9), 0);
				palloc_free(&pa);
			}
			assert_int_equal(sum, (uint32_t)ranges[r][1] - ranges[r][0] + 1);
		}
	}
}

static void shares_are_disjoint_and_cover_every_port(void **state)
{
	static const uint16_t ranges[][2] = { { 1000, 1099 }, { 65500, 65535 } };

	(void)state;
	for (size_t r = 0; r < 2; r++) {
		const uint16_t lo = ranges[r][0], hi = ranges[r][1];

		for (uint16_t nw = 1; nw <= 4; nw++) {
			uint8_t owner[100];

			memset(owner, 0xff, sizeof(owner));
			for (uint16_t w = 0; w < nw; w++) {
				static struct conn c[101]; /* the last one is refused */
				struct env e;
				uint32_t n = 0;
				uint64_t tried;

				env_init(&e, w, nw, 4, 4096);
				snat_add(&e, 0, TF_SNAT, lo, hi);
				while (conn_open(&e, &c[n], IPPROTO_TCP, BE1, 80, &tried) == 0) {
					uint16_t p = sport(&c[n]);

					assert_true(p >= lo && p <= hi);
					/* The owner of a port is port % n. */
					assert_int_equal(p % nw, w);
					assert_int_equal(owner[p - lo], 0xff);
					owner[p - lo] = (uint8_t)w;
					n++;
				}
				assert_int_equal(n, palloc_share_size(&e.pa, lo, hi));
				assert_int_equal(tried, 1);
				/* Another worker's port is never held here. */
				for (uint32_t p = lo; p <= hi; p++)
					assert_int_equal(held_port(&e, BE1, TF_SNAT, (uint16_t)p),
							 p % nw == w);
				env_free(&e);
			}
			for (uint32_t p = lo; p <= hi; p++)
				assert_int_equal(owner[p - lo], p % nw);
		}
	}
}

static void held_counts_per_space(void **state)
{
	struct env e;
	struct conn a[3], b[2];
	int sa = -1, sb = -1;

	(void)state;
	/* Worker 1 of 2 owns the odd ports of 2000-2015. */
	env_init(&e, 1, 2, 8, 4096);
	snat_add(&e, 0, TF_SNAT, 2000, 2015);
	for (int i = 0; i < 3; i++)
		conn_tcp(&e, &a[i], BE1);
	for (int i = 0; i < 2; i++)
		conn_tcp(&e, &b[i], BE2);
	for (uint32_t i = 0; i < 8; i++) {
		const struct palloc_space *sp = palloc_space_at(&e.pa, i);

		if (sp == NULL)
			continue;
		assert_int_equal(sp->sip, tf_n32(TF_SNAT));
		assert_int_equal(sp->proto, IPPROTO_TCP);
		if (sp->bip == tf_n32(BE1))
			sa = (int)i;
		else if (sp->bip == tf_n32(BE2))
			sb = (int)i;
		else
			fail_msg("unexpected space");
	}
	assert_true(sa >= 0 && sb >= 0);
	assert_int_equal(palloc_space_at(&e.pa, (uint32_t)sa)->live, 3);
	assert_int_equal(palloc_space_at(&e.pa, (uint32_t)sb)->live, 2);
	assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sa, 2000, 2015), 3);
	assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sb, 2000, 2015), 2);
	/* A sub-range counts the held ports inside it only. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sa, sport(&a[i]), sport(&a[i])),
				 1);
	assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sa, 2000, 2000), 0);
	assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sa, 2001, 2000), 0);
	/* Quarantined tuples are held and counted apart from live ones. */
	close_backend_first(&e, &a[0]);
	conn_end(&e, &a[0]);
	close_client_first(&e, &a[1]);
	conn_end(&e, &a[1]);
	assert_true(held(&e, &a[0]));
	assert_false(held(&e, &a[1]));
	assert_int_equal(palloc_space_at(&e.pa, (uint32_t)sa)->live, 1);
	assert_int_equal(palloc_space_at(&e.pa, (uint32_t)sa)->quarantined, 1);
	assert_int_equal(palloc_space_held(&e.pa, (uint32_t)sa, 2000, 2015), 2);
	assert_int_equal(palloc_quarantine_used(&e.pa), 1);
	/* Even ports belong to worker 0: never held here. */
	for (uint16_t p = 2000; p <= 2015; p += 2)
		assert_false(held_port(&e, BE1, TF_SNAT, p));
	env_free(&e);
}

/* ---- the quarantine -------------------------------------------------------- */

static void quarantine_after_backend_first_close(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	at(&e, 100);
	close_backend_first(&e, &c);
	assert_true(palloc_flow_quarantined(&e.pa, &c.f));
	at(&e, 200);
	conn_end(&e, &c);
	/* Held until the last segment (t = 100) + 1000 ms, not from the end. */
	assert_int_equal(at(&e, 1099), 0);
	assert_true(held(&e, &c));
	assert_int_equal(at(&e, 1100), 1);
	assert_false(held(&e, &c));
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	conn_tcp(&e, &c, BE1);
	env_free(&e);
}

static void quarantine_after_simultaneous_close(void **state)
{
	struct env e;
	struct conn c;
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	at(&e, 300);
	close_simultaneous(&e, &c);
	conn_end(&e, &c);
	assert_int_equal(at(&e, 1299), 0);
	assert_true(held(&e, &c));
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	assert_int_equal(at(&e, 1300), 1);
	assert_false(held(&e, &c));
	env_free(&e);
}

/* The backend sent FIN, the client never did: the flow idles out. */
static void quarantine_after_idle_out_with_backend_fin_only(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	at(&e, 100);
	sd(&e, &c, REV, FIN | ACK);
	sd(&e, &c, FWD, ACK);
	assert_int_equal(c.f.state, FLOW_CLOSING);
	/* No quarantine while it lives: the client may still close. */
	assert_false(palloc_flow_quarantined(&e.pa, &c.f));
	at(&e, 5000);
	conn_end(&e, &c);
	/* From the end, for the full duration. */
	assert_int_equal(at(&e, 5999), 0);
	assert_true(held(&e, &c));
	assert_int_equal(at(&e, 6000), 1);
	assert_false(held(&e, &c));
	env_free(&e);
}

static void no_quarantine_after_client_first_close(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	at(&e, 100);
	close_client_first(&e, &c);
	/* Segments after the close do not quarantine either. */
	sd(&e, &c, REV, FIN | ACK);
	sd(&e, &c, FWD, ACK);
	assert_false(palloc_flow_quarantined(&e.pa, &c.f));
	assert_true(held(&e, &c));
	conn_end(&e, &c);
	/* Free at once, before any timer. */
	assert_false(held(&e, &c));
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	conn_tcp(&e, &c, BE1);
	assert_int_equal(sport(&c), 5000);
	env_free(&e);
}

static void no_quarantine_after_rst(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	for (int variant = 0; variant < 6; variant++) {
		conn_tcp(&e, &c, BE1);
		at(&e, 100u * (variant + 1));
		switch (variant) {
		case 0: /* the client resets */
			sd(&e, &c, FWD, RST | ACK);
			break;
		case 1: /* the backend resets */
			sd(&e, &c, REV, RST);
			break;
		case 2: /* the backend closed first, the client resets */
			sd(&e, &c, REV, FIN | ACK);
			sd(&e, &c, FWD, RST);
			break;
		case 3: /* the client closed first, the backend resets */
			sd(&e, &c, FWD, FIN | ACK);
			sd(&e, &c, REV, RST);
			break;
		case 4: /* the backend closed first and resets */
			sd(&e, &c, REV, FIN | ACK);
			sd(&e, &c, REV, RST);
			break;
		default: /* a reset, then a late FIN from each side */
			sd(&e, &c, REV, RST);
			sd(&e, &c, REV, FIN | ACK);
			sd(&e, &c, FWD, FIN | ACK);
			break;
		}
		assert_int_equal(c.f.state, FLOW_CLOSED);
		assert_false(palloc_flow_quarantined(&e.pa, &c.f));
		conn_end(&e, &c);
		assert_false(held(&e, &c));
		assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	}
	env_free(&e);
}

/* A reset after both FINs does not take the backend out of TIME_WAIT (rfc1337). */
static void rst_after_both_fins_rearms(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	close_backend_first(&e, &c);
	at(&e, 400);
	sd(&e, &c, FWD, RST);
	conn_end(&e, &c);
	assert_int_equal(at(&e, 1399), 0);
	assert_true(held(&e, &c));
	assert_int_equal(at(&e, 1400), 1);
	assert_false(held(&e, &c));
	env_free(&e);
}

/* Every segment once the backend is in TIME_WAIT restarts it, as Linux does. */
static void later_segment_rearms_quarantine(void **state)
{
	struct env e;
	struct conn c;
	uint32_t fin_b;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	/* Spread over time: the quarantine starts with the second FIN (t = 200). */
	at(&e, 100);
	fin_b = c.nxt[REV];
	sd(&e, &c, REV, FIN | ACK);
	sd(&e, &c, FWD, ACK);
	assert_false(palloc_flow_quarantined(&e.pa, &c.f));
	at(&e, 200);
	sd(&e, &c, FWD, FIN | ACK);
	assert_true(palloc_flow_quarantined(&e.pa, &c.f));
	at(&e, 250);
	sd(&e, &c, REV, ACK);
	/* The backend's FIN again at t = 900 (its ACK of our FIN was lost, say). */
	at(&e, 900);
	{
		struct tcpstate_seg s = { .flags = FIN | ACK, .seq = fin_b, .ack = c.rcv[REV] };

		c.f.state = tcpstate_next(&c.f, REV, &s);
		palloc_on_segment(&e.pa, &c.f, e.dur, e.now);
	}
	assert_true(c.f.tcp_seen & TCPSTATE_FIN_RETRANSMITTED);
	at(&e, 950);
	sd(&e, &c, FWD, ACK);
	at(&e, 1000);
	conn_end(&e, &c);
	/* Not 250 + 1000: 950 + 1000. */
	assert_int_equal(at(&e, 1250), 0);
	assert_int_equal(at(&e, 1949), 0);
	assert_true(held(&e, &c));
	assert_int_equal(at(&e, 1950), 1);
	assert_false(held(&e, &c));
	assert_true(e.pa.rearmed_total >= 3);
	env_free(&e);
}

static void expiry_is_exact(void **state)
{
	struct env e;
	struct conn c[4];

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5003);
	/* Four tuples quarantined 1 ms apart: each goes at its own millisecond. */
	for (int i = 0; i < 4; i++) {
		conn_tcp(&e, &c[i], BE1);
		at(&e, 10 + (uint64_t)i);
		close_backend_first(&e, &c[i]);
		conn_end(&e, &c[i]);
	}
	assert_int_equal(palloc_quarantine_used(&e.pa), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(at(&e, 1009 + (uint64_t)i), 0);
		for (int j = i; j < 4; j++)
			assert_true(held(&e, &c[j]));
		assert_int_equal(at(&e, 1010 + (uint64_t)i), 1);
		assert_false(held(&e, &c[i]));
	}
	/* A late timer ends everything due at once; a budget bounds the work. */
	for (int i = 0; i < 4; i++) {
		conn_tcp(&e, &c[i], BE1);
		close_backend_first(&e, &c[i]);
		conn_end(&e, &c[i]);
	}
	e.now = T0 + 5000;
	assert_int_equal(palloc_expire(&e.pa, e.now, 3), 3);
	assert_int_equal(palloc_expire(&e.pa, e.now, 3), 1);
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	env_free(&e);
}

/* The entry ends while its flow still lives: the flow holds the tuple on. */
static void entry_expiring_while_flow_lives_keeps_tuple(void **state)
{
	struct env e;
	struct conn c;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	at(&e, 100);
	close_backend_first(&e, &c);
	assert_int_equal(at(&e, 1100), 1);
	assert_false(palloc_flow_quarantined(&e.pa, &c.f));
	assert_true(held(&e, &c));
	assert_int_equal(palloc_quarantine_used(&e.pa), 0);
	/* The closed flow lingers until its timeout, then it is free at once. */
	at(&e, 3000);
	conn_end(&e, &c);
	assert_false(held(&e, &c));

	/* Same, but a segment arrives after the entry ended: a new quarantine. */
	conn_tcp(&e, &c, BE1);
	at(&e, 4000);
	close_backend_first(&e, &c);
	assert_int_equal(at(&e, 5000), 1);
	at(&e, 5500);
	sd(&e, &c, FWD, ACK);
	assert_true(palloc_flow_quarantined(&e.pa, &c.f));
	at(&e, 5600);
	conn_end(&e, &c);
	assert_int_equal(at(&e, 6499), 0);
	assert_true(held(&e, &c));
	assert_int_equal(at(&e, 6500), 1);
	assert_false(held(&e, &c));
	env_free(&e);
}

static void duration_change_keeps_old_expiry(void **state)
{
	struct env e;
	struct conn a, b, c, d;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5003);
	conn_tcp(&e, &a, BE1);
	conn_tcp(&e, &b, BE1);
	conn_tcp(&e, &c, BE1);
	conn_tcp(&e, &d, BE1);
	e.dur = 1000;
	close_backend_first(&e, &a);
	conn_end(&e, &a);
	at(&e, 10);
	e.dur = 5000;
	close_backend_first(&e, &b);
	conn_end(&e, &b);
	at(&e, 20);
	e.dur = 300;
	close_simultaneous(&e, &c);
	conn_end(&e, &c);
	/* Disabled: a new close is not quarantined, the old entries stay. */
	at(&e, 30);
	e.dur = 0;
	close_backend_first(&e, &d);
	conn_end(&e, &d);
	assert_false(held(&e, &d));
	assert_int_equal(palloc_quarantine_used(&e.pa), 3);
	assert_int_equal(at(&e, 319), 0);
	assert_true(held(&e, &a) && held(&e, &b) && held(&e, &c));
	assert_int_equal(at(&e, 320), 1);
	assert_false(held(&e, &c));
	assert_int_equal(at(&e, 999), 0);
	assert_true(held(&e, &a));
	assert_int_equal(at(&e, 1000), 1);
	assert_false(held(&e, &a));
	assert_int_equal(at(&e, 5009), 0);
	assert_true(held(&e, &b));
	assert_int_equal(at(&e, 5010), 1);
	assert_false(held(&e, &b));
	env_free(&e);
}

/* Sixteen durations at once: each exact. More: late, never early. */
static void many_durations_never_expire_early(void **state)
{
	enum {
		N = 20
	};
	struct env e;
	struct conn c[N];
	bool gone[N] = { false };

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000 + N - 1);
	/* Longest first, so that a shared FIFO would hold short ones back. */
	for (int i = 0; i < N; i++) {
		conn_tcp(&e, &c[i], BE1);
		e.dur = 100u * (N - i);
		close_backend_first(&e, &c[i]);
		conn_end(&e, &c[i]);
	}
	for (uint64_t t = 1; t <= 100u * N + 100; t++) {
		at(&e, t);
		for (int i = 0; i < N; i++) {
			uint64_t due = 100u * (N - i);

			if (t < due)
				assert_true(held(&e, &c[i]));
			/* The first sixteen got a FIFO each. */
			if (i < 16 && t == due)
				assert_false(held(&e, &c[i]));
			gone[i] = !held(&e, &c[i]);
		}
	}
	for (int i = 0; i < N; i++)
		assert_true(gone[i]);
	env_free(&e);
}

/* Spaces are keyed by address: an address deleted and added again, in another slot. */
static void readded_address_finds_quarantined_tuples(void **state)
{
	struct env e;
	struct conn c;
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_SNAT, 5000, 5000);
	conn_tcp(&e, &c, BE1);
	close_backend_first(&e, &c);
	conn_end(&e, &c);
	e.c->snat[0] = (struct cfg_snat){ 0 };
	snat_add(&e, 5, TF_SNAT, 5000, 5000);
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	assert_int_equal(tried, 1ULL << 5);
	at(&e, 1000);
	conn_tcp(&e, &c, BE1);
	assert_int_equal(c.f.snat_slot, 5);
	assert_int_equal(c.f.snat_gen, e.c->snat[5].gen);
	env_free(&e);
}

/* ---- exhaustion and errors ------------------------------------------------- */

static void exhaustion_half_live_half_quarantined(void **state)
{
	struct env e;
	struct conn c[9];
	uint8_t seen[8] = { 0 };
	uint64_t tried;
	uint32_t freed = 0;

	(void)state;
	env_default(&e);
	snat_add(&e, 2, TF_SNAT, 6000, 6007);
	for (int i = 0; i < 8; i++) {
		conn_tcp(&e, &c[i], BE1);
		/* Never a tuple already held. */
		assert_true(sport(&c[i]) >= 6000 && sport(&c[i]) <= 6007);
		assert_int_equal(seen[sport(&c[i]) - 6000]++, 0);
		if (i % 2 == 0) {
			close_backend_first(&e, &c[i]);
			conn_end(&e, &c[i]);
		}
	}
	for (int i = 0; i < 8; i++)
		assert_true(held(&e, &c[i]));
	assert_int_equal(palloc_quarantine_used(&e.pa), 4);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(conn_open(&e, &c[8], IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
		assert_int_equal(tried, 1ULL << 2);
	}
	/* Another backend has all eight. */
	conn_tcp(&e, &c[8], BE2);
	/* The quarantine runs out: exactly the four quarantined tuples come back. */
	at(&e, 999);
	assert_int_equal(conn_open(&e, &c[8], IPPROTO_TCP, BE1, 80, NULL), -ENOSPC);
	at(&e, 1000);
	for (int i = 0; i < 4; i++) {
		struct conn n;

		conn_tcp(&e, &n, BE1);
		for (int j = 0; j < 8; j += 2)
			freed |= (uint32_t)(sport(&n) == sport(&c[j])) << j;
	}
	assert_int_equal(freed, 0x55);
	assert_int_equal(conn_open(&e, &c[8], IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	env_free(&e);
}

static void two_addresses_exhaust_only_when_both_full(void **state)
{
	struct env e;
	struct conn c[9];
	uint32_t per_slot[4] = { 0 };
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_IP(10, 1, 0, 1), 7000, 7003);
	snat_add(&e, 3, TF_IP(10, 1, 0, 4), 7000, 7003);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(conn_open(&e, &c[i], IPPROTO_TCP, BE1, 80, &tried), 0);
		assert_true(c[i].f.snat_slot == 0 || c[i].f.snat_slot == 3);
		assert_int_equal(c[i].f.sip, e.c->snat[c[i].f.snat_slot].ip);
		assert_int_equal(c[i].f.snat_gen, e.c->snat[c[i].f.snat_slot].gen);
		assert_true(tried & (1ULL << c[i].f.snat_slot));
		per_slot[c[i].f.snat_slot]++;
	}
	assert_int_equal(per_slot[0], 4);
	assert_int_equal(per_slot[3], 4);
	assert_int_equal(conn_open(&e, &c[8], IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	assert_int_equal(tried, (1ULL << 0) | (1ULL << 3));
	/* One tuple back on the second address: found whichever is tried first. */
	for (int i = 0; i < 8; i++)
		if (c[i].f.snat_slot == 3) {
			close_client_first(&e, &c[i]);
			conn_end(&e, &c[i]);
			assert_int_equal(conn_open(&e, &c[8], IPPROTO_TCP, BE1, 80, NULL), 0);
			assert_int_equal(c[8].f.snat_slot, 3);
			assert_int_equal(sport(&c[8]), sport(&c[i]));
			break;
		}
	env_free(&e);
}

static void quarantine_admission_is_enobufs(void **state)
{
	struct env e;
	struct conn c[4], u, x;
	uint64_t tried = 99;

	(void)state;
	env_init(&e, 0, 1, 8, 3);
	snat_add(&e, 0, TF_SNAT, 5000, 5099);
	for (int i = 0; i < 3; i++)
		conn_tcp(&e, &c[i], BE1);
	/* Every live TCP flow may need an entry: three is all there is. */
	assert_int_equal(conn_open(&e, &c[3], IPPROTO_TCP, BE1, 80, &tried), -ENOBUFS);
	assert_int_equal(tried, 0);
	/* UDP flows never quarantine. */
	assert_int_equal(conn_open(&e, &u, IPPROTO_UDP, BE1, 80, NULL), 0);
	/* A quarantined tuple keeps its entry after its flow ended. */
	close_backend_first(&e, &c[0]);
	conn_end(&e, &c[0]);
	assert_int_equal(conn_open(&e, &x, IPPROTO_TCP, BE1, 80, NULL), -ENOBUFS);
	/* A flow ending without quarantine gives its room back. */
	close_client_first(&e, &c[1]);
	conn_end(&e, &c[1]);
	conn_tcp(&e, &c[1], BE1);
	assert_int_equal(conn_open(&e, &x, IPPROTO_TCP, BE1, 80, NULL), -ENOBUFS);
	/* And so does the end of a quarantine. */
	at(&e, 1000);
	conn_tcp(&e, &c[0], BE1);
	/* The three live flows all close backend first: their entries exist. */
	for (int i = 0; i < 3; i++) {
		close_backend_first(&e, &c[i]);
		assert_true(palloc_flow_quarantined(&e.pa, &c[i].f));
	}
	assert_int_equal(palloc_quarantine_used(&e.pa), 3);
	env_free(&e);
}

static void space_pool_exhaustion_is_enomem_and_idle_spaces_are_reused(void **state)
{
	struct env e;
	struct conn a, b, c, d, x;
	uint64_t tried = 99;

	(void)state;
	env_init(&e, 0, 1, 2, 4096);
	snat_add(&e, 0, TF_SNAT, 5000, 5009);
	conn_tcp(&e, &a, BE1);
	conn_tcp(&e, &b, BE2);
	/* Two spaces, both holding tuples: a third backend has none. */
	assert_int_equal(conn_open(&e, &x, IPPROTO_TCP, BE3, 80, &tried), -ENOMEM);
	assert_int_equal(tried, 0);
	/* An empty space is reused. */
	close_client_first(&e, &a);
	conn_end(&e, &a);
	assert_int_equal(e.pa.spaces_evicted, 0);
	conn_tcp(&e, &c, BE3);
	assert_int_equal(e.pa.spaces_evicted, 1);
	assert_false(held(&e, &a));
	/* A space held by a quarantine alone is not empty. */
	close_backend_first(&e, &b);
	conn_end(&e, &b);
	close_client_first(&e, &c);
	conn_end(&e, &c);
	conn_tcp(&e, &d, BE4);
	assert_int_equal(e.pa.spaces_evicted, 2);
	assert_int_equal(conn_open(&e, &x, IPPROTO_TCP, BE5, 80, &tried), -ENOMEM);
	assert_true(held(&e, &b));
	at(&e, 1000);
	assert_false(held(&e, &b));
	conn_tcp(&e, &x, BE5);
	assert_int_equal(e.pa.spaces_evicted, 3);
	/* The space of a backend still holding tuples is found again, not taken. */
	conn_tcp(&e, &a, BE4);
	assert_int_equal(e.pa.spaces_evicted, 3);
	env_free(&e);
}

static void draining_addresses_are_skipped(void **state)
{
	struct env e;
	struct conn c[5];
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_IP(10, 1, 0, 1), 5000, 5003);
	snat_add(&e, 1, TF_IP(10, 1, 0, 2), 5000, 5003);
	e.c->snat[1].draining = true;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(conn_open(&e, &c[i], IPPROTO_TCP, BE1, 80, &tried), 0);
		assert_int_equal(c[i].f.snat_slot, 0);
		assert_int_equal(tried, 1);
	}
	assert_int_equal(conn_open(&e, &c[4], IPPROTO_TCP, BE1, 80, &tried), -ENOSPC);
	assert_int_equal(tried, 1);
	/* Its flows end normally. */
	e.c->snat[1].draining = false;
	conn_tcp(&e, &c[4], BE1);
	assert_int_equal(c[4].f.snat_slot, 1);
	e.c->snat[1].draining = true;
	close_client_first(&e, &c[4]);
	conn_end(&e, &c[4]);
	assert_false(held(&e, &c[4]));
	/* Nothing but draining addresses. */
	e.c->snat[0].draining = true;
	assert_int_equal(conn_open(&e, &c[4], IPPROTO_TCP, BE2, 80, &tried), -ENOENT);
	assert_int_equal(tried, 0);
	env_free(&e);
}

static void service_snat_mask_restricts_addresses(void **state)
{
	struct env e;
	struct conn c;
	uint64_t tried;

	(void)state;
	env_default(&e);
	snat_add(&e, 0, TF_IP(10, 1, 0, 1), 1024, 65535);
	snat_add(&e, 1, TF_IP(10, 1, 0, 2), 1024, 65535);
	snat_add(&e, 5, TF_IP(10, 1, 0, 6), 1024, 65535);
	e.svc->snat_all = false;
	e.svc->snat_mask = 1ULL << 5;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(conn_open(&e, &c, IPPROTO_UDP, BE1, 80, &tried), 0);
		assert_int_equal(c.f.sip, tf_n32(TF_IP(10, 1, 0, 6)));
		assert_int_equal(c.f.snat_slot, 5);
		assert_int_equal(tried, 1ULL << 5);
	}
	e.svc->snat_mask = (1ULL << 1) | (1ULL << 5);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(conn_open(&e, &c, IPPROTO_UDP, BE1, 80, &tried), 0);
		assert_true(c.f.snat_slot == 1 || c.f.snat_slot == 5);
		assert_int_equal(tried & ~((1ULL << 1) | (1ULL << 5)), 0);
	}
	env_free(&e);
}

static void no_usable_address_is_enoent(void **state)
{
	struct env e;
	struct conn c;
	uint64_t tried = 99;

	(void)state;
	env_default(&e);
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), -ENOENT);
	assert_int_equal(tried, 0);
	snat_add(&e, 2, TF_SNAT, 1024, 2047);
	e.svc->snat_all = false;
	e.svc->snat_mask = 0;
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), -ENOENT);
	e.svc->snat_mask = 1ULL << 3; /* an unused slot */
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), -ENOENT);
	e.svc->snat_mask = 1ULL << 2;
	assert_int_equal(conn_open(&e, &c, IPPROTO_TCP, BE1, 80, &tried), 0);
	assert_int_equal(tried, 1ULL << 2);
	env_free(&e);
}

/*
 * Published snapshots, as the worker gets them: palloc keeps what it derives
 * from one (the usable SNAT slots, their bits in this share) while its gen
 * stays the same, and every publish (a new gen, even if the snapshot's memory
 * is that of a freed one) is taken into account at the next allocation.
 */
/* A UDP flow toward @bip:80 from the current snapshot: @want, and *tried @want_tried (MAX: any). */
static uint16_t published_get(struct palloc *pa, uint32_t bip, int want, uint64_t want_tried)
{
	const struct cfg *c = cfg_current();
	struct flow f = { .proto = IPPROTO_UDP, .bip = tf_n32(bip), .bport = tf_n16(80) };
	uint64_t tried = 99;

	assert_int_not_equal(c->gen, 0);
	assert_int_equal(palloc_get(pa, c, &c->services[0], &f, &tried), want);
	if (want_tried != UINT64_MAX)
		assert_int_equal(tried, want_tried);
	if (want != 0)
		return 0;
	assert_int_equal(f.sip, c->snat[f.snat_slot].ip);
	assert_int_equal(f.snat_gen, c->snat[f.snat_slot].gen);
	return ntohs(f.sport);
}

static void published_snapshot_changes_apply(void **state)
{
	struct palloc pa;
	struct cfg *c = cfg_new();
	uint64_t gen;
	bool seen[2] = { false, false };

	(void)state;
	assert_non_null(c);
	c->services[0] = (struct cfg_service){ .used = true,
					       .gen = c->next_gen++,
					       .vip = tf_n32(TF_VIP),
					       .l4port = tf_n16(80),
					       .proto = IPPROTO_UDP,
					       .snat_all = true };
	c->snat[0] = (struct cfg_snat){ .used = true,
					.gen = c->next_gen++,
					.ip = tf_n32(TF_IP(10, 1, 0, 1)),
					.lo = 1000,
					.hi = 1009 };
	c->snat[1] = (struct cfg_snat){ .used = true,
					.gen = c->next_gen++,
					.ip = tf_n32(TF_IP(10, 1, 0, 2)),
					.lo = 2000,
					.hi = 2009 };
	assert_int_equal(c->gen, 0);
	assert_int_equal(cfg_derive(c), 0);
	cfg_publish(c);
	gen = cfg_current()->gen;
	assert_int_not_equal(gen, 0);
	/* Worker 1 of 2: odd ports. Both addresses are used, at random. */
	assert_int_equal(palloc_init(&pa, 1, 2, 0x5eed, 64, 64, -1, T0), 0);
	for (int i = 0; i < 32; i++) {
		uint16_t p = published_get(&pa, TF_IP(10, 2, 1, i % 8), 0, UINT64_MAX);

		assert_true(p % 2 == 1);
		assert_true((p >= 1000 && p <= 1009) || (p >= 2000 && p <= 2009));
		seen[p >= 2000] = true;
	}
	assert_true(seen[0] && seen[1]);

	/* A clone is unpublished until published: slot 1 drains, slot 0 shrinks. */
	c = cfg_clone(cfg_current());
	assert_non_null(c);
	assert_int_equal(c->gen, 0);
	c->snat[1].draining = true;
	c->snat[0].lo = 3000;
	c->snat[0].hi = 3003;
	assert_int_equal(cfg_derive(c), 0);
	cfg_publish(c);
	assert_int_equal(cfg_current()->gen, gen + 1);
	assert_int_equal(published_get(&pa, BE1, 0, 1), 3001);
	assert_int_equal(published_get(&pa, BE1, 0, 1), 3003);
	assert_int_equal(published_get(&pa, BE1, -ENOSPC, 1), 0);

	/* A range with no port in this share: no address is tried. */
	c = cfg_clone(cfg_current());
	assert_non_null(c);
	c->snat[0].lo = c->snat[0].hi = 3000;
	assert_int_equal(cfg_derive(c), 0);
	cfg_publish(c);
	assert_int_equal(published_get(&pa, BE2, -ENOSPC, 0), 0);

	/* A new address, and the service restricted to it. */
	c = cfg_clone(cfg_current());
	assert_non_null(c);
	c->snat[7] = (struct cfg_snat){ .used = true,
					.gen = c->next_gen++,
					.ip = tf_n32(TF_IP(10, 1, 0, 8)),
					.lo = 4000,
					.hi = 4001 };
	c->services[0].snat_all = false;
	c->services[0].snat_mask = 1ULL << 7;
	assert_int_equal(cfg_derive(c), 0);
	cfg_publish(c);
	assert_int_equal(published_get(&pa, BE1, 0, 1ULL << 7), 4001);

	/* Back to every address, none of which may take new flows. */
	c = cfg_clone(cfg_current());
	assert_non_null(c);
	c->snat[7].draining = true;
	c->snat[0] = (struct cfg_snat){ 0 };
	c->services[0].snat_all = true;
	assert_int_equal(cfg_derive(c), 0);
	cfg_publish(c);
	assert_int_equal(published_get(&pa, BE3, -ENOENT, 0), 0);
	palloc_free(&pa);
}

/* ---- unpredictability ------------------------------------------------------ */

static void consecutive_allocations_are_not_sequential(void **state)
{
	enum {
		N = 1000
	};

	(void)state;
	for (uint16_t nw = 1; nw <= 2; nw++) {
		static struct conn c[N];
		struct env e;
		uint32_t seq = 0, same = 0;

		env_init(&e, nw - 1, nw, 4, 4096);
		snat_add(&e, 0, TF_SNAT, 1024, 65535);
		for (int i = 0; i < N; i++)
			assert_int_equal(conn_open(&e, &c[i], IPPROTO_UDP, BE1, 80, NULL), 0);
		for (int i = 1; i < N; i++) {
			uint32_t d = (sport(&c[i]) - sport(&c[i - 1]) + 64512u) % 64512u;

			seq += d == nw;
			same += d == (uint32_t)(sport(&c[1]) - sport(&c[0]) + 64512u) % 64512u;
		}
		print_message("%u workers: %u of %u differences are %u, %u equal the first\n", nw,
			      seq, N - 1, nw, same);
		assert_true(seq < N / 20);
		assert_true(same < N - 1);
		env_free(&e);
	}
}

/*
 * Half-full spaces, many trials: when a flow ends (client-first close, so no
 * quarantine), the next allocation toward the same backend never hands its
 * tuple out again while other tuples are free: the worker allocates right
 * after ending a flow whose client sent a new SYN on a closing tuple, and the
 * backend may still be in LAST_ACK or CLOSE_WAIT on the old one. @latest: the
 * flow that ends is the last one allocated; else any live flow.
 */
static void released_tuple_not_next(bool latest)
{
	static const uint16_t ranges[][2] = { { 1024, 1279 }, { 1024, 2047 }, { 20000, 20063 } };
	static struct conn c[512];
	uint64_t rng = 0xfeed;
	uint32_t bad = 0, trials = 0;

	for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
		uint32_t n = (uint32_t)ranges[r][1] - ranges[r][0] + 1;

		for (uint32_t t = 0; t < 1000; t++) {
			uint64_t seed = tf_rand(&rng);
			struct env e;
			struct conn next;
			uint32_t victim;

			/* A different allocator sequence per trial. */
			env_setup(&e, 0, 1, 4, 4096, seed);
			snat_add(&e, 0, TF_SNAT, ranges[r][0], ranges[r][1]);
			for (uint32_t i = 0; i < n / 2; i++)
				conn_tcp(&e, &c[i], BE1);
			victim = latest ? n / 2 - 1 : (uint32_t)(tf_rand(&rng) % (n / 2));
			close_client_first(&e, &c[victim]);
			conn_end(&e, &c[victim]);
			assert_false(held(&e, &c[victim]));
			conn_tcp(&e, &next, BE1);
			if (sport(&next) == sport(&c[victim]) && bad++ < 3)
				print_error("palloc_init seed 0x%" PRIx64
					    ", range %u-%u: %u flows, "
					    "flow #%u (port %u) ends, the next flow gets port %u\n",
					    seed, ranges[r][0], ranges[r][1], n / 2, victim,
					    sport(&c[victim]), sport(&next));
			trials++;
			env_free(&e);
		}
	}
	if (bad > 0)
		fail_msg("%u of %u trials handed the tuple that had just ended out next", bad,
			 trials);
}

static void latest_released_tuple_is_not_next(void **state)
{
	(void)state;
	released_tuple_not_next(true);
}

static void any_released_tuple_is_not_next(void **state)
{
	(void)state;
	released_tuple_not_next(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_snat_port_live_toward_two_backends),
		cmocka_unit_test(share_sizes_sum_to_the_range),
		cmocka_unit_test(shares_are_disjoint_and_cover_every_port),
		cmocka_unit_test(held_counts_per_space),
		cmocka_unit_test(quarantine_after_backend_first_close),
		cmocka_unit_test(quarantine_after_simultaneous_close),
		cmocka_unit_test(quarantine_after_idle_out_with_backend_fin_only),
		cmocka_unit_test(no_quarantine_after_client_first_close),
		cmocka_unit_test(no_quarantine_after_rst),
		cmocka_unit_test(rst_after_both_fins_rearms),
		cmocka_unit_test(later_segment_rearms_quarantine),
		cmocka_unit_test(expiry_is_exact),
		cmocka_unit_test(entry_expiring_while_flow_lives_keeps_tuple),
		cmocka_unit_test(duration_change_keeps_old_expiry),
		cmocka_unit_test(many_durations_never_expire_early),
		cmocka_unit_test(readded_address_finds_quarantined_tuples),
		cmocka_unit_test(exhaustion_half_live_half_quarantined),
		cmocka_unit_test(two_addresses_exhaust_only_when_both_full),
		cmocka_unit_test(quarantine_admission_is_enobufs),
		cmocka_unit_test(space_pool_exhaustion_is_enomem_and_idle_spaces_are_reused),
		cmocka_unit_test(draining_addresses_are_skipped),
		cmocka_unit_test(service_snat_mask_restricts_addresses),
		cmocka_unit_test(no_usable_address_is_enoent),
		cmocka_unit_test(published_snapshot_changes_apply),
		cmocka_unit_test(consecutive_allocations_are_not_sequential),
		cmocka_unit_test(latest_released_tuple_is_not_next),
		cmocka_unit_test(any_released_tuple_is_not_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
