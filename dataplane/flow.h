/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * flow: the per-lcore flow table.
 *
 * Ownership. One table per worker lcore; only that lcore writes it, without
 * locks. The control thread may read entries through flow_at() for "show
 * flows"; such reads can see a flow mid-update and are for display only.
 *
 * Each flow is reachable by two keys: the forward key (client -> VIP, as the
 * client sends) and the reverse key (backend -> SNAT address, as the backend
 * answers). Both live in one open-addressing hash of 8-byte slots (hash, flow
 * reference); the key itself is rebuilt from the flow on a hash match, so the
 * table stays small and a hit touches one slot line and one flow line.
 *
 * Expiry. Every flow sits on the LRU list of its timeout class; a packet
 * moves it to the tail. All flows of a class share one timeout, so the head
 * is always the next to expire and flow_expired() is O(1) per expired flow
 * with no scans.
 *
 * Memory is allocated once at creation (libnuma, on the lcore's node); there
 * is no allocation afterwards. Addresses and ports are in network byte order.
 */
#ifndef SLUICE_FLOW_H
#define SLUICE_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_hash_crc.h>

enum flow_class {
	FLOW_SYN, /* the first four match enum cfg_tcp_state */
	FLOW_ESTABLISHED,
	FLOW_CLOSING,
	FLOW_CLOSED,
	FLOW_UDP,
	FLOW_CLASS_COUNT
};

enum flow_dir {
	FLOW_DIR_FWD = 0, /* client -> backend */
	FLOW_DIR_REV = 1, /* backend -> client */
};

struct flow_key {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t pad[3]; /* always zero */
};

#define FLOW_NONE UINT32_MAX

/* Timestamp handling of a TCP flow (struct flow.ts). */
#define FLOW_TS_SEEN	0x01 /* the client's SYN carried the option: ts_max is kept */
#define FLOW_TS_REWRITE 0x02 /* TSval += ts_off toward the backend, TSecr -= ts_off back */
#define FLOW_TS_BACKEND 0x04 /* the backend sent the option too: both use timestamps */

struct flow {
	/* The tuple on each side. */
	uint32_t cip, vip; /* client side */
	uint32_t sip, bip; /* backend side: SNAT address, backend */
	uint16_t cport, vport;
	uint16_t sport, bport;
	uint8_t proto;
	uint8_t state;	   /* enum flow_class */
	uint8_t snat_slot; /* pool slot the tuple came from */
	uint8_t ts;	   /* FLOW_TS_* */
	/* What the flow counts against. */
	uint16_t svc, be; /* slots */
	uint32_t svc_gen, be_gen, snat_gen;
	/* Where each side is reached (cached at creation). */
	uint16_t port_c, port_b;
	uint32_t nh_c, nh_b;
	/* Timestamps (FLOW_TS_SEEN): the backend sees TSval' = TSval + ts_off. */
	uint32_t ts_off;
	uint32_t ts_max;    /* newest TSval' forwarded to the backend (signed 32-bit order) */
	uint32_t ts_credit; /* how far ts_max may still advance (tsrw.h) */
	uint32_t ts_raised; /* when ts_max was last raised, ms (low 32 bits) */
	/* The tuple in the port space (palloc.h) and its quarantine entry. */
	uint32_t space;
	uint32_t qent, qcookie;
	/* Close tracking (tcpstate.h): sequence numbers in host order. */
	uint16_t tcp_seen; /* TCPSTATE_* bits */
	uint16_t pad1;
	uint32_t isn_c; /* the client's SYN */
	uint32_t fin_c; /* sequence number of the client's FIN */
	uint32_t fin_b; /* sequence number of the backend's FIN */
	/* Bookkeeping. */
	uint32_t lru_prev, lru_next;
	uint64_t created_ms, last_ms;
};

struct flow_table;

/* A table for up to @max_flows flows on NUMA node @node (-1: any). NULL+errno. */
struct flow_table *flow_table_create(uint32_t max_flows, int node);
void flow_table_free(struct flow_table *ft);

static inline uint32_t flow_key_hash(const struct flow_key *k)
{
	return rte_hash_crc(k, sizeof(*k), 0x5a17ce);
}

static inline void flow_key_set(struct flow_key *k, uint8_t proto, uint32_t src, uint16_t sport,
				uint32_t dst, uint16_t dport)
{
	k->src = src;
	k->dst = dst;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* The key under which packets of @dir arrive for @f. */
void flow_key_of(const struct flow *f, enum flow_dir dir, struct flow_key *k);

/* Find the flow a packet with key @k belongs to; stores its direction. */
struct flow *flow_lookup(const struct flow_table *ft, const struct flow_key *k, enum flow_dir *dir);

/*
 * A burst in stages (worker_process()): flow_prefetch_slots() for the hashed
 * keys, then flow_lookup_burst(), which looks them all up, prefetches the
 * flows found and then their LRU neighbours (which flow_touch() writes), so
 * the cache misses of a burst overlap instead of following one another. Only
 * entries with @want[i] set are used. A result stays valid while
 * flow_table_gen() is what it was: every insert and remove changes it.
 */
void flow_prefetch_slots(const struct flow_table *ft, const uint32_t *hash, const uint8_t *want,
			 uint32_t n);
void flow_lookup_burst(const struct flow_table *ft, const struct flow_key *k, const uint32_t *hash,
		       const uint8_t *want, uint32_t n, struct flow **f, uint8_t *dir);
struct flow *flow_lookup_hash(const struct flow_table *ft, const struct flow_key *k, uint32_t hash,
			      enum flow_dir *dir);
uint32_t flow_table_gen(const struct flow_table *ft);

/* A zeroed flow from the free list, not yet in the table; NULL if full. */
struct flow *flow_new(struct flow_table *ft);

/* Return a flow from flow_new() that was never inserted. */
void flow_discard(struct flow_table *ft, struct flow *f);

/*
 * Insert both keys of @f (tuple filled in) and put it on its class list.
 * Returns 0, or -EEXIST (nothing inserted) if either key is taken.
 */
int flow_insert(struct flow_table *ft, struct flow *f, uint64_t now_ms);

/* Remove both keys and free @f. */
void flow_remove(struct flow_table *ft, struct flow *f);

/* A packet was seen: refresh, and move to the list of class @state. */
void flow_touch(struct flow_table *ft, struct flow *f, uint8_t state, uint64_t now_ms);

/*
 * The next flow idle for at least its class's timeout, or NULL (the burst
 * below, one flow at a time). The caller must flow_remove() it (or touch
 * it) before calling again.
 */
struct flow *flow_expired(struct flow_table *ft, uint64_t now_ms,
			  const uint64_t timeout_ms[FLOW_CLASS_COUNT]);

/*
 * Up to @max flows idle for at least their class's timeout, from the heads
 * of the class lists, into @out; their hash slots are prefetched, so that
 * removing them one after the other does not wait for each slot in turn.
 * The caller must flow_remove() (or touch) every one before calling again.
 */
uint32_t flow_expired_burst(struct flow_table *ft, uint64_t now_ms,
			    const uint64_t timeout_ms[FLOW_CLASS_COUNT], struct flow **out,
			    uint32_t max);

uint32_t flow_count(const struct flow_table *ft);
uint32_t flow_capacity(const struct flow_table *ft);
/* Entry @i (0 <= i < capacity) if in use, else NULL. */
const struct flow *flow_at(const struct flow_table *ft, uint32_t i);
/* Table memory in bytes, and bytes per flow. */
size_t flow_table_size(const struct flow_table *ft);

#endif
