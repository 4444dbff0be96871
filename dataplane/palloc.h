/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * palloc: SNAT tuple allocation for new flows (first, simple version).
 *
 * Keyed on the full tuple: a candidate (SNAT address, SNAT port) is free
 * toward a backend iff no live flow of this lcore holds the reverse key
 * (proto, backend addr, backend port, SNAT addr, SNAT port). One SNAT port may
 * therefore serve many backends at once.
 *
 * Each worker allocates only from its own share of every port range: the
 * ports p with p % nworkers == worker index. Shares are disjoint, so tuples
 * are unique across lcores without any shared state, and a reply's
 * destination port names the owning lcore. With one worker the share is the
 * whole range.
 *
 * Cost is bounded: a random start in the share, then at most PALLOC_PROBES
 * consecutive candidates per SNAT address. The TIME_WAIT quarantine comes
 * with the port-space work: a tuple is free again as soon as its flow leaves
 * the table (worker_flow_end() is where a quarantine would take it over).
 */
#ifndef SLUICE_PALLOC_H
#define SLUICE_PALLOC_H

#include <stdint.h>

#include "cfg.h"
#include "flow.h"

#define PALLOC_PROBES 128

struct palloc {
	uint16_t worker;   /* this lcore's share */
	uint16_t nworkers; /* number of shares */
	uint64_t rng;
};

void palloc_init(struct palloc *pa, uint16_t worker, uint16_t nworkers, uint64_t seed);

/* Ports of [lo, hi] (host order) in @pa's share. */
uint32_t palloc_share_size(const struct palloc *pa, uint16_t lo, uint16_t hi);

/*
 * Find a free tuple toward (@bip, @bport) for service @svc of @c, trying its
 * SNAT addresses from a random one on. On success fills f->sip, f->sport and
 * f->snat_slot/snat_gen and returns 0; -ENOSPC if none was found within the
 * probe bound on every address; -ENOENT if the service may use no address.
 * @tried receives a bit per SNAT slot that was tried.
 */
int palloc_get(struct palloc *pa, const struct flow_table *ft, const struct cfg *c,
	       const struct cfg_service *svc, struct flow *f, uint64_t *tried);

static inline uint64_t palloc_rand(struct palloc *pa)
{
	/* xorshift64*: fast, per-lcore, good enough to make ports unpredictable */
	pa->rng ^= pa->rng >> 12;
	pa->rng ^= pa->rng << 25;
	pa->rng ^= pa->rng >> 27;
	return pa->rng * 0x2545f4914f6cdd1dULL;
}

#endif
