/* SPDX-License-Identifier: BSD-3-Clause */
/* flow: the per-lcore table, its deletion, capacity and expiry, with injected time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "flow.h"
#include "frame.h"

static void fill(struct flow *f, uint8_t proto, uint32_t cip, uint16_t cport, uint32_t bip,
		 uint16_t sport)
{
	f->proto = proto;
	f->cip = cip;
	f->cport = cport;
	f->vip = tf_n32(TF_VIP);
	f->vport = tf_n16(80);
	f->sip = tf_n32(TF_SNAT);
	f->sport = sport;
	f->bip = bip;
	f->bport = tf_n16(8080);
}

static struct flow *add(struct flow_table *ft, uint32_t cip, uint16_t cport, uint16_t sport,
			uint8_t state, uint64_t now)
{
	struct flow *f = flow_new(ft);

	assert_non_null(f);
	fill(f, IPPROTO_TCP, cip, cport, tf_n32(TF_BACKEND), sport);
	f->state = state;
	assert_int_equal(flow_insert(ft, f, now), 0);
	return f;
}

static struct flow *find(const struct flow_table *ft, const struct flow *f, enum flow_dir want)
{
	struct flow_key k;
	enum flow_dir dir = (enum flow_dir) - 1;
	struct flow *r;

	flow_key_of(f, want, &k);
	r = flow_lookup(ft, &k, &dir);
	if (r != NULL)
		assert_int_equal(dir, want);
	return r;
}

static void create_rejects_zero_and_huge(void **state)
{
	(void)state;
	errno = 0;
	assert_null(flow_table_create(0, -1));
	assert_int_equal(errno, EINVAL);
	assert_null(flow_table_create((1u << 26) + 1, -1));
}

static void insert_is_found_in_both_directions(void **state)
{
	struct flow_table *ft = flow_table_create(16, -1);
	struct flow_key k;
	enum flow_dir dir;
	struct flow *f;

	(void)state;
	assert_non_null(ft);
	f = add(ft, tf_n32(TF_CLIENT), tf_n16(40000), tf_n16(1024), FLOW_SYN, 1);
	assert_ptr_equal(find(ft, f, FLOW_DIR_FWD), f);
	assert_ptr_equal(find(ft, f, FLOW_DIR_REV), f);
	/* The forward key: client -> VIP, as the client sends it. */
	flow_key_set(&k, IPPROTO_TCP, tf_n32(TF_CLIENT), tf_n16(40000), tf_n32(TF_VIP), tf_n16(80));
	assert_ptr_equal(flow_lookup(ft, &k, &dir), f);
	assert_int_equal(dir, FLOW_DIR_FWD);
	/* The reverse key: backend -> SNAT, as the backend answers. */
	flow_key_set(&k, IPPROTO_TCP, tf_n32(TF_BACKEND), tf_n16(8080), tf_n32(TF_SNAT),
		     tf_n16(1024));
	assert_ptr_equal(flow_lookup(ft, &k, &dir), f);
	assert_int_equal(dir, FLOW_DIR_REV);
	/* Not the mirror images, nor another protocol. */
	flow_key_set(&k, IPPROTO_TCP, tf_n32(TF_VIP), tf_n16(80), tf_n32(TF_CLIENT), tf_n16(40000));
	assert_null(flow_lookup(ft, &k, &dir));
	flow_key_set(&k, IPPROTO_UDP, tf_n32(TF_CLIENT), tf_n16(40000), tf_n32(TF_VIP), tf_n16(80));
	assert_null(flow_lookup(ft, &k, &dir));
	assert_int_equal(flow_count(ft), 1);
	assert_int_equal(f->created_ms, 1);
	assert_int_equal(f->last_ms, 1);
	flow_table_free(ft);
}

