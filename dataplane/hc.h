/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hc: active health checks, sent by the dataplane itself.
 *
 * DPDK ports have no kernel sockets, so a probe is a packet Sluice builds:
 * a TCP SYN to the backend's address and port (a SYN-ACK is a success and is
 * answered with a RST; a RST is a failure), or an ICMP echo request (an echo
 * reply is a success). Probes leave from one of the service's SNAT addresses
 * with a source port in CFG_CHECK_PORT_LO..HI, a range no SNAT address may
 * give to flows (ctl refuses overlapping ranges), so probes never take a
 * tuple a flow needs and a reply to them never meets a flow.
 *
 * Threads. The schedule, the matching of replies and the health state live
 * on the control thread (hc_poll(), called from the main loop). It hands
 * probes to worker 0 through hc_probes (single producer, single consumer);
 * worker 0 routes, resolves and sends them. Whichever worker receives a reply
 * passes what it saw back through hc_reports (multi-producer, single
 * consumer). A conclusion that changes a backend's health is published as a
 * new configuration snapshot, like any command, so the selection tables are
 * rebuilt off the fast path and workers pick it up without a pause.
 *
 * Rules. Each service's backends are probed every `interval` seconds; a probe
 * without an answer after `timeout` seconds failed. A backend is taken out of
 * selection after `fall` failures in a row and put back after `rise`
 * successes in a row; its live flows are not touched (only `state down`
 * resets them). When checks are switched on, and when a backend joins a
 * checked service, it starts "up" and must fail `fall` times to go down.
 */
#ifndef SLUICE_HC_H
#define SLUICE_HC_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>

#include "cfg.h"

/* A probe for worker 0 to send. Addresses and ports in network byte order. */
struct hc_probe {
	uint32_t src, dst;
	uint16_t sport, dport; /* TCP only */
	uint32_t isn;	       /* TCP: the SYN's sequence; ICMP: id << 16 | seq */
	uint8_t kind;	       /* enum cfg_check_kind */
	uint8_t pad[3];
};

/* What a worker received to a probe's source, as it arrived. */
struct hc_report {
	uint32_t src, dst;     /* the reply's: backend, SNAT address */
	uint16_t sport, dport; /* TCP only */
	uint32_t ack;	       /* TCP: the reply's ack; ICMP: id << 16 | seq */
	uint8_t kind;	       /* enum cfg_check_kind */
	uint8_t ok;	       /* TCP: 1 SYN-ACK, 0 RST; ICMP: 1 */
	uint8_t pad[2];
};

/* The rings; NULL until hc_init() (and in unit tests). */
struct rte_ring;
extern struct rte_ring *hc_probes;
extern struct rte_ring *hc_reports;

/* The last outcome of a backend's probes. */
enum hc_result {
	HC_NONE, /* none yet */
	HC_OK,
	HC_TIMEOUT,   /* no answer within the timeout */
	HC_REFUSED,   /* TCP RST: nothing listens */
	HC_NO_SOURCE, /* the service has no usable SNAT address */
	HC_NOT_SENT,  /* the probe queue to worker 0 was full */
};

/* Per backend, for display. */
struct hc_info {
	uint64_t ok, failed; /* probes answered / failed, ever */
	uint8_t last;	     /* enum hc_result */
};

/* Create the rings (EAL needed; freed with its memory). 0 or -rte_errno. */
int hc_init(void);

/*
 * Control thread: take the workers' reports, send the probes that are due,
 * conclude and publish health changes. Call every few tens of milliseconds.
 */
void hc_poll(uint64_t now_ms);

/* One report, as hc_poll() takes them from the ring (tests call it directly). */
void hc_report_in(const struct hc_report *r);

/* Where probes go: worker 0's ring by default; tests capture them. */
typedef bool (*hc_output_fn)(const struct hc_probe *p);
void hc_set_output(hc_output_fn fn);

/* The probe counters of backend slot @slot if it still has generation @gen. */
bool hc_backend_info(int slot, uint32_t gen, struct hc_info *info);

const char *hc_result_name(uint8_t result);

/* Whether @l4port (network byte order) is a probe source port. */
static inline bool hc_is_check_port(uint16_t l4port)
{
	uint16_t p = rte_be_to_cpu_16(l4port);

	return p >= CFG_CHECK_PORT_LO && p <= CFG_CHECK_PORT_HI;
}

#endif
