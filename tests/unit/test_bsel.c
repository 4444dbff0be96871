/* SPDX-License-Identifier: BSD-3-Clause */
/* bsel: who is a member, wrr proportions, rr order, maglev balance and disruption, lc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <stdio.h>

#include <cmocka.h>

#include "bsel.h"
#include "cfg.h"
#include "frame.h"

static struct stats_backend bstats[CFG_MAX_BACKENDS];

static struct cfg *mkcfg(uint8_t sched)
{
	struct cfg *c = cfg_new();

	assert_non_null(c);
	c->services[0].used = true;
	c->services[0].gen = c->next_gen++;
	snprintf(c->services[0].name, sizeof(c->services[0].name), "web");
	c->services[0].vip = tf_n32(TF_VIP);
	c->services[0].l4port = tf_n16(80);
	c->services[0].proto = IPPROTO_TCP;
	c->services[0].sched = sched;
	c->services[0].snat_all = true;
	return c;
}

static void be_add(struct cfg *c, int slot, int svc, uint32_t ip, uint16_t weight, uint8_t st)
{
	struct cfg_backend *b = &c->backends[slot];

	b->used = true;
	b->gen = c->next_gen++;
	b->svc = (uint16_t)svc;
	b->ip = tf_n32(ip);
	b->l4port = tf_n16(8080);
	b->weight = weight;
	b->state = st;
}

static struct bsel_table *build(struct cfg *c)
{
	struct bsel_table *t = bsel_table_build(c, 0);

	assert_non_null(t);
	return t;
}

static void check_wrr(const uint16_t *w, int n)
{
	struct cfg *c = mkcfg(CFG_SCHED_WRR);
	struct bsel_table *t;
	uint32_t counts[16] = { 0 }, g = 0, sum = 0, cursor = 0;

	for (int i = 0; i < n; i++) {
		uint32_t a = w[i], b = g;

		be_add(c, i, 0, TF_IP(10, 2, 0, 1) + (uint32_t)i, w[i], CFG_BACKEND_UP);
		while (b != 0) {
			uint32_t r = a % b;

			a = b;
			b = r;
		}
		g = a;
		sum += w[i];
	}
	t = build(c);
	assert_int_equal(t->seq_len, sum / g);
	/* Exactly in proportion over one sequence, and over three. */
	for (uint32_t k = 0; k < 3 * t->seq_len; k++) {
		int b = bsel_pick(t, &cursor, 0, bstats);

		assert_true(b >= 0 && b < n);
		counts[b]++;
		if (k + 1 == t->seq_len)
			for (int i = 0; i < n; i++)
				assert_int_equal(counts[i], w[i] / g);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(counts[i], 3 * (w[i] / g));
	bsel_table_unref(t);
	cfg_free(c);
}

static void wrr_proportions_are_exact_over_one_sequence(void **state)
{
	(void)state;
	check_wrr((const uint16_t[]){ 1, 2, 3 }, 3);
	check_wrr((const uint16_t[]){ 5, 1, 1 }, 3);
	check_wrr((const uint16_t[]){ 3, 3, 3 }, 3);
	check_wrr((const uint16_t[]){ 10, 20, 30, 40 }, 4);
	check_wrr((const uint16_t[]){ 1, 100 }, 2);
	check_wrr((const uint16_t[]){ 7, 13, 1, 1, 2 }, 5);
	check_wrr((const uint16_t[]){ 65535 }, 1);
	check_wrr((const uint16_t[]){ 32768, 32768 }, 2); /* the largest unscaled total */
}

static void wrr_sequence_is_interleaved_within_a_period(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_WRR);
	struct bsel_table *t;
	uint32_t cursor = 0;
	int prev = -1;

	(void)state;
	/*
	 * Smooth WRR: with 1:2:3, no backend is picked twice in a row inside a
	 * period (c b a c b c); across periods c c is inherent, as in nginx.
	 */
	for (int i = 0; i < 3; i++)
		be_add(c, i, 0, TF_IP(10, 2, 0, 1) + (uint32_t)i, (uint16_t)(i + 1),
		       CFG_BACKEND_UP);
	t = build(c);
	assert_int_equal(t->seq_len, 6);
	for (int k = 0; k < 6; k++) {
		int b = bsel_pick(t, &cursor, 0, bstats);

		assert_int_not_equal(b, prev);
		prev = b;
	}
	bsel_table_unref(t);
	cfg_free(c);
}

