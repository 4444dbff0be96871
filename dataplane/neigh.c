/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_hash_crc.h>

#include "neigh.h"

#define NEIGH_PROBE 16

static inline uint32_t neigh_home(uint16_t port, uint32_t ip)
{
	return rte_hash_crc_4byte(ip, port) & (NEIGH_MAX - 1);
}

void neigh_init(struct neigh_table *t)
{
	memset(t, 0, sizeof(*t));
}

struct neigh_entry *neigh_find(struct neigh_table *t, uint16_t port, uint32_t ip)
{
	uint32_t h = neigh_home(port, ip);

	/* Entries never move, so a bounded window is the whole search. */
	for (uint32_t i = 0; i < NEIGH_PROBE; i++) {
		struct neigh_entry *e = &t->e[(h + i) & (NEIGH_MAX - 1)];

		if (e->state != NEIGH_FREE && e->ip == ip && e->port == port)
			return e;
	}
	return NULL;
}

static void neigh_flush(struct neigh_entry *e, neigh_drop_cb drop, void *ctx)
{
	for (uint8_t i = 0; i < e->nheld; i++)
		drop(e->held[i], ctx);
	e->nheld = 0;
}

struct neigh_entry *neigh_get(struct neigh_table *t, uint16_t port, uint32_t ip, uint64_t now_ms,
			      neigh_drop_cb drop, void *ctx)
{
	uint32_t h = neigh_home(port, ip);
	struct neigh_entry *victim = NULL;
	struct neigh_entry *e = neigh_find(t, port, ip);

	if (e != NULL)
		return e;
	for (uint32_t i = 0; i < NEIGH_PROBE; i++) {
		e = &t->e[(h + i) & (NEIGH_MAX - 1)];
		if (e->state == NEIGH_FREE) {
			victim = e;
			break;
		}
		if (victim == NULL || e->updated_ms < victim->updated_ms)
			victim = e;
	}
	neigh_flush(victim, drop, ctx);
	memset(victim, 0, sizeof(*victim));
	victim->ip = ip;
	victim->port = port;
	victim->state = NEIGH_INCOMPLETE;
	victim->updated_ms = now_ms;
	victim->next_ms = now_ms; /* request at once */
	return victim;
}

struct neigh_entry *neigh_learn(struct neigh_table *t, uint16_t port, uint32_t ip,
				const struct rte_ether_addr *mac, uint64_t now_ms, bool create,
				neigh_drop_cb drop, void *ctx)
{
	struct neigh_entry *e = neigh_find(t, port, ip);

	if (e == NULL) {
		if (!create)
			return NULL;
		e = neigh_get(t, port, ip, now_ms, drop, ctx);
	}
	e->mac = *mac;
	e->state = NEIGH_REACHABLE;
	e->tries = 0;
	e->updated_ms = now_ms;
	e->next_ms = now_ms + NEIGH_STALE_MS;
	return e;
}

bool neigh_hold(struct neigh_entry *e, void *pkt)
{
	if (e->nheld >= NEIGH_HOLD)
		return false;
	e->held[e->nheld++] = pkt;
	return true;
}

uint32_t neigh_timer(struct neigh_table *t, uint64_t now_ms, neigh_request_cb request,
		     neigh_drop_cb drop, void *ctx)
{
	uint32_t asked = 0;

	for (uint32_t i = 0; i < NEIGH_MAX; i++) {
		struct neigh_entry *e = &t->e[i];

		if (e->state != NEIGH_INCOMPLETE || e->next_ms > now_ms)
			continue;
		if (e->tries >= NEIGH_TRIES) {
			e->state = NEIGH_FAILED;
			e->next_ms = now_ms + NEIGH_FAILED_MS;
			neigh_flush(e, drop, ctx);
			continue;
		}
		e->tries++;
		e->next_ms = now_ms + NEIGH_RETRY_MS;
		request(e->port, e->ip, ctx);
		asked++;
	}
	return asked;
}

const char *neigh_state_name(uint8_t state)
{
	switch (state) {
	case NEIGH_INCOMPLETE:
		return "incomplete";
	case NEIGH_REACHABLE:
		return "reachable";
	case NEIGH_FAILED:
		return "failed";
	default:
		return "free";
	}
}
