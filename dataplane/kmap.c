/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>

#include "kmap.h"

struct kmap_slot {
	uint64_t key;
	uint32_t val;
	uint32_t used;
};

struct kmap {
	uint32_t mask;
	uint32_t count;
	uint32_t limit;
	struct kmap_slot slots[];
};

static inline uint32_t kmap_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return (uint32_t)key;
}

struct kmap *kmap_create(uint32_t count)
{
	uint32_t size = 8;
	struct kmap *m;

	if (count > (1u << 24)) {
		errno = EINVAL;
		return NULL;
	}
	while (size < 2 * count)
		size <<= 1;
	m = calloc(1, sizeof(*m) + size * sizeof(m->slots[0]));
	if (m == NULL)
		return NULL;
	m->mask = size - 1;
	m->limit = count;
	return m;
}

void kmap_free(struct kmap *m)
{
	free(m);
}

int kmap_put(struct kmap *m, uint64_t key, uint32_t val)
{
	uint32_t i = kmap_hash(key) & m->mask;

	for (;; i = (i + 1) & m->mask) {
		struct kmap_slot *s = &m->slots[i];

		if (s->used && s->key == key) {
			s->val = val;
			return 0;
		}
		if (!s->used) {
			if (m->count >= m->limit)
				return -ENOSPC;
			s->used = 1;
			s->key = key;
			s->val = val;
			m->count++;
			return 0;
		}
	}
}

bool kmap_get(const struct kmap *m, uint64_t key, uint32_t *val)
{
	uint32_t i = kmap_hash(key) & m->mask;

	/* Load factor <= 1/2 guarantees an empty slot ends every probe. */
	for (;; i = (i + 1) & m->mask) {
		const struct kmap_slot *s = &m->slots[i];

		if (!s->used)
			return false;
		if (s->key == key) {
			*val = s->val;
			return true;
		}
	}
}

uint32_t kmap_count(const struct kmap *m)
{
	return m->count;
}
