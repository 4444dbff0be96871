/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cfg: the configuration snapshot that workers read.
 *
 * Lifetime and threads. Only the control thread creates and changes
 * snapshots. A change is copy-on-write: cfg_clone() the current snapshot,
 * edit the copy, cfg_derive() the lookup structures, then cfg_publish() it.
 * Workers load the current pointer once per burst with cfg_current() and
 * must not keep it across a quiescent-state report (worker.c reports once
 * per loop). cfg_publish() waits for every worker to pass a quiescent state
 * (rte_rcu_qsbr) before freeing the old snapshot, so a worker never reads
 * freed memory and never takes a lock. If anything in a change fails, the copy
 * is freed and the published snapshot is untouched: a refused command changes
 * nothing.
 *
 * Slots. Services, backends and SNAT addresses live in fixed slots whose
 * index is stable for their lifetime; per-lcore counters and flows refer to
 * them by (slot, gen). A slot reused by a new object gets a new gen, so stale
 * references are recognised instead of followed.
 *
 * All addresses and ports in this file are in network byte order.
 */
#ifndef SLUICE_CFG_H
#define SLUICE_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>

#define CFG_MAX_PORTS	 16
#define CFG_MAX_ADDRS	 64
#define CFG_MAX_ROUTES	 256
#define CFG_MAX_NEIGH	 256
#define CFG_MAX_SNAT	 64
#define CFG_MAX_SERVICES 256
#define CFG_MAX_BACKENDS 4096
#define CFG_NAME_SIZE	 32

enum cfg_tcp_state {
	CFG_TCP_SYN,
	CFG_TCP_ESTABLISHED,
	CFG_TCP_CLOSING,
	CFG_TCP_CLOSED,
	CFG_TCP_STATE_COUNT
};

enum cfg_sched {
	CFG_SCHED_MAGLEV,
	CFG_SCHED_WRR,
	CFG_SCHED_RR,
	CFG_SCHED_LC,
};

enum cfg_backend_state {
	CFG_BACKEND_UP,
	CFG_BACKEND_DRAIN,
	CFG_BACKEND_DOWN,
};

/* What the service's health checks (hc.c) last concluded about a backend. */
enum cfg_health {
	CFG_HEALTH_UNCHECKED, /* its service has no checks: selectable */
	CFG_HEALTH_UP,
	CFG_HEALTH_DOWN, /* out of selection; its live flows continue */
};

enum cfg_check_kind {
	CFG_CHECK_OFF,
	CFG_CHECK_TCP,	/* SYN, expect SYN-ACK, answer with RST */
	CFG_CHECK_ICMP, /* echo request, expect echo reply */
};

/* Defaults of "service set NAME check ..." (seconds, counts). */
#define CFG_CHECK_INTERVAL 2
#define CFG_CHECK_TIMEOUT  1
#define CFG_CHECK_RISE	   2
#define CFG_CHECK_FALL	   3
/* Source ports of probes: outside every SNAT address's flow range. */
#define CFG_CHECK_PORT_LO  1000
#define CFG_CHECK_PORT_HI  1023

/* Bits of the value kmap "local" holds for an own IPv4 address. */
#define CFG_LOCAL_OWN	       0x01u /* addr add */
#define CFG_LOCAL_VIP	       0x02u /* a service's VIP */
#define CFG_LOCAL_SNAT	       0x04u /* a SNAT pool address; slot in bits 8..15 */
#define CFG_LOCAL_SNAT_SLOT(v) (((v) >> 8) & 0xffu)

struct cfg_port {
	bool present; /* probed by the EAL */
	char name[CFG_NAME_SIZE];
	char dev[64]; /* DPDK device name */
	struct rte_ether_addr mac;
};

struct cfg_addr {
	uint32_t ip;
	uint8_t plen;
	uint16_t port;
};

struct cfg_route {
	uint32_t prefix;
	uint32_t gw; /* 0: on-link */
	uint8_t plen;
	bool connected; /* derived from an addr; not shown as static */
	uint16_t port;
};

