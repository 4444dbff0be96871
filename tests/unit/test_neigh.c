/* SPDX-License-Identifier: BSD-3-Clause */
/* neigh: the per-lcore ARP cache, with injected time and recording callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_hash_crc.h>

#include <cmocka.h>

#include "frame.h"
#include "neigh.h"

static struct neigh_table tab;

struct rec {
	int drops, requests;
	void *dropped[64];
	uint16_t req_port;
	uint32_t req_ip;
};

static void on_drop(void *pkt, void *ctx)
{
	struct rec *r = ctx;

	assert_true(r->drops < 64);
	r->dropped[r->drops++] = pkt;
}

static void on_request(uint16_t port, uint32_t ip, void *ctx)
{
	struct rec *r = ctx;

	r->requests++;
	r->req_port = port;
	r->req_ip = ip;
}

static const struct rte_ether_addr mac1 = { { 0x02, 0, 0, 0, 0, 0x11 } };

static int pkts[64]; /* stand-ins for held mbufs */

static void get_creates_incomplete_entry(void **state)
{
	struct rec r = { 0 };
	struct neigh_entry *e, *e2;

	(void)state;
	neigh_init(&tab);
	assert_null(neigh_find(&tab, 0, tf_n32(TF_BACKEND)));
	e = neigh_get(&tab, 0, tf_n32(TF_BACKEND), 500, on_drop, &r);
	assert_non_null(e);
	assert_int_equal(e->state, NEIGH_INCOMPLETE);
	assert_int_equal(e->ip, tf_n32(TF_BACKEND));
	assert_int_equal(e->port, 0);
	assert_int_equal(e->tries, 0);
	assert_int_equal(e->nheld, 0);
	assert_int_equal(e->next_ms, 500); /* ask at once */
	assert_ptr_equal(neigh_find(&tab, 0, tf_n32(TF_BACKEND)), e);
	assert_ptr_equal(neigh_get(&tab, 0, tf_n32(TF_BACKEND), 600, on_drop, &r), e);
	/* The same address on another port is another neighbour. */
	e2 = neigh_get(&tab, 1, tf_n32(TF_BACKEND), 600, on_drop, &r);
	assert_ptr_not_equal(e2, e);
	assert_null(neigh_find(&tab, 2, tf_n32(TF_BACKEND)));
	assert_int_equal(r.drops, 0);
}

static void hold_takes_up_to_neigh_hold_packets(void **state)
{
	struct rec r = { 0 };
	struct neigh_entry *e;

	(void)state;
	neigh_init(&tab);
	e = neigh_get(&tab, 0, 1, 0, on_drop, &r);
	for (int i = 0; i < NEIGH_HOLD; i++)
		assert_true(neigh_hold(e, &pkts[i]));
	assert_false(neigh_hold(e, &pkts[NEIGH_HOLD]));
	assert_int_equal(e->nheld, NEIGH_HOLD);
	for (int i = 0; i < NEIGH_HOLD; i++)
		assert_ptr_equal(e->held[i], &pkts[i]);
}

static void learn_makes_held_packets_sendable(void **state)
{
	struct rec r = { 0 };
	struct neigh_entry *e;

	(void)state;
	neigh_init(&tab);
	e = neigh_get(&tab, 0, 7, 100, on_drop, &r);
	neigh_hold(e, &pkts[0]);
	neigh_hold(e, &pkts[1]);
	neigh_timer(&tab, 100, on_request, on_drop, &r);
	assert_int_equal(e->tries, 1);
	assert_ptr_equal(neigh_learn(&tab, 0, 7, &mac1, 250, false, on_drop, &r), e);
	assert_int_equal(e->state, NEIGH_REACHABLE);
	assert_memory_equal(&e->mac, &mac1, sizeof(mac1));
	assert_int_equal(e->tries, 0);
	assert_int_equal(e->updated_ms, 250);
	assert_int_equal(e->next_ms, 250 + NEIGH_STALE_MS);
	/* Held packets stay for the caller to send; none are dropped. */
	assert_int_equal(e->nheld, 2);
	assert_ptr_equal(e->held[0], &pkts[0]);
	assert_int_equal(r.drops, 0);
	/* A reachable entry asks for nothing. */
	assert_int_equal(neigh_timer(&tab, 250 + NEIGH_STALE_MS, on_request, on_drop, &r), 0);
}

static void learn_creates_only_when_asked(void **state)
{
	struct rec r = { 0 };
	struct neigh_entry *e;

	(void)state;
	neigh_init(&tab);
	assert_null(neigh_learn(&tab, 0, 9, &mac1, 1, false, on_drop, &r));
	assert_null(neigh_find(&tab, 0, 9));
	e = neigh_learn(&tab, 0, 9, &mac1, 1, true, on_drop, &r);
	assert_non_null(e);
	assert_int_equal(e->state, NEIGH_REACHABLE);
	assert_ptr_equal(neigh_find(&tab, 0, 9), e);
}

