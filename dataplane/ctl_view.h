/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_view: the values "show stats|drops|services|backends|snat" print, for
 * every front end that prints them: ctl_show.c (tables and --json) and
 * telemetry.c (DPDK telemetry). The counters are summed in one place, so two
 * front ends asked about the same state give the same numbers.
 *
 * Counters live in per-lcore memory with one writer each (stats.h); a view
 * sums them over worker_list[], read racily (a few packets stale, never
 * torn). A per-object entry counts only when its gen is the gen of the
 * object in @c, so an entry left over from a deleted object in a reused slot
 * never shows as the new object's. Monotonic counters are shown since the
 * last "clear stats": it records a baseline here (never writing worker
 * memory) that every view subtracts. Gauges (active flows, tuples in use,
 * quarantined tuples) are not cleared.
 *
 * Threads: every function here is called with ctl_lock() held (ctl.h), and
 * @c is cfg_current() read under that same hold. ctl_exec() and ctl_tick()
 * take the lock for the control thread; telemetry.c takes it itself.
 */
#ifndef SLUICE_CTL_VIEW_H
#define SLUICE_CTL_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "stats.h"
#include "worker.h"

/* Addresses as the shows print them; @buf must hold CTL_ADDR_SIZE bytes. */
#define CTL_ADDR_SIZE 24
const char *ctl_fmt_ip(uint32_t ip, char *buf);
const char *ctl_fmt_ipport(uint32_t ip, uint16_t l4port, char *buf);

/* Worker @i of worker_list[], or NULL. */
const struct worker *ctl_view_worker(uint16_t i);

struct ctl_view_worker {
	unsigned int lcore;
	uint64_t flows_active;
	struct stats_lcore net; /* since "clear stats" */
};

struct ctl_view_stats {
	uint64_t flows_active;
	uint64_t drops_total;
	struct stats_lcore sum; /* all workers, since "clear stats" */
	uint16_t nworkers;
	struct ctl_view_worker w[WORKER_MAX];
};

/* "show stats" and "show drops". */
void ctl_view_stats(struct ctl_view_stats *v);

struct ctl_view_service {
	const char *name;
	char vip[CTL_ADDR_SIZE];
	uint16_t port; /* host byte order */
	const char *proto, *sched;
	bool tcp;
	bool snat_all;
	/* The SNAT addresses the service may use (cfg_svc_snat()), in slot order. */
	unsigned int nsnat;
	char snat[CFG_MAX_SNAT][CTL_ADDR_SIZE];
	unsigned int backends;
	uint64_t active_flows, total_flows, new_flows_per_s;
	/* TCP services: the setting in force and whether it is the service's own. */
	uint32_t tw_quarantine_s;
	bool tw_quarantine_own, ts_rewrite, ts_rewrite_own, tw_reuse, tw_reuse_own;
};

/* "show services": service slot @s, which is in use. */
void ctl_view_service(const struct cfg *c, int s, struct ctl_view_service *v);

struct ctl_view_backend {
	const char *service;
	char addr[CTL_ADDR_SIZE];
	uint16_t port; /* host byte order */
	uint16_t weight;
	const char *state, *health;
	uint64_t active_flows, total_flows, alloc_failures;
	/* Health checks (hc.h): seconds since the health last changed (or since
	 * the backend was added, or checks went on or off), probes answered and
	 * failed, the last outcome. */
	bool checked;
	uint64_t health_since_s, checks_ok, checks_failed;
	const char *last_check;
};

/*
 * The backend after slot @prev in "show backends" order (grouped by service,
 * both in slot order); @prev -1 gives the first. @only: a service slot, or -1
 * for every service. Returns a backend slot, or -1 after the last.
 */
int ctl_view_backend_next(const struct cfg *c, int only, int prev);

/* "show backends": backend slot @b, which is in use. */
void ctl_view_backend(const struct cfg *c, int b, struct ctl_view_backend *v);

struct ctl_view_snat {
	char addr[CTL_ADDR_SIZE];
	char ports[16]; /* "LO-HI" */
	const char *dev, *state;
	uint64_t in_use, quarantined, alloc_failures, tw_reuses;
};

/* "show snat": SNAT slot @n, which is in use. */
void ctl_view_snat(const struct cfg *c, int n, struct ctl_view_snat *v);

/*
 * Where an entry of "show services|backends|snat" goes, field by field under
 * its contract key and in the contract's order: a JSON object (ctl_show.c)
 * or a telemetry dict (telemetry.c). The fields are listed once, in the
 * ctl_view_*_put() functions, so the two front ends cannot drift apart.
 */
struct ctl_view_out {
	void (*u64)(void *sink, const char *key, uint64_t val);
	void (*str)(void *sink, const char *key, const char *val);
	void (*flag)(void *sink, const char *key, bool val);
	void (*addrs)(void *sink, const char *key, const char (*addr)[CTL_ADDR_SIZE],
		      unsigned int n);
	void *sink;
};

void ctl_view_service_put(const struct ctl_view_service *v, const struct ctl_view_out *o);
void ctl_view_backend_put(const struct ctl_view_backend *v, const struct ctl_view_out *o);
void ctl_view_snat_put(const struct ctl_view_snat *v, const struct ctl_view_out *o);

/*
 * Tuples on SNAT address @sip over every lcore's port spaces: held by live
 * flows, held by the quarantine alone, and (with @bip set) held among the
 * ports [lo, hi] toward (proto, bip:bport). @bip 0: every backend. Adds to
 * @sum.
 */
struct ctl_view_spaces {
	uint64_t live, quarantined, held;
};

void ctl_view_spaces(uint32_t sip, uint8_t proto, uint32_t bip, uint16_t bport, uint16_t lo,
		     uint16_t hi, struct ctl_view_spaces *sum);

#endif
