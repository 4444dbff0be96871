/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mem: zeroed start-up allocations on a NUMA node, for the per-lcore tables
 * (flow table, port space). Plain calloc() when libnuma is unavailable or no
 * node is asked for, so unit tests run without it. Never on the fast path.
 */
#ifndef SLUICE_MEM_H
#define SLUICE_MEM_H

#include <stdlib.h>
#include <string.h>

#include <numa.h>

static inline void *mem_alloc(size_t size, int node)
{
	void *p;

	if (size == 0)
		size = 1;
	if (node >= 0 && numa_available() >= 0) {
		p = numa_alloc_onnode(size, node);
		if (p != NULL)
			memset(p, 0, size);
		return p;
	}
	return calloc(1, size);
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
