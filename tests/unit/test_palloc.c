/* SPDX-License-Identifier: BSD-3-Clause */
/* palloc: SNAT tuple uniqueness, per-worker shares, exhaustion, address masks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

#include <cmocka.h>

#include "cfg.h"
#include "flow.h"
#include "frame.h"
#include "palloc.h"

struct env {
	struct cfg *c;
	struct flow_table *ft;
	struct palloc pa;
	uint32_t next_client;
};

static void snat_add(struct cfg *c, int slot, uint32_t ip, uint16_t lo, uint16_t hi)
{
	c->snat[slot].used = true;
	c->snat[slot].gen = c->next_gen++;
	c->snat[slot].ip = tf_n32(ip);
	c->snat[slot].lo = lo;
	c->snat[slot].hi = hi;
}

static void env_init(struct env *e, uint32_t max_flows, uint16_t worker, uint16_t nworkers)
{
	struct cfg_service *s;

	e->c = cfg_new();
	assert_non_null(e->c);
	s = &e->c->services[0];
	s->used = true;
	s->gen = e->c->next_gen++;
	snprintf(s->name, sizeof(s->name), "web");
	s->vip = tf_n32(TF_VIP);
	s->l4port = tf_n16(80);
	s->proto = IPPROTO_TCP;
	s->sched = CFG_SCHED_RR;
	s->snat_all = true;
	e->ft = flow_table_create(max_flows, -1);
	assert_non_null(e->ft);
	palloc_init(&e->pa, worker, nworkers, 0x5eed + worker);
	e->next_client = 1;
}

static void env_derive(struct env *e)
{
	assert_int_equal(cfg_derive(e->c), 0);
}

static void env_free(struct env *e)
{
	flow_table_free(e->ft);
	cfg_free(e->c);
}

/* Allocate a tuple for a new flow of a fresh client toward @bip:@bport; insert it. */
static int alloc(struct env *e, uint8_t proto, uint32_t bip, uint16_t bport, uint64_t *tried,
		 struct flow **out)
{
	struct flow *f = flow_new(e->ft);
	uint64_t t;
	int rc;

	assert_non_null(f);
	f->proto = proto;
	f->cip = tf_n32(TF_IP(100, 64, 0, 0) + e->next_client++);
	f->cport = tf_n16(40000);
	f->vip = tf_n32(TF_VIP);
	f->vport = tf_n16(80);
	f->bip = tf_n32(bip);
	f->bport = tf_n16(bport);
	rc = palloc_get(&e->pa, e->ft, e->c, &e->c->services[0], f, tried ? tried : &t);
	if (rc == 0) {
		assert_int_equal(flow_insert(e->ft, f, 0), 0);
		if (out)
			*out = f;
	} else {
		flow_discard(e->ft, f);
	}
	return rc;
}

static uint16_t hport(const struct flow *f)
{
	return tf_rd16((const uint8_t *)&f->sport);
}

struct tuple {
	uint32_t sip, bip;
	uint16_t sport, bport;
	uint8_t proto;
};

static int tuple_cmp(const void *a, const void *b)
{
	const struct tuple *x = a, *y = b;

	if (x->sip != y->sip)
		return x->sip < y->sip ? -1 : 1;
	if (x->sport != y->sport)
		return x->sport < y->sport ? -1 : 1;
	if (x->bip != y->bip)
		return x->bip < y->bip ? -1 : 1;
	if (x->bport != y->bport)
		return x->bport < y->bport ? -1 : 1;
	return (int)x->proto - (int)y->proto;
}

/* No two live flows of the table share a (proto, SNAT, backend) tuple. */
static uint32_t assert_live_tuples_unique(const struct flow_table *ft)
{
	struct tuple *t = calloc(flow_capacity(ft), sizeof(*t));
	uint32_t n = 0;

	assert_non_null(t);
	for (uint32_t i = 0; i < flow_capacity(ft); i++) {
		const struct flow *f = flow_at(ft, i);

		if (f != NULL)
			t[n++] = (struct tuple){ f->sip, f->bip, f->sport, f->bport, f->proto };
	}
	qsort(t, n, sizeof(*t), tuple_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (tuple_cmp(&t[i - 1], &t[i]) == 0)
			fail_msg("tuple used twice: port %u", tf_rd16((uint8_t *)&t[i].sport));
	free(t);
	return n;
}

static void tuples_toward_one_backend_are_unique(void **state)
{
	struct env e;

	(void)state;
	env_init(&e, 40000, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 1024, 65535);
	snat_add(e.c, 1, TF_IP(10, 1, 0, 2), 1024, 65535);
	env_derive(&e);
	for (int i = 0; i < 40000; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 8080, NULL, &f), 0);
		assert_true(hport(f) >= 1024);
		assert_true(f->snat_slot <= 1);
		assert_int_equal(f->sip, e.c->snat[f->snat_slot].ip);
		assert_int_equal(f->snat_gen, e.c->snat[f->snat_slot].gen);
	}
	assert_int_equal(assert_live_tuples_unique(e.ft), 40000);
	env_free(&e);
}

