/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * worker: the per-lcore run-to-completion loop.
 *
 * Each worker lcore owns one struct worker: its rx/tx queue on every port,
 * its flow table, ARP cache, port share and counters. Nothing in it is
 * written by another thread, except the ARP learning inbox (an MP/SC ring).
 * The control thread reads counters and tables for display.
 *
 * Loop: for each port, rx burst -> parse -> classify -> translate -> buffered
 * tx; then drain the ARP inbox, flush tx buffers when the drain tick passed,
 * expire flows and quarantined tuples (once a millisecond, every poll while
 * behind), advance ARP retries, and report an RCU quiescent state. The
 * clock (`now_ms`) and the config snapshot are read once per iteration.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "cfg.h"
#include "flow.h"
#include "neigh.h"
#include "palloc.h"
#include "stats.h"

#define WORKER_MAX	  16
#define WORKER_BURST	  32
#define WORKER_DRAIN_US	  100
#define WORKER_ICMP_PER_S 1000 /* rate limit for ICMP errors and RSTs we originate */

struct worker_txbuf {
	uint16_t count;
	struct rte_mbuf *pkts[WORKER_BURST];
};

struct worker {
	/* Set up by the control thread before launch; read-only afterwards. */
	unsigned int lcore;
	uint16_t idx;
	uint16_t qid; /* rx/tx queue on every port */
	int socket;
	struct rte_mempool *pool;
	struct rte_ring *learn; /* ARP learning inbox, written by other workers */

	/* Written by this worker only. */
	struct stats_lcore stats;
	uint64_t now_ms;
	uint64_t drain_tsc; /* TSC cycles between tx buffer drains */
	uint64_t last_drain_tsc;
	uint64_t last_timer_ms;
	uint64_t expire_due_ms; /* next look for idle flows and expired quarantines */
	uint64_t icmp_tat_us;	/* rate limit of packets we originate */
	struct palloc palloc;
	struct flow_table *ft;
	struct neigh_table *neigh;
	uint32_t bsel_cursor[CFG_MAX_SERVICES];
	struct stats_service svc[CFG_MAX_SERVICES];
	struct stats_backend be[CFG_MAX_BACKENDS];
	struct stats_snat snat[CFG_MAX_SNAT];
	struct worker_txbuf tx[CFG_MAX_PORTS];
} __attribute__((aligned(64)));

extern struct worker *worker_list[WORKER_MAX];
extern uint16_t worker_count;
extern volatile bool worker_quit;

/* Table sizes of one worker. */
struct worker_limits {
	uint32_t max_flows;	 /* flow table */
	uint32_t max_spaces;	 /* (proto, backend, SNAT address) port spaces */
	uint32_t max_quarantine; /* quarantine entries */
};

/*
 * Allocate a worker for @lcore with index @idx of @count, its tables sized by
 * @lim on the lcore's NUMA node, mbufs from @pool. Control thread, at
 * start-up. Returns NULL on failure.
 */
struct worker *worker_create(unsigned int lcore, uint16_t idx, uint16_t count,
			     const struct worker_limits *lim, struct rte_mempool *pool);

/* Free a worker that no lcore runs (NULL is fine). */
void worker_free(struct worker *w);

/* Ready @w's clocks for its first worker_poll(); worker_main() starts with it. */
void worker_start(struct worker *w);

/* lcore entry point; @arg is the struct worker. Returns when worker_quit. */
int worker_main(void *arg);

/* One loop iteration over @nports ports (exposed for benchmarks). */
void worker_poll(struct worker *w, uint16_t nports);

/* Process a burst of received packets from @port. */
void worker_process(struct worker *w, const struct cfg *c, uint16_t port, struct rte_mbuf **pkts,
		    uint16_t n);

/* Current time in ms from the TSC. */
uint64_t worker_clock_ms(void);

#endif
