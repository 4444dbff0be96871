/* SPDX-License-Identifier: BSD-3-Clause */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_random.h>
#include <rte_ring.h>

#include "hc.h"

#define HC_RING		    4096
#define HC_REPORTS_PER_POLL 1024
#define HC_CHECK_PORTS	    (CFG_CHECK_PORT_HI - CFG_CHECK_PORT_LO + 1)

/* A TCP probe's ISN carries its backend slot in the low bits, an echo's id is the slot. */
static_assert((CFG_MAX_BACKENDS & (CFG_MAX_BACKENDS - 1)) == 0, "slot mask");
static_assert(CFG_MAX_BACKENDS <= 65536, "an echo id holds a slot");

struct rte_ring *hc_probes;
struct rte_ring *hc_reports;

/* Control thread only. */
struct hc_backend {
	uint32_t gen; /* of the backend this state is about; 0: none */
	bool waiting; /* a probe is out */
	uint8_t kind; /* of the probe that is out */
	uint8_t ok_run, fail_run;
	uint8_t last;	  /* enum hc_result */
	uint8_t want;	  /* health to publish + 1; 0: no change */
	uint16_t sport;	  /* of the probe that is out */
	uint32_t src;	  /* likewise */
	uint32_t cookie;  /* its ISN, or echo id << 16 | seq */
	uint32_t sent;	  /* probes sent; rotates the source port */
	uint64_t sent_ms; /* when the probe that is out left */
	uint64_t next_ms; /* when the next one is due */
	uint64_t ok, failed;
};

static struct hc_backend hc_be[CFG_MAX_BACKENDS];
static bool hc_pending; /* some want is set */

static bool hc_ring_send(const struct hc_probe *p)
{
	struct hc_probe copy = *p; /* the ring API takes a non-const pointer */

	return hc_probes != NULL && rte_ring_sp_enqueue_elem(hc_probes, &copy, sizeof(copy)) == 0;
}

static hc_output_fn hc_out = hc_ring_send;

void hc_set_output(hc_output_fn fn)
{
	hc_out = fn != NULL ? fn : hc_ring_send;
}

static void hc_fini(void)
{
	rte_ring_free(hc_probes);
	rte_ring_free(hc_reports);
	hc_probes = NULL;
	hc_reports = NULL;
}

