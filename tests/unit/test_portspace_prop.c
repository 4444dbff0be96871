/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Property test of the port space and the TIME_WAIT quarantine: random flows
 * on a tiny SNAT pool (palloc) with real close tracking (tcpstate), checked
 * step by step against a reference model.
 *
 * The model knows nothing of bitmaps, FIFOs or tcpstate bits. It keeps, per
 * tuple (proto, backend, SNAT address, port), whether a live flow holds it and
 * whether a quarantine holds it and until when; per flow, what the operations
 * did: which side sent a FIN, whether the backend's FIN answered the client's
 * (passive), whether a reset came before both FINs. Its rules are the
 * contract:
 *   - the backend will hold the tuple in TIME_WAIT once both FINs were sent
 *     and its own was not an answer to the client's, unless a reset came
 *     first; from that segment on, every segment (any direction) holds the
 *     tuple until its time + the duration then in force (0: does nothing);
 *   - a TCP flow that ends after an active backend FIN, with no client FIN
 *     and no reset, is held from its end for the duration then in force;
 *   - palloc_expire(now) lets go of every quarantine due at or before now;
 *   - a tuple is held while its flow lives or its quarantine does;
 *   - a new TCP flow is refused (-ENOBUFS) while quarantines without a flow +
 *     live TCP flows >= max_quarantine;
 *   - palloc_get succeeds iff a usable address has a free tuple in its range
 *     and share and either already holds a tuple toward that backend or fewer
 *     than max_spaces (proto, backend, address) triples hold any tuple.
 *
 * The flows are driven exactly as the worker drives them: f->state =
 * tcpstate_next() then palloc_on_segment() for each segment,
 * palloc_on_end() when a flow ends, palloc_expire() from the timer.
 *
 * Checks: every palloc_get() against the model's answer (error, tried mask,
 * the tuple handed out); after every step, every tuple and the space counts
 * of the key the step touched; every SWEEP steps and after every expiry
 * (the only change to tuples no flow touched), all of them.
 *
 * A failure prints the seed, the step and the last operations. To replay one
 * seed: PORTSPACE_SEED=0x... PORTSPACE_STEPS=n test_portspace_prop
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
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
#include "tcpstate.h"

#define FWD FLOW_DIR_FWD
#define REV FLOW_DIR_REV

#define NADDR	 2
#define NBE	 3
#define NPROTO	 2  /* model index 0: TCP, 1: UDP */
#define NPORT	 12 /* ports an address's range may ever span */
#define NSLOT	 8  /* config slots the addresses move between */
#define MAXFLOWS (NPROTO * NBE * NADDR * NPORT)
#define HIST	 40
#define SWEEP	 32 /* check everything every SWEEP steps (and after expiry) */

/* A flow in the history: "tcp be1 a0:4092". */
#define PF_FMT	    "%s be%d a%d:%u"
#define PF_ARGS(pf) ((pf)->proto ? "udp" : "tcp"), (pf)->be, (pf)->addr, (pf)->port

static const uint32_t be_ip[NBE] = { TF_IP(10, 2, 0, 1), TF_IP(10, 2, 0, 1), TF_IP(10, 2, 0, 2) };
static const uint16_t be_port[NBE] = { 80, 81, 80 };
static const uint8_t proto_of[NPROTO] = { IPPROTO_TCP, IPPROTO_UDP };

struct mtuple {
	int16_t flow;	  /* the live flow holding the tuple, -1: none */
	bool q;		  /* a quarantine holds it ... */
	uint64_t q_until; /* ... until palloc_expire() at or after this time */
};

struct maddr {
	uint32_t ip;   /* host order */
	uint16_t base; /* its range always lies in base .. base + NPORT - 1 */
	uint16_t lo, hi;
	int slot; /* config slot, -1: removed */
	bool draining;
};

struct pflow {
	bool used;
	struct flow f;
	int proto, be, addr;
	uint16_t port; /* host order */
	/* What the operations did. */
	bool cfin, bfin; /* the client / the backend sent its FIN */
	bool passive;	 /* the backend's FIN acknowledged the client's */
	bool rst;	 /* a reset came before the backend was in TIME_WAIT */
	bool tw;	 /* the backend holds (or enters) TIME_WAIT */
	bool b_got_cfin; /* the backend acknowledged the client's FIN already */
	uint32_t nxt[2]; /* next sequence number of each side ([FWD] client) */
	uint32_t fin_seq[2], fin_len[2];
};

struct hist {
	uint32_t step;
	uint64_t now;
	uint32_t dur;
	char what[72];
};

struct prop {
	uint64_t seed, rng;
	uint32_t step;
	struct cfg *c;
	struct cfg_service *svc;
	struct palloc pa;
	uint16_t worker, nworkers;
	uint32_t max_spaces, max_q;
	uint64_t now;
	uint32_t dur;
	uint32_t durs[4];
	struct maddr addr[NADDR];
	struct mtuple t[NPROTO][NBE][NADDR][NPORT];
	struct pflow fl[MAXFLOWS];
	struct hist hist[HIST];
	uint32_t nhist;
	/* Totals over the run, to show the run explored what it should. */
	uint64_t n_ok, n_enospc, n_enobufs, n_enomem, n_enoent, n_tw, n_endq, n_expired;
};

static uint64_t rnd(struct prop *p, uint64_t n)
{
	return tf_rand(&p->rng) % n;
}

