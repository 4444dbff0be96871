/* SPDX-License-Identifier: BSD-3-Clause */
/* stats: drop reasons have one name each, and names find their reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include <cmocka.h>

#include "stats.h"

static void every_drop_reason_has_a_unique_name(void **state)
{
	(void)state;
	for (int i = 0; i < STATS_DROP_COUNT; i++) {
		const char *n = stats_drop_name((enum stats_drop)i);

		assert_non_null(n);
		assert_true(strlen(n) > 0);
		assert_string_not_equal(n, "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(n, stats_drop_name((enum stats_drop)j));
		assert_int_equal(stats_drop_lookup(n), i);
	}
}

static void unknown_reasons_and_names_are_refused(void **state)
{
	(void)state;
	assert_string_equal(stats_drop_name(STATS_DROP_COUNT), "?");
	assert_string_equal(stats_drop_name((enum stats_drop) - 1), "?");
	assert_int_equal(stats_drop_lookup("no_such_reason"), -1);
	assert_int_equal(stats_drop_lookup(""), -1);
	assert_string_equal(stats_drop_name(STATS_DROP_IP_FRAGMENT), "ip_fragment");
}

static void drop_counter_counts_its_reason_only(void **state)
{
	struct stats_lcore s;

	(void)state;
	memset(&s, 0, sizeof(s));
	stats_drop_inc(&s, STATS_DROP_TCP_BAD_OPTION);
	stats_drop_inc(&s, STATS_DROP_TCP_BAD_OPTION);
	for (int i = 0; i < STATS_DROP_COUNT; i++)
		assert_int_equal(s.drops[i], i == STATS_DROP_TCP_BAD_OPTION ? 2 : 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_drop_reason_has_a_unique_name),
		cmocka_unit_test(unknown_reasons_and_names_are_refused),
		cmocka_unit_test(drop_counter_counts_its_reason_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
