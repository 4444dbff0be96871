/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * neigh: the per-lcore ARP cache.
 *
 * Each worker owns one table and writes it alone. What one worker learns from
 * an ARP packet it also posts to the others (worker.c), so every lcore can
 * reach every neighbour without sharing a writable table. Static neighbours
 * live in the config snapshot and take precedence.
 *
 * An unresolved next hop holds up to NEIGH_HOLD packets while ARP requests
 * are retried every NEIGH_RETRY_MS, NEIGH_TRIES times; then the entry fails,
 * its packets are dropped (neigh_unresolved), and a new attempt is made no
 * sooner than NEIGH_FAILED_MS later. A reachable entry older than
 * NEIGH_STALE_MS is refreshed by a request while it stays in use.
 *
 * Held packets are opaque pointers here; the caller sends or frees them.
 */
#ifndef SLUICE_NEIGH_H
#define SLUICE_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

#define NEIGH_MAX	1024 /* power of two */
#define NEIGH_HOLD	4
#define NEIGH_TRIES	3
#define NEIGH_RETRY_MS	1000
#define NEIGH_FAILED_MS 3000
#define NEIGH_STALE_MS	60000

enum neigh_state {
	NEIGH_FREE,
	NEIGH_INCOMPLETE,
	NEIGH_REACHABLE,
	NEIGH_FAILED,
};

struct neigh_entry {
	uint32_t ip; /* network order */
	uint16_t port;
	uint8_t state; /* enum neigh_state */
	uint8_t tries;
	struct rte_ether_addr mac;
	uint8_t nheld;
	uint64_t updated_ms; /* last learned */
	uint64_t next_ms;    /* next request or retry */
	void *held[NEIGH_HOLD];
};

struct neigh_table {
	struct neigh_entry e[NEIGH_MAX];
};

/* Called with packets that must be dropped (eviction, failure). */
typedef void (*neigh_drop_cb)(void *pkt, void *ctx);

void neigh_init(struct neigh_table *t);

/* The entry for (@port, @ip), or NULL. */
struct neigh_entry *neigh_find(struct neigh_table *t, uint16_t port, uint32_t ip);

/*
 * The entry for (@port, @ip), created INCOMPLETE if absent (evicting the
 * least recently learned entry among its probe window if the table is full;
 * the evicted entry's held packets go to @drop).
 */
struct neigh_entry *neigh_get(struct neigh_table *t, uint16_t port, uint32_t ip, uint64_t now_ms,
			      neigh_drop_cb drop, void *ctx);

/*
 * Record that @ip on @port has @mac. Creates the entry only if @create.
 * Returns the entry (its held packets are now sendable) or NULL.
 */
struct neigh_entry *neigh_learn(struct neigh_table *t, uint16_t port, uint32_t ip,
				const struct rte_ether_addr *mac, uint64_t now_ms, bool create,
				neigh_drop_cb drop, void *ctx);

/* Hold @pkt on @e; false if its queue is full. */
bool neigh_hold(struct neigh_entry *e, void *pkt);

/*
 * Advance retries. For each entry that needs an ARP request now, @request is
 * called; entries out of tries fail and their packets go to @drop. Returns
 * the number of requests asked for.
 */
typedef void (*neigh_request_cb)(uint16_t port, uint32_t ip, void *ctx);
uint32_t neigh_timer(struct neigh_table *t, uint64_t now_ms, neigh_request_cb request,
		     neigh_drop_cb drop, void *ctx);

const char *neigh_state_name(uint8_t state);

#endif
