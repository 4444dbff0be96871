/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The values of the "show" commands (ctl_view.h), the "clear stats"
 * baseline they subtract, and what else sums the per-lcore counters: the
 * rate sampling of ctl_tick() and the reaping of drained SNAT addresses.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "ctl_priv.h"
#include "ctl_view.h"
#include "flow.h"
#include "hc.h"
#include "palloc.h"
#include "stats.h"
#include "worker.h"

/* ---- baseline of "clear stats" ---- */

struct ctl_base_obj {
	uint32_t gen;
	uint64_t total;
	uint64_t alloc_failures;
	uint64_t tw_reuses;
};

static struct {
	struct stats_lcore lcore[WORKER_MAX]; /* by worker index */
	struct ctl_base_obj svc[CFG_MAX_SERVICES];
	struct ctl_base_obj be[CFG_MAX_BACKENDS];
	struct ctl_base_obj snat[CFG_MAX_SNAT];
} ctl_base;

static uint64_t ctl_since(uint64_t now, uint64_t base)
{
	/* Never negative, even if a reader raced a worker at clear time. */
	return now >= base ? now - base : 0;
}

const struct worker *ctl_view_worker(uint16_t i)
{
	return i < worker_count && i < WORKER_MAX ? worker_list[i] : NULL;
}

/* Counters of worker @i since "clear stats". */
static void ctl_lcore_net(uint16_t i, struct stats_lcore *net)
{
	const struct worker *w = ctl_view_worker(i);
	const struct stats_lcore *b = &ctl_base.lcore[i];

	memset(net, 0, sizeof(*net));
	if (w == NULL)
		return;
#define CTL_NET(name) net->name = ctl_since(w->stats.name, b->name);
	STATS_LCORE_COUNTERS(CTL_NET)
#undef CTL_NET
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		net->drops[r] = ctl_since(w->stats.drops[r], b->drops[r]);
}

static void ctl_sum_service(const struct cfg *c, int s, uint64_t *active, uint64_t *total)
{
	*active = *total = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_view_worker(i);

		if (w == NULL || w->svc[s].gen != c->services[s].gen)
			continue;
		*active += w->svc[s].active;
		*total += w->svc[s].total;
	}
}

uint64_t ctl_stats_service_total(const struct cfg *c, int slot)
{
	uint64_t active, total;

	ctl_sum_service(c, slot, &active, &total);
	return total;
}

static void ctl_sum_backend(const struct cfg *c, int b, uint64_t *active, uint64_t *total,
			    uint64_t *fail)
{
	*active = *total = *fail = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_view_worker(i);

		if (w == NULL || w->be[b].gen != c->backends[b].gen)
			continue;
		*active += w->be[b].active;
		*total += w->be[b].total;
		*fail += w->be[b].alloc_failures;
	}
}

static void ctl_sum_snat(const struct cfg *c, int n, uint64_t *in_use, uint64_t *fail,
			 uint64_t *reuses)
{
	*in_use = *fail = *reuses = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_view_worker(i);

		if (w == NULL || w->snat[n].gen != c->snat[n].gen)
			continue;
		*in_use += w->snat[n].in_use;
		*fail += w->snat[n].alloc_failures;
		*reuses += w->snat[n].tw_reuses;
	}
}

void ctl_view_spaces(uint32_t sip, uint8_t proto, uint32_t bip, uint16_t bport, uint16_t lo,
		     uint16_t hi, struct ctl_view_spaces *sum)
{
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_view_worker(i);

		if (w == NULL)
			continue;
		for (uint32_t s = 0; s < w->palloc.spaces_used; s++) {
			const struct palloc_space *sp = palloc_space_at(&w->palloc, s);

			if (sp == NULL || sp->sip != sip)
				continue;
			if (bip != 0 &&
			    (sp->bip != bip || sp->bport != bport || sp->proto != proto))
				continue;
			sum->live += sp->live;
			sum->quarantined += sp->quarantined;
			if (bip != 0)
				sum->held += palloc_space_held(&w->palloc, s, lo, hi);
		}
	}
}

/* What is left of a baseline for an object whose gen is @gen. */
static const struct ctl_base_obj *ctl_base_of(const struct ctl_base_obj *b, uint32_t gen)
{
	static const struct ctl_base_obj none;

	return b->gen == gen ? b : &none;
}