static void timer_retries_then_fails_and_drops_held(void **state)
{
	struct rec r = { 0 };
	struct neigh_entry *e;
	uint64_t t0 = 10000;

	(void)state;
	neigh_init(&tab);
	e = neigh_get(&tab, 3, tf_n32(TF_BACKEND), t0, on_drop, &r);
	neigh_hold(e, &pkts[0]);
	neigh_hold(e, &pkts[1]);
	for (int i = 0; i < NEIGH_TRIES; i++) {
		uint64_t at = t0 + (uint64_t)i * NEIGH_RETRY_MS;

		if (i > 0)
			assert_int_equal(neigh_timer(&tab, at - 1, on_request, on_drop, &r), 0);
		assert_int_equal(neigh_timer(&tab, at, on_request, on_drop, &r), 1);
		assert_int_equal(r.requests, i + 1);
		assert_int_equal(r.req_port, 3);
		assert_int_equal(r.req_ip, tf_n32(TF_BACKEND));
		assert_int_equal(e->state, NEIGH_INCOMPLETE);
		assert_int_equal(r.drops, 0);
	}
	/* Out of tries: failed, its packets dropped, no more requests. */
	assert_int_equal(
		neigh_timer(&tab, t0 + NEIGH_TRIES * NEIGH_RETRY_MS, on_request, on_drop, &r), 0);
	assert_int_equal(r.requests, NEIGH_TRIES);
	assert_int_equal(e->state, NEIGH_FAILED);
	assert_int_equal(e->next_ms, t0 + NEIGH_TRIES * NEIGH_RETRY_MS + NEIGH_FAILED_MS);
	assert_int_equal(r.drops, 2);
	assert_ptr_equal(r.dropped[0], &pkts[0]);
	assert_ptr_equal(r.dropped[1], &pkts[1]);
	assert_int_equal(e->nheld, 0);
	assert_int_equal(neigh_timer(&tab, t0 + 100000, on_request, on_drop, &r), 0);
	assert_int_equal(r.drops, 2);
	/* A late answer still resolves it. */
	assert_ptr_equal(
		neigh_learn(&tab, 3, tf_n32(TF_BACKEND), &mac1, t0 + 100001, false, on_drop, &r),
		e);
	assert_int_equal(e->state, NEIGH_REACHABLE);
}

static uint32_t home(uint16_t port, uint32_t ip)
{
	return rte_hash_crc_4byte(ip, port) & (NEIGH_MAX - 1);
}

static void full_probe_window_evicts_least_recently_learned(void **state)
{
	struct rec r = { 0 };
	uint32_t ips[17], n = 0, h = home(0, 1);

	(void)state;
	neigh_init(&tab);
	/* Seventeen addresses with the same home slot: one more than the window. */
	for (uint32_t ip = 1; n < 17; ip++)
		if (home(0, ip) == h)
			ips[n++] = ip;
	for (uint32_t i = 0; i < 16; i++) {
		struct neigh_entry *e = neigh_get(&tab, 0, ips[i], 100 + i, on_drop, &r);

		assert_int_equal(e - tab.e, (h + i) & (NEIGH_MAX - 1));
		neigh_hold(e, &pkts[i]);
	}
	/* Refresh the oldest: the second oldest is now the victim. */
	neigh_learn(&tab, 0, ips[0], &mac1, 200, false, on_drop, &r);
	assert_non_null(neigh_get(&tab, 0, ips[16], 300, on_drop, &r));
	assert_int_equal(r.drops, 1);
	assert_ptr_equal(r.dropped[0], &pkts[1]);
	assert_null(neigh_find(&tab, 0, ips[1]));
	for (uint32_t i = 0; i < 17; i++)
		if (i != 1)
			assert_non_null(neigh_find(&tab, 0, ips[i]));
	assert_int_equal(neigh_find(&tab, 0, ips[16])->state, NEIGH_INCOMPLETE);
	assert_int_equal(neigh_find(&tab, 0, ips[16])->nheld, 0);
}

static void state_names(void **state)
{
	(void)state;
	assert_string_equal(neigh_state_name(NEIGH_INCOMPLETE), "incomplete");
	assert_string_equal(neigh_state_name(NEIGH_REACHABLE), "reachable");
	assert_string_equal(neigh_state_name(NEIGH_FAILED), "failed");
	assert_string_equal(neigh_state_name(NEIGH_FREE), "free");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_creates_incomplete_entry),
		cmocka_unit_test(hold_takes_up_to_neigh_hold_packets),
		cmocka_unit_test(learn_makes_held_packets_sendable),
		cmocka_unit_test(learn_creates_only_when_asked),
		cmocka_unit_test(timer_retries_then_fails_and_drops_held),
		cmocka_unit_test(full_probe_window_evicts_least_recently_learned),
		cmocka_unit_test(state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
