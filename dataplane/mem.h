/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mem: zeroed start-up allocations on a NUMA node, for the per-lcore tables
 * (flow table, port space, quarantine). Plain calloc() (aligned_alloc() for
 * large tables) when libnuma is unavailable or no node is asked for, so unit
 * tests run without it. Never on the fast path.
 */
#ifndef SLUICE_MEM_H
#define SLUICE_MEM_H

#include <stdlib.h>
#include <string.h>

#include <numa.h>
#include <sys/mman.h>

#define MEM_HUGE (2u << 20) /* x86-64 transparent huge page */

/*
 * Ask for transparent huge pages before the first touch: a table of a million
 * flows spans 40,000 small pages, and a TLB miss on every lookup costs as much
 * as the cache miss itself. Only advice: where THP is off, small pages stay.
 */
static inline void mem_huge(void *p, size_t size)
{
	if (size >= MEM_HUGE)
		madvise(p, size, MADV_HUGEPAGE);
}

static inline void *mem_alloc(size_t size, int node)
{
	void *p;

	if (size == 0)
		size = 1;
	if (node >= 0 && numa_available() >= 0) {
		p = numa_alloc_onnode(size, node);
		if (p != NULL) {
			mem_huge(p, size);
			memset(p, 0, size);
		}
		return p;
	}
	if (size < MEM_HUGE)
		return calloc(1, size);
	p = aligned_alloc(MEM_HUGE, (size + MEM_HUGE - 1) & ~(size_t)(MEM_HUGE - 1));
	if (p != NULL) {
		mem_huge(p, size);
		memset(p, 0, size);
	}
	return p;
}

static inline void mem_free(void *p, size_t size, int node)
{
	if (p == NULL)
		return;
	if (size == 0)
		size = 1;
	if (node >= 0 && numa_available() >= 0)
		numa_free(p, size);
	else
		free(p);
}

#endif