static void wrr_huge_total_weight_is_scaled(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_WRR);
	struct bsel_table *t;
	uint32_t counts[3] = { 0 }, cursor = 0;

	(void)state;
	be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 65535, CFG_BACKEND_UP);
	be_add(c, 1, 0, TF_IP(10, 2, 0, 2), 65535, CFG_BACKEND_UP);
	be_add(c, 2, 0, TF_IP(10, 2, 0, 3), 1, CFG_BACKEND_UP);
	t = build(c);
	assert_true(t->seq_len <= BSEL_SEQ_MAX + t->count);
	for (uint32_t k = 0; k < t->seq_len; k++)
		counts[bsel_pick(t, &cursor, 0, bstats)]++;
	assert_int_equal(counts[0], counts[1]);
	assert_true(counts[2] >= 1); /* never starved to zero */
	bsel_table_unref(t);
	cfg_free(c);
}

static void weight_zero_drain_and_down_are_never_picked(void **state)
{
	static const uint8_t scheds[] = { CFG_SCHED_MAGLEV, CFG_SCHED_WRR, CFG_SCHED_RR,
					  CFG_SCHED_LC };

	(void)state;
	for (size_t s = 0; s < sizeof(scheds); s++) {
		struct cfg *c = mkcfg(scheds[s]);
		struct bsel_table *t;
		uint32_t cursor = 0;
		uint64_t seed = 1;

		be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 0, CFG_BACKEND_UP);
		be_add(c, 1, 0, TF_IP(10, 2, 0, 2), 5, CFG_BACKEND_DRAIN);
		be_add(c, 2, 0, TF_IP(10, 2, 0, 3), 5, CFG_BACKEND_DOWN);
		be_add(c, 3, 1, TF_IP(10, 2, 0, 4), 5, CFG_BACKEND_UP); /* another service's */
		be_add(c, 4, 0, TF_IP(10, 2, 0, 5), 1, CFG_BACKEND_UP);
		be_add(c, 5, 0, TF_IP(10, 2, 0, 6), 9, CFG_BACKEND_UP);
		c->backends[5].used = false; /* a freed slot */
		t = build(c);
		assert_int_equal(t->count, 1);
		for (int k = 0; k < 1000; k++)
			assert_int_equal(bsel_pick(t, &cursor, (uint32_t)tf_rand(&seed), bstats),
					 4);
		bsel_table_unref(t);
		cfg_free(c);
	}
}

static void no_member_picks_nothing(void **state)
{
	static const uint8_t scheds[] = { CFG_SCHED_MAGLEV, CFG_SCHED_WRR, CFG_SCHED_RR,
					  CFG_SCHED_LC };
	uint32_t cursor = 0;

	(void)state;
	assert_int_equal(bsel_pick(NULL, &cursor, 1, bstats), -1);
	for (size_t s = 0; s < sizeof(scheds); s++) {
		struct cfg *c = mkcfg(scheds[s]);
		struct bsel_table *t;

		t = build(c);
		assert_int_equal(bsel_pick(t, &cursor, 1, bstats), -1);
		bsel_table_unref(t);
		be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 1, CFG_BACKEND_DOWN);
		t = build(c);
		assert_int_equal(bsel_pick(t, &cursor, 1, bstats), -1);
		bsel_table_unref(t);
		cfg_free(c);
	}
}

static void rr_cycles_through_members_in_order(void **state)
{
	static const int slots[] = { 5, 9, 100, 4095 };
	struct cfg *c = mkcfg(CFG_SCHED_RR);
	struct bsel_table *t;
	uint32_t cursor = 0;

	(void)state;
	for (int i = 0; i < 4; i++) /* rr ignores weights */
		be_add(c, slots[i], 0, TF_IP(10, 2, 0, 1) + (uint32_t)i, (uint16_t)(i * 10 + 1),
		       CFG_BACKEND_UP);
	t = build(c);
	for (int k = 0; k < 40; k++)
		assert_int_equal(bsel_pick(t, &cursor, (uint32_t)k * 7919u, bstats), slots[k % 4]);
	/* The cursor is per lcore: another one starts from the beginning. */
	cursor = 0;
	assert_int_equal(bsel_pick(t, &cursor, 0, bstats), 5);
	/* And the cursor may wrap around. */
	cursor = UINT32_MAX;
	assert_int_equal(bsel_pick(t, &cursor, 0, bstats), slots[UINT32_MAX % 4]);
	assert_int_equal(bsel_pick(t, &cursor, 0, bstats), 5);
	bsel_table_unref(t);
	cfg_free(c);
}

/* Entries per backend slot of a maglev table. */
static void maglev_counts(const struct bsel_table *t, uint32_t *counts)
{
	assert_int_equal(t->seq_len, BSEL_MAGLEV_SIZE);
	for (uint32_t e = 0; e < t->seq_len; e++) {
		assert_true(t->seq[e] < t->count); /* fully populated */
		counts[t->members[t->seq[e]]]++;
	}
}