struct cfg_neigh {
	uint32_t ip;
	uint16_t port;
	struct rte_ether_addr mac;
};

struct cfg_snat {
	bool used;
	/* Deleted while flows still hold tuples on it: no new flows, but it keeps
	 * answering ARP and receiving replies; the slot is freed (ctl_tick) once
	 * the last of its flows has ended. */
	bool draining;
	uint32_t gen;
	uint32_t ip;
	uint16_t lo, hi; /* host byte order, inclusive */
	uint16_t port;
	uint32_t ts_base; /* random origin of this address's timestamp clock (palloc.h) */
};

struct cfg_backend {
	bool used;
	uint32_t gen;
	uint16_t svc; /* slot of its service */
	uint32_t ip;
	uint16_t l4port;
	uint16_t weight;
	uint8_t state;	    /* enum cfg_backend_state */
	uint8_t health;	    /* enum cfg_health; written by hc.c only */
	uint64_t health_ms; /* ctl_clock_ms() of the last change of health */
};

struct cfg_check {
	uint8_t kind; /* enum cfg_check_kind */
	uint16_t interval_s, timeout_s;
	uint8_t rise, fall;
};

struct bsel_table;

struct cfg_service {
	bool used;
	uint32_t gen;
	char name[CFG_NAME_SIZE];
	uint32_t vip;
	uint16_t l4port;
	uint8_t proto;	       /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t sched;	       /* enum cfg_sched */
	bool snat_all;	       /* may use every pool address (the default) */
	uint64_t snat_mask;    /* else: bit i = SNAT slot i */
	int32_t tw_quarantine; /* seconds; CFG_INHERIT: the global setting */
	int8_t ts_rewrite;     /* 0/1; CFG_INHERIT: the global setting */
	int8_t tw_reuse;       /* 0/1; CFG_INHERIT: the global setting */
	struct cfg_check check;
	/* Derived: which backends may get new flows, and how to pick one. */
	struct bsel_table *bsel;
	bool bsel_dirty;
};

struct cfg_timeouts {
	uint32_t tcp[CFG_TCP_STATE_COUNT]; /* seconds */
	uint32_t udp;
	uint32_t tw_quarantine; /* seconds a tuple the backend holds in TIME_WAIT is not reused */
	bool ts_rewrite;	/* per-flow timestamp rewriting (default on) */
	bool tw_reuse;		/* reuse a quarantined tuple with timestamp proof (default off) */
};

#define CFG_INHERIT		  (-1)
#define CFG_DEFAULT_TW_QUARANTINE 60

struct kmap;

struct cfg {
	/*
	 * 0 until published (cfg_new(), cfg_clone()); then the previous
	 * snapshot's + 1. A published snapshot never changes, so a nonzero gen
	 * names its contents: per-lcore state derived from a snapshot may be
	 * kept for as long as the gen is the same (palloc's SNAT pool). Code
	 * that edits an unpublished snapshot in place (tests) keeps gen 0.
	 */
	uint64_t gen;

	struct cfg_port ports[CFG_MAX_PORTS];
	uint16_t nports;

	struct cfg_addr addrs[CFG_MAX_ADDRS];
	uint16_t naddrs;
	struct cfg_route routes[CFG_MAX_ROUTES]; /* static routes as configured */
	uint16_t nroutes;
	struct cfg_neigh neigh[CFG_MAX_NEIGH];
	uint16_t nneigh;

	struct cfg_snat snat[CFG_MAX_SNAT];
	struct cfg_service services[CFG_MAX_SERVICES];
	struct cfg_backend backends[CFG_MAX_BACKENDS];
	uint32_t next_gen; /* source of slot generations */

	struct cfg_timeouts to;

	/* Derived by cfg_derive(); never copied by cfg_clone(). */
	struct kmap *local;    /* ip -> CFG_LOCAL_* bits */
	struct kmap *svcmap;   /* cfg_svc_key() -> service slot */
	struct kmap *neighmap; /* (port << 32 | ip) -> index in neigh[] */
	struct cfg_route *fib; /* static + connected routes, longest prefix first */
	uint16_t nfib;
};