int ctl_clear_stats(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	uint64_t a;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	memset(&ctl_base, 0, sizeof(ctl_base));
	for (uint16_t i = 0; i < worker_count && i < WORKER_MAX; i++)
		if (worker_list[i] != NULL)
			ctl_base.lcore[i] = worker_list[i]->stats;
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		if (!c->services[s].used)
			continue;
		ctl_base.svc[s].gen = c->services[s].gen;
		ctl_sum_service(c, s, &a, &ctl_base.svc[s].total);
	}
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		if (!c->backends[b].used)
			continue;
		ctl_base.be[b].gen = c->backends[b].gen;
		ctl_sum_backend(c, b, &a, &ctl_base.be[b].total, &ctl_base.be[b].alloc_failures);
	}
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		if (!c->snat[n].used)
			continue;
		ctl_base.snat[n].gen = c->snat[n].gen;
		ctl_sum_snat(c, n, &a, &ctl_base.snat[n].alloc_failures,
			     &ctl_base.snat[n].tw_reuses);
	}
	return 0;
}

void ctl_snat_reap(void)
{
	struct cfg *c = cfg_current(), *n = NULL;

	for (int s = 0; s < CFG_MAX_SNAT; s++) {
		uint64_t in_use, fail, reuses;

		if (!c->snat[s].used || !c->snat[s].draining)
			continue;
		/* No worker can take a new tuple here any more (the draining
		 * snapshot was published and waited for), so 0 stays 0. */
		ctl_sum_snat(c, s, &in_use, &fail, &reuses);
		if (in_use != 0)
			continue;
		if (n == NULL && (n = cfg_clone(c)) == NULL)
			return;
		memset(&n->snat[s], 0, sizeof(n->snat[s]));
	}
	if (n == NULL)
		return;
	if (cfg_derive(n) < 0) {
		cfg_free(n);
		return;
	}
	cfg_publish(n);
}

/* ---- the views ---- */

void ctl_view_stats(struct ctl_view_stats *v)
{
	memset(v, 0, sizeof(*v));
	v->nworkers = worker_count < WORKER_MAX ? worker_count : WORKER_MAX;
	for (uint16_t i = 0; i < v->nworkers; i++) {
		const struct worker *w = ctl_view_worker(i);
		struct ctl_view_worker *vw = &v->w[i];

		ctl_lcore_net(i, &vw->net);
		if (w != NULL) {
			vw->lcore = w->lcore;
			if (w->ft != NULL)
				vw->flows_active = flow_count(w->ft);
		}
		v->flows_active += vw->flows_active;
#define CTL_SUM(name) v->sum.name += vw->net.name;
		STATS_LCORE_COUNTERS(CTL_SUM)
#undef CTL_SUM
		for (int r = 0; r < STATS_DROP_COUNT; r++)
			v->sum.drops[r] += vw->net.drops[r];
	}
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		v->drops_total += v->sum.drops[r];
}

void ctl_view_service(const struct cfg *c, int s, struct ctl_view_service *v)
{
	const struct cfg_service *svc = &c->services[s];

	memset(v, 0, sizeof(*v));
	v->name = svc->name;
	ctl_fmt_ip(svc->vip, v->vip);
	v->port = ntohs(svc->l4port);
	v->proto = ctl_proto_name(svc->proto);
	v->sched = cfg_sched_name(svc->sched);
	v->tcp = svc->proto == IPPROTO_TCP;
	v->snat_all = svc->snat_all;
	for (int n = 0; n < CFG_MAX_SNAT; n++)
		if (cfg_svc_snat(c, svc, n))
			ctl_fmt_ip(c->snat[n].ip, v->snat[v->nsnat++]);
	for (int b = 0; b < CFG_MAX_BACKENDS; b++)
		if (c->backends[b].used && c->backends[b].svc == s)
			v->backends++;
	ctl_sum_service(c, s, &v->active_flows, &v->total_flows);
	v->total_flows = ctl_since(v->total_flows, ctl_base_of(&ctl_base.svc[s], svc->gen)->total);
	v->new_flows_per_s = ctl_rate_service(s, svc->gen);
	v->tw_quarantine_s = cfg_tw_quarantine_ms(c, (uint16_t)s, svc->gen) / 1000;
	v->tw_quarantine_own = svc->tw_quarantine != CFG_INHERIT;
	v->ts_rewrite = cfg_ts_rewrite(c, (uint16_t)s);
	v->ts_rewrite_own = svc->ts_rewrite != CFG_INHERIT;
	v->tw_reuse = cfg_tw_reuse(c, (uint16_t)s);
	v->tw_reuse_own = svc->tw_reuse != CFG_INHERIT;
}

int ctl_view_backend_next(const struct cfg *c, int only, int prev)
{
	int s = prev >= 0 ? c->backends[prev].svc : only >= 0 ? only : 0;

	for (int b = prev + 1; s < CFG_MAX_SERVICES; s++, b = 0) {
		if (only >= 0 && s != only)
			break;
		if (!c->services[s].used)
			continue;
		for (; b < CFG_MAX_BACKENDS; b++)
			if (c->backends[b].used && c->backends[b].svc == s)
				return b;
	}
	return -1;
}