static void duplicate_keys_are_refused(void **state)
{
	struct flow_table *ft = flow_table_create(16, -1);
	struct flow *a, *b;

	(void)state;
	a = add(ft, tf_n32(TF_CLIENT), tf_n16(40000), tf_n16(1024), FLOW_SYN, 1);
	/* Same forward key, another SNAT port. */
	b = flow_new(ft);
	fill(b, IPPROTO_TCP, a->cip, a->cport, a->bip, tf_n16(1025));
	assert_int_equal(flow_insert(ft, b, 2), -EEXIST);
	assert_null(find(ft, b, FLOW_DIR_REV)); /* nothing half-inserted */
	/* Same reverse key, another client. */
	fill(b, IPPROTO_TCP, tf_n32(TF_CLIENT) + 1, a->cport, a->bip, a->sport);
	assert_int_equal(flow_insert(ft, b, 2), -EEXIST);
	assert_null(find(ft, b, FLOW_DIR_FWD));
	/* A flow whose two keys are the same key. */
	fill(b, IPPROTO_UDP, 1, 2, 1, 4);
	b->vip = 3;
	b->vport = 4;
	b->sip = 3;
	b->bport = 2;
	assert_int_equal(flow_insert(ft, b, 2), -EEXIST);
	/* Invalid class. */
	fill(b, IPPROTO_TCP, 9, 9, 9, 9);
	b->state = FLOW_CLASS_COUNT;
	assert_int_equal(flow_insert(ft, b, 2), -EINVAL);
	flow_discard(ft, b);
	assert_int_equal(flow_count(ft), 1);
	assert_ptr_equal(find(ft, a, FLOW_DIR_FWD), a);
	/* Same tuple in the other protocol is a different flow. */
	b = flow_new(ft);
	fill(b, IPPROTO_UDP, a->cip, a->cport, a->bip, a->sport);
	b->state = FLOW_UDP;
	assert_int_equal(flow_insert(ft, b, 2), 0);
	assert_int_equal(flow_count(ft), 2);
	flow_table_free(ft);
}

static void capacity_exhaustion_returns_null(void **state)
{
	struct flow_table *ft = flow_table_create(8, -1);
	struct flow *fl[8];

	(void)state;
	assert_int_equal(flow_capacity(ft), 8);
	for (int i = 0; i < 8; i++)
		fl[i] = add(ft, (uint32_t)i + 1, 1, (uint16_t)(i + 1), FLOW_ESTABLISHED, 0);
	assert_null(flow_new(ft));
	assert_int_equal(flow_count(ft), 8);
	flow_remove(ft, fl[3]);
	assert_int_equal(flow_count(ft), 7);
	fl[3] = flow_new(ft);
	assert_non_null(fl[3]);
	assert_null(flow_new(ft));
	/* A discarded flow goes back to the free list. */
	flow_discard(ft, fl[3]);
	assert_non_null(flow_new(ft));
	flow_table_free(ft);
}

static void new_flow_is_zeroed(void **state)
{
	struct flow_table *ft = flow_table_create(1, -1);
	struct flow *f = add(ft, 1, 2, 3, FLOW_CLOSING, 5);

	(void)state;
	f->ts_off = 77;
	f->tcp_seen = 9;
	flow_remove(ft, f);
	f = flow_new(ft);
	assert_int_equal(f->ts_off, 0);
	assert_int_equal(f->tcp_seen, 0);
	assert_int_equal(f->state, 0);
	flow_table_free(ft);
}

/* Reference model: which tuples are live. */
struct ref {
	uint32_t cip;
	uint16_t sport;
	struct flow *f;
};

static void stress(uint32_t capacity, uint64_t seed, int ops, uint32_t key_space)
{
	struct flow_table *ft = flow_table_create(capacity, -1);
	struct ref *live = calloc(capacity, sizeof(*live));
	uint32_t nlive = 0;

	assert_non_null(ft);
	assert_non_null(live);
	for (int op = 0; op < ops; op++) {
		uint64_t r = tf_rand(&seed);

		if (nlive > 0 && (nlive == capacity || r % 100 < 45)) {
			uint32_t i = (uint32_t)((r >> 8) % nlive);

			flow_remove(ft, live[i].f);
			assert_null(find(ft,
					 &(struct flow){ .proto = IPPROTO_TCP,
							 .cip = live[i].cip,
							 .cport = 7,
							 .vip = tf_n32(TF_VIP),
							 .vport = tf_n16(80) },
					 FLOW_DIR_FWD));
			live[i] = live[--nlive];
		} else {
			/* Small key spaces: duplicates are frequent. */
			uint32_t cip = (uint32_t)((r >> 8) % key_space) + 1;
			uint16_t sport = (uint16_t)((r >> 40) % key_space) + 1;
			struct flow *f = flow_new(ft);
			int dup = 0;

			assert_non_null(f);
			fill(f, IPPROTO_TCP, cip, 7, tf_n32(TF_BACKEND), sport);
			for (uint32_t i = 0; i < nlive; i++)
				dup |= live[i].cip == cip || live[i].sport == sport;
			if (dup) {
				assert_int_equal(flow_insert(ft, f, (uint64_t)op), -EEXIST);
				flow_discard(ft, f);
			} else {
				assert_int_equal(flow_insert(ft, f, (uint64_t)op), 0);
				live[nlive++] = (struct ref){ cip, sport, f };
			}
		}
		assert_int_equal(flow_count(ft), nlive);
		for (uint32_t i = 0; i < nlive; i++) {
			assert_ptr_equal(find(ft, live[i].f, FLOW_DIR_FWD), live[i].f);
			assert_ptr_equal(find(ft, live[i].f, FLOW_DIR_REV), live[i].f);
			assert_int_equal(live[i].f->cip, live[i].cip);
		}
	}
	while (nlive > 0)
		flow_remove(ft, live[--nlive].f);
	assert_int_equal(flow_count(ft), 0);
	free(live);
	flow_table_free(ft);
}

