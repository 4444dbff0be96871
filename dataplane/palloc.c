/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>

#include "mem.h"
#include "palloc.h"
#include "tsrw.h"

#define PALLOC_PORTS 65536u

/* ---- geometry ---------------------------------------------------------- */

/*
 * @x / nworkers without a divide instruction, for x < 2^24 (ports and bits
 * are below 2^17). wdiv = ceil(2^40 / n) = (2^40 + e) / n with 0 <= e < n,
 * so x * wdiv / 2^40 = x / n + x * e / (n * 2^40), and the second term stays
 * below 1/n as long as x * e < 2^40: the floor is exact. x * wdiv < 2^64.
 */
static inline uint32_t palloc_div(const struct palloc *pa, uint32_t x)
{
	return (uint32_t)(((uint64_t)x * pa->wdiv) >> 40);
}

static inline uint32_t palloc_mod(const struct palloc *pa, uint32_t x)
{
	return x - palloc_div(pa, x) * pa->nworkers;
}

/* First port >= lo in the share; may exceed hi. */
static inline uint32_t palloc_first(const struct palloc *pa, uint32_t lo)
{
	/* (worker - lo % n) mod n, from a value in [1, 2n). */
	uint32_t d = pa->worker + pa->nworkers - palloc_mod(pa, lo);

	return lo + (d >= pa->nworkers ? d - pa->nworkers : d);
}

uint32_t palloc_share_size(const struct palloc *pa, uint16_t lo, uint16_t hi)
{
	uint32_t first = palloc_first(pa, lo);

	if (lo > hi || first > hi)
		return 0;
	return palloc_div(pa, hi - first) + 1;
}

/* The bits [*blo, *bhi] of ports [lo, hi]; false if the share has none. */
static bool palloc_bit_range(const struct palloc *pa, uint16_t lo, uint16_t hi, uint32_t *blo,
			     uint32_t *bhi)
{
	uint32_t first = palloc_first(pa, lo);

	if (lo > hi || first > hi)
		return false;
	/* first is in the share: first = blo * n + worker. */
	*blo = palloc_div(pa, first);
	*bhi = *blo + palloc_div(pa, hi - first);
	return true;
}

static inline uint16_t palloc_port_of(const struct palloc *pa, uint32_t bit)
{
	return (uint16_t)(bit * pa->nworkers + pa->worker);
}

static inline uint64_t *palloc_bits(const struct palloc *pa, uint32_t s)
{
	return pa->bits + (size_t)s * pa->words;
}

static inline uint64_t *palloc_nonfull(const struct palloc *pa, uint32_t s)
{
	return pa->nonfull + (size_t)s * pa->sumwords;
}

/* Mask of bits 0..b of a word. */
static inline uint64_t palloc_upto(uint32_t b)
{
	return b >= 63 ? ~0ULL : (2ULL << b) - 1;
}

/*
 * First free bit in [from, to] of space @s, or -1. Touches the word of
 * @from, then summary words: at most words / 64 + 1 of them, and one more
 * bitmap word.
 */
static int64_t palloc_next_free(const struct palloc *pa, uint32_t s, uint32_t from, uint32_t to)
{
	const uint64_t *bits = palloc_bits(pa, s);
	const uint64_t *nonfull = palloc_nonfull(pa, s);
	uint32_t w = from >> 6, wl = to >> 6, sw, sl;
	uint64_t m, sm;

	m = ~bits[w] & (~0ULL << (from & 63));
	if (w == wl)
		m &= palloc_upto(to & 63);
	if (m != 0)
		return ((int64_t)w << 6) + __builtin_ctzll(m);
	if (w == wl)
		return -1;
	w++;
	sw = w >> 6;
	sl = wl >> 6;
	sm = nonfull[sw] & (~0ULL << (w & 63));
	for (;;) {
		if (sw == sl)
			sm &= palloc_upto(wl & 63);
		if (sm != 0) {
			uint32_t cw = (sw << 6) + (uint32_t)__builtin_ctzll(sm);

			m = ~bits[cw];
			if (cw == wl)
				m &= palloc_upto(to & 63);
			/* A word before the last lies wholly inside the range. */
			return m != 0 ? ((int64_t)cw << 6) + __builtin_ctzll(m) : -1;
		}
		if (sw == sl)
			return -1;
		sm = nonfull[++sw];
	}
}

static inline bool palloc_bit_test(const struct palloc *pa, uint32_t s, uint32_t bit)
{
	return (palloc_bits(pa, s)[bit >> 6] >> (bit & 63)) & 1;
}

static inline void palloc_bit_set(struct palloc *pa, uint32_t s, uint32_t bit)
{
	uint64_t *word = &palloc_bits(pa, s)[bit >> 6];

	*word |= 1ULL << (bit & 63);
	if (*word == ~0ULL)
		palloc_nonfull(pa, s)[bit >> 12] &= ~(1ULL << ((bit >> 6) & 63));
}

