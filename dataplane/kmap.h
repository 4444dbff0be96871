/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmap: a small immutable map from 64-bit keys to 32-bit values.
 *
 * Built by the control thread (kmap_create, kmap_put), then published inside
 * a config snapshot and only read (kmap_get) by workers. Open addressing with
 * linear probing at load factor <= 1/2, so a miss costs a probe or two. Not
 * safe to write while readers may use it: build a new one instead.
 */
#ifndef SLUICE_KMAP_H
#define SLUICE_KMAP_H

#include <stdbool.h>
#include <stdint.h>

struct kmap;

/* Room for at least @count keys. Returns NULL with errno set on failure. */
struct kmap *kmap_create(uint32_t count);
void kmap_free(struct kmap *m);

/* Insert or replace. Returns 0, or -ENOSPC when the map holds @count keys. */
int kmap_put(struct kmap *m, uint64_t key, uint32_t val);

/* Returns true and stores the value if @key is present. */
bool kmap_get(const struct kmap *m, uint64_t key, uint32_t *val);

/* Number of keys. */
uint32_t kmap_count(const struct kmap *m);

#endif
