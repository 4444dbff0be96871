/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_prefetch.h>

#include "flow.h"
#include "mem.h"

/* A slot refers to flow (ref >> 1) - 1 in direction (ref & 1); 0 = empty. */
struct flow_slot {
	uint32_t hash;
	uint32_t ref;
};

struct flow_table {
	uint32_t mask; /* slots - 1 */
	uint32_t capacity;
	uint32_t count;
	uint32_t free_head;
	uint32_t gen; /* changes on every insert and remove */
	uint32_t lru_head[FLOW_CLASS_COUNT];
	uint32_t lru_tail[FLOW_CLASS_COUNT];
	size_t size;
	int node;
	struct flow_slot *slots;
	uint8_t *in_use;
	struct flow *flows;
};

struct flow_table *flow_table_create(uint32_t max_flows, int node)
{
	struct flow_table *ft;
	uint32_t nslots = 16;

	if (max_flows == 0 || max_flows > (1u << 26)) {
		errno = EINVAL;
		return NULL;
	}
	/* Two keys per flow at load factor <= 1/2. */
	while (nslots < 4 * max_flows)
		nslots <<= 1;
	ft = calloc(1, sizeof(*ft));
	if (ft == NULL)
		return NULL;
	ft->node = node;
	ft->mask = nslots - 1;
	ft->capacity = max_flows;
	ft->slots = mem_alloc((size_t)nslots * sizeof(ft->slots[0]), node);
	ft->flows = mem_alloc((size_t)max_flows * sizeof(ft->flows[0]), node);
	ft->in_use = mem_alloc(max_flows, node);
	if (ft->slots == NULL || ft->flows == NULL || ft->in_use == NULL) {
		flow_table_free(ft);
		errno = ENOMEM;
		return NULL;
	}
	ft->size = (size_t)nslots * sizeof(ft->slots[0]) +
		   (size_t)max_flows * (sizeof(ft->flows[0]) + 1);
	for (uint32_t i = 0; i < max_flows; i++)
		ft->flows[i].lru_next = i + 1 < max_flows ? i + 1 : FLOW_NONE;
	ft->free_head = 0;
	for (int c = 0; c < FLOW_CLASS_COUNT; c++)
		ft->lru_head[c] = ft->lru_tail[c] = FLOW_NONE;
	return ft;
}

void flow_table_free(struct flow_table *ft)
{
	if (ft == NULL)
		return;
	mem_free(ft->slots, (size_t)(ft->mask + 1) * sizeof(ft->slots[0]), ft->node);
	mem_free(ft->flows, (size_t)ft->capacity * sizeof(ft->flows[0]), ft->node);
	mem_free(ft->in_use, ft->capacity, ft->node);
	free(ft);
}

static inline uint32_t flow_idx(const struct flow_table *ft, const struct flow *f)
{
	return (uint32_t)(f - ft->flows);
}

void flow_key_of(const struct flow *f, enum flow_dir dir, struct flow_key *k)
{
	if (dir == FLOW_DIR_FWD)
		flow_key_set(k, f->proto, f->cip, f->cport, f->vip, f->vport);
	else
		flow_key_set(k, f->proto, f->bip, f->bport, f->sip, f->sport);
}

static inline bool flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

/* Is @k the key of @f in @dir? flow_key_of() and flow_key_eq() without the copy. */
static inline bool flow_has_key(const struct flow *f, enum flow_dir dir, const struct flow_key *k)
{
	if (f->proto != k->proto)
		return false;
	if (dir == FLOW_DIR_FWD)
		return f->cip == k->src && f->vip == k->dst && f->cport == k->sport &&
		       f->vport == k->dport;
	return f->bip == k->src && f->sip == k->dst && f->bport == k->sport && f->sport == k->dport;
}

/* Slot index holding key @k, or -1. */
static int64_t flow_slot_find(const struct flow_table *ft, const struct flow_key *k, uint32_t h)
{
	for (uint32_t i = h & ft->mask;; i = (i + 1) & ft->mask) {
		const struct flow_slot *s = &ft->slots[i];

		if (s->ref == 0)
			return -1;
		if (s->hash != h)
			continue;
		if (flow_has_key(&ft->flows[(s->ref >> 1) - 1], (enum flow_dir)(s->ref & 1), k))
			return i;
	}
}

