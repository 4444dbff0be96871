/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What test_palloc.c and test_twreuse.c share: a configuration with one TCP
 * service, a palloc with the time injected, and connections driven segment
 * by segment as the worker drives them (each file defines seg(): the
 * worker's per-segment glue, with or without real frames).
 *
 * The including file includes cmocka.h, cfg.h, flow.h, frame.h, palloc.h,
 * tcpstate.h and tcpnames.h first.
 */
#ifndef SLUICE_TEST_PALLOC_ENV_H
#define SLUICE_TEST_PALLOC_ENV_H

#define T0	7000000u /* the clock at palloc_init(); tests give times relative to it */
#define ENV_DUR 1000u	 /* the quarantine env_setup() puts in force, ms */

struct env {
	struct cfg *c;
	struct cfg_service *svc;
	struct palloc pa;
	uint64_t now;
	uint32_t dur; /* the quarantine in force, ms */
};

/* Service "web" (TCP, VIP:80, every SNAT address) and a palloc for one worker's share. */
static inline void env_setup(struct env *e, uint16_t worker, uint16_t nworkers, uint32_t max_spaces,
			     uint32_t max_quarantine, uint64_t seed)
{
	e->c = cfg_new();
	assert_non_null(e->c);
	e->svc = &e->c->services[0];
	e->svc->used = true;
	e->svc->gen = e->c->next_gen++;
	snprintf(e->svc->name, sizeof(e->svc->name), "web");
	e->svc->vip = tf_n32(TF_VIP);
	e->svc->l4port = tf_n16(80);
	e->svc->proto = IPPROTO_TCP;
	e->svc->snat_all = true;
	e->svc->tw_quarantine = CFG_INHERIT;
	e->now = T0;
	e->dur = ENV_DUR;
	assert_int_equal(
		palloc_init(&e->pa, worker, nworkers, seed, max_spaces, max_quarantine, -1, T0), 0);
}

static inline void env_free(struct env *e)
{
	palloc_free(&e->pa);
	cfg_free(e->c);
}

/* The clock reads T0 + @t; the timer runs. Returns how many quarantines ended. */
static inline uint32_t at(struct env *e, uint64_t t)
{
	assert_true(T0 + t >= e->now);
	e->now = T0 + t;
	return palloc_expire(&e->pa, e->now, UINT32_MAX);
}

/* A connection as the load balancer sees it (sequence numbers as in test_tcpstate.c). */
struct conn {
	struct flow f;
	uint32_t nxt[2]; /* next sequence number of each side: [FWD] client, [REV] backend */
	uint32_t rcv[2]; /* what each side acknowledges */
	/* Timestamps, for the tests that send frames (test_twreuse.c). */
	bool ts;	 /* the client's SYN carries timestamps */
	bool ts_b;	 /* the backend answers with them */
	uint32_t tsval;	 /* the client's clock: every client segment carries it */
	uint32_t echo_p; /* the newest TSval' the backend got (it echoes that) */
	uint32_t echo_raw;
	uint32_t first; /* the SYN's TSval' */
};

/* One segment through the worker's glue: defined by each including file. */
static void seg(struct env *e, struct conn *c, enum flow_dir dir, uint8_t flags);

/* The other side received everything @dir sent so far. */
static inline void deliver(struct conn *c, enum flow_dir dir)
{
	c->rcv[dir == FWD ? REV : FWD] = c->nxt[dir];
}

/* Send and have it arrive. */
static inline void sd(struct env *e, struct conn *c, enum flow_dir dir, uint8_t flags)
{
	seg(e, c, dir, flags);
	deliver(c, dir);
}

/* The flow ends (idle-out, reset, replacement): the worker's palloc_on_end(). */
static inline void conn_end(struct env *e, struct conn *c)
{
	palloc_on_end(&e->pa, &c->f, e->dur, e->now);
}

/* The backend closes first; then the client. Both FINs acknowledged: TIME_WAIT proper. */
static inline void close_backend_first(struct env *e, struct conn *c)
{
	sd(e, c, REV, FIN | ACK);
	sd(e, c, FWD, ACK);
	sd(e, c, FWD, FIN | ACK);
	sd(e, c, REV, ACK);
	assert_int_equal(c->f.state, FLOW_CLOSED);
}

/* The client closes first; the backend answers with its FIN. */
static inline void close_client_first(struct env *e, struct conn *c)
{
	sd(e, c, FWD, FIN | ACK);
	sd(e, c, REV, FIN | ACK);
	sd(e, c, FWD, ACK);
	assert_int_equal(c->f.state, FLOW_CLOSED);
}

/* Both FINs cross, then both are acknowledged: the backend is in TIME_WAIT too. */
static inline void close_simultaneous(struct env *e, struct conn *c)
{
	seg(e, c, FWD, FIN | ACK);
	seg(e, c, REV, FIN | ACK);
	deliver(c, FWD);
	deliver(c, REV);
	sd(e, c, FWD, ACK);
	sd(e, c, REV, ACK);
	assert_int_equal(c->f.state, FLOW_CLOSED);
}

#endif