static void prop_log(struct prop *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prop_log(struct prop *p, const char *fmt, ...)
{
	struct hist *h = &p->hist[p->nhist++ % HIST];
	va_list ap;

	h->step = p->step;
	h->now = p->now;
	h->dur = p->dur;
	va_start(ap, fmt);
	vsnprintf(h->what, sizeof(h->what), fmt, ap);
	va_end(ap);
}

static void prop_fail(struct prop *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prop_fail(struct prop *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	uint32_t from = p->nhist > HIST ? p->nhist - HIST : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "portspace: seed 0x%" PRIx64 " step %u (worker %u of %u): %s\n", p->seed,
		p->step, p->worker, p->nworkers, msg);
	fprintf(stderr, "  replay: PORTSPACE_SEED=0x%" PRIx64 " PORTSPACE_STEPS=%u\n", p->seed,
		p->step + 1);
	fprintf(stderr, "  last operations (step, now ms, duration in force):\n");
	for (uint32_t i = from; i < p->nhist; i++) {
		const struct hist *h = &p->hist[i % HIST];

		fprintf(stderr, "    %8u %10" PRIu64 " %5u  %s\n", h->step, h->now, h->dur,
			h->what);
	}
	fail_msg("portspace: seed 0x%" PRIx64 " step %u: %s", p->seed, p->step, msg);
}

#define CHECK(p, cond, ...)                          \
	do {                                         \
		if (!(cond))                         \
			prop_fail((p), __VA_ARGS__); \
	} while (0)

/* ---- the model ------------------------------------------------------------ */

static struct mtuple *mt(struct prop *p, int proto, int be, int a, uint32_t port)
{
	return &p->t[proto][be][a][port - p->addr[a].base];
}

static bool in_share(const struct prop *p, uint32_t port)
{
	return port % p->nworkers == p->worker;
}

static bool m_held(const struct mtuple *t)
{
	return t->flow >= 0 || t->q;
}

/* Does any tuple of (proto, backend, address) hold? */
static bool m_key_busy(struct prop *p, int proto, int be, int a)
{
	for (int i = 0; i < NPORT; i++)
		if (m_held(&p->t[proto][be][a][i]))
			return true;
	return false;
}

static uint32_t m_busy_keys(struct prop *p)
{
	uint32_t n = 0;

	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				n += m_key_busy(p, pr, b, a);
	return n;
}

/* Quarantines whose flow has ended, live TCP flows, quarantines in all. */
static void m_counts(struct prop *p, uint32_t *detached, uint32_t *live_tcp, uint32_t *qs)
{
	*detached = *live_tcp = *qs = 0;
	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				for (int i = 0; i < NPORT; i++) {
					const struct mtuple *t = &p->t[pr][b][a][i];

					*qs += t->q;
					*detached += t->q && t->flow < 0;
					*live_tcp += pr == 0 && t->flow >= 0;
				}
}

static bool m_usable(struct prop *p, int a)
{
	const struct maddr *m = &p->addr[a];

	return m->slot >= 0 && !m->draining &&
	       (p->svc->snat_all || (p->svc->snat_mask & (1ULL << m->slot)));
}

static bool m_share_empty(struct prop *p, int a)
{
	for (uint32_t port = p->addr[a].lo; port <= p->addr[a].hi; port++)
		if (in_share(p, port))
			return false;
	return true;
}

static bool m_has_free(struct prop *p, int proto, int be, int a)
{
	for (uint32_t port = p->addr[a].lo; port <= p->addr[a].hi; port++)
		if (in_share(p, port) && !m_held(mt(p, proto, be, a, port)))
			return true;
	return false;
}

/* A segment of @pf went through: the TIME_WAIT rules. */
static void m_segment(struct prop *p, struct pflow *pf, bool rst)
{
	struct mtuple *t = mt(p, pf->proto, pf->be, pf->addr, pf->port);

	if (rst && !pf->tw)
		pf->rst = true;
	if (!pf->tw && !pf->rst && pf->cfin && pf->bfin && !pf->passive) {
		pf->tw = true;
		p->n_tw++;
	}
	if (pf->tw && p->dur > 0) {
		t->q = true;
		t->q_until = p->now + p->dur;
	}
}

/* ---- checks ----------------------------------------------------------------- */

static int slot_addr(struct prop *p, int slot)
{
	for (int a = 0; a < NADDR; a++)
		if (p->addr[a].slot == slot)
			return a;
	return -1;
}

static void check_tuple(struct prop *p, int pr, int b, int a, uint32_t port)
{
	bool want = in_share(p, port) && m_held(mt(p, pr, b, a, port));
	bool got = palloc_held(&p->pa, proto_of[pr], htonl(be_ip[b]), htons(be_port[b]),
			       htonl(p->addr[a].ip), htons((uint16_t)port));

	CHECK(p, got == want, "tuple %s be%d addr%d port %u: palloc_held %d, model %d",
	      pr ? "udp" : "tcp", b, a, port, got, want);
}

/* The space palloc shows for (proto, backend, address), or -1. */
static int space_of(struct prop *p, int pr, int b, int a)
{
	for (uint32_t i = 0; i < p->max_spaces; i++) {
		const struct palloc_space *sp = palloc_space_at(&p->pa, i);

		if (sp != NULL && sp->proto == proto_of[pr] && sp->bip == htonl(be_ip[b]) &&
		    sp->bport == htons(be_port[b]) && sp->sip == htonl(p->addr[a].ip))
			return (int)i;
	}
	return -1;
}

/* Space @i of (proto, backend, address) counts what the model holds. */
static void check_space(struct prop *p, int i, int pr, int b, int a)
{
	const struct palloc_space *sp = palloc_space_at(&p->pa, (uint32_t)i);
	uint32_t live = 0, quar = 0, held = 0, bits;

	for (int k = 0; k < NPORT; k++) {
		const struct mtuple *t = &p->t[pr][b][a][k];

		live += t->flow >= 0;
		quar += t->q && t->flow < 0;
		held += m_held(t);
	}
	if (i < 0) {
		CHECK(p, held == 0, "%s be%d addr%d holds tuples but has no space",
		      pr ? "udp" : "tcp", b, a);
		return;
	}
	CHECK(p, sp->live == live && sp->quarantined == quar,
	      "space %s be%d addr%d: live %u quarantined %u, model %u %u", pr ? "udp" : "tcp", b, a,
	      sp->live, sp->quarantined, live, quar);
	bits = palloc_space_held(&p->pa, (uint32_t)i, p->addr[a].base,
				 (uint16_t)(p->addr[a].base + NPORT - 1));
	CHECK(p, bits == held, "space %s be%d addr%d: %u bits held, model %u", pr ? "udp" : "tcp",
	      b, a, bits, held);
}

/* One key: its tuples one by one, and its space's counts. */
static void check_key(struct prop *p, int pr, int b, int a)
{
	for (uint32_t port = p->addr[a].base; port < p->addr[a].base + (uint32_t)NPORT; port++)
		check_tuple(p, pr, b, a, port);
	check_space(p, space_of(p, pr, b, a), pr, b, a);
}

/*
 * Everything: every tuple; every hashed space is a known key, once, with the
 * model's counts; every key holding tuples has a space; the entries in use.
 */
static void check_all(struct prop *p)
{
	bool seen[NPROTO][NBE][NADDR] = { { { false } } };
	uint32_t detached, live_tcp, qs;

	for (uint32_t i = 0; i < p->max_spaces; i++) {
		const struct palloc_space *sp = palloc_space_at(&p->pa, i);
		int pr = -1, b = -1, a = -1;

		if (sp == NULL)
			continue;
		for (int j = 0; j < NPROTO; j++)
			if (sp->proto == proto_of[j])
				pr = j;
		for (int j = 0; j < NBE; j++)
			if (sp->bip == htonl(be_ip[j]) && sp->bport == htons(be_port[j]))
				b = j;
		for (int j = 0; j < NADDR; j++)
			if (sp->sip == htonl(p->addr[j].ip))
				a = j;
		CHECK(p, pr >= 0 && b >= 0 && a >= 0, "space %u has an unknown key", i);
		CHECK(p, !seen[pr][b][a], "two spaces for %s be%d addr%d", pr ? "udp" : "tcp", b,
		      a);
		seen[pr][b][a] = true;
	}
	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				check_key(p, pr, b, a);
	m_counts(p, &detached, &live_tcp, &qs);
	CHECK(p, palloc_quarantine_used(&p->pa) == qs, "%u quarantine entries, model %u",
	      palloc_quarantine_used(&p->pa), qs);
}

static void check_flow(struct prop *p, struct pflow *pf)
{
	const struct mtuple *t = mt(p, pf->proto, pf->be, pf->addr, pf->port);

	CHECK(p, palloc_flow_quarantined(&p->pa, &pf->f) == t->q,
	      PF_FMT ": palloc_flow_quarantined %d, model %d", PF_ARGS(pf),
	      palloc_flow_quarantined(&p->pa, &pf->f), t->q);
}

/* ---- segments, as the worker feeds them --------------------------------------- */

static void seg(struct prop *p, struct pflow *pf, enum flow_dir dir, uint8_t flags, uint32_t seq,
		uint32_t ack, uint32_t len)
{
	const struct tcpstate_seg s = { .flags = flags, .seq = seq, .ack = ack, .len = len };

	pf->f.state = tcpstate_next(&pf->f, dir, &s);
	palloc_on_segment(&p->pa, &pf->f, p->dur, p->now);
	m_segment(p, pf, (flags & TCPSTATE_RST) != 0);
}

/* What @dir acknowledges: all the other side sent. */
static uint32_t ack_all(struct pflow *pf, enum flow_dir dir)
{
	if (dir == REV && pf->cfin)
		pf->b_got_cfin = true;
	return pf->nxt[dir == FWD ? REV : FWD];
}

static bool fin_sent(const struct pflow *pf, enum flow_dir dir)
{
	return dir == FWD ? pf->cfin : pf->bfin;
}

static void send_ack(struct prop *p, struct pflow *pf, enum flow_dir dir)
{
	seg(p, pf, dir, TCPSTATE_ACK, pf->nxt[dir], ack_all(pf, dir), 0);
}

static void send_data(struct prop *p, struct pflow *pf, enum flow_dir dir)
{
	uint32_t len = 1 + (uint32_t)rnd(p, 1460), seq = pf->nxt[dir];

	if (fin_sent(pf, dir)) { /* nothing new after a FIN */
		send_ack(p, pf, dir);
		return;
	}
	pf->nxt[dir] += len;
	seg(p, pf, dir, TCPSTATE_ACK | 0x08, seq, ack_all(pf, dir), len);
}

static void send_fin(struct prop *p, struct pflow *pf, enum flow_dir dir, uint32_t ack)
{
	uint32_t len = rnd(p, 3) == 0 ? (uint32_t)rnd(p, 600) : 0;

	pf->fin_seq[dir] = pf->nxt[dir];
	pf->fin_len[dir] = len;
	pf->nxt[dir] += len + 1;
	if (dir == FWD)
		pf->cfin = true;
	else
		pf->bfin = true;
	seg(p, pf, dir, TCPSTATE_FIN | TCPSTATE_ACK, pf->fin_seq[dir], ack, len);
}

static void client_fin(struct prop *p, struct pflow *pf)
{
	send_fin(p, pf, FWD, ack_all(pf, FWD));
}

/* The backend closes on its own: its FIN does not acknowledge a client FIN. */
static void backend_fin_active(struct prop *p, struct pflow *pf)
{
	uint32_t ack = pf->nxt[FWD];

	if (pf->cfin) /* crossed it: the client's data at most */
		ack = pf->fin_seq[FWD] + pf->fin_len[FWD] - (uint32_t)rnd(p, pf->fin_len[FWD] + 1);
	pf->passive = false;
	send_fin(p, pf, REV, ack);
}

/* The backend answers the client's FIN with its own. */
static void backend_fin_passive(struct prop *p, struct pflow *pf)
{
	pf->passive = true;
	send_fin(p, pf, REV, ack_all(pf, REV));
}

static void refin(struct prop *p, struct pflow *pf, enum flow_dir dir)
{
	seg(p, pf, dir, TCPSTATE_FIN | TCPSTATE_ACK, pf->fin_seq[dir], ack_all(pf, dir),
	    pf->fin_len[dir]);
}

static void send_rst(struct prop *p, struct pflow *pf, enum flow_dir dir)
{
	uint8_t flags = TCPSTATE_RST | (rnd(p, 2) ? TCPSTATE_ACK : 0);

	seg(p, pf, dir, flags, pf->nxt[dir], pf->nxt[dir == FWD ? REV : FWD], 0);
}

/* ---- operations ---------------------------------------------------------------- */

/* A new flow toward a random backend; the flow, or NULL if palloc_get refused. */
static struct pflow *op_open(struct prop *p, int pr)
{
	int be = (int)rnd(p, NBE), idx = -1, rc;
	uint32_t detached, live_tcp, qs, busy = m_busy_keys(p);
	uint64_t may_try = 0, tried = ~0ULL;
	bool any_free = false, no_space = false, usable = false;
	struct pflow *pf;
	int want;

	for (int i = 0; i < MAXFLOWS && idx < 0; i++)
		if (!p->fl[i].used)
			idx = i;
	CHECK(p, idx >= 0, "more live flows than tuples");
	pf = &p->fl[idx];
	*pf = (struct pflow){ 0 };
	pf->f.proto = proto_of[pr];
	pf->f.cip = tf_n32(TF_CLIENT + (uint32_t)rnd(p, 1000));
	pf->f.cport = tf_n16((uint16_t)(1024 + rnd(p, 60000)));
	pf->f.vip = tf_n32(TF_VIP);
	pf->f.vport = tf_n16(80);
	pf->f.bip = tf_n32(be_ip[be]);
	pf->f.bport = tf_n16(be_port[be]);
	pf->f.state = pr == 0 ? FLOW_SYN : FLOW_UDP;

	/* The model's answer. */
	m_counts(p, &detached, &live_tcp, &qs);
	for (int a = 0; a < NADDR; a++) {
		if (!m_usable(p, a))
			continue;
		usable = true;
		if (m_share_empty(p, a))
			continue;
		if (!m_key_busy(p, pr, be, a) && busy >= p->max_spaces) {
			no_space = true;
			continue;
		}
		may_try |= 1ULL << p->addr[a].slot;
		any_free |= m_has_free(p, pr, be, a);
	}
	if (pr == 0 && detached + live_tcp >= p->max_q)
		want = -ENOBUFS;
	else if (!usable)
		want = -ENOENT;
	else if (any_free)
		want = 0;
	else
		want = no_space && may_try == 0 ? -ENOMEM : -ENOSPC;

	rc = palloc_get(&p->pa, p->c, p->svc, &pf->f, &tried);
	prop_log(p, "open %s be%d -> %d port %u slot %u tried %#" PRIx64, pr ? "udp" : "tcp", be,
		 rc, rc == 0 ? tf_rd16((const uint8_t *)&pf->f.sport) : 0, pf->f.snat_slot, tried);
	CHECK(p, rc == want, "palloc_get %d, model %d", rc, want);
	switch (rc) {
	case 0:
		p->n_ok++;
		break;
	case -ENOSPC:
		p->n_enospc++;
		CHECK(p, tried == may_try, "-ENOSPC tried %#" PRIx64 ", model %#" PRIx64, tried,
		      may_try);
		return NULL;
	case -ENOMEM:
		p->n_enomem++;
		CHECK(p, tried == 0, "-ENOMEM tried %#" PRIx64, tried);
		return NULL;
	case -ENOBUFS:
		p->n_enobufs++;
		return NULL;
	default:
		p->n_enoent++;
		return NULL;
	}

	/* Success: a free tuple of a usable address, in its range and share. */
	pf->addr = slot_addr(p, pf->f.snat_slot);
	CHECK(p, pf->addr >= 0 && m_usable(p, pf->addr), "tuple from unusable slot %u",
	      pf->f.snat_slot);
	pf->port = tf_rd16((const uint8_t *)&pf->f.sport);
	pf->proto = pr;
	pf->be = be;
	CHECK(p, pf->f.sip == tf_n32(p->addr[pf->addr].ip), "sip is not slot %u's address",
	      pf->f.snat_slot);
	CHECK(p, pf->f.snat_gen == p->c->snat[pf->f.snat_slot].gen, "stale snat_gen");
	CHECK(p, pf->port >= p->addr[pf->addr].lo && pf->port <= p->addr[pf->addr].hi,
	      "port %u out of range %u-%u", pf->port, p->addr[pf->addr].lo, p->addr[pf->addr].hi);
	CHECK(p, in_share(p, pf->port), "port %u not in this worker's share", pf->port);
	CHECK(p, !m_held(mt(p, pr, be, pf->addr, pf->port)), "port %u handed out while held",
	      pf->port);
	CHECK(p, (tried & (1ULL << pf->f.snat_slot)) && (tried & ~may_try) == 0,
	      "tried %#" PRIx64 " (may try %#" PRIx64 ")", tried, may_try);
	for (int a = 0; a < NADDR; a++)
		if (a != pf->addr && p->addr[a].slot >= 0 && (tried & (1ULL << p->addr[a].slot)))
			CHECK(p, !m_has_free(p, pr, be, a), "tried addr%d before, but it had room",
			      a);
	mt(p, pr, be, pf->addr, pf->port)->flow = (int16_t)idx;
	pf->used = true;
	check_flow(p, pf);

	if (pr != 0)
		return pf;
	/* The handshake; sometimes the backend never answers. */
	pf->nxt[FWD] = (uint32_t)tf_rand(&p->rng);
	pf->nxt[REV] = (uint32_t)tf_rand(&p->rng);
	if (rnd(p, 4) == 0) /* near the wrap */
		pf->nxt[FWD] = (uint32_t)(-1 - rnd(p, 3000));
	seg(p, pf, FWD, TCPSTATE_SYN, pf->nxt[FWD]++, 0, 0);
	if (rnd(p, 10) == 0)
		return pf;
	seg(p, pf, REV, TCPSTATE_SYN | TCPSTATE_ACK, pf->nxt[REV]++, pf->nxt[FWD], 0);
	send_ack(p, pf, FWD);
	return pf;
}

static void op_end(struct prop *p, struct pflow *pf)
{
	struct mtuple *t = mt(p, pf->proto, pf->be, pf->addr, pf->port);

	prop_log(p, "end " PF_FMT " (c%d b%d passive%d rst%d tw%d)", PF_ARGS(pf), pf->cfin,
		 pf->bfin, pf->passive, pf->rst, pf->tw);
	palloc_on_end(&p->pa, &pf->f, p->dur, p->now);
	if (pf->proto == 0 && pf->bfin && !pf->cfin && !pf->rst && p->dur > 0) {
		t->q = true;
		t->q_until = p->now + p->dur;
		p->n_endq++;
	}
	t->flow = -1;
	pf->used = false;
}

enum seg_op {
	S_DATA_C,
	S_DATA_B,
	S_ACK_C,
	S_ACK_B,
	S_FIN_C,
	S_FIN_B_ACTIVE,
	S_FIN_B_PASSIVE,
	S_REFIN_C,
	S_REFIN_B,
	S_RST_C,
	S_RST_B,
	S_CLOSE_CLIENT_FIRST,
	S_CLOSE_BACKEND_FIRST,
	S_CLOSE_SIMULTANEOUS,
	S_COUNT
};

static const char *const seg_names[S_COUNT] = {
	"data c",
	"data b",
	"ack c",
	"ack b",
	"fin c",
	"fin b active",
	"fin b passive",
	"fin c again",
	"fin b again",
	"rst c",
	"rst b",
	"close client-first",
	"close backend-first",
	"close simultaneous",
};

static void op_segment(struct prop *p, struct pflow *pf)
{
	enum seg_op op;
	uint32_t r = (uint32_t)rnd(p, 100);

	/* Closes are common so that quarantines are: the pool is tiny. */
	op = r < 10 ? S_DATA_C :
	     r < 20 ? S_DATA_B :
	     r < 28 ? S_ACK_C :
	     r < 36 ? S_ACK_B :
	     r < 42 ? S_FIN_C :
	     r < 48 ? S_FIN_B_ACTIVE :
	     r < 53 ? S_FIN_B_PASSIVE :
	     r < 58 ? S_REFIN_C :
	     r < 63 ? S_REFIN_B :
	     r < 66 ? S_RST_C :
	     r < 69 ? S_RST_B :
	     r < 79 ? S_CLOSE_CLIENT_FIRST :
	     r < 91 ? S_CLOSE_BACKEND_FIRST :
		      S_CLOSE_SIMULTANEOUS;
	/* What cannot happen now becomes an ACK. */
	if ((op == S_FIN_C && pf->cfin) || (op == S_FIN_B_ACTIVE && (pf->bfin || pf->b_got_cfin)) ||
	    (op == S_FIN_B_PASSIVE && (pf->bfin || !pf->cfin)) || (op == S_REFIN_C && !pf->cfin) ||
	    (op == S_REFIN_B && !pf->bfin) ||
	    (op >= S_CLOSE_CLIENT_FIRST && (pf->cfin || pf->bfin)))
		op = rnd(p, 2) ? S_ACK_C : S_ACK_B;
	prop_log(p, PF_FMT ": %s", PF_ARGS(pf), seg_names[op]);
	switch (op) {
	case S_DATA_C:
		send_data(p, pf, FWD);
		break;
	case S_DATA_B:
		send_data(p, pf, REV);
		break;
	case S_ACK_C:
		send_ack(p, pf, FWD);
		break;
	case S_ACK_B:
		send_ack(p, pf, REV);
		break;
	case S_FIN_C:
		client_fin(p, pf);
		break;
	case S_FIN_B_ACTIVE:
		backend_fin_active(p, pf);
		break;
	case S_FIN_B_PASSIVE:
		backend_fin_passive(p, pf);
		break;
	case S_REFIN_C:
		refin(p, pf, FWD);
		break;
	case S_REFIN_B:
		refin(p, pf, REV);
		break;
	case S_RST_C:
		send_rst(p, pf, FWD);
		break;
	case S_RST_B:
		send_rst(p, pf, REV);
		break;
	case S_CLOSE_CLIENT_FIRST:
		client_fin(p, pf);
		backend_fin_passive(p, pf);
		send_ack(p, pf, FWD);
		break;
	case S_CLOSE_BACKEND_FIRST:
		backend_fin_active(p, pf);
		send_ack(p, pf, FWD);
		client_fin(p, pf);
		send_ack(p, pf, REV);
		break;
	case S_CLOSE_SIMULTANEOUS:
		client_fin(p, pf);
		backend_fin_active(p, pf);
		send_ack(p, pf, FWD);
		send_ack(p, pf, REV);
		break;
	case S_COUNT:
		break;
	}
	check_flow(p, pf);
}

static uint32_t op_expire(struct prop *p, uint32_t budget)
{
	uint32_t due = 0, n;

	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				for (int i = 0; i < NPORT; i++) {
					const struct mtuple *t = &p->t[pr][b][a][i];

					due += t->q && t->q_until <= p->now;
				}
	n = palloc_expire(&p->pa, p->now, budget);
	prop_log(p, "expire budget %u: %u of %u due", budget, n, due);
	CHECK(p, n == (due < budget ? due : budget), "palloc_expire ended %u, model %u due", n,
	      due);
	if (n < due) {
		/* Which ones went is palloc's choice; the rest go now. */
		n = palloc_expire(&p->pa, p->now, UINT32_MAX);
		CHECK(p, n == due - budget, "second palloc_expire ended %u, model %u left", n,
		      due - budget);
	}
	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				for (int i = 0; i < NPORT; i++) {
					struct mtuple *t = &p->t[pr][b][a][i];

					if (t->q && t->q_until <= p->now)
						t->q = false;
				}
	p->n_expired += due;
	return due;
}

static void op_time(struct prop *p)
{
	uint64_t next = UINT64_MAX;
	uint32_t r = (uint32_t)rnd(p, 8);

	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				for (int i = 0; i < NPORT; i++) {
					const struct mtuple *t = &p->t[pr][b][a][i];

					if (t->q && t->q_until >= p->now && t->q_until < next)
						next = t->q_until;
				}
	if (r < 2 && next != UINT64_MAX) {
		/* Exactly to the next expiry, or the millisecond before. */
		p->now = next - (r == 1 && next > p->now ? 1 : 0);
	} else if (r < 4) {
		p->now += rnd(p, 20);
	} else {
		p->now += rnd(p, 2 * (uint64_t)p->durs[3] + 1);
	}
	prop_log(p, "time");
}

static void addr_add(struct prop *p, struct maddr *m)
{
	int s;

	do
		s = (int)rnd(p, NSLOT);
	while (p->c->snat[s].used);
	m->slot = s;
	m->draining = false;
	p->c->snat[s] = (struct cfg_snat){
		.used = true, .gen = p->c->next_gen++, .ip = tf_n32(m->ip), .lo = m->lo, .hi = m->hi
	};
}

static void op_config(struct prop *p)
{
	int a = (int)rnd(p, NADDR);
	struct maddr *m = &p->addr[a];
	bool has_flows = false;

	for (int i = 0; i < MAXFLOWS; i++)
		if (p->fl[i].used && p->fl[i].addr == a)
			has_flows = true;
	switch (rnd(p, 8)) {
	case 0: /* drain, or end draining */
		if (m->slot >= 0) {
			m->draining = !m->draining;
			p->c->snat[m->slot].draining = m->draining;
		}
		break;
	case 1: /* delete: drain until the last flow has ended */
		if (m->slot >= 0 && !has_flows) {
			p->c->snat[m->slot] = (struct cfg_snat){ 0 };
			m->slot = -1;
		} else if (m->slot >= 0) {
			m->draining = true;
			p->c->snat[m->slot].draining = true;
		}
		break;
	case 2:
	case 3: /* another range within the address's ports */
		m->lo = (uint16_t)(m->base + rnd(p, NPORT / 2));
		m->hi = (uint16_t)(m->lo + rnd(p, (uint32_t)(m->base + NPORT - m->lo)));
		if (m->slot >= 0) {
			p->c->snat[m->slot].lo = m->lo;
			p->c->snat[m->slot].hi = m->hi;
		}
		break;
	case 4: /* the service's address set */
		p->svc->snat_all = rnd(p, 4) != 0;
		p->svc->snat_mask = tf_rand(&p->rng) & ((1ULL << NSLOT) - 1);
		break;
	default: /* back to normal: added again (maybe in another slot), not draining */
		if (m->slot < 0)
			addr_add(p, m);
		m->draining = false;
		p->c->snat[m->slot].draining = false;
		if (rnd(p, 2))
			p->svc->snat_all = true;
		break;
	}
	prop_log(p, "addr%d slot %d draining %d range %u-%u; snat all %d mask %#" PRIx64, a,
		 m->slot, m->draining, m->lo, m->hi, p->svc->snat_all, p->svc->snat_mask);
}

static struct pflow *pick_flow(struct prop *p)
{
	uint32_t start = (uint32_t)rnd(p, MAXFLOWS);

	for (uint32_t i = 0; i < MAXFLOWS; i++) {
		struct pflow *pf = &p->fl[(start + i) % MAXFLOWS];

		if (pf->used)
			return pf;
	}
	return NULL;
}

static void prop_step(struct prop *p)
{
	uint32_t r = (uint32_t)rnd(p, 1000);
	struct pflow *pf = NULL;
	bool sweep = p->step % SWEEP == 0;

	if (r < 200) {
		pf = op_open(p, 0);
	} else if (r < 240) {
		pf = op_open(p, 1);
	} else if (r < 660) {
		pf = pick_flow(p);
		if (pf != NULL && pf->proto == 0)
			op_segment(p, pf);
		else if (pf != NULL)
			prop_log(p, PF_FMT ": datagram", PF_ARGS(pf)); /* palloc sees nothing */
	} else if (r < 800) {
		pf = pick_flow(p);
		if (pf != NULL)
			op_end(p, pf);
	} else if (r < 890) {
		op_time(p);
		if (rnd(p, 2) && op_expire(p, UINT32_MAX) > 0)
			sweep = true;
	} else if (r < 960) {
		if (op_expire(p, rnd(p, 4) ? UINT32_MAX : (uint32_t)rnd(p, 3)) > 0)
			sweep = true;
	} else if (r < 975) {
		p->dur = p->durs[rnd(p, 4)];
		prop_log(p, "duration %u", p->dur);
	} else {
		op_config(p);
	}
	/* What the step touched now, everything from time to time. */
	if (pf != NULL)
		check_key(p, pf->proto, pf->be, pf->addr);
	if (sweep)
		check_all(p);
}

struct prop_setup {
	uint64_t seed;
	uint32_t steps;
	uint16_t nworkers;
	uint32_t max_spaces, max_q;
	uint16_t base[NADDR];
	uint32_t durs[4];
	uint64_t age_ms; /* palloc's clock origin lies this far back */
};

static void prop_run(const struct prop_setup *su)
{
	struct prop *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->seed = su->seed;
	p->rng = su->seed;
	p->nworkers = su->nworkers;
	p->worker = (uint16_t)rnd(p, su->nworkers);
	p->max_spaces = su->max_spaces;
	p->max_q = su->max_q;
	memcpy(p->durs, su->durs, sizeof(p->durs));
	p->dur = p->durs[1];
	p->now = (1ULL << 33) + rnd(p, 1000);
	p->c = cfg_new();
	assert_non_null(p->c);
	p->svc = &p->c->services[0];
	p->svc->used = true;
	p->svc->gen = p->c->next_gen++;
	p->svc->proto = IPPROTO_TCP;
	p->svc->snat_all = true;
	for (int a = 0; a < NADDR; a++) {
		struct maddr *m = &p->addr[a];

		m->ip = TF_IP(10, 1, 0, 1 + a);
		m->base = su->base[a];
		m->lo = m->base;
		m->hi = (uint16_t)(m->base + 5 + rnd(p, NPORT - 5)); /* 6 to 12 ports */
		m->slot = a * 3;
		p->c->snat[m->slot] = (struct cfg_snat){ .used = true,
							 .gen = p->c->next_gen++,
							 .ip = tf_n32(m->ip),
							 .lo = m->lo,
							 .hi = m->hi };
	}
	for (int pr = 0; pr < NPROTO; pr++)
		for (int b = 0; b < NBE; b++)
			for (int a = 0; a < NADDR; a++)
				for (int i = 0; i < NPORT; i++)
					p->t[pr][b][a][i].flow = -1;
	assert_int_equal(palloc_init(&p->pa, p->worker, p->nworkers, su->seed ^ 0xabcdef,
				     p->max_spaces, p->max_q, -1, p->now - su->age_ms),
			 0);

	for (p->step = 0; p->step < su->steps; p->step++)
		prop_step(p);

	/* Wind down: every flow ends, every quarantine runs out, nothing is held. */
	for (int i = 0; i < MAXFLOWS; i++)
		if (p->fl[i].used)
			op_end(p, &p->fl[i]);
	check_all(p);
	p->now += p->durs[3];
	op_expire(p, UINT32_MAX);
	check_all(p);
	CHECK(p,
	      palloc_quarantine_used(&p->pa) == 0 && p->pa.q_detached == 0 && p->pa.live_tcp == 0,
	      "left over: %u entries, %u detached, %u live TCP", palloc_quarantine_used(&p->pa),
	      p->pa.q_detached, p->pa.live_tcp);
	print_message("seed 0x%" PRIx64 " worker %u/%u spaces %u quarantine %u: %u steps, %" PRIu64
		      " flows, -ENOSPC %" PRIu64 " -ENOBUFS %" PRIu64 " -ENOMEM %" PRIu64
		      " -ENOENT %" PRIu64 ", %" PRIu64 " TIME_WAIT, %" PRIu64
		      " quarantined at end, %" PRIu64 " expired\n",
		      p->seed, p->worker, p->nworkers, p->max_spaces, p->max_q, su->steps, p->n_ok,
		      p->n_enospc, p->n_enobufs, p->n_enomem, p->n_enoent, p->n_tw, p->n_endq,
		      p->n_expired);
	/* A run that never met a boundary tested little (replays may be short). */
	if (su->steps >= 100000) {
		assert_true(p->n_ok > su->steps / 20);
		assert_true(p->n_enospc > 0 && p->n_enoent > 0);
		assert_true(p->n_tw > 0 && p->n_endq > 0 && p->n_expired > 0);
		if (p->max_q < MAXFLOWS)
			assert_true(p->n_enobufs > 0);
		if (p->max_spaces < NPROTO * NBE * NADDR)
			assert_true(p->n_enomem > 0);
	}
	palloc_free(&p->pa);
	cfg_free(p->c);
	free(p);
}

/*
 * The seeds: one or two workers; ranges across a bitmap word boundary, a
 * summary word boundary and the top of the port range; a quarantine or a
 * space pool small enough to run out; palloc's 32-bit millisecond clock
 * wrapping a minute into the run (49.7 days after palloc_init()).
 */
#define WRAPS_SOON ((1ULL << 32) - 60000)

static const struct prop_setup setups[] = {
	{ 0x5eed0001, 300000, 1, 16, 4096, { 4090, 5114 }, { 0, 1000, 2500, 7000 }, 0 },
	{ 0x5eed0002, 300000, 2, 16, 4096, { 8186, 65524 }, { 0, 700, 1000, 3000 }, WRAPS_SOON },
	{ 0x5eed0003, 300000, 2, 16, 14, { 5114, 1024 }, { 0, 1000, 1500, 4000 }, 0 },
	{ 0x5eed0004, 300000, 1, 5, 4096, { 65524, 2000 }, { 0, 300, 1000, 2000 }, WRAPS_SOON },
};

static void random_operations_follow_the_model(void **state)
{
	const char *seed = getenv("PORTSPACE_SEED"), *steps = getenv("PORTSPACE_STEPS");

	(void)state;
	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		struct prop_setup su = setups[i];

		if (seed != NULL && strtoull(seed, NULL, 0) != su.seed)
			continue;
		if (steps != NULL)
			su.steps = (uint32_t)strtoul(steps, NULL, 0);
		prop_run(&su);
	}
}

