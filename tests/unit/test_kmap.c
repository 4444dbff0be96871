/* SPDX-License-Identifier: BSD-3-Clause */
/* kmap: the small immutable map of the config snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>

#include <cmocka.h>

#include "frame.h"
#include "kmap.h"

static void put_then_get(void **state)
{
	struct kmap *m = kmap_create(4);
	uint32_t v = 0;

	(void)state;
	assert_non_null(m);
	assert_false(kmap_get(m, 1, &v));
	assert_int_equal(kmap_put(m, 1, 10), 0);
	assert_int_equal(kmap_put(m, 0, 20), 0); /* key 0 is an ordinary key */
	assert_int_equal(kmap_put(m, UINT64_MAX, 30), 0);
	assert_true(kmap_get(m, 1, &v));
	assert_int_equal(v, 10);
	assert_true(kmap_get(m, 0, &v));
	assert_int_equal(v, 20);
	assert_true(kmap_get(m, UINT64_MAX, &v));
	assert_int_equal(v, 30);
	assert_false(kmap_get(m, 2, &v));
	assert_int_equal(kmap_count(m), 3);
	kmap_free(m);
}

static void put_replaces_existing_value(void **state)
{
	struct kmap *m = kmap_create(1);
	uint32_t v;

	(void)state;
	assert_int_equal(kmap_put(m, 7, 1), 0);
	/* Full, but replacing is not adding. */
	assert_int_equal(kmap_put(m, 7, 2), 0);
	assert_true(kmap_get(m, 7, &v));
	assert_int_equal(v, 2);
	assert_int_equal(kmap_count(m), 1);
	kmap_free(m);
}

static void put_beyond_count_is_enospc(void **state)
{
	struct kmap *m = kmap_create(3);
	struct kmap *z = kmap_create(0);
	uint32_t v;

	(void)state;
	for (uint64_t k = 0; k < 3; k++)
		assert_int_equal(kmap_put(m, k << 32, (uint32_t)k), 0);
	assert_int_equal(kmap_put(m, 99, 1), -ENOSPC);
	assert_false(kmap_get(m, 99, &v));
	assert_int_equal(kmap_count(m), 3);
	assert_non_null(z);
	assert_int_equal(kmap_put(z, 1, 1), -ENOSPC);
	assert_false(kmap_get(z, 1, &v));
	kmap_free(m);
	kmap_free(z);
}

static void create_rejects_huge_count(void **state)
{
	(void)state;
	errno = 0;
	assert_null(kmap_create((1u << 24) + 1));
	assert_int_equal(errno, EINVAL);
	kmap_free(NULL);
}

static void many_random_keys_are_all_found(void **state)
{
	const uint32_t n = 20000;
	struct kmap *m = kmap_create(n);
	uint64_t seed = 42, *keys = calloc(n, sizeof(*keys));
	uint32_t v;

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = tf_rand(&seed);
		assert_int_equal(kmap_put(m, keys[i], i), 0);
	}
	assert_int_equal(kmap_count(m), n);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(kmap_get(m, keys[i], &v));
		assert_int_equal(v, i);
		assert_false(kmap_get(m, keys[i] ^ 1, &v) && v == i);
	}
	/* Sequential keys (addresses, slots) cluster in many hashes. */
	kmap_free(m);
	m = kmap_create(n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(kmap_put(m, 0x0a000000u + i, i), 0);
	for (uint32_t i = 0; i < n; i++)
		assert_true(kmap_get(m, 0x0a000000u + i, &v) && v == i);
	assert_false(kmap_get(m, 0x0a000000u + n, &v));
	free(keys);
	kmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_then_get),
		cmocka_unit_test(put_replaces_existing_value),
		cmocka_unit_test(put_beyond_count_is_enospc),
		cmocka_unit_test(create_rejects_huge_count),
		cmocka_unit_test(many_random_keys_are_all_found),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