int hc_init(void)
{
	hc_probes = rte_ring_create_elem("sl_hc_probes", sizeof(struct hc_probe), HC_RING,
					 SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	hc_reports = rte_ring_create_elem("sl_hc_reports", sizeof(struct hc_report), HC_RING,
					  SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (hc_probes == NULL || hc_reports == NULL) {
		int err = rte_errno;

		hc_fini();
		return -err;
	}
	return 0;
}

const char *hc_result_name(uint8_t result)
{
	static const char *const names[] = { "none",	"ok",	     "timeout",
					     "refused", "no_source", "not_sent" };

	return result < sizeof(names) / sizeof(names[0]) ? names[result] : "?";
}

bool hc_backend_info(int slot, uint32_t gen, struct hc_info *info)
{
	const struct hc_backend *h;

	if (slot < 0 || slot >= CFG_MAX_BACKENDS || hc_be[slot].gen != gen || gen == 0)
		return false;
	h = &hc_be[slot];
	*info = (struct hc_info){ .ok = h->ok, .failed = h->failed, .last = h->last };
	return true;
}

/* The outcome of one probe of backend @slot, by the rules in hc.h. */
static void hc_conclude(const struct cfg *c, int slot, uint8_t result)
{
	struct hc_backend *h = &hc_be[slot];
	const struct cfg_backend *be = &c->backends[slot];
	const struct cfg_check *ck = &c->services[be->svc].check;
	uint8_t health = h->want != 0 ? (uint8_t)(h->want - 1) : be->health;

	h->waiting = false;
	h->last = result;
	if (result == HC_OK) {
		h->ok++;
		h->fail_run = 0;
		if (h->ok_run < UINT8_MAX)
			h->ok_run++;
		if (health == CFG_HEALTH_DOWN && h->ok_run >= ck->rise)
			health = CFG_HEALTH_UP;
	} else {
		h->failed++;
		h->ok_run = 0;
		if (h->fail_run < UINT8_MAX)
			h->fail_run++;
		if (health != CFG_HEALTH_DOWN && h->fail_run >= ck->fall)
			health = CFG_HEALTH_DOWN;
	}
	if (health != be->health) {
		h->want = (uint8_t)(health + 1);
		hc_pending = true;
	} else {
		h->want = 0;
	}
}

void hc_report_in(const struct hc_report *r)
{
	const struct cfg *c = cfg_current();
	const struct cfg_backend *be;
	struct hc_backend *h;
	uint32_t cookie;
	uint32_t slot;

	if (r->kind == CFG_CHECK_TCP) {
		cookie = r->ack - 1; /* a SYN-ACK or a RST acknowledges the SYN */
		slot = cookie & (CFG_MAX_BACKENDS - 1);
	} else {
		cookie = r->ack;
		slot = cookie >> 16;
	}
	if (slot >= CFG_MAX_BACKENDS)
		return;
	h = &hc_be[slot];
	be = &c->backends[slot];
	/* Only the answer to the probe that is out counts; anything else is
	 * late, forged or about a backend that has gone. */
	if (!h->waiting || h->kind != r->kind || h->cookie != cookie || !be->used ||
	    be->gen != h->gen || r->src != be->ip || r->dst != h->src)
		return;
	if (r->kind == CFG_CHECK_TCP && (r->sport != be->l4port || r->dport != h->sport))
		return;
	hc_conclude(c, (int)slot, r->ok ? HC_OK : HC_REFUSED);
}

/* The address probes of service @svc leave from: its first usable SNAT address. */
static uint32_t hc_source(const struct cfg *c, const struct cfg_service *s)
{
	for (int i = 0; i < CFG_MAX_SNAT; i++)
		if (cfg_svc_snat(c, s, i))
			return c->snat[i].ip;
	return 0;
}

static void hc_send(const struct cfg *c, int slot, uint64_t now_ms)
{
	struct hc_backend *h = &hc_be[slot];
	const struct cfg_backend *be = &c->backends[slot];
	const struct cfg_service *s = &c->services[be->svc];
	struct hc_probe p = { .kind = s->check.kind, .dst = be->ip };

	h->next_ms = now_ms + (uint64_t)s->check.interval_s * 1000;
	p.src = hc_source(c, s);
	if (p.src == 0) {
		hc_conclude(c, slot, HC_NO_SOURCE);
		return;
	}
	if (p.kind == CFG_CHECK_TCP) {
		p.sport = rte_cpu_to_be_16(
			(uint16_t)(CFG_CHECK_PORT_LO + (slot + h->sent) % HC_CHECK_PORTS));
		p.dport = be->l4port;
		p.isn = ((uint32_t)rte_rand() & ~(uint32_t)(CFG_MAX_BACKENDS - 1)) | (uint32_t)slot;
	} else {
		p.isn = (uint32_t)slot << 16 | (uint16_t)rte_rand();
	}
	h->sent++;
	if (!hc_out(&p)) {
		hc_conclude(c, slot, HC_NOT_SENT);
		return;
	}
	h->waiting = true;
	h->kind = p.kind;
	h->cookie = p.isn;
	h->sport = p.sport;
	h->src = p.src;
	h->sent_ms = now_ms;
}

/* Publish the health changes concluded; kept for the next poll if that fails. */
static void hc_publish(uint64_t now_ms)
{
	struct cfg *n = cfg_clone(cfg_current());
	unsigned int changed = 0;

	if (n == NULL)
		return;
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		struct hc_backend *h = &hc_be[b];
		struct cfg_backend *be = &n->backends[b];

		if (h->want == 0)
			continue;
		if (be->used && be->gen == h->gen &&
		    n->services[be->svc].check.kind != CFG_CHECK_OFF) {
			be->health = (uint8_t)(h->want - 1);
			be->health_ms = now_ms;
			n->services[be->svc].bsel_dirty = true;
			changed++;
		}
	}
	/* Nothing left to change (the checks went off meanwhile): no snapshot. */
	if (changed == 0) {
		cfg_free(n);
	} else if (cfg_derive(n) < 0) {
		cfg_free(n);
		return;
	} else {
		cfg_publish(n);
	}
	for (int b = 0; b < CFG_MAX_BACKENDS; b++)
		hc_be[b].want = 0;
	hc_pending = false;
}

void hc_poll(uint64_t now_ms)
{
	const struct cfg *c;

	if (hc_reports != NULL) {
		struct hc_report r[64];
		unsigned int n, total = 0;

		do {
			n = rte_ring_sc_dequeue_burst_elem(hc_reports, r, sizeof(r[0]), 64, NULL);
			for (unsigned int i = 0; i < n; i++)
				hc_report_in(&r[i]);
			total += n;
		} while (n == 64 && total < HC_REPORTS_PER_POLL);
	}
	c = cfg_current();
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		const struct cfg_backend *be = &c->backends[b];
		struct hc_backend *h = &hc_be[b];
		const struct cfg_check *ck;

		if (!be->used || c->services[be->svc].check.kind == CFG_CHECK_OFF) {
			h->gen = 0;
			h->want = 0;
			continue;
		}
		ck = &c->services[be->svc].check;
		if (h->gen != be->gen) {
			/* New to checks: the first probe within an interval, spread out. */
			*h = (struct hc_backend){ .gen = be->gen };
			h->next_ms =
				now_ms + ((uint64_t)b * 131) % ((uint64_t)ck->interval_s * 1000);
		}
		if (h->waiting && h->kind != ck->kind)
			h->waiting = false; /* the check changed: forget the old probe */
		if (h->waiting && now_ms >= h->sent_ms + (uint64_t)ck->timeout_s * 1000)
			hc_conclude(c, b, HC_TIMEOUT);
		if (!h->waiting && now_ms >= h->next_ms)
			hc_send(c, b, now_ms);
	}
	if (hc_pending)
		hc_publish(now_ms);
}