/* ---- wide ranges: the bitmap search over many words --------------------------- */

#define WIDE	   1024 /* ports of the widest range */
#define WIDE_SWEEP 4096 /* compare every port every WIDE_SWEEP operations */

/*
 * The tiny ranges above fit in one or two bitmap words. Here one address and
 * one backend, a range of up to WIDE ports across a summary word boundary
 * (bit 4096), kept nearly full so that the search must skip full words; the
 * model is one bit per port.
 */
static void wide_run(uint64_t seed, uint16_t nworkers, uint32_t ops)
{
	struct palloc pa;
	struct cfg *c = cfg_new();
	struct cfg_service *svc;
	static struct flow fl[WIDE];
	bool held[WIDE] = { false };
	uint64_t rng = seed, tried;
	uint16_t worker = (uint16_t)(tf_rand(&rng) % nworkers);
	uint32_t base = 4096u * nworkers - 400, lo = base, hi = base + WIDE - 1, nheld = 0;
	uint64_t n_ok = 0, n_full = 0;

	assert_non_null(c);
	svc = &c->services[0];
	svc->used = true;
	svc->snat_all = true;
	c->snat[0] = (struct cfg_snat){
		.used = true, .gen = 1, .ip = htonl(TF_SNAT), .lo = (uint16_t)lo, .hi = (uint16_t)hi
	};
	assert_int_equal(palloc_init(&pa, worker, nworkers, seed, 4, 4 * WIDE, -1, 0), 0);
	for (uint32_t op = 0; op < ops; op++) {
		uint32_t r = (uint32_t)(tf_rand(&rng) % 1000), k;

		if (r < 540) {
			struct flow f = { .proto = IPPROTO_TCP,
					  .bip = htonl(TF_BACKEND),
					  .bport = htons(80) };
			bool any = false;
			int rc;

			for (uint32_t port = lo; port <= hi && !any; port++)
				any = port % nworkers == worker && !held[port - base];
			rc = palloc_get(&pa, c, svc, &f, &tried);
			if (rc != (any ? 0 : -ENOSPC))
				fail_msg("wide seed 0x%" PRIx64
					 " op %u: palloc_get %d, a port is %s",
					 seed, op, rc, any ? "free" : "not free");
			if (rc < 0) {
				n_full++;
				continue;
			}
			n_ok++;
			k = ntohs(f.sport);
			if (k < lo || k > hi || k % nworkers != worker || held[k - base])
				fail_msg("wide seed 0x%" PRIx64
					 " op %u: got port %u (range %u-%u, %s)",
					 seed, op, k, lo, hi,
					 k >= base && k - base < WIDE && held[k - base] ? "held" :
											  "free");
			held[k - base] = true;
			fl[k - base] = f;
			nheld++;
		} else if (r < 990 && nheld > 0) {
			/* The next held port from a random one. */
			k = (uint32_t)(tf_rand(&rng) % WIDE);
			while (!held[k])
				k = (k + 1) % WIDE;
			palloc_release(&pa, &fl[k]);
			held[k] = false;
			nheld--;
		} else if (r < 998) {
			/* A block goes: whole words free up among full ones. */
			uint32_t from = (uint32_t)(tf_rand(&rng) % WIDE),
				 len = 1 + tf_rand(&rng) % 200;

			for (k = from; k < from + len && k < WIDE; k++)
				if (held[k]) {
					palloc_release(&pa, &fl[k]);
					held[k] = false;
					nheld--;
				}
		} else {
			/* Another range: its edges fall anywhere in a word. */
			lo = base + (uint32_t)(tf_rand(&rng) % (WIDE / 2));
			hi = lo + (uint32_t)(tf_rand(&rng) % (base + WIDE - lo));
			if (tf_rand(&rng) % 2)
				lo = base, hi = base + WIDE - 1;
			c->snat[0].lo = (uint16_t)lo;
			c->snat[0].hi = (uint16_t)hi;
		}
		if (op % WIDE_SWEEP == 0 || op + 1 == ops) {
			for (k = 0; k < WIDE; k++)
				if (palloc_held(&pa, IPPROTO_TCP, htonl(TF_BACKEND), htons(80),
						htonl(TF_SNAT),
						htons((uint16_t)(base + k))) != held[k])
					fail_msg("wide seed 0x%" PRIx64 " op %u: port %u held %d",
						 seed, op, base + k, held[k]);
			if (palloc_space_held(&pa, 0, (uint16_t)base,
					      (uint16_t)(base + WIDE - 1)) != nheld)
				fail_msg("wide seed 0x%" PRIx64 " op %u: %u held, model %u", seed,
					 op,
					 palloc_space_held(&pa, 0, (uint16_t)base,
							   (uint16_t)(base + WIDE - 1)),
					 nheld);
		}
	}
	print_message("wide seed 0x%" PRIx64 " worker %u/%u: %u operations, %" PRIu64
		      " allocations, %" PRIu64 " -ENOSPC\n",
		      seed, worker, nworkers, ops, n_ok, n_full);
	assert_true(n_full > ops / 100);
	palloc_free(&pa);
	cfg_free(c);
}

static void wide_ranges_follow_a_bitmap_model(void **state)
{
	(void)state;
	wide_run(0x51de0001, 1, 150000);
	wide_run(0x51de0002, 2, 150000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_operations_follow_the_model),
		cmocka_unit_test(wide_ranges_follow_a_bitmap_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
