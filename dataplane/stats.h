/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-lcore counters and the drop reasons.
 *
 * Every counter has exactly one writer: the worker lcore that owns the
 * struct stats_lcore it lives in. The control thread only reads them and sums
 * across lcores; "clear stats" is a baseline the reader subtracts, so workers
 * never see a foreign write. Reads from the control thread may be a few
 * packets stale; they are never torn (64-bit aligned stores on x86-64/arm64).
 */
#ifndef SLUICE_STATS_H
#define SLUICE_STATS_H

#include <stdint.h>

/* One X-macro yields the enum and the names, so they cannot drift apart. */
#define STATS_DROP_REASONS(X)                       \
	X(ETH_TRUNCATED, "eth_truncated")           \
	X(ETH_UNSUPPORTED, "eth_unsupported")       \
	X(ARP_MALFORMED, "arp_malformed")           \
	X(ARP_IGNORED, "arp_ignored")               \
	X(IPV6_UNSUPPORTED, "ipv6_unsupported")     \
	X(IP_TRUNCATED, "ip_truncated")             \
	X(IP_BAD_VERSION, "ip_bad_version")         \
	X(IP_BAD_IHL, "ip_bad_ihl")                 \
	X(IP_BAD_CHECKSUM, "ip_bad_checksum")       \
	X(IP_FRAGMENT, "ip_fragment")               \
	X(TTL_EXCEEDED, "ttl_exceeded")             \
	X(IP_NOT_LOCAL, "ip_not_local")             \
	X(L4_UNSUPPORTED, "l4_unsupported")         \
	X(TCP_TRUNCATED, "tcp_truncated")           \
	X(TCP_BAD_DOFF, "tcp_bad_doff")             \
	X(TCP_BAD_OPTION, "tcp_bad_option")         \
	X(TCP_TS_DUPLICATE, "tcp_ts_duplicate")     \
	X(TS_IMPLAUSIBLE, "ts_implausible")         \
	X(UDP_TRUNCATED, "udp_truncated")           \
	X(ICMP_TRUNCATED, "icmp_truncated")         \
	X(ICMP_UNSUPPORTED, "icmp_unsupported")     \
	X(ICMP_ERROR_NO_FLOW, "icmp_error_no_flow") \
	X(NO_SERVICE, "no_service")                 \
	X(TCP_NO_FLOW, "tcp_no_flow")               \
	X(NO_FLOW, "no_flow")                       \
	X(NO_BACKEND, "no_backend")                 \
	X(ALLOC_FAILED, "alloc_failed")             \
	X(FLOW_TABLE_FULL, "flow_table_full")       \
	X(QUARANTINE_FULL, "quarantine_full")       \
	X(PORTSPACE_FULL, "portspace_full")         \
	X(BACKEND_DOWN, "backend_down")             \
	X(NO_ROUTE, "no_route")                     \
	X(NEIGH_UNRESOLVED, "neigh_unresolved")     \
	X(NEIGH_QUEUE_FULL, "neigh_queue_full")     \
	X(TX_FULL, "tx_full")                       \
	X(MBUF_ALLOC_FAILED, "mbuf_alloc_failed")   \
	X(ICMP_RATE_LIMITED, "icmp_rate_limited")   \
	X(CHECK_UNEXPECTED, "check_unexpected")     \
	X(CHECK_QUEUE_FULL, "check_queue_full")

enum stats_drop {
#define STATS_DROP_ENUM(sym, name) STATS_DROP_##sym,
	STATS_DROP_REASONS(STATS_DROP_ENUM)
#undef STATS_DROP_ENUM
	STATS_DROP_COUNT
};

/* Name of a drop reason as shown by "show drops"; "?" for out-of-range. */
const char *stats_drop_name(enum stats_drop reason);

/*
 * Find a drop reason by name; returns the reason or -1.
 */
int stats_drop_lookup(const char *name);

/*
 * The per-lcore event counters, in the order "show stats" prints them; one
 * list, so that "clear stats", the sums and both outputs cannot miss one.
 *   flows_closed: removed before idling out (reset, backend down, replaced)
 *   ts_flows_rewritten: TCP flows whose SYN got a timestamp offset
 *   ts_malformed: TCP packets with a timestamp option of the wrong length
 *   tw_reuses: quarantined tuples reused with timestamp proof
 *   checks_sent: health-check probes sent (hc.h); check_replies: answers taken
 */
#define STATS_LCORE_COUNTERS(X)   \
	X(flows_created)          \
	X(flows_expired)          \
	X(flows_closed)           \
	X(rx_packets)             \
	X(tx_packets)             \
	X(icmp_errors_translated) \
	X(icmp_sent)              \
	X(arp_requests_sent)      \
	X(ts_flows_rewritten)     \
	X(ts_malformed)           \
	X(tw_reuses)              \
	X(checks_sent)            \
	X(check_replies)

struct stats_lcore {
#define STATS_LCORE_FIELD(name) uint64_t name;
	STATS_LCORE_COUNTERS(STATS_LCORE_FIELD)
#undef STATS_LCORE_FIELD
	uint64_t drops[STATS_DROP_COUNT];
} __attribute__((aligned(64)));

/*
 * Per-lcore counters per configured object, indexed by slot (see cfg.h). A
 * worker that finds a different gen in its entry than the object it counts
 * starts the entry afresh: the slot was reused by a new object.
 */
struct stats_backend {
	uint32_t gen;
	uint32_t active;	 /* live flows owned by this lcore */
	uint64_t total;		 /* flows ever created */
	uint64_t alloc_failures; /* new flows that found no free tuple */
};

struct stats_service {
	uint32_t gen;
	uint32_t active;
	uint64_t total;
};

struct stats_snat {
	uint32_t gen;
	uint32_t in_use; /* tuples held by live flows of this lcore */
	uint64_t alloc_failures;
	uint64_t tw_reuses; /* quarantined tuples reused with timestamp proof */
};

static inline void stats_drop_inc(struct stats_lcore *s, enum stats_drop reason)
{
	s->drops[reason]++;
}

#endif
