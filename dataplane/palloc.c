/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>

#include <rte_byteorder.h>

#include "palloc.h"

void palloc_init(struct palloc *pa, uint16_t worker, uint16_t nworkers, uint64_t seed)
{
	pa->worker = worker;
	pa->nworkers = nworkers ? nworkers : 1;
	pa->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* First port >= lo in the share; may exceed hi. */
static inline uint32_t palloc_first(const struct palloc *pa, uint16_t lo)
{
	return lo + (uint32_t)((pa->worker + pa->nworkers - lo % pa->nworkers) % pa->nworkers);
}

uint32_t palloc_share_size(const struct palloc *pa, uint16_t lo, uint16_t hi)
{
	uint32_t first = palloc_first(pa, lo);

	if (lo > hi || first > hi)
		return 0;
	return (hi - first) / pa->nworkers + 1;
}

static int palloc_try_addr(struct palloc *pa, const struct flow_table *ft, const struct cfg_snat *s,
			   struct flow *f)
{
	uint32_t n = palloc_share_size(pa, s->lo, s->hi);
	uint32_t first = palloc_first(pa, s->lo);
	uint32_t start, probes;
	struct flow_key k;
	enum flow_dir dir;

	if (n == 0)
		return -ENOSPC;
	start = (uint32_t)(palloc_rand(pa) % n);
	probes = n < PALLOC_PROBES ? n : PALLOC_PROBES;
	for (uint32_t i = 0; i < probes; i++) {
		uint32_t port = first + ((start + i) % n) * pa->nworkers;
		uint16_t nport = rte_cpu_to_be_16((uint16_t)port);

		flow_key_set(&k, f->proto, f->bip, f->bport, s->ip, nport);
		if (flow_lookup(ft, &k, &dir) == NULL) {
			f->sip = s->ip;
			f->sport = nport;
			return 0;
		}
	}
	return -ENOSPC;
}

int palloc_get(struct palloc *pa, const struct flow_table *ft, const struct cfg *c,
	       const struct cfg_service *svc, struct flow *f, uint64_t *tried)
{
	uint8_t usable[CFG_MAX_SNAT];
	uint32_t n = 0, start;

	*tried = 0;
	for (uint32_t slot = 0; slot < CFG_MAX_SNAT; slot++)
		if (c->snat[slot].used && !c->snat[slot].draining &&
		    (svc->snat_all || (svc->snat_mask & (1ULL << slot))))
			usable[n++] = (uint8_t)slot;
	if (n == 0)
		return -ENOENT;
	/* Start at a random usable address so that load spreads over all. */
	start = (uint32_t)(palloc_rand(pa) % n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t slot = usable[(start + i) % n];
		const struct cfg_snat *s = &c->snat[slot];

		*tried |= 1ULL << slot;
		if (palloc_try_addr(pa, ft, s, f) == 0) {
			f->snat_slot = slot;
			f->snat_gen = s->gen;
			return 0;
		}
	}
	return -ENOSPC;
}