static inline void palloc_bit_clear(struct palloc *pa, uint32_t s, uint32_t bit)
{
	palloc_bits(pa, s)[bit >> 6] &= ~(1ULL << (bit & 63));
	palloc_nonfull(pa, s)[bit >> 12] |= 1ULL << ((bit >> 6) & 63);
}

/* ---- set-up -------------------------------------------------------------- */

int palloc_init(struct palloc *pa, uint16_t worker, uint16_t nworkers, uint64_t seed,
		uint32_t max_spaces, uint32_t max_quarantine, int node, uint64_t now_ms)
{
	uint32_t hslots = 16;
	size_t bsize, nsize, hsize, ssize, qsize;

	memset(pa, 0, sizeof(*pa));
	if (nworkers == 0 || worker >= nworkers || max_spaces == 0 || max_spaces > (1u << 24) ||
	    max_quarantine == 0 || max_quarantine >= PALLOC_NONE)
		return -EINVAL;
	pa->worker = worker;
	pa->nworkers = nworkers;
	pa->wdiv = ((1ULL << 40) + nworkers - 1) / nworkers;
	pa->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	pa->epoch_ms = now_ms;
	pa->nbits = (PALLOC_PORTS - worker + nworkers - 1) / nworkers;
	pa->words = (pa->nbits + 63) / 64;
	pa->sumwords = (pa->words + 63) / 64;
	pa->max_spaces = max_spaces;
	while (hslots < 2 * max_spaces)
		hslots <<= 1;
	pa->hmask = hslots - 1;
	pa->max_quarantine = max_quarantine;
	bsize = (size_t)max_spaces * pa->words * sizeof(uint64_t);
	nsize = (size_t)max_spaces * pa->sumwords * sizeof(uint64_t);
	hsize = (size_t)hslots * sizeof(uint32_t);
	ssize = (size_t)max_spaces * sizeof(struct palloc_space);
	qsize = (size_t)max_quarantine * sizeof(struct palloc_qent);
	pa->bits = mem_alloc(bsize, node);
	pa->nonfull = mem_alloc(nsize, node);
	pa->hash = mem_alloc(hsize, node);
	pa->spaces = mem_alloc(ssize, node);
	pa->q = mem_alloc(qsize, node);
	pa->mem_size = bsize + nsize + hsize + ssize + qsize;
	pa->node = node;
	if (pa->bits == NULL || pa->nonfull == NULL || pa->hash == NULL || pa->spaces == NULL ||
	    pa->q == NULL) {
		palloc_free(pa);
		return -ENOMEM;
	}
	/* Every word starts with free bits (bits past nbits are never searched). */
	memset(pa->nonfull, 0xff, nsize);
	pa->idle_head = pa->idle_tail = PALLOC_NONE;
	for (uint32_t i = 0; i < max_quarantine; i++)
		pa->q[i].next = i + 1 < max_quarantine ? i + 1 : PALLOC_NONE;
	pa->q_free = 0;
	for (int i = 0; i < PALLOC_FIFOS; i++)
		pa->fifo[i].head = pa->fifo[i].tail = PALLOC_NONE;
	pa->cookie_next = 1;
	return 0;
}

void palloc_free(struct palloc *pa)
{
	size_t hslots = (size_t)pa->hmask + 1;

	mem_free(pa->bits, (size_t)pa->max_spaces * pa->words * sizeof(uint64_t), pa->node);
	mem_free(pa->nonfull, (size_t)pa->max_spaces * pa->sumwords * sizeof(uint64_t), pa->node);
	mem_free(pa->hash, hslots * sizeof(uint32_t), pa->node);
	mem_free(pa->spaces, (size_t)pa->max_spaces * sizeof(struct palloc_space), pa->node);
	mem_free(pa->q, (size_t)pa->max_quarantine * sizeof(struct palloc_qent), pa->node);
	pa->bits = pa->nonfull = NULL;
	pa->hash = NULL;
	pa->spaces = NULL;
	pa->q = NULL;
}

size_t palloc_space_bytes_of(uint32_t words, uint32_t sumwords)
{
	return (size_t)(words + sumwords) * sizeof(uint64_t) + sizeof(struct palloc_space) +
	       2 * sizeof(uint32_t);
}

size_t palloc_space_bytes(const struct palloc *pa)
{
	return palloc_space_bytes_of(pa->words, pa->sumwords);
}

/* ---- the space hash ------------------------------------------------------ */

static inline uint32_t palloc_key_hash(uint8_t proto, uint32_t bip, uint16_t bport, uint32_t sip)
{
	uint64_t a = ((uint64_t)bip << 32) | sip;
	uint32_t b = ((uint32_t)bport << 8) | proto;

	return rte_hash_crc_4byte(b, rte_hash_crc_8byte(a, 0x51ce));
}