static void check_maglev_shares(const uint16_t *w, int n)
{
	struct cfg *c = mkcfg(CFG_SCHED_MAGLEV);
	struct bsel_table *t;
	uint32_t counts[64] = { 0 }, sum = 0;

	for (int i = 0; i < n; i++) {
		be_add(c, i, 0, TF_IP(10, 2, 1, 1) + (uint32_t)i * 3, w[i], CFG_BACKEND_UP);
		sum += w[i];
	}
	t = build(c);
	maglev_counts(t, counts);
	for (int i = 0; i < n; i++) {
		double share = (double)BSEL_MAGLEV_SIZE * w[i] / sum;
		double dev = (counts[i] - share) / share;

		if (dev > 0.01 || dev < -0.01)
			fail_msg("backend %d: %u entries, share %.1f (%.2f%%)", i, counts[i], share,
				 dev * 100);
	}
	bsel_table_unref(t);
	cfg_free(c);
}

static void maglev_table_is_full_and_balanced(void **state)
{
	(void)state;
	check_maglev_shares((const uint16_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 10);
	check_maglev_shares((const uint16_t[]){ 100, 100, 100 }, 3);
	check_maglev_shares((const uint16_t[]){ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 10);
	check_maglev_shares((const uint16_t[]){ 1, 2, 3 }, 3);
	check_maglev_shares((const uint16_t[]){ 7 }, 1);
}

static void maglev_pick_depends_on_hash_only(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_MAGLEV);
	struct bsel_table *t, *t2;
	uint32_t c1 = 0, c2 = 12345;
	uint64_t seed = 9;

	(void)state;
	for (int i = 0; i < 5; i++)
		be_add(c, i * 2, 0, TF_IP(10, 2, 0, 1) + (uint32_t)i, 1, CFG_BACKEND_UP);
	t = build(c);
	t2 = build(c);
	/* Deterministic: every lcore and every rebuild agree. */
	assert_memory_equal(t->seq, t2->seq, BSEL_MAGLEV_SIZE * sizeof(t->seq[0]));
	for (int k = 0; k < 10000; k++) {
		uint32_t h = (uint32_t)tf_rand(&seed);
		int b = bsel_pick(t, &c1, h, bstats);

		assert_int_equal(b, bsel_pick(t2, &c2, h, bstats));
		assert_int_equal(b, t->members[t->seq[h % BSEL_MAGLEV_SIZE]]);
	}
	assert_int_equal(c1, 0);
	bsel_table_unref(t);
	bsel_table_unref(t2);
	cfg_free(c);
}

/*
 * Removing one of ten backends must move its ~10% of entries and few others.
 * Maglev promises minimal, not zero, extra disruption; allow 1% of the table.
 */
static void maglev_removing_one_of_ten_moves_about_a_tenth(void **state)
{
	(void)state;
	for (int gone = 0; gone < 10; gone++) {
		struct cfg *c = mkcfg(CFG_SCHED_MAGLEV);
		struct bsel_table *before, *after;
		uint32_t moved = 0, lost = 0;

		for (int i = 0; i < 10; i++)
			be_add(c, i, 0, TF_IP(10, 2, 0, 10) + (uint32_t)i, 1, CFG_BACKEND_UP);
		before = build(c);
		c->backends[gone].state = CFG_BACKEND_DOWN;
		after = build(c);
		for (uint32_t e = 0; e < BSEL_MAGLEV_SIZE; e++) {
			int b0 = before->members[before->seq[e]];
			int b1 = after->members[after->seq[e]];

			assert_int_not_equal(b1, gone);
			moved += b0 != b1;
			lost += b0 == gone;
		}
		if (moved > lost + BSEL_MAGLEV_SIZE / 100)
			fail_msg(
				"removing backend %d moved %u entries, %u of them its own (%.2f%% extra)",
				gone, moved, lost, 100.0 * (moved - lost) / BSEL_MAGLEV_SIZE);
		assert_true(moved <= BSEL_MAGLEV_SIZE / 10 + BSEL_MAGLEV_SIZE / 100);
		bsel_table_unref(before);
		bsel_table_unref(after);
		cfg_free(c);
	}
}

static void lc_picks_least_loaded(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_LC);
	struct bsel_table *t;
	uint32_t cursor = 0;

	(void)state;
	memset(bstats, 0, sizeof(bstats));
	be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 1, CFG_BACKEND_UP);
	be_add(c, 1, 0, TF_IP(10, 2, 0, 2), 1, CFG_BACKEND_UP);
	be_add(c, 2, 0, TF_IP(10, 2, 0, 3), 1, CFG_BACKEND_UP);
	t = build(c);
	for (int i = 0; i < 3; i++)
		bstats[i].gen = c->backends[i].gen;
	bstats[0].active = 5;
	bstats[1].active = 2;
	bstats[2].active = 7;
	for (int k = 0; k < 10; k++)
		assert_int_equal(bsel_pick(t, &cursor, (uint32_t)k, bstats), 1);
	/* Counting the new flow, as the worker does, shifts the choice. */
	for (int k = 0; k < 7; k++) {
		int b = bsel_pick(t, &cursor, 0, bstats);

		bstats[b].active++;
	}
	assert_int_equal(bstats[0].active, 7);
	assert_int_equal(bstats[1].active, 7);
	assert_int_equal(bstats[2].active, 7);
	/* A counter left by an earlier object in the slot counts as zero. */
	bstats[2].gen = c->backends[2].gen - 1;
	bstats[2].active = 100;
	assert_int_equal(bsel_pick(t, &cursor, 0, bstats), 2);
	bsel_table_unref(t);
	cfg_free(c);
}