static void tuples_toward_several_backends_are_unique(void **state)
{
	static const uint32_t bips[] = { TF_IP(10, 2, 0, 1), TF_IP(10, 2, 0, 2),
					 TF_IP(10, 2, 0, 2) };
	static const uint16_t bports[] = { 8080, 8080, 8081 };
	uint64_t seed = 3;
	struct env e;
	int shared = 0;

	(void)state;
	env_init(&e, 3000, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 2000, 3999);
	env_derive(&e);
	/* 3000 flows into 2000 ports: ports must serve several backends at once. */
	for (int i = 0; i < 3000; i++) {
		uint32_t b = (uint32_t)(tf_rand(&seed) % 3);

		assert_int_equal(alloc(&e, IPPROTO_TCP, bips[b], bports[b], NULL, NULL), 0);
	}
	assert_int_equal(assert_live_tuples_unique(e.ft), 3000);
	for (uint32_t i = 0; i < flow_capacity(e.ft) && !shared; i++)
		for (uint32_t j = i + 1; j < flow_capacity(e.ft); j++) {
			const struct flow *a = flow_at(e.ft, i), *b = flow_at(e.ft, j);

			if (a && b && a->sport == b->sport && a->bip != b->bip) {
				shared = 1;
				break;
			}
		}
	assert_true(shared);
	env_free(&e);
}

static void same_snat_port_serves_two_backends(void **state)
{
	struct env e;
	uint32_t ports_a = 0, ports_b = 0;
	uint64_t tried;

	(void)state;
	env_init(&e, 64, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 1000, 1003);
	env_derive(&e);
	for (int i = 0; i < 4; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_IP(10, 2, 0, 1), 80, NULL, &f), 0);
		ports_a |= 1u << (hport(f) - 1000);
	}
	for (int i = 0; i < 4; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_IP(10, 2, 0, 2), 80, NULL, &f), 0);
		ports_b |= 1u << (hport(f) - 1000);
	}
	assert_int_equal(ports_a, 0xf);
	assert_int_equal(ports_b, 0xf);
	/* Both backends' shares of 1000-1003 are full now. */
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_IP(10, 2, 0, 1), 80, &tried, NULL), -ENOSPC);
	assert_int_equal(tried, 1);
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_IP(10, 2, 0, 2), 80, &tried, NULL), -ENOSPC);
	/* The same backend address on another port is another tuple. */
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_IP(10, 2, 0, 1), 81, NULL, NULL), 0);
	/* And UDP has its own tuples. */
	assert_int_equal(alloc(&e, IPPROTO_UDP, TF_IP(10, 2, 0, 1), 80, NULL, NULL), 0);
	assert_live_tuples_unique(e.ft);
	env_free(&e);
}

static void freed_tuple_is_allocated_again(void **state)
{
	struct env e;
	struct flow *f, *g;

	(void)state;
	env_init(&e, 8, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 5000, 5000);
	env_derive(&e);
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, NULL, &f), 0);
	assert_int_equal(hport(f), 5000);
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, NULL, NULL), -ENOSPC);
	flow_remove(e.ft, f);
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, NULL, &g), 0);
	assert_int_equal(hport(g), 5000);
	env_free(&e);
}

static void share_sizes_sum_to_the_range(void **state)
{
	static const uint16_t ranges[][2] = { { 0, 65535 }, { 1024, 65535 }, { 1000, 1003 },
					      { 7, 7 },	    { 5, 12 },	     { 65530, 65535 },
					      { 0, 0 },	    { 1, 9 } };

	(void)state;
	for (uint16_t nw = 1; nw <= 8; nw++) {
		for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
			uint32_t sum = 0;

			for (uint16_t w = 0; w < nw; w++) {
				struct palloc pa;

				palloc_init(&pa, w, nw, 1);
				sum += palloc_share_size(&pa, ranges[r][0], ranges[r][1]);
			}
			assert_int_equal(sum, (uint32_t)ranges[r][1] - ranges[r][0] + 1);
		}
	}
	/* An empty range, and zero workers meaning one. */
	{
		struct palloc pa;

		palloc_init(&pa, 0, 0, 0);
		assert_int_equal(pa.nworkers, 1);
		assert_int_equal(palloc_share_size(&pa, 10, 9), 0);
		assert_int_equal(palloc_share_size(&pa, 10, 10), 1);
	}
}