struct flow *flow_lookup_hash(const struct flow_table *ft, const struct flow_key *k, uint32_t hash,
			      enum flow_dir *dir)
{
	int64_t i = flow_slot_find(ft, k, hash);

	if (i < 0)
		return NULL;
	*dir = (enum flow_dir)(ft->slots[i].ref & 1);
	return &ft->flows[(ft->slots[i].ref >> 1) - 1];
}

struct flow *flow_lookup(const struct flow_table *ft, const struct flow_key *k, enum flow_dir *dir)
{
	return flow_lookup_hash(ft, k, flow_key_hash(k), dir);
}

void flow_prefetch_slots(const struct flow_table *ft, const uint32_t *hash, const uint8_t *want,
			 uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (want[i])
			rte_prefetch0(&ft->slots[hash[i] & ft->mask]);
}

void flow_lookup_burst(const struct flow_table *ft, const struct flow_key *k, const uint32_t *hash,
		       const uint8_t *want, uint32_t n, struct flow **f, uint8_t *dir)
{
	for (uint32_t i = 0; i < n; i++) {
		enum flow_dir d = FLOW_DIR_FWD;

		f[i] = want[i] ? flow_lookup_hash(ft, &k[i], hash[i], &d) : NULL;
		dir[i] = (uint8_t)d;
		if (f[i] != NULL) {
			rte_prefetch0(f[i]);
			rte_prefetch0((const uint8_t *)f[i] + RTE_CACHE_LINE_SIZE);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct flow *g = f[i];

		/* Nothing to relink when it is its list's tail (flow_touch()). */
		if (g == NULL || ft->lru_tail[g->state] == flow_idx(ft, g))
			continue;
		if (g->lru_prev != FLOW_NONE)
			rte_prefetch0(&ft->flows[g->lru_prev].lru_next);
		if (g->lru_next != FLOW_NONE)
			rte_prefetch0(&ft->flows[g->lru_next].lru_prev);
	}
}

uint32_t flow_table_gen(const struct flow_table *ft)
{
	return ft->gen;
}

static void flow_slot_put(struct flow_table *ft, uint32_t h, uint32_t ref)
{
	uint32_t i = h & ft->mask;

	while (ft->slots[i].ref != 0)
		i = (i + 1) & ft->mask;
	ft->slots[i].hash = h;
	ft->slots[i].ref = ref;
}

/* Backward-shift deletion: no tombstones, so probes stay short forever. */
static void flow_slot_del(struct flow_table *ft, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t home;

		j = (j + 1) & ft->mask;
		if (ft->slots[j].ref == 0)
			break;
		home = ft->slots[j].hash & ft->mask;
		/* Leave slot j if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		ft->slots[i] = ft->slots[j];
		i = j;
	}
	ft->slots[i].ref = 0;
	ft->slots[i].hash = 0;
}

static void flow_lru_unlink(struct flow_table *ft, struct flow *f)
{
	uint32_t idx = flow_idx(ft, f);

	if (f->lru_prev != FLOW_NONE)
		ft->flows[f->lru_prev].lru_next = f->lru_next;
	else if (ft->lru_head[f->state] == idx)
		ft->lru_head[f->state] = f->lru_next;
	if (f->lru_next != FLOW_NONE)
		ft->flows[f->lru_next].lru_prev = f->lru_prev;
	else if (ft->lru_tail[f->state] == idx)
		ft->lru_tail[f->state] = f->lru_prev;
	f->lru_prev = f->lru_next = FLOW_NONE;
}

static void flow_lru_append(struct flow_table *ft, struct flow *f)
{
	uint32_t idx = flow_idx(ft, f);
	uint8_t c = f->state;

	f->lru_next = FLOW_NONE;
	f->lru_prev = ft->lru_tail[c];
	if (ft->lru_tail[c] != FLOW_NONE)
		ft->flows[ft->lru_tail[c]].lru_next = idx;
	else
		ft->lru_head[c] = idx;
	ft->lru_tail[c] = idx;
}

struct flow *flow_new(struct flow_table *ft)
{
	struct flow *f;

	if (ft->free_head == FLOW_NONE)
		return NULL;
	f = &ft->flows[ft->free_head];
	ft->free_head = f->lru_next;
	memset(f, 0, sizeof(*f));
	f->lru_prev = f->lru_next = FLOW_NONE;
	return f;
}

void flow_discard(struct flow_table *ft, struct flow *f)
{
	f->lru_next = ft->free_head;
	ft->free_head = flow_idx(ft, f);
}

int flow_insert(struct flow_table *ft, struct flow *f, uint64_t now_ms)
{
	struct flow_key kf, kr;
	uint32_t hf, hr, idx = flow_idx(ft, f);

	if (f->state >= FLOW_CLASS_COUNT)
		return -EINVAL;
	flow_key_of(f, FLOW_DIR_FWD, &kf);
	flow_key_of(f, FLOW_DIR_REV, &kr);
	hf = flow_key_hash(&kf);
	hr = flow_key_hash(&kr);
	if (flow_slot_find(ft, &kf, hf) >= 0 || flow_slot_find(ft, &kr, hr) >= 0 ||
	    flow_key_eq(&kf, &kr))
		return -EEXIST;
	flow_slot_put(ft, hf, ((idx + 1) << 1) | FLOW_DIR_FWD);
	flow_slot_put(ft, hr, ((idx + 1) << 1) | FLOW_DIR_REV);
	f->created_ms = f->last_ms = now_ms;
	flow_lru_append(ft, f);
	__atomic_store_n(&ft->in_use[idx], 1, __ATOMIC_RELEASE);
	ft->count++;
	ft->gen++;
	return 0;
}

void flow_remove(struct flow_table *ft, struct flow *f)
{
	struct flow_key k;
	uint32_t idx = flow_idx(ft, f);

	for (int d = FLOW_DIR_FWD; d <= FLOW_DIR_REV; d++) {
		int64_t i;

		flow_key_of(f, (enum flow_dir)d, &k);
		i = flow_slot_find(ft, &k, flow_key_hash(&k));
		if (i >= 0)
			flow_slot_del(ft, (uint32_t)i);
	}
	flow_lru_unlink(ft, f);
	__atomic_store_n(&ft->in_use[idx], 0, __ATOMIC_RELEASE);
	ft->count--;
	ft->gen++;
	flow_discard(ft, f);
}

void flow_touch(struct flow_table *ft, struct flow *f, uint8_t state, uint64_t now_ms)
{
	f->last_ms = now_ms;
	if (f->state == state && ft->lru_tail[state] == flow_idx(ft, f))
		return;
	flow_lru_unlink(ft, f);
	f->state = state;
	flow_lru_append(ft, f);
}

uint32_t flow_expired_burst(struct flow_table *ft, uint64_t now_ms,
			    const uint64_t timeout_ms[FLOW_CLASS_COUNT], struct flow **out,
			    uint32_t max)
{
	uint32_t n = 0;

	for (int c = 0; c < FLOW_CLASS_COUNT && n < max; c++) {
		uint32_t h = ft->lru_head[c];

		while (h != FLOW_NONE && n < max &&
		       ft->flows[h].last_ms + timeout_ms[c] <= now_ms) {
			out[n++] = &ft->flows[h];
			h = ft->flows[h].lru_next;
			if (h != FLOW_NONE)
				rte_prefetch0(&ft->flows[h]);
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		for (int d = FLOW_DIR_FWD; d <= FLOW_DIR_REV; d++) {
			struct flow_key k;

			flow_key_of(out[i], (enum flow_dir)d, &k);
			rte_prefetch0(&ft->slots[flow_key_hash(&k) & ft->mask]);
		}
	}
	return n;
}

struct flow *flow_expired(struct flow_table *ft, uint64_t now_ms,
			  const uint64_t timeout_ms[FLOW_CLASS_COUNT])
{
	struct flow *f;

	return flow_expired_burst(ft, now_ms, timeout_ms, &f, 1) == 1 ? f : NULL;
}

uint32_t flow_count(const struct flow_table *ft)
{
	return ft->count;
}

uint32_t flow_capacity(const struct flow_table *ft)
{
	return ft->capacity;
}

const struct flow *flow_at(const struct flow_table *ft, uint32_t i)
{
	if (i >= ft->capacity || !__atomic_load_n(&ft->in_use[i], __ATOMIC_ACQUIRE))
		return NULL;
	return &ft->flows[i];
}

size_t flow_table_size(const struct flow_table *ft)
{
	return ft->size;
}