static void lc_weighs_load_by_weight(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_LC);
	struct bsel_table *t;
	uint32_t cursor = 0, counts[2] = { 0 };

	(void)state;
	memset(bstats, 0, sizeof(bstats));
	be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 1, CFG_BACKEND_UP);
	be_add(c, 1, 0, TF_IP(10, 2, 0, 2), 3, CFG_BACKEND_UP);
	t = build(c);
	bstats[0].gen = c->backends[0].gen;
	bstats[1].gen = c->backends[1].gen;
	bstats[0].active = 2;
	bstats[1].active = 5; /* 5/3 < 2/1 */
	assert_int_equal(bsel_pick(t, &cursor, 0, bstats), 1);
	bstats[0].active = 0;
	bstats[1].active = 0;
	for (int k = 0; k < 400; k++) {
		int b = bsel_pick(t, &cursor, 0, bstats);

		bstats[b].active++;
		counts[b]++;
	}
	assert_int_equal(counts[0], 100);
	assert_int_equal(counts[1], 300);
	bsel_table_unref(t);
	cfg_free(c);
}

static void lc_ties_rotate(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_LC);
	struct bsel_table *t;
	uint32_t cursor = 0, seen = 0;

	(void)state;
	memset(bstats, 0, sizeof(bstats));
	for (int i = 0; i < 4; i++)
		be_add(c, i, 0, TF_IP(10, 2, 0, 1) + (uint32_t)i, 1, CFG_BACKEND_UP);
	t = build(c);
	for (int k = 0; k < 4; k++)
		seen |= 1u << bsel_pick(t, &cursor, 0, bstats);
	assert_int_equal(seen, 0xf);
	bsel_table_unref(t);
	cfg_free(c);
}

static void derive_builds_and_clone_shares_tables(void **state)
{
	struct cfg *c = mkcfg(CFG_SCHED_WRR), *c2;
	struct bsel_table *t;
	uint32_t cursor = 0;

	(void)state;
	be_add(c, 0, 0, TF_IP(10, 2, 0, 1), 1, CFG_BACKEND_UP);
	assert_int_equal(cfg_derive(c), 0);
	t = c->services[0].bsel;
	assert_non_null(t);
	assert_int_equal(t->refs, 1);
	c2 = cfg_clone(c);
	assert_ptr_equal(c2->services[0].bsel, t);
	assert_int_equal(t->refs, 2);
	/* A change to the copy builds a new table and leaves the original's alone. */
	be_add(c2, 1, 0, TF_IP(10, 2, 0, 2), 1, CFG_BACKEND_UP);
	c2->services[0].bsel_dirty = true;
	assert_int_equal(cfg_derive(c2), 0);
	assert_ptr_not_equal(c2->services[0].bsel, t);
	assert_int_equal(t->refs, 1);
	assert_int_equal(c2->services[0].bsel->count, 2);
	assert_int_equal(bsel_pick(c->services[0].bsel, &cursor, 0, bstats), 0);
	cfg_free(c2);
	cfg_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wrr_proportions_are_exact_over_one_sequence),
		cmocka_unit_test(wrr_sequence_is_interleaved_within_a_period),
		cmocka_unit_test(wrr_huge_total_weight_is_scaled),
		cmocka_unit_test(weight_zero_drain_and_down_are_never_picked),
		cmocka_unit_test(no_member_picks_nothing),
		cmocka_unit_test(rr_cycles_through_members_in_order),
		cmocka_unit_test(maglev_table_is_full_and_balanced),
		cmocka_unit_test(maglev_pick_depends_on_hash_only),
		cmocka_unit_test(maglev_removing_one_of_ten_moves_about_a_tenth),
		cmocka_unit_test(lc_picks_least_loaded),
		cmocka_unit_test(lc_weighs_load_by_weight),
		cmocka_unit_test(lc_ties_rotate),
		cmocka_unit_test(derive_builds_and_clone_shares_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