static void workers_allocate_disjoint_shares_covering_the_range(void **state)
{
	const uint16_t lo = 1000, hi = 1099;

	(void)state;
	for (uint16_t nw = 1; nw <= 8; nw++) {
		uint8_t owner[100];

		memset(owner, 0xff, sizeof(owner));
		for (uint16_t w = 0; w < nw; w++) {
			struct env e;
			uint32_t n = 0;
			struct flow *f;
			uint64_t tried;

			env_init(&e, 128, w, nw);
			snat_add(e.c, 0, TF_IP(10, 1, 0, 1), lo, hi);
			env_derive(&e);
			while (alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, &f) == 0) {
				uint16_t p = hport(f);

				assert_true(p >= lo && p <= hi);
				assert_int_equal(p % nw, w);
				assert_int_equal(owner[p - lo], 0xff);
				owner[p - lo] = (uint8_t)w;
				n++;
			}
			assert_int_equal(n, palloc_share_size(&e.pa, lo, hi));
			assert_int_equal(tried, 1);
			env_free(&e);
		}
		for (uint32_t i = 0; i < 100; i++)
			assert_int_not_equal(owner[i], 0xff);
	}
}

static void empty_share_is_enospc(void **state)
{
	struct env e;
	uint64_t tried;

	(void)state;
	/* 8 workers, 3 ports: worker 7's share of 1000-1002 is empty (1000 % 8 = 0). */
	env_init(&e, 8, 7, 8);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 1000, 1002);
	env_derive(&e);
	assert_int_equal(palloc_share_size(&e.pa, 1000, 1002), 0);
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), -ENOSPC);
	assert_int_equal(tried, 1);
	env_free(&e);
}

static void exhaustion_is_enospc_with_tried_mask(void **state)
{
	struct env e;
	uint64_t tried, slots = 0;

	(void)state;
	env_init(&e, 64, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 1000, 1003);
	snat_add(e.c, 3, TF_IP(10, 1, 0, 4), 1000, 1003);
	snat_add(e.c, 63, TF_IP(10, 1, 0, 64), 65535, 65535);
	env_derive(&e);
	for (int i = 0; i < 9; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, NULL, &f), 0);
		slots |= 1ULL << f->snat_slot;
	}
	assert_int_equal(slots, (1ULL << 0) | (1ULL << 3) | (1ULL << 63));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), -ENOSPC);
		assert_int_equal(tried, (1ULL << 0) | (1ULL << 3) | (1ULL << 63));
	}
	assert_live_tuples_unique(e.ft);
	env_free(&e);
}

static void service_snat_mask_restricts_addresses(void **state)
{
	struct env e;
	uint64_t tried;

	(void)state;
	env_init(&e, 256, 0, 1);
	snat_add(e.c, 0, TF_IP(10, 1, 0, 1), 1024, 65535);
	snat_add(e.c, 1, TF_IP(10, 1, 0, 2), 1024, 65535);
	snat_add(e.c, 5, TF_IP(10, 1, 0, 6), 1024, 65535);
	e.c->services[0].snat_all = false;
	e.c->services[0].snat_mask = 1ULL << 5;
	env_derive(&e);
	for (int i = 0; i < 200; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, &f), 0);
		assert_int_equal(f->sip, tf_n32(TF_IP(10, 1, 0, 6)));
		assert_int_equal(f->snat_slot, 5);
		assert_int_equal(f->snat_gen, e.c->snat[5].gen);
		assert_int_equal(tried & ~(1ULL << 5), 0);
	}
	/* Two of the three. */
	e.c->services[0].snat_mask = (1ULL << 1) | (1ULL << 5);
	for (int i = 0; i < 50; i++) {
		struct flow *f;

		assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, NULL, &f), 0);
		assert_true(f->snat_slot == 1 || f->snat_slot == 5);
	}
	env_free(&e);
}

static void no_usable_address_is_enoent(void **state)
{
	struct env e;
	uint64_t tried = 99;

	(void)state;
	env_init(&e, 8, 0, 1);
	env_derive(&e);
	/* No pool at all. */
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), -ENOENT);
	assert_int_equal(tried, 0);
	snat_add(e.c, 2, TF_IP(10, 1, 0, 3), 1024, 2047);
	env_derive(&e);
	/* The service may use no address. */
	e.c->services[0].snat_all = false;
	e.c->services[0].snat_mask = 0;
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), -ENOENT);
	assert_int_equal(tried, 0);
	/* Only an unused slot. */
	e.c->services[0].snat_mask = 1ULL << 3;
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), -ENOENT);
	e.c->services[0].snat_mask = 1ULL << 2;
	assert_int_equal(alloc(&e, IPPROTO_TCP, TF_BACKEND, 80, &tried, NULL), 0);
	assert_int_equal(tried, 1ULL << 2);
	assert_int_equal(flow_count(e.ft), 1);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tuples_toward_one_backend_are_unique),
		cmocka_unit_test(tuples_toward_several_backends_are_unique),
		cmocka_unit_test(same_snat_port_serves_two_backends),
		cmocka_unit_test(freed_tuple_is_allocated_again),
		cmocka_unit_test(share_sizes_sum_to_the_range),
		cmocka_unit_test(workers_allocate_disjoint_shares_covering_the_range),
		cmocka_unit_test(empty_share_is_enospc),
		cmocka_unit_test(exhaustion_is_enospc_with_tried_mask),
		cmocka_unit_test(service_snat_mask_restricts_addresses),
		cmocka_unit_test(no_usable_address_is_enoent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
