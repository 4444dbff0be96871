/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_hash_crc.h>

#include "bsel.h"
#include "cfg.h"

static void bsel_table_destroy(struct bsel_table *t)
{
	free(t->members);
	free(t->member_gen);
	free(t->weights);
	free(t->seq);
	free(t);
}

static uint32_t bsel_gcd(uint32_t a, uint32_t b)
{
	while (b != 0) {
		uint32_t r = a % b;

		a = b;
		b = r;
	}
	return a;
}

/* Smooth weighted round robin, unrolled into a sequence (nginx's algorithm). */
static int bsel_build_wrr(struct bsel_table *t)
{
	uint64_t sum = 0;
	uint32_t g = 0;
	uint32_t *w = calloc(t->count, sizeof(*w));
	int64_t *cur = calloc(t->count, sizeof(*cur));
	int rc = -ENOMEM;

	if (w == NULL || cur == NULL)
		goto out;
	for (uint16_t i = 0; i < t->count; i++)
		sum += t->weights[i];
	for (uint16_t i = 0; i < t->count; i++) {
		/* Scale very large totals down; every member keeps weight >= 1. */
		w[i] = sum > BSEL_SEQ_MAX ?
			       (uint32_t)((uint64_t)t->weights[i] * BSEL_SEQ_MAX / sum) :
			       t->weights[i];
		if (w[i] == 0)
			w[i] = 1;
		g = bsel_gcd(w[i], g);
		cur[i] = 0;
	}
	sum = 0;
	for (uint16_t i = 0; i < t->count; i++) {
		w[i] /= g;
		sum += w[i];
	}
	t->seq_len = (uint32_t)sum;
	t->seq = calloc(t->seq_len, sizeof(t->seq[0]));
	if (t->seq == NULL)
		goto out;
	for (uint32_t s = 0; s < t->seq_len; s++) {
		uint16_t best = 0;

		for (uint16_t i = 0; i < t->count; i++) {
			cur[i] += w[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)sum;
		t->seq[s] = best;
	}
	rc = 0;
out:
	free(w);
	free(cur);
	return rc;
}

static int bsel_build_rr(struct bsel_table *t)
{
	t->seq_len = t->count;
	t->seq = calloc(t->count, sizeof(t->seq[0]));
	if (t->seq == NULL)
		return -ENOMEM;
	for (uint16_t i = 0; i < t->count; i++)
		t->seq[i] = i;
	return 0;
}

/*
 * Maglev population with weights: members take turns; in each turn a member
 * claims entries in proportion to its weight (credit scheme), each time its
 * next preferred free entry of its permutation (offset + j * skip) mod M.
 */
static int bsel_build_maglev(struct bsel_table *t, const struct cfg *c)
{
	const uint32_t m = BSEL_MAGLEV_SIZE;
	uint32_t *scratch = calloc(4 * (size_t)t->count, sizeof(*scratch));
	uint32_t *offset = scratch, *skip, *next, *credit;
	uint32_t filled = 0, wmax = 0;

	t->seq_len = m;
	t->seq = malloc(m * sizeof(t->seq[0]));
	if (t->seq == NULL || scratch == NULL) {
		free(scratch);
		return -ENOMEM;
	}
	skip = scratch + t->count;
	next = skip + t->count;
	credit = next + t->count;
	memset(t->seq, 0xff, m * sizeof(t->seq[0]));
	for (uint16_t i = 0; i < t->count; i++) {
		const struct cfg_backend *b = &c->backends[t->members[i]];
		uint64_t key = ((uint64_t)b->ip << 16) | b->l4port;

		offset[i] = rte_hash_crc_8byte(key, 0x1badcafe) % m;
		skip[i] = rte_hash_crc_8byte(key, 0x5eed5eed) % (m - 1) + 1;
		next[i] = 0;
		credit[i] = 0;
		if (t->weights[i] > wmax)
			wmax = t->weights[i];
	}
	while (filled < m) {
		for (uint16_t i = 0; i < t->count && filled < m; i++) {
			credit[i] += t->weights[i];
			while (credit[i] >= wmax && filled < m) {
				uint32_t e;

				credit[i] -= wmax;
				do {
					e = (uint32_t)(((uint64_t)offset[i] +
							(uint64_t)next[i] * skip[i]) %
						       m);
					next[i]++;
				} while (t->seq[e] != UINT16_MAX);
				t->seq[e] = i;
				filled++;
			}
		}
	}
	free(scratch);
	return 0;
}

struct bsel_table *bsel_table_build(const struct cfg *c, int svc)
{
	const struct cfg_service *s = &c->services[svc];
	struct bsel_table *t = calloc(1, sizeof(*t));
	uint32_t n = 0;
	int rc = 0;

	if (t == NULL)
		return NULL;
	t->refs = 1;
	t->sched = s->sched;
	for (uint32_t b = 0; b < CFG_MAX_BACKENDS; b++)
		if (c->backends[b].used && c->backends[b].svc == svc)
			n++;
	t->members = calloc(n + 1, sizeof(t->members[0]));
	t->member_gen = calloc(n + 1, sizeof(t->member_gen[0]));
	t->weights = calloc(n + 1, sizeof(t->weights[0]));
	if (t->members == NULL || t->member_gen == NULL || t->weights == NULL)
		goto fail;
	for (uint32_t b = 0; b < CFG_MAX_BACKENDS; b++) {
		const struct cfg_backend *be = &c->backends[b];

		/* drain and down keep their flows but get no new ones */
		if (!be->used || be->svc != svc || be->weight == 0 || be->state != CFG_BACKEND_UP ||
		    be->health == CFG_HEALTH_DOWN)
			continue;
		t->members[t->count] = (uint16_t)b;
		t->member_gen[t->count] = be->gen;
		t->weights[t->count] = be->weight;
		t->count++;
	}
	if (t->count == 0)
		return t;
	switch (t->sched) {
	case CFG_SCHED_WRR:
		rc = bsel_build_wrr(t);
		break;
	case CFG_SCHED_MAGLEV:
		rc = bsel_build_maglev(t, c);
		break;
	default: /* rr; lc uses the member list only */
		rc = bsel_build_rr(t);
		break;
	}
	if (rc == 0)
		return t;
fail:
	bsel_table_destroy(t);
	errno = ENOMEM;
	return NULL;
}

void bsel_table_ref(struct bsel_table *t)
{
	if (t != NULL)
		t->refs++;
}

void bsel_table_unref(struct bsel_table *t)
{
	if (t != NULL && --t->refs == 0)
		bsel_table_destroy(t);
}

static int bsel_pick_lc(const struct bsel_table *t, uint32_t *cursor,
			const struct stats_backend *bstats)
{
	uint16_t best = UINT16_MAX;
	uint64_t best_active = 0, best_weight = 1;

	/* Start at the cursor so that ties rotate instead of piling on one. */
	for (uint16_t k = 0; k < t->count; k++) {
		uint16_t i = (uint16_t)((*cursor + k) % t->count);
		const struct stats_backend *s = &bstats[t->members[i]];
		uint64_t active = s->gen == t->member_gen[i] ? s->active : 0;

		if (best == UINT16_MAX || active * best_weight < best_active * t->weights[i]) {
			best = i;
			best_active = active;
			best_weight = t->weights[i];
		}
	}
	(*cursor)++;
	return t->members[best];
}

int bsel_pick(const struct bsel_table *t, uint32_t *cursor, uint32_t hash,
	      const struct stats_backend *bstats)
{
	if (t == NULL || t->count == 0)
		return -1;
	switch (t->sched) {
	case CFG_SCHED_MAGLEV:
		return t->members[t->seq[hash % t->seq_len]];
	case CFG_SCHED_LC:
		return bsel_pick_lc(t, cursor, bstats);
	default:
		return t->members[t->seq[(*cursor)++ % t->seq_len]];
	}
}