/*
 * Publish the first snapshot: defaults, and the @nports ports the EAL probed
 * (device names and MACs). Start-up only, before workers run.
 */
int cfg_init(uint16_t nports, const char *const devs[], const struct rte_ether_addr macs[]);

/* A fresh snapshot with defaults and no objects. NULL with errno on failure. */
struct cfg *cfg_new(void);

/* Copy of @c's configured state, sharing its (refcounted) backend tables. */
struct cfg *cfg_clone(const struct cfg *c);

/* Build the lookup structures of @c. 0 or -ENOMEM/-ENOSPC. */
int cfg_derive(struct cfg *c);

/* Free a snapshot no worker can see. */
void cfg_free(struct cfg *c);

/* The snapshot workers currently see (acquire load). */
struct cfg *cfg_current(void);

/*
 * Make @c current; wait for all workers to quiesce; free the old snapshot.
 * Control thread only.
 */
void cfg_publish(struct cfg *c);

/* RCU state shared with the workers; set up by main before launch. */
struct rte_rcu_qsbr;
extern struct rte_rcu_qsbr *cfg_rcu;

static inline uint64_t cfg_svc_key(uint32_t vip, uint16_t l4port, uint8_t proto)
{
	return ((uint64_t)vip << 32) | ((uint64_t)l4port << 8) | proto;
}

/* Lookups used by the control side; -1 when absent. */
int cfg_service_find(const struct cfg *c, const char *name);
int cfg_backend_find(const struct cfg *c, int svc, uint32_t ip, uint16_t l4port);
int cfg_snat_find(const struct cfg *c, uint32_t ip);
/* A port by interface name, numeric id or device name; -1 when absent. */
int cfg_port_find(const struct cfg *c, const char *dev);

/* Longest-prefix match over c->fib. 0 with *port and *nexthop, or -ENETUNREACH. */
int cfg_route_lookup(const struct cfg *c, uint32_t dst, uint16_t *port, uint32_t *nexthop);

/* The own address on @port that covers @ip (for ARP sources); 0 if none. */
uint32_t cfg_port_addr(const struct cfg *c, uint16_t port, uint32_t near);

/* Quarantine of service slot @svc with gen @gen in ms (global if it is gone). */
static inline uint32_t cfg_tw_quarantine_ms(const struct cfg *c, uint16_t svc, uint32_t gen)
{
	const struct cfg_service *s = &c->services[svc];

	if (s->used && s->gen == gen && s->tw_quarantine != CFG_INHERIT)
		return (uint32_t)s->tw_quarantine * 1000;
	return c->to.tw_quarantine * 1000;
}

/* May new flows of @svc take tuples on SNAT slot @n (its "snat" list, and not deleted)? */
static inline bool cfg_svc_snat(const struct cfg *c, const struct cfg_service *svc, int n)
{
	return c->snat[n].used && !c->snat[n].draining &&
	       (svc->snat_all || (svc->snat_mask & (UINT64_C(1) << n)) != 0);
}

/* Timestamp rewriting and reuse with proof for new flows of service slot @svc. */
static inline bool cfg_ts_rewrite(const struct cfg *c, uint16_t svc)
{
	int8_t v = c->services[svc].ts_rewrite;

	return v == CFG_INHERIT ? c->to.ts_rewrite : v != 0;
}

static inline bool cfg_tw_reuse(const struct cfg *c, uint16_t svc)
{
	int8_t v = c->services[svc].tw_reuse;

	return v == CFG_INHERIT ? c->to.tw_reuse : v != 0;
}

const char *cfg_sched_name(uint8_t sched);
const char *cfg_backend_state_name(uint8_t state);
const char *cfg_health_name(uint8_t health);
const char *cfg_tcp_state_name(uint8_t state);

#endif