static void removal_keeps_other_keys_findable(void **state)
{
	(void)state;
	/* A 16-slot table: clusters wrap around its end all the time. */
	stress(4, 1, 20000, 16);
	stress(8, 2, 20000, 24);
	stress(64, 3, 20000, 200);
	stress(256, 4, 10000, 100000);
	stress(1000, 5, 8000, 2000);
}

static void expiry_is_exact_to_the_millisecond(void **state)
{
	uint64_t to[FLOW_CLASS_COUNT] = { 100, 1000, 200, 10, 300 };
	struct flow_table *ft = flow_table_create(16, -1);
	struct flow *f;

	(void)state;
	f = add(ft, 1, 1, 1, FLOW_ESTABLISHED, 5000);
	assert_null(flow_expired(ft, 5000, to));
	assert_null(flow_expired(ft, 5999, to));
	assert_ptr_equal(flow_expired(ft, 6000, to), f);
	/* A packet at 5500 moves expiry to 6500. */
	flow_touch(ft, f, FLOW_ESTABLISHED, 5500);
	assert_null(flow_expired(ft, 6499, to));
	assert_ptr_equal(flow_expired(ft, 6500, to), f);
	flow_remove(ft, f);
	assert_null(flow_expired(ft, 100000, to));
	flow_table_free(ft);
}

static void touch_moves_flow_behind_younger_ones(void **state)
{
	uint64_t to[FLOW_CLASS_COUNT] = { 100, 100, 100, 100, 100 };
	struct flow_table *ft = flow_table_create(16, -1);
	struct flow *a, *b, *c;

	(void)state;
	a = add(ft, 1, 1, 1, FLOW_UDP, 0);
	b = add(ft, 2, 2, 2, FLOW_UDP, 10);
	c = add(ft, 3, 3, 3, FLOW_UDP, 20);
	flow_touch(ft, a, FLOW_UDP, 30);
	/* Now b is the oldest. */
	assert_null(flow_expired(ft, 109, to));
	assert_ptr_equal(flow_expired(ft, 110, to), b);
	flow_remove(ft, b);
	assert_ptr_equal(flow_expired(ft, 1000, to), c);
	flow_remove(ft, c);
	assert_null(flow_expired(ft, 129, to));
	assert_ptr_equal(flow_expired(ft, 130, to), a);
	/* Touching the tail of its own list is harmless. */
	flow_touch(ft, a, FLOW_UDP, 200);
	assert_ptr_equal(flow_expired(ft, 300, to), a);
	flow_table_free(ft);
}

static void class_change_moves_flow_to_that_class_list(void **state)
{
	uint64_t to[FLOW_CLASS_COUNT] = { 30000, 7440000, 240000, 10000, 300000 };
	struct flow_table *ft = flow_table_create(16, -1);
	struct flow *a, *b;

	(void)state;
	a = add(ft, 1, 1, 1, FLOW_SYN, 0);
	b = add(ft, 2, 2, 2, FLOW_SYN, 0);
	flow_touch(ft, a, FLOW_ESTABLISHED, 1000);
	assert_int_equal(a->state, FLOW_ESTABLISHED);
	/* b still times out as SYN; a as ESTABLISHED. */
	assert_ptr_equal(flow_expired(ft, 30000, to), b);
	flow_remove(ft, b);
	assert_null(flow_expired(ft, 1000 + 7440000 - 1, to));
	/* Closed: the short timeout applies from the last packet. */
	flow_touch(ft, a, FLOW_CLOSED, 50000);
	assert_null(flow_expired(ft, 59999, to));
	assert_ptr_equal(flow_expired(ft, 60000, to), a);
	flow_table_free(ft);
}

