/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "stats.h"

static const char *const stats_drop_names[STATS_DROP_COUNT] = {
#define STATS_DROP_STR(sym, name) [STATS_DROP_##sym] = name,
	STATS_DROP_REASONS(STATS_DROP_STR)
#undef STATS_DROP_STR
};

const char *stats_drop_name(enum stats_drop reason)
{
	if ((unsigned)reason >= STATS_DROP_COUNT)
		return "?";
	return stats_drop_names[reason];
}

int stats_drop_lookup(const char *name)
{
	for (int i = 0; i < STATS_DROP_COUNT; i++)
		if (strcmp(stats_drop_names[i], name) == 0)
			return i;
	return -1;
}
