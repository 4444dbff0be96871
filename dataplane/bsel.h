/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bsel: backend selection for new flows.
 *
 * The control thread builds one immutable struct bsel_table per service when
 * its backends change (bsel_table_build) and publishes it inside the config
 * snapshot; snapshots that did not change a service share its table by
 * reference count (control thread only). Workers call bsel_pick() on flow
 * creation, with their own cursor and counters: no shared writes.
 *
 * Only backends with weight > 0 and state "up" are members; drain and down
 * backends get no new flows. Schedulers:
 *  - rr:     members in turn.
 *  - wrr:    smooth weighted round robin, precomputed as a sequence in which
 *            each member appears in proportion to its weight, interleaved.
 *  - maglev: consistent hashing (Eisenbud et al., NSDI'16) over a table of
 *            BSEL_MAGLEV_SIZE entries filled in proportion to the weights.
 *  - lc:     least active flows relative to weight, counted per lcore.
 */
#ifndef SLUICE_BSEL_H
#define SLUICE_BSEL_H

#include <stdint.h>

#include "stats.h"

#define BSEL_MAGLEV_SIZE 65537u /* prime */
#define BSEL_SEQ_MAX	 65536u /* wrr sequence length cap; weights are scaled to fit */

struct cfg;

struct bsel_table {
	int refs;
	uint8_t sched;
	uint16_t count;	      /* members */
	uint16_t *members;    /* backend slots */
	uint32_t *member_gen; /* their gens */
	uint16_t *weights;
	uint32_t seq_len;
	uint16_t *seq; /* wrr/rr sequence or maglev table: member indices */
};

/* Build the table of service slot @svc of @c. NULL with errno on failure. */
struct bsel_table *bsel_table_build(const struct cfg *c, int svc);
void bsel_table_ref(struct bsel_table *t);
void bsel_table_unref(struct bsel_table *t);

/*
 * Pick a backend slot for a new flow whose tuple hashes to @hash. @cursor is
 * the calling lcore's cursor for this service; @bstats its per-backend
 * counters (for lc). Returns the backend slot, or -1 if there is no member.
 */
int bsel_pick(const struct bsel_table *t, uint32_t *cursor, uint32_t hash,
	      const struct stats_backend *bstats);

#endif