void ctl_view_backend(const struct cfg *c, int b, struct ctl_view_backend *v)
{
	const struct cfg_backend *be = &c->backends[b];
	const struct ctl_base_obj *base = ctl_base_of(&ctl_base.be[b], be->gen);
	struct hc_info hi = { 0 };

	memset(v, 0, sizeof(*v));
	v->service = c->services[be->svc].name;
	ctl_fmt_ip(be->ip, v->addr);
	v->port = ntohs(be->l4port);
	v->weight = be->weight;
	v->state = cfg_backend_state_name(be->state);
	v->health = cfg_health_name(be->health);
	ctl_sum_backend(c, b, &v->active_flows, &v->total_flows, &v->alloc_failures);
	v->total_flows = ctl_since(v->total_flows, base->total);
	v->alloc_failures = ctl_since(v->alloc_failures, base->alloc_failures);
	v->checked = be->health != CFG_HEALTH_UNCHECKED;
	v->health_since_s = (ctl_clock_ms() - be->health_ms) / 1000;
	hc_backend_info(b, be->gen, &hi);
	v->checks_ok = hi.ok;
	v->checks_failed = hi.failed;
	v->last_check = hc_result_name(hi.last);
}

void ctl_view_snat(const struct cfg *c, int n, struct ctl_view_snat *v)
{
	const struct cfg_snat *sn = &c->snat[n];
	const struct ctl_base_obj *base = ctl_base_of(&ctl_base.snat[n], sn->gen);
	struct ctl_view_spaces sum = { 0 };

	memset(v, 0, sizeof(*v));
	ctl_fmt_ip(sn->ip, v->addr);
	snprintf(v->ports, sizeof(v->ports), "%u-%u", sn->lo, sn->hi);
	v->dev = ctl_port_label(c, sn->port);
	v->state = sn->draining ? "draining" : "active";
	ctl_sum_snat(c, n, &v->in_use, &v->alloc_failures, &v->tw_reuses);
	ctl_view_spaces(sn->ip, 0, 0, 0, 0, 0, &sum);
	v->quarantined = sum.quarantined;
	v->alloc_failures = ctl_since(v->alloc_failures, base->alloc_failures);
	v->tw_reuses = ctl_since(v->tw_reuses, base->tw_reuses);
}

void ctl_view_service_put(const struct ctl_view_service *v, const struct ctl_view_out *o)
{
	o->str(o->sink, "name", v->name);
	o->str(o->sink, "vip", v->vip);
	o->u64(o->sink, "port", v->port);
	o->str(o->sink, "proto", v->proto);
	o->str(o->sink, "sched", v->sched);
	o->flag(o->sink, "snat_all", v->snat_all);
	o->addrs(o->sink, "snat", v->snat, v->nsnat);
	o->u64(o->sink, "backends", v->backends);
	o->u64(o->sink, "active_flows", v->active_flows);
	o->u64(o->sink, "total_flows", v->total_flows);
	o->u64(o->sink, "new_flows_per_s", v->new_flows_per_s);
	if (!v->tcp)
		return;
	o->u64(o->sink, "tw_quarantine", v->tw_quarantine_s);
	o->flag(o->sink, "tw_quarantine_override", v->tw_quarantine_own);
	o->flag(o->sink, "ts_rewrite", v->ts_rewrite);
	o->flag(o->sink, "ts_rewrite_override", v->ts_rewrite_own);
	o->flag(o->sink, "tw_reuse", v->tw_reuse);
	o->flag(o->sink, "tw_reuse_override", v->tw_reuse_own);
}

void ctl_view_backend_put(const struct ctl_view_backend *v, const struct ctl_view_out *o)
{
	o->str(o->sink, "service", v->service);
	o->str(o->sink, "addr", v->addr);
	o->u64(o->sink, "port", v->port);
	o->u64(o->sink, "weight", v->weight);
	o->str(o->sink, "state", v->state);
	o->str(o->sink, "health", v->health);
	o->u64(o->sink, "active_flows", v->active_flows);
	o->u64(o->sink, "total_flows", v->total_flows);
	o->u64(o->sink, "alloc_failures", v->alloc_failures);
	o->u64(o->sink, "health_since_s", v->health_since_s);
	o->u64(o->sink, "checks_ok", v->checks_ok);
	o->u64(o->sink, "checks_failed", v->checks_failed);
	o->str(o->sink, "last_check", v->last_check);
}

void ctl_view_snat_put(const struct ctl_view_snat *v, const struct ctl_view_out *o)
{
	o->str(o->sink, "addr", v->addr);
	o->str(o->sink, "ports", v->ports);
	o->str(o->sink, "dev", v->dev);
	o->str(o->sink, "state", v->state);
	o->u64(o->sink, "in_use", v->in_use);
	o->u64(o->sink, "quarantined", v->quarantined);
	o->u64(o->sink, "alloc_failures", v->alloc_failures);
	o->u64(o->sink, "tw_reuses", v->tw_reuses);
}