static void expired_returns_oldest_of_each_class(void **state)
{
	uint64_t to[FLOW_CLASS_COUNT] = { 10, 10, 10, 10, 10 };
	struct flow_table *ft = flow_table_create(64, -1);
	struct flow *fl[40];
	int n = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		fl[i] = add(ft, (uint32_t)i + 1, 1, (uint16_t)(i + 1),
			    (uint8_t)(i % FLOW_CLASS_COUNT), (uint64_t)i);
	for (struct flow *f; (f = flow_expired(ft, 29, to)) != NULL; n++) {
		assert_true(f->last_ms + 10 <= 29);
		flow_remove(ft, f);
	}
	assert_int_equal(n, 20);
	assert_int_equal(flow_count(ft), 20);
	for (int i = 20; i < 40; i++)
		assert_ptr_equal(find(ft, fl[i], FLOW_DIR_REV), fl[i]);
	flow_table_free(ft);
}

static void expired_burst_takes_at_most_max_oldest_first(void **state)
{
	uint64_t to[FLOW_CLASS_COUNT] = { 10, 10, 10, 10, 10 };
	struct flow_table *ft = flow_table_create(64, -1);
	struct flow *fl[40], *out[8];
	uint32_t k, total = 0, calls = 0;

	(void)state;
	for (int i = 0; i < 40; i++)
		fl[i] = add(ft, (uint32_t)i + 1, 1, (uint16_t)(i + 1),
			    (uint8_t)(i % FLOW_CLASS_COUNT), (uint64_t)i);
	/* At 29 the flows 0..19 are idle for 10 ms or more: 8 + 8 + 4. */
	do {
		uint64_t last[FLOW_CLASS_COUNT] = { 0 };

		k = flow_expired_burst(ft, 29, to, out, 8);
		assert_true(k <= 8);
		for (uint32_t i = 0; i < k; i++) {
			assert_true(out[i]->last_ms + 10 <= 29);
			/* Oldest first within a class, each flow once. */
			assert_true(out[i]->last_ms >= last[out[i]->state]);
			last[out[i]->state] = out[i]->last_ms + 1;
		}
		for (uint32_t i = 0; i < k; i++)
			flow_remove(ft, out[i]);
		total += k;
		calls++;
	} while (k == 8 && calls < 10);
	assert_int_equal(total, 20);
	assert_int_equal(calls, 3);
	assert_int_equal(flow_count(ft), 20);
	for (int i = 20; i < 40; i++)
		assert_ptr_equal(find(ft, fl[i], FLOW_DIR_REV), fl[i]);
	assert_int_equal(flow_expired_burst(ft, 29, to, out, 8), 0);
	flow_table_free(ft);
}

static void flow_at_shows_live_entries_only(void **state)
{
	struct flow_table *ft = flow_table_create(4, -1);
	struct flow *a, *b;
	int seen = 0;

	(void)state;
	a = add(ft, 1, 1, 1, FLOW_SYN, 0);
	b = add(ft, 2, 2, 2, FLOW_SYN, 0);
	for (uint32_t i = 0; i < flow_capacity(ft); i++)
		if (flow_at(ft, i) != NULL)
			seen++;
	assert_int_equal(seen, 2);
	flow_remove(ft, a);
	seen = 0;
	for (uint32_t i = 0; i < flow_capacity(ft); i++) {
		const struct flow *f = flow_at(ft, i);

		if (f != NULL) {
			assert_ptr_equal(f, b);
			seen++;
		}
	}
	assert_int_equal(seen, 1);
	assert_null(flow_at(ft, 4));
	assert_null(flow_at(ft, UINT32_MAX));
	/* A flow taken but never inserted is not shown. */
	a = flow_new(ft);
	for (uint32_t i = 0; i < flow_capacity(ft); i++)
		assert_true(flow_at(ft, i) == NULL || flow_at(ft, i) == b);
	assert_true(flow_table_size(ft) > 0);
	flow_table_free(ft);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_rejects_zero_and_huge),
		cmocka_unit_test(insert_is_found_in_both_directions),
		cmocka_unit_test(duplicate_keys_are_refused),
		cmocka_unit_test(capacity_exhaustion_returns_null),
		cmocka_unit_test(new_flow_is_zeroed),
		cmocka_unit_test(removal_keeps_other_keys_findable),
		cmocka_unit_test(expiry_is_exact_to_the_millisecond),
		cmocka_unit_test(touch_moves_flow_behind_younger_ones),
		cmocka_unit_test(class_change_moves_flow_to_that_class_list),
		cmocka_unit_test(expired_returns_oldest_of_each_class),
		cmocka_unit_test(expired_burst_takes_at_most_max_oldest_first),
		cmocka_unit_test(flow_at_shows_live_entries_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