static inline bool palloc_key_eq(const struct palloc_space *sp, uint8_t proto, uint32_t bip,
				 uint16_t bport, uint32_t sip)
{
	return sp->bip == bip && sp->sip == sip && sp->bport == bport && sp->proto == proto;
}

static int64_t palloc_space_find(const struct palloc *pa, uint8_t proto, uint32_t bip,
				 uint16_t bport, uint32_t sip)
{
	uint32_t h = palloc_key_hash(proto, bip, bport, sip) & pa->hmask;

	for (;;) {
		uint32_t ref = pa->hash[h];

		if (ref == 0)
			return -1;
		if (palloc_key_eq(&pa->spaces[ref - 1], proto, bip, bport, sip))
			return ref - 1;
		h = (h + 1) & pa->hmask;
	}
}

static void palloc_hash_insert(struct palloc *pa, uint32_t s)
{
	const struct palloc_space *sp = &pa->spaces[s];
	uint32_t h = palloc_key_hash(sp->proto, sp->bip, sp->bport, sp->sip) & pa->hmask;

	while (pa->hash[h] != 0)
		h = (h + 1) & pa->hmask;
	pa->hash[h] = s + 1;
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void palloc_hash_remove(struct palloc *pa, uint32_t s)
{
	const struct palloc_space *sp = &pa->spaces[s];
	uint32_t h = palloc_key_hash(sp->proto, sp->bip, sp->bport, sp->sip) & pa->hmask;
	uint32_t j;

	while (pa->hash[h] != s + 1)
		h = (h + 1) & pa->hmask;
	j = h;
	for (;;) {
		const struct palloc_space *o;
		uint32_t home;

		j = (j + 1) & pa->hmask;
		if (pa->hash[j] == 0)
			break;
		o = &pa->spaces[pa->hash[j] - 1];
		home = palloc_key_hash(o->proto, o->bip, o->bport, o->sip) & pa->hmask;
		/* Move j back to h unless its home lies cyclically in (h, j]. */
		if (((j - home) & pa->hmask) >= ((j - h) & pa->hmask)) {
			pa->hash[h] = pa->hash[j];
			h = j;
		}
	}
	pa->hash[h] = 0;
}

static void palloc_idle_unlink(struct palloc *pa, uint32_t s)
{
	struct palloc_space *sp = &pa->spaces[s];

	if (sp->idle_prev != PALLOC_NONE)
		pa->spaces[sp->idle_prev].idle_next = sp->idle_next;
	else
		pa->idle_head = sp->idle_next;
	if (sp->idle_next != PALLOC_NONE)
		pa->spaces[sp->idle_next].idle_prev = sp->idle_prev;
	else
		pa->idle_tail = sp->idle_prev;
	sp->idle_prev = sp->idle_next = PALLOC_NONE;
}

static void palloc_idle_append(struct palloc *pa, uint32_t s)
{
	struct palloc_space *sp = &pa->spaces[s];

	sp->idle_next = PALLOC_NONE;
	sp->idle_prev = pa->idle_tail;
	if (pa->idle_tail != PALLOC_NONE)
		pa->spaces[pa->idle_tail].idle_next = s;
	else
		pa->idle_head = s;
	pa->idle_tail = s;
}

static inline bool palloc_space_empty(const struct palloc_space *sp)
{
	return sp->live == 0 && sp->quarantined == 0;
}

/* The space for a key: found, or taken from the pool (an idle one if need be). */
static int64_t palloc_space_get(struct palloc *pa, uint8_t proto, uint32_t bip, uint16_t bport,
				uint32_t sip)
{
	int64_t found = palloc_space_find(pa, proto, bip, bport, sip);
	struct palloc_space *sp;
	uint32_t s;

	if (found >= 0)
		return found;
	if (pa->spaces_used < pa->max_spaces) {
		s = pa->spaces_used++;
	} else if (pa->idle_head != PALLOC_NONE) {
		/* An empty space has every bit clear: only its key changes. */
		s = pa->idle_head;
		palloc_idle_unlink(pa, s);
		palloc_hash_remove(pa, s);
		pa->spaces_evicted++;
	} else {
		return -1;
	}
	sp = &pa->spaces[s];
	*sp = (struct palloc_space){ .bip = bip,
				     .sip = sip,
				     .bport = bport,
				     .proto = proto,
				     .hashed = 1,
				     .cursor = (uint32_t)(palloc_rand(pa) % pa->nbits),
				     .last_freed = PALLOC_NONE,
				     .proof_head = PALLOC_NONE,
				     .proof_tail = PALLOC_NONE };
	palloc_hash_insert(pa, s);
	/* Idle until it holds a tuple. */
	palloc_idle_append(pa, s);
	return s;
}

const struct palloc_space *palloc_space_at(const struct palloc *pa, uint32_t i)
{
	if (i >= pa->spaces_used || !pa->spaces[i].hashed)
		return NULL;
	return &pa->spaces[i];
}

uint32_t palloc_space_held(const struct palloc *pa, uint32_t i, uint16_t lo, uint16_t hi)
{
	const uint64_t *bits = palloc_bits(pa, i);
	uint32_t blo, bhi, n = 0;

	if (!palloc_bit_range(pa, lo, hi, &blo, &bhi))
		return 0;
	for (uint32_t w = blo >> 6; w <= bhi >> 6; w++) {
		uint64_t m = bits[w];

		if (w == blo >> 6)
			m &= ~0ULL << (blo & 63);
		if (w == bhi >> 6)
			m &= palloc_upto(bhi & 63);
		n += (uint32_t)__builtin_popcountll(m);
	}
	return n;
}

bool palloc_held(const struct palloc *pa, uint8_t proto, uint32_t bip, uint16_t bport, uint32_t sip,
		 uint16_t sport)
{
	uint32_t port = rte_be_to_cpu_16(sport);
	int64_t s;

	if (palloc_mod(pa, port) != pa->worker)
		return false;
	s = palloc_space_find(pa, proto, bip, bport, sip);
	return s >= 0 && palloc_bit_test(pa, (uint32_t)s, palloc_div(pa, port));
}

/* ---- allocation ------------------------------------------------------------ */

/* First free bit of [blo, bhi] from @start on, wrapping once; -1 if none. */
static int64_t palloc_search(const struct palloc *pa, uint32_t s, uint32_t blo, uint32_t bhi,
			     uint32_t start)
{
	int64_t bit = palloc_next_free(pa, s, start, bhi);

	if (bit < 0 && start > blo)
		bit = palloc_next_free(pa, s, blo, start - 1);
	return bit;
}

/* A free bit of space @s within [blo, bhi], RFC 6056 algorithm 5; -1 if none. */
static int64_t palloc_take(struct palloc *pa, uint32_t s, uint32_t blo, uint32_t bhi)
{
	struct palloc_space *sp = &pa->spaces[s];
	uint32_t n = bhi - blo + 1;
	uint32_t step = n / PALLOC_STEP_DIVISOR > 1 ? n / PALLOC_STEP_DIVISOR : 1;
	uint32_t start;
	int64_t bit;

	start = sp->cursor + 1 + (uint32_t)(palloc_rand(pa) % step);
	if (start < blo || start > bhi) /* past the end, or the range moved */
		start = blo + (start - blo) % n;
	if (start < blo)
		start = blo;
	bit = palloc_search(pa, s, blo, bhi, start);
	if (bit < 0)
		return -1;
	if ((uint32_t)bit == sp->last_freed) {
		/* Not the tuple just released, unless nothing else is free. */
		int64_t other = palloc_search(pa, s, blo, bhi,
					      (uint32_t)bit < bhi ? (uint32_t)bit + 1 : blo);

		if (other >= 0)
			bit = other;
	}
	sp->cursor = (uint32_t)bit;
	palloc_bit_set(pa, s, (uint32_t)bit);
	if (palloc_space_empty(sp))
		palloc_idle_unlink(pa, s);
	sp->live++;
	return bit;
}

/* The usable slots of @c, and the bits of each in this share (slots not usable: unset). */
static void palloc_pool_build(const struct palloc *pa, const struct cfg *c, struct palloc_pool *pl)
{
	uint64_t usable = 0, ranged = 0;

	/* Branch-free and unrolled: an unpublished snapshot is walked on every call. */
#pragma GCC unroll 64
	for (uint32_t slot = 0; slot < CFG_MAX_SNAT; slot++)
		usable |= (uint64_t)(c->snat[slot].used & !c->snat[slot].draining) << slot;
	for (uint64_t m = usable; m != 0; m &= m - 1) {
		uint32_t slot = (uint32_t)__builtin_ctzll(m), blo, bhi;

		if (!palloc_bit_range(pa, c->snat[slot].lo, c->snat[slot].hi, &blo, &bhi))
			continue;
		ranged |= 1ULL << slot;
		pl->bits[slot].blo = (uint16_t)blo;
		pl->bits[slot].bhi = (uint16_t)bhi;
	}
	pl->usable = usable;
	pl->ranged = ranged;
}

/*
 * The pool of @c: this lcore's copy if @c was published (built on the first
 * call for its gen), else @tmp filled afresh.
 */
static const struct palloc_pool *palloc_pool_of(struct palloc *pa, const struct cfg *c,
						struct palloc_pool *tmp)
{
	if (__builtin_expect(c->gen != 0, 1)) {
		if (__builtin_expect(pa->pool.gen != c->gen, 0)) {
			palloc_pool_build(pa, c, &pa->pool);
			pa->pool.gen = c->gen;
		}
		return &pa->pool;
	}
	palloc_pool_build(pa, c, tmp);
	return tmp;
}

/* The position of the @k-th (from 0) set bit of @m; k < popcount(m). */
static __rte_noinline uint32_t palloc_select_far(uint64_t m, uint32_t k)
{
	uint32_t base = 0;

	/* Halve the word until fewer than 8 bits are left to skip. */
	for (uint32_t w = 32; k >= 8 && w >= 8; w /= 2) {
		uint32_t low = (uint32_t)__builtin_popcountll(m & ((1ULL << w) - 1));

		if (k >= low) {
			k -= low;
			m >>= w;
			base += w;
		}
	}
	for (; k > 0; k--)
		m &= m - 1;
	return base + (uint32_t)__builtin_ctzll(m);
}

static inline uint32_t palloc_select(uint64_t m, uint32_t k)
{
	if (__builtin_expect(k >= 8, 0))
		return palloc_select_far(m, k);
	for (; k > 0; k--)
		m &= m - 1;
	return (uint32_t)__builtin_ctzll(m);
}

/*
 * The SNAT slots @svc may take new tuples from, in the order to try them:
 * ascending from a random one, wrapping once. *@from holds the slots from
 * that one on, *@wrap those before it. Returns how many (no random number
 * drawn if none).
 */
static __rte_always_inline uint32_t palloc_order(struct palloc *pa, const struct palloc_pool *pl,
						 const struct cfg_service *svc, uint64_t *from,
						 uint64_t *wrap)
{
	uint64_t m = pl->usable & (svc->snat_all ? ~0ULL : svc->snat_mask), r;
	uint32_t n = (uint32_t)__builtin_popcountll(m), k, first;

	if (n == 0)
		return 0;
	/* Start at a random usable address so that load spreads over all. */
	r = palloc_rand(pa);
	k = (n & (n - 1)) == 0 ? (uint32_t)(r & (n - 1)) : (uint32_t)(r % n);
	first = palloc_select(m, k);
	*from = m & (~0ULL << first);
	*wrap = m & ~(~0ULL << first);
	return n;
}

/* The next slot of an order (palloc_order), or -1 once all were. */
static inline int palloc_order_next(uint64_t *from, uint64_t *wrap)
{
	int slot;

	if (*from == 0) {
		if (*wrap == 0)
			return -1;
		*from = *wrap;
		*wrap = 0;
	}
	slot = __builtin_ctzll(*from);
	*from &= *from - 1;
	return slot;
}

/* @f takes bit @bit of space @s on SNAT slot @slot. */
static void palloc_assign(struct palloc *pa, const struct cfg_snat *sn, uint8_t slot,
			  struct flow *f, uint32_t s, uint32_t bit)
{
	f->sip = sn->ip;
	f->sport = rte_cpu_to_be_16(palloc_port_of(pa, bit));
	f->snat_slot = slot;
	f->snat_gen = sn->gen;
	f->space = s;
	f->qent = PALLOC_NONE;
	f->qcookie = 0;
	if (f->proto == IPPROTO_TCP)
		pa->live_tcp++;
}

int palloc_get(struct palloc *pa, const struct cfg *c, const struct cfg_service *svc,
	       struct flow *f, uint64_t *tried)
{
	struct palloc_pool tmp;
	const struct palloc_pool *pl;
	uint64_t from, wrap;
	bool no_space = false;
	int slot;

	*tried = 0;
	if (f->proto == IPPROTO_TCP && pa->q_detached + pa->live_tcp >= pa->max_quarantine)
		return -ENOBUFS;
	pl = palloc_pool_of(pa, c, &tmp);
	if (palloc_order(pa, pl, svc, &from, &wrap) == 0)
		return -ENOENT;
	while ((slot = palloc_order_next(&from, &wrap)) >= 0) {
		const struct cfg_snat *sn = &c->snat[slot];
		int64_t s, bit;

		if (!(pl->ranged & (1ULL << slot)))
			continue;
		s = palloc_space_get(pa, f->proto, f->bip, f->bport, sn->ip);
		if (s < 0) {
			no_space = true;
			continue;
		}
		*tried |= 1ULL << slot;
		bit = palloc_take(pa, (uint32_t)s, pl->bits[slot].blo, pl->bits[slot].bhi);
		if (bit < 0)
			continue;
		palloc_assign(pa, sn, (uint8_t)slot, f, (uint32_t)s, (uint32_t)bit);
		return 0;
	}
	return no_space && *tried == 0 ? -ENOMEM : -ENOSPC;
}

/* ---- quarantine -------------------------------------------------------------- */

static inline uint32_t palloc_ms(const struct palloc *pa, uint64_t now_ms)
{
	return (uint32_t)(now_ms - pa->epoch_ms);
}

/*
 * The FIFO for @dur_ms: the one of that duration, else an empty one, else
 * the shortest longer one, else the longest. Only an exact match keeps its
 * entries in expiry order; with the others an entry may end late, never
 * early, and 16 distinct durations at once are more than any set-up uses.
 */
static uint8_t palloc_fifo_for(struct palloc *pa, uint32_t dur_ms)
{
	int empty = -1, longer = -1, longest = 0;

	for (int i = 0; i < PALLOC_FIFOS; i++) {
		const struct palloc_fifo *q = &pa->fifo[i];

		if (q->count > 0 && q->dur_ms == dur_ms)
			return (uint8_t)i;
		if (q->count == 0 && empty < 0)
			empty = i;
		if (q->count > 0 && q->dur_ms > dur_ms &&
		    (longer < 0 || q->dur_ms < pa->fifo[longer].dur_ms))
			longer = i;
		if (q->dur_ms > pa->fifo[longest].dur_ms)
			longest = i;
	}
	if (empty >= 0) {
		pa->fifo[empty].dur_ms = dur_ms;
		return (uint8_t)empty;
	}
	return (uint8_t)(longer >= 0 ? longer : longest);
}

static void palloc_fifo_unlink(struct palloc *pa, uint32_t e)
{
	struct palloc_qent *q = &pa->q[e];
	struct palloc_fifo *fi = &pa->fifo[q->fifo];

	if (q->prev != PALLOC_NONE)
		pa->q[q->prev].next = q->next;
	else
		fi->head = q->next;
	if (q->next != PALLOC_NONE)
		pa->q[q->next].prev = q->prev;
	else
		fi->tail = q->prev;
	fi->count--;
}

static void palloc_fifo_append(struct palloc *pa, uint32_t e, uint8_t fifo)
{
	struct palloc_qent *q = &pa->q[e];
	struct palloc_fifo *fi = &pa->fifo[fifo];

	q->fifo = fifo;
	q->next = PALLOC_NONE;
	q->prev = fi->tail;
	if (fi->tail != PALLOC_NONE)
		pa->q[fi->tail].next = e;
	else
		fi->head = e;
	fi->tail = e;
	fi->count++;
}

bool palloc_flow_quarantined(const struct palloc *pa, const struct flow *f)
{
	return f->qent != PALLOC_NONE && pa->q[f->qent].cookie == f->qcookie &&
	       pa->q[f->qent].flow_live;
}

void palloc_quarantine(struct palloc *pa, struct flow *f, uint32_t dur_ms, uint64_t now_ms)
{
	uint8_t fifo;
	uint32_t e;

	if (dur_ms == 0)
		return;
	fifo = palloc_fifo_for(pa, dur_ms);
	if (palloc_flow_quarantined(pa, f)) {
		/* Re-arm: the backend restarted its TIME_WAIT on this packet. */
		e = f->qent;
		palloc_fifo_unlink(pa, e);
		pa->rearmed_total++;
	} else {
		/* Admission (palloc_get) keeps an entry free for every live TCP flow. */
		e = pa->q_free;
		if (e == PALLOC_NONE)
			return;
		pa->q_free = pa->q[e].next;
		pa->q_used++;
		pa->quarantined_total++;
		pa->q[e].space = f->space;
		pa->q[e].bit = (uint16_t)(palloc_div(pa, rte_be_to_cpu_16(f->sport)));
		pa->q[e].flow_live = 1;
		pa->q[e].proof = 0;
		pa->q[e].cookie = pa->cookie_next++;
		if (pa->cookie_next == 0)
			pa->cookie_next = 1;
		f->qent = e;
		f->qcookie = pa->q[e].cookie;
	}
	pa->q[e].expire = palloc_ms(pa, now_ms) + dur_ms;
	palloc_fifo_append(pa, e, fifo);
}

static void palloc_proof_unlink(struct palloc *pa, uint32_t s, uint32_t e)
{
	struct palloc_space *sp = &pa->spaces[s];
	struct palloc_qent *q = &pa->q[e];

	if (q->sprev != PALLOC_NONE)
		pa->q[q->sprev].snext = q->snext;
	else
		sp->proof_head = q->snext;
	if (q->snext != PALLOC_NONE)
		pa->q[q->snext].sprev = q->sprev;
	else
		sp->proof_tail = q->sprev;
	q->proof = 0;
}

/* Back to the free list; off the space's proof list if it was on it. */
static void palloc_qent_free(struct palloc *pa, uint32_t e)
{
	struct palloc_qent *q = &pa->q[e];

	if (q->proof)
		palloc_proof_unlink(pa, q->space, e);
	q->cookie = 0;
	q->flow_live = 0;
	q->next = pa->q_free;
	pa->q_free = e;
	pa->q_used--;
}

static void palloc_proof_append(struct palloc *pa, uint32_t s, uint32_t e)
{
	struct palloc_space *sp = &pa->spaces[s];
	struct palloc_qent *q = &pa->q[e];

	q->proof = 1;
	q->snext = PALLOC_NONE;
	q->sprev = sp->proof_tail;
	if (sp->proof_tail != PALLOC_NONE)
		pa->q[sp->proof_tail].snext = e;
	else
		sp->proof_head = e;
	sp->proof_tail = e;
}

/*
 * Both FINs acknowledged and no RST: the backend, an active closer, holds the
 * tuple in TIME_WAIT proper (not FIN-WAIT-2, where Linux resets a new SYN).
 */
static inline bool palloc_clean_close(uint16_t seen)
{
	const uint16_t want = TCPSTATE_FIN_CLIENT_ACKED | TCPSTATE_FIN_BACKEND_ACKED | TCPSTATE_TW;

	return (seen & (want | TCPSTATE_SEEN_RST)) == want;
}

static void palloc_put_bit(struct palloc *pa, uint32_t s, uint32_t bit)
{
	struct palloc_space *sp = &pa->spaces[s];

	palloc_bit_clear(pa, s, bit);
	sp->last_freed = bit;
	if (palloc_space_empty(sp))
		palloc_idle_append(pa, s);
}

void palloc_release(struct palloc *pa, struct flow *f)
{
	struct palloc_space *sp = &pa->spaces[f->space];

	if (f->proto == IPPROTO_TCP && pa->live_tcp > 0)
		pa->live_tcp--;
	sp->live--;
	if (palloc_flow_quarantined(pa, f)) {
		/* The quarantine holds the tuple on alone. */
		struct palloc_qent *q = &pa->q[f->qent];

		q->flow_live = 0;
		pa->q_detached++;
		sp->quarantined++;
		/* Linux compares timestamps in TIME_WAIT only if both sides used them. */
		if ((f->ts & (FLOW_TS_SEEN | FLOW_TS_BACKEND)) ==
			    (FLOW_TS_SEEN | FLOW_TS_BACKEND) &&
		    palloc_clean_close(f->tcp_seen)) {
			q->ts_last = f->ts_max;
			palloc_proof_append(pa, f->space, f->qent);
		}
	} else {
		palloc_put_bit(pa, f->space, palloc_div(pa, rte_be_to_cpu_16(f->sport)));
	}
	f->qent = PALLOC_NONE;
}

uint32_t palloc_expire(struct palloc *pa, uint64_t now_ms, uint32_t budget)
{
	uint32_t now = palloc_ms(pa, now_ms), n = 0;

	for (int i = 0; i < PALLOC_FIFOS && n < budget; i++) {
		struct palloc_fifo *fi = &pa->fifo[i];

		while (n < budget && fi->head != PALLOC_NONE) {
			uint32_t e = fi->head;
			struct palloc_qent *q = &pa->q[e];

			if ((int32_t)(now - q->expire) < 0)
				break;
			palloc_fifo_unlink(pa, e);
			if (!q->flow_live) {
				pa->spaces[q->space].quarantined--;
				pa->q_detached--;
				palloc_put_bit(pa, q->space, q->bit);
			}
			/* else the live flow still holds the tuple and frees it at its end */
			palloc_qent_free(pa, e);
			pa->expired_total++;
			n++;
		}
	}
	return n;
}

/* ---- timestamps -------------------------------------------------------------- */

/*
 * A high-water mark older than this no longer counts: no backend holds a
 * tuple that long (the quarantine is at most a week), and signed 32-bit
 * comparisons of 1 kHz values stay meaningful for 24 days only.
 */
#define PALLOC_HWM_MAX_S 1000000u

static inline uint32_t palloc_s(const struct palloc *pa, uint64_t now_ms)
{
	return (uint32_t)((now_ms - pa->epoch_ms) / 1000) + 1;
}

static bool palloc_hwm_valid(const struct palloc *pa, const struct palloc_space *sp,
			     uint64_t now_ms)
{
	return sp->ts_hwm_s != 0 && palloc_s(pa, now_ms) - sp->ts_hwm_s < PALLOC_HWM_MAX_S;
}

/*
 * The clock of SNAT slot @slot, started afresh when the slot went to another
 * address (another base). An address deleted and added again has the same
 * base (ctl_cmd.c), so it keeps its clock if it gets its old slot back.
 */
static struct palloc_ref *palloc_ref_of(struct palloc *pa, const struct cfg *c, uint8_t slot)
{
	struct palloc_ref *r = &pa->ref[slot];
	const struct cfg_snat *sn = &c->snat[slot];

	if (r->base != sn->ts_base)
		*r = (struct palloc_ref){ .base = sn->ts_base };
	r->gen = sn->gen;
	return r;
}

uint32_t palloc_ts_ref(struct palloc *pa, const struct cfg *c, uint8_t slot, uint64_t now_ms)
{
	const struct palloc_ref *r = palloc_ref_of(pa, c, slot);

	return r->base + (uint32_t)now_ms + r->adj;
}

/* R of @slot, moved past the high-water mark of space @s if it is not newer. */
static uint32_t palloc_ts_ref_for(struct palloc *pa, const struct cfg *c, uint8_t slot, uint32_t s,
				  uint64_t now_ms)
{
	struct palloc_ref *r = palloc_ref_of(pa, c, slot);
	const struct palloc_space *sp = &pa->spaces[s];
	uint32_t ref = r->base + (uint32_t)now_ms + r->adj;

	if (palloc_hwm_valid(pa, sp, now_ms) && (int32_t)(sp->ts_hwm - ref) >= 0) {
		r->adj += sp->ts_hwm - ref + 1;
		ref = sp->ts_hwm + 1;
	}
	return ref;
}

uint32_t palloc_ts_open(struct palloc *pa, const struct cfg *c, struct flow *f, uint32_t tsval,
			bool rewrite, uint64_t now_ms)
{
	uint32_t ref;

	f->ts = FLOW_TS_SEEN;
	tsrw_start(f, now_ms);
	if (!rewrite) {
		f->ts_off = 0;
		f->ts_max = tsval;
		return tsval;
	}
	ref = palloc_ts_ref_for(pa, c, f->snat_slot, f->space, now_ms);
	f->ts |= FLOW_TS_REWRITE;
	f->ts_off = ref - tsval;
	f->ts_max = ref;
	return ref;
}

void palloc_ts_end(struct palloc *pa, const struct flow *f, uint64_t now_ms)
{
	struct palloc_space *sp = &pa->spaces[f->space];
	struct palloc_ref *r = &pa->ref[f->snat_slot];

	if (!(f->ts & FLOW_TS_SEEN))
		return;
	if (!palloc_hwm_valid(pa, sp, now_ms) || (int32_t)(f->ts_max - sp->ts_hwm) > 0)
		sp->ts_hwm = f->ts_max;
	sp->ts_hwm_s = palloc_s(pa, now_ms);
	/* Keep the address's clock ahead too, so that a flow on any of its
	 * spaces starts newer (a space may be recycled and forget its mark). */
	if (r->gen == f->snat_gen) {
		uint32_t ref = r->base + (uint32_t)now_ms + r->adj;

		if ((int32_t)(f->ts_max - ref) >= 0)
			r->adj += f->ts_max - ref + 1;
	}
}

int palloc_reuse(struct palloc *pa, const struct cfg *c, const struct cfg_service *svc,
		 struct flow *f, uint32_t tsval, bool rewrite, uint64_t now_ms)
{
	struct palloc_pool tmp;
	const struct palloc_pool *pl = palloc_pool_of(pa, c, &tmp);
	uint64_t from, wrap;
	int slot;

	if (palloc_order(pa, pl, svc, &from, &wrap) == 0)
		return -ENOSPC;
	while ((slot = palloc_order_next(&from, &wrap)) >= 0) {
		const struct cfg_snat *sn = &c->snat[slot];
		struct palloc_space *sp;
		uint32_t blo, bhi, cand, e;
		int64_t s;

		if (!(pl->ranged & (1ULL << slot)))
			continue;
		blo = pl->bits[slot].blo;
		bhi = pl->bits[slot].bhi;
		s = palloc_space_find(pa, f->proto, f->bip, f->bport, sn->ip);
		if (s < 0 || pa->spaces[s].proof_head == PALLOC_NONE)
			continue;
		sp = &pa->spaces[s];
		cand = rewrite ? palloc_ts_ref_for(pa, c, (uint8_t)slot, (uint32_t)s, now_ms) :
				 tsval;
		e = sp->proof_head;
		for (int k = 0; k < PALLOC_REUSE_LOOK && e != PALLOC_NONE; k++) {
			struct palloc_qent *q = &pa->q[e];
			uint32_t bit = q->bit, next = q->snext;
			int32_t newer = (int32_t)(cand - q->ts_last);

			/* Newer, and by less than 2^30: the backend's ts_recent may
			 * lag ts_last, and the margin keeps the difference to it
			 * clear of the signed 32-bit edge. */
			if (bit < blo || bit > bhi || newer <= 0 || newer >= PALLOC_PROOF_MAX) {
				/* Not this SYN's: to the tail, so that one entry
				 * cannot keep the others from being looked at. */
				if (next != PALLOC_NONE) {
					palloc_proof_unlink(pa, (uint32_t)s, e);
					palloc_proof_append(pa, (uint32_t)s, e);
				}
				e = next;
				continue;
			}
			/* The entry goes; its bit stays set for the new flow. */
			palloc_fifo_unlink(pa, e);
			palloc_qent_free(pa, e);
			pa->q_detached--;
			sp->quarantined--;
			sp->live++;
			pa->reused_total++;
			palloc_assign(pa, sn, (uint8_t)slot, f, (uint32_t)s, bit);
			return 0;
		}
	}
	return -ENOSPC;
}
