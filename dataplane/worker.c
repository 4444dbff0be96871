/* SPDX-License-Identifier: BSD-3-Clause */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>

#include "bsel.h"
#include "hc.h"
#include "icmp.h"
#include "kmap.h"
#include "nat.h"
#include "tcpstate.h"
#include "tsrw.h"
#include "worker.h"

struct worker *worker_list[WORKER_MAX];
uint16_t worker_count;
volatile bool worker_quit;

/* What one worker tells the others it learned from an ARP packet. */
struct worker_learn {
	uint32_t ip;
	uint16_t port;
	struct rte_ether_addr mac;
};
static_assert(sizeof(struct worker_learn) % 4 == 0, "ring elements are multiples of 4 bytes");

#define WORKER_LEARN_RING 1024
#define WORKER_TIMER_MS	  10 /* the neighbour timers */
#define WORKER_ICMP_BURST 100

static uint64_t worker_tsc_per_ms;

uint64_t worker_clock_ms(void)
{
	if (worker_tsc_per_ms == 0)
		worker_tsc_per_ms = rte_get_tsc_hz() / 1000;
	return rte_rdtsc() / worker_tsc_per_ms;
}

struct worker *worker_create(unsigned int lcore, uint16_t idx, uint16_t count,
			     const struct worker_limits *lim, struct rte_mempool *pool)
{
	int socket = (int)rte_lcore_to_socket_id(lcore);
	char name[RTE_RING_NAMESIZE];
	struct worker *w;

	w = rte_zmalloc_socket("worker", sizeof(*w), RTE_CACHE_LINE_SIZE, socket);
	if (w == NULL)
		return NULL;
	w->lcore = lcore;
	w->idx = idx;
	w->qid = idx;
	w->socket = socket;
	w->pool = pool;
	worker_clock_ms(); /* calibrate once, before any lcore runs */
	w->neigh = rte_zmalloc_socket("neigh", sizeof(*w->neigh), RTE_CACHE_LINE_SIZE, socket);
	snprintf(name, sizeof(name), "sl_learn_%u", lcore);
	w->learn = rte_ring_create_elem(name, sizeof(struct worker_learn), WORKER_LEARN_RING,
					socket, RING_F_SC_DEQ);
	w->ft = flow_table_create(lim->max_flows, socket);
	if (w->neigh == NULL || w->learn == NULL || w->ft == NULL ||
	    palloc_init(&w->palloc, idx, count, rte_rdtsc() ^ ((uint64_t)lcore << 32),
			lim->max_spaces, lim->max_quarantine, socket, worker_clock_ms()) < 0) {
		worker_free(w);
		return NULL;
	}
	neigh_init(w->neigh);
	return w;
}

void worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	palloc_free(&w->palloc);
	flow_table_free(w->ft);
	rte_ring_free(w->learn);
	rte_free(w->neigh);
	rte_free(w);
}

void worker_start(struct worker *w)
{
	w->drain_tsc = rte_get_tsc_hz() / 1000000 * WORKER_DRAIN_US;
	w->now_ms = worker_clock_ms();
	w->last_timer_ms = w->now_ms;
	w->last_drain_tsc = rte_rdtsc();
}

/* ---- output ---------------------------------------------------------- */

static void worker_drop(struct worker *w, struct rte_mbuf *m, enum stats_drop reason)
{
	stats_drop_inc(&w->stats, reason);
	rte_pktmbuf_free(m);
}

static void worker_flush(struct worker *w, uint16_t port)
{
	struct worker_txbuf *b = &w->tx[port];
	uint16_t sent;

	if (b->count == 0)
		return;
	sent = rte_eth_tx_burst(port, w->qid, b->pkts, b->count);
	w->stats.tx_packets += sent;
	for (uint16_t i = sent; i < b->count; i++)
		worker_drop(w, b->pkts[i], STATS_DROP_TX_FULL);
	b->count = 0;
}

static void worker_tx(struct worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct worker_txbuf *b = &w->tx[port];

	b->pkts[b->count++] = m;
	if (b->count == WORKER_BURST)
		worker_flush(w, port);
}

static void worker_neigh_drop(void *pkt, void *ctx)
{
	worker_drop(ctx, pkt, STATS_DROP_NEIGH_UNRESOLVED);
}

static struct rte_ether_hdr *worker_eth(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
}

/* Send an ARP request for @ip out of @port. */
static void worker_arp_request(uint16_t port, uint32_t ip, void *ctx)
{
	struct worker *w = ctx;
	const struct cfg *c = cfg_current();
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	if (m == NULL) {
		stats_drop_inc(&w->stats, STATS_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eth) + sizeof(*arp));
	arp = (struct rte_arp_hdr *)(eth + 1);
	memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
	eth->src_addr = c->ports[port].mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	arp->arp_data.arp_sha = c->ports[port].mac;
	arp->arp_data.arp_sip = cfg_port_addr(c, port, ip);
	memset(&arp->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
	arp->arp_data.arp_tip = ip;
	w->stats.arp_requests_sent++;
	worker_tx(w, port, m);
}

/*
 * Send @m (IP packet, Ethernet header present) to next hop @nh on @port:
 * resolve its MAC, or hold the packet while ARP resolves it.
 */
static void worker_output(struct worker *w, const struct cfg *c, struct rte_mbuf *m, uint16_t port,
			  uint32_t nh)
{
	struct rte_ether_hdr *eth = worker_eth(m);
	struct neigh_entry *e;
	uint32_t idx;

	eth->src_addr = c->ports[port].mac;
	if (kmap_get(c->neighmap, ((uint64_t)port << 32) | nh, &idx)) {
		eth->dst_addr = c->neigh[idx].mac;
		worker_tx(w, port, m);
		return;
	}
	e = neigh_find(w->neigh, port, nh);
	if (e != NULL && e->state == NEIGH_REACHABLE) {
		eth->dst_addr = e->mac;
		worker_tx(w, port, m);
		if (w->now_ms >= e->next_ms) { /* stale: refresh while in use */
			e->next_ms = w->now_ms + NEIGH_RETRY_MS;
			worker_arp_request(port, nh, w);
		}
		return;
	}
	if (e != NULL && e->state == NEIGH_FAILED) {
		if (w->now_ms < e->next_ms) {
			worker_drop(w, m, STATS_DROP_NEIGH_UNRESOLVED);
			return;
		}
		e->state = NEIGH_INCOMPLETE;
		e->tries = 0;
		e->next_ms = w->now_ms;
	}
	if (e == NULL)
		e = neigh_get(w->neigh, port, nh, w->now_ms, worker_neigh_drop, w);
	if (!neigh_hold(e, m)) {
		worker_drop(w, m, STATS_DROP_NEIGH_QUEUE_FULL);
		return;
	}
	if (e->tries == 0 && e->next_ms <= w->now_ms) {
		e->tries = 1;
		e->next_ms = w->now_ms + NEIGH_RETRY_MS;
		worker_arp_request(port, nh, w);
	}
}

/* Answer on the port a packet came in on, to the MAC it came from. */
static void worker_reflect(struct worker *w, const struct cfg *c, struct rte_mbuf *m, uint16_t port)
{
	struct rte_ether_hdr *eth = worker_eth(m);

	eth->dst_addr = eth->src_addr;
	eth->src_addr = c->ports[port].mac;
	worker_tx(w, port, m);
}

/*
 * Rate limit for packets we originate (ICMP errors, RSTs): GCRA with a
 * theoretical arrival time in microseconds, WORKER_ICMP_PER_S on average and
 * bursts of WORKER_ICMP_BURST.
 */
static bool worker_icmp_allow(struct worker *w)
{
	const uint64_t cost = 1000000 / WORKER_ICMP_PER_S;
	uint64_t now = w->now_ms * 1000;

	if (w->icmp_tat_us < now)
		w->icmp_tat_us = now;
	if (w->icmp_tat_us - now > WORKER_ICMP_BURST * cost) {
		stats_drop_inc(&w->stats, STATS_DROP_ICMP_RATE_LIMITED);
		return false;
	}
	w->icmp_tat_us += cost;
	return true;
}

/*
 * Answer the packet in @m with an ICMP error from @src, sent back the way it
 * came. Consumes nothing: @m stays the caller's.
 */
static void worker_icmp_error(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			      const struct pkt_meta *pm, uint16_t port, uint8_t type, uint8_t code,
			      uint32_t src)
{
	struct rte_mbuf *e;
	uint8_t *out;
	uint32_t len;

	if (!worker_icmp_allow(w))
		return;
	e = rte_pktmbuf_alloc(w->pool);
	if (e == NULL) {
		stats_drop_inc(&w->stats, STATS_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	out = (uint8_t *)rte_pktmbuf_append(e, RTE_ETHER_HDR_LEN + ICMP_ERROR_MAX_IP);
	if (out == NULL) {
		worker_drop(w, e, STATS_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	len = icmp_error_build(out + RTE_ETHER_HDR_LEN, ICMP_ERROR_MAX_IP, type, code, 0, src,
			       rte_pktmbuf_mtod_offset(m, uint8_t *, pm->l3_off), pm->ip_len);
	if (len == 0) {
		worker_drop(w, e, STATS_DROP_MBUF_ALLOC_FAILED);
		return;
	}
	rte_pktmbuf_trim(e, ICMP_ERROR_MAX_IP - len);
	memcpy(out, rte_pktmbuf_mtod(m, uint8_t *), RTE_ETHER_HDR_LEN);
	((struct rte_ether_hdr *)out)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	w->stats.icmp_sent++;
	worker_reflect(w, c, e, port);
}

/* Turn the TCP segment in @m into the RST that answers it and send it back. */
static void worker_tcp_rst(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			   const struct pkt_meta *pm, uint16_t port)
{
	uint32_t len = icmp_tcp_rst(rte_pktmbuf_mtod(m, uint8_t *), pm);

	rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - RTE_ETHER_HDR_LEN - len));
	worker_eth(m)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	worker_reflect(w, c, m, port);
}

/*
 * Refuse a new flow so that the client fails fast: a RST for TCP, an ICMP
 * port unreachable for UDP (both rate-limited). Drops @m with @reason.
 */
static void worker_refuse(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			  const struct pkt_meta *pm, uint16_t port, enum stats_drop reason)
{
	if (pm->proto == IPPROTO_UDP) {
		worker_icmp_error(w, c, m, pm, port, 3, 3, pm->dst);
	} else if (pm->proto == IPPROTO_TCP && !(pm->tcp_flags & TCPSTATE_RST) &&
		   worker_icmp_allow(w)) {
		stats_drop_inc(&w->stats, reason);
		w->stats.icmp_sent++;
		worker_tcp_rst(w, c, m, pm, port);
		return;
	}
	worker_drop(w, m, reason);
}

/* ---- flows ------------------------------------------------------------- */

/*
 * @f ends, by idling out (@expired) or otherwise. Its tuple goes back to the
 * port space, or stays quarantined if the backend may hold it in TIME_WAIT.
 */
static void worker_flow_end(struct worker *w, const struct cfg *c, struct flow *f, bool expired)
{
	struct stats_service *ss = &w->svc[f->svc];
	struct stats_backend *bs = &w->be[f->be];
	struct stats_snat *sn = &w->snat[f->snat_slot];

	if (ss->gen == f->svc_gen && ss->active > 0)
		ss->active--;
	if (bs->gen == f->be_gen && bs->active > 0)
		bs->active--;
	if (sn->gen == f->snat_gen && sn->in_use > 0)
		sn->in_use--;
	if (expired)
		w->stats.flows_expired++;
	else
		w->stats.flows_closed++;
	palloc_on_end(&w->palloc, f, cfg_tw_quarantine_ms(c, f->svc, f->svc_gen), w->now_ms);
	flow_remove(w->ft, f);
}

static void worker_count_new(struct worker *w, const struct flow *f)
{
	struct stats_service *ss = &w->svc[f->svc];
	struct stats_backend *bs = &w->be[f->be];
	struct stats_snat *sn = &w->snat[f->snat_slot];

	if (ss->gen != f->svc_gen)
		*ss = (struct stats_service){ .gen = f->svc_gen };
	if (bs->gen != f->be_gen)
		*bs = (struct stats_backend){ .gen = f->be_gen };
	if (sn->gen != f->snat_gen)
		*sn = (struct stats_snat){ .gen = f->snat_gen };
	ss->active++;
	ss->total++;
	bs->active++;
	bs->total++;
	sn->in_use++;
	w->stats.flows_created++;
}

static void worker_count_alloc_failure(struct worker *w, const struct cfg *c, int be,
				       uint64_t tried)
{
	struct stats_backend *bs = &w->be[be];

	if (bs->gen != c->backends[be].gen)
		*bs = (struct stats_backend){ .gen = c->backends[be].gen };
	bs->alloc_failures++;
	for (uint32_t i = 0; i < CFG_MAX_SNAT; i++) {
		struct stats_snat *sn = &w->snat[i];

		if (!(tried & (1ULL << i)))
			continue;
		if (sn->gen != c->snat[i].gen)
			*sn = (struct stats_snat){ .gen = c->snat[i].gen };
		sn->alloc_failures++;
	}
}

static void worker_forward(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			   const struct pkt_meta *pm, struct flow *f, enum flow_dir dir,
			   uint16_t in_port);

/* Slow path: a first packet for a service. */
static __rte_noinline void worker_flow_create(struct worker *w, const struct cfg *c,
					      struct rte_mbuf *m, const struct pkt_meta *pm,
					      uint32_t svc, uint16_t in_port)
{
	const struct cfg_service *s = &c->services[svc];
	const struct cfg_backend *b;
	bool rewrite = false, reused = false;
	uint32_t tsval = 0;
	uint64_t tried;
	struct flow *f;
	int be, rc;

	if (pm->proto == IPPROTO_TCP &&
	    (pm->tcp_flags & (TCPSTATE_SYN | TCPSTATE_ACK | TCPSTATE_RST)) != TCPSTATE_SYN) {
		worker_drop(w, m, STATS_DROP_TCP_NO_FLOW);
		return;
	}
	if (pm->ttl <= 1) {
		worker_icmp_error(w, c, m, pm, in_port, 11, 0, cfg_port_addr(c, in_port, pm->src));
		worker_drop(w, m, STATS_DROP_TTL_EXCEEDED);
		return;
	}
	f = flow_new(w->ft);
	if (f == NULL) {
		worker_refuse(w, c, m, pm, in_port, STATS_DROP_FLOW_TABLE_FULL);
		return;
	}
	be = bsel_pick(s->bsel, &w->bsel_cursor[svc],
		       rte_hash_crc_8byte(((uint64_t)pm->src << 16) | pm->sport, 0x6a09e667),
		       w->be);
	if (be < 0) {
		flow_discard(w->ft, f);
		worker_refuse(w, c, m, pm, in_port, STATS_DROP_NO_BACKEND);
		return;
	}
	b = &c->backends[be];
	f->proto = pm->proto;
	f->cip = pm->src;
	f->cport = pm->sport;
	f->vip = pm->dst;
	f->vport = pm->dport;
	f->bip = b->ip;
	f->bport = b->l4port;
	f->svc = (uint16_t)svc;
	f->svc_gen = s->gen;
	f->be = (uint16_t)be;
	f->be_gen = b->gen;
	f->state = pm->proto == IPPROTO_TCP ? FLOW_SYN : FLOW_UDP;
	if (cfg_route_lookup(c, f->bip, &f->port_b, &f->nh_b) < 0 ||
	    cfg_route_lookup(c, f->cip, &f->port_c, &f->nh_c) < 0) {
		flow_discard(w->ft, f);
		worker_drop(w, m, STATS_DROP_NO_ROUTE);
		return;
	}
	if (pm->proto == IPPROTO_TCP && pm->tcp_ts != 0) {
		tsval = nat_rd32_host(rte_pktmbuf_mtod(m, uint8_t *) + pm->l4_off, pm->tcp_ts + 2u);
		rewrite = cfg_ts_rewrite(c, (uint16_t)svc);
	}
	rc = palloc_get(&w->palloc, c, s, f, &tried);
	/* Reuse takes one quarantine entry for one live flow: it needs no
	 * room in the quarantine, so it is tried when that is full too. */
	if ((rc == -ENOSPC || rc == -ENOBUFS) && pm->tcp_ts != 0 &&
	    cfg_tw_reuse(c, (uint16_t)svc)) {
		int rrc = palloc_reuse(&w->palloc, c, s, f, tsval, rewrite, w->now_ms);

		reused = rrc == 0;
		if (reused || rc == -ENOSPC)
			rc = rrc;
	}
	if (rc == 0) {
		rc = flow_insert(w->ft, f, w->now_ms);
		if (rc < 0) { /* not expected: the port space and the table agree */
			/* A reused tuple is still in the backend's TIME_WAIT. */
			if (reused)
				palloc_quarantine(&w->palloc, f,
						  cfg_tw_quarantine_ms(c, f->svc, f->svc_gen),
						  w->now_ms);
			palloc_release(&w->palloc, f);
			reused = false;
		}
	}
	if (rc < 0) {
		enum stats_drop why = rc == -ENOBUFS ? STATS_DROP_QUARANTINE_FULL :
				      rc == -ENOMEM  ? STATS_DROP_PORTSPACE_FULL :
						       STATS_DROP_ALLOC_FAILED;

		flow_discard(w->ft, f);
		if (why == STATS_DROP_ALLOC_FAILED)
			worker_count_alloc_failure(w, c, be, tried);
		worker_refuse(w, c, m, pm, in_port, why);
		return;
	}
	worker_count_new(w, f);
	if (pm->proto == IPPROTO_TCP && pm->tcp_ts != 0) {
		/* The SYN's TSval' and the flow's offset; the SYN itself is
		 * rewritten by worker_forward() like every later packet. */
		palloc_ts_open(&w->palloc, c, f, tsval, rewrite, w->now_ms);
		if (rewrite)
			w->stats.ts_flows_rewritten++;
	}
	if (reused) {
		w->stats.tw_reuses++;
		w->snat[f->snat_slot].tw_reuses++;
	}
	worker_forward(w, c, m, pm, f, FLOW_DIR_FWD, in_port);
}

/* A live flow whose backend was set down or removed, or whose service went. */
static bool worker_flow_orphaned(const struct cfg *c, const struct flow *f)
{
	const struct cfg_backend *b = &c->backends[f->be];
	const struct cfg_service *s = &c->services[f->svc];

	return !s->used || s->gen != f->svc_gen || !b->used || b->gen != f->be_gen ||
	       b->state == CFG_BACKEND_DOWN;
}

static void worker_forward(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			   const struct pkt_meta *pm, struct flow *f, enum flow_dir dir,
			   uint16_t in_port)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t state = FLOW_UDP;

	if (unlikely(pm->ttl <= 1)) {
		worker_icmp_error(w, c, m, pm, in_port, 11, 0, cfg_port_addr(c, in_port, pm->src));
		worker_drop(w, m, STATS_DROP_TTL_EXCEEDED);
		return;
	}
	if (f->proto == IPPROTO_TCP) {
		const struct tcpstate_seg seg = {
			.flags = pm->tcp_flags,
			.seq = pm->tcp_seq,
			.ack = pm->tcp_ack,
			.len = (uint32_t)pm->l4_len - pm->tcp_hlen,
		};

		if (unlikely(pm->tcp_ts_bad))
			w->stats.ts_malformed++;
		/* Timestamps first: a segment they refuse must not move the state. */
		if (f->ts != 0 && pm->tcp_ts != 0 &&
		    unlikely(!tsrw_packet(f, frame + pm->l4_off, pm, dir, w->now_ms))) {
			worker_drop(w, m, STATS_DROP_TS_IMPLAUSIBLE);
			return;
		}
		state = tcpstate_next(f, dir, &seg);
		palloc_on_segment(&w->palloc, f, cfg_tw_quarantine_ms(c, f->svc, f->svc_gen),
				  w->now_ms);
	}
	flow_touch(w->ft, f, state, w->now_ms);
	if (dir == FLOW_DIR_FWD) {
		nat_rewrite(frame, pm, f->sip, f->sport, f->bip, f->bport);
		worker_output(w, c, m, f->port_b, f->nh_b);
	} else {
		nat_rewrite(frame, pm, f->vip, f->vport, f->cip, f->cport);
		worker_output(w, c, m, f->port_c, f->nh_c);
	}
}

/* ---- ICMP ------------------------------------------------------------ */

/* An ICMP error about one of our flows: translate it for the other side. */
static void worker_icmp_translate(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
				  struct pkt_meta *pm)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	struct pkt_inner in;
	struct flow_key k;
	enum flow_dir dir;
	struct flow *f;

	if (pkt_parse_icmp_inner(frame, pm, &in) < 0) {
		worker_drop(w, m, pm->drop);
		return;
	}
	/* The quoted packet is one we sent; its answer would have key swap(in). */
	flow_key_set(&k, in.proto, in.dst, in.dport, in.src, in.sport);
	f = flow_lookup(w->ft, &k, &dir);
	if (f == NULL) {
		worker_drop(w, m, STATS_DROP_ICMP_ERROR_NO_FLOW);
		return;
	}
	if (pm->ttl <= 1) {
		worker_drop(w, m, STATS_DROP_TTL_EXCEEDED);
		return;
	}
	w->stats.icmp_errors_translated++;
	if (dir == FLOW_DIR_REV) {
		/* From the backend side, about client->backend packets. */
		nat_rewrite_icmp_error(frame, pm, &in, f->vip, f->cip, f->cip, f->cport, f->vip,
				       f->vport);
		worker_output(w, c, m, f->port_c, f->nh_c);
	} else {
		nat_rewrite_icmp_error(frame, pm, &in, f->sip, f->bip, f->bip, f->bport, f->sip,
				       f->sport);
		worker_output(w, c, m, f->port_b, f->nh_b);
	}
}

/* ---- health checks (hc.h) -------------------------------------------- */

/* Worker 0: send the probes the control thread queued. */
static void worker_checks_send(struct worker *w, const struct cfg *c)
{
	const uint32_t room = ICMP_PROBE_MAX_LEN;
	struct hc_probe p;

	for (int i = 0; i < 256 && rte_ring_sc_dequeue_elem(hc_probes, &p, sizeof(p)) == 0; i++) {
		struct rte_mbuf *m;
		uint8_t *out;
		uint32_t nh, len;
		uint16_t port;

		if (cfg_route_lookup(c, p.dst, &port, &nh) < 0) {
			stats_drop_inc(&w->stats, STATS_DROP_NO_ROUTE);
			continue;
		}
		m = rte_pktmbuf_alloc(w->pool);
		out = m == NULL ? NULL : (uint8_t *)rte_pktmbuf_append(m, RTE_ETHER_HDR_LEN + room);
		if (out == NULL) {
			rte_pktmbuf_free(m);
			stats_drop_inc(&w->stats, STATS_DROP_MBUF_ALLOC_FAILED);
			continue;
		}
		if (p.kind == CFG_CHECK_TCP)
			len = icmp_probe_syn(out + RTE_ETHER_HDR_LEN, room, p.src, p.dst, p.sport,
					     p.dport, p.isn);
		else
			len = icmp_probe_echo(out + RTE_ETHER_HDR_LEN, room, p.src, p.dst,
					      (uint16_t)(p.isn >> 16), (uint16_t)p.isn);
		rte_pktmbuf_trim(m, (uint16_t)(room - len));
		worker_eth(m)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		w->stats.checks_sent++;
		worker_output(w, c, m, port, nh);
	}
}

/* Pass what answered a probe to the control thread; false if its ring is full. */
static bool worker_check_report(struct worker *w, struct rte_mbuf *m, struct hc_report *r)
{
	if (rte_ring_mp_enqueue_elem(hc_reports, r, sizeof(*r)) != 0) {
		worker_drop(w, m, STATS_DROP_CHECK_QUEUE_FULL);
		return false;
	}
	w->stats.check_replies++;
	return true;
}

/*
 * A TCP segment to a probe source port of an SNAT address: the backend's
 * SYN-ACK (answered with a RST, so that it keeps no half-open connection) or
 * RST. No flow ever has such a tuple (hc.h).
 */
static void worker_check_tcp_reply(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
				   const struct pkt_meta *pm, uint16_t port)
{
	uint8_t fl = pm->tcp_flags & (TCPSTATE_SYN | TCPSTATE_ACK | TCPSTATE_RST);
	struct hc_report r = { .kind = CFG_CHECK_TCP,
			       .src = pm->src,
			       .dst = pm->dst,
			       .sport = pm->sport,
			       .dport = pm->dport,
			       .ack = pm->tcp_ack,
			       .ok = fl == (TCPSTATE_SYN | TCPSTATE_ACK) };

	if (hc_reports == NULL ||
	    (!r.ok && fl != (TCPSTATE_RST | TCPSTATE_ACK) && fl != TCPSTATE_RST)) {
		worker_drop(w, m, STATS_DROP_CHECK_UNEXPECTED);
		return;
	}
	if (!worker_check_report(w, m, &r))
		return;
	if (r.ok)
		worker_tcp_rst(w, c, m, pm, port);
	else
		rte_pktmbuf_free(m); /* consumed: the report is all it carried */
}

/* An ICMP echo reply to an own address: maybe the answer to a probe. */
static void worker_check_echo_reply(struct worker *w, struct rte_mbuf *m, const struct pkt_meta *pm)
{
	const uint8_t *icmp = rte_pktmbuf_mtod_offset(m, const uint8_t *, pm->l4_off);
	struct hc_report r = { .kind = CFG_CHECK_ICMP, .src = pm->src, .dst = pm->dst, .ok = 1 };

	/* pkt_parse() checked that the 8-byte ICMP header is there. */
	r.ack = (uint32_t)rte_be_to_cpu_16(pm->sport) << 16 | (uint32_t)icmp[6] << 8 | icmp[7];
	if (worker_check_report(w, m, &r))
		rte_pktmbuf_free(m);
}

static void worker_icmp(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
			struct pkt_meta *pm, uint16_t port)
{
	if (pm->icmp_type == 8 && pm->icmp_code == 0) {
		icmp_echo_reply(rte_pktmbuf_mtod(m, uint8_t *), pm);
		w->stats.icmp_sent++;
		worker_reflect(w, c, m, port);
	} else if (pkt_icmp_is_error(pm->icmp_type)) {
		worker_icmp_translate(w, c, m, pm);
	} else if (pm->icmp_type == 0 && pm->icmp_code == 0 && hc_reports != NULL &&
		   rte_be_to_cpu_16(pm->sport) < CFG_MAX_BACKENDS) {
		worker_check_echo_reply(w, m, pm);
	} else {
		worker_drop(w, m, STATS_DROP_ICMP_UNSUPPORTED);
	}
}

/* ---- ARP ------------------------------------------------------------- */

static void worker_learned(struct worker *w, const struct cfg *c, struct neigh_entry *e)
{
	for (uint8_t i = 0; i < e->nheld; i++) {
		struct rte_mbuf *h = e->held[i];

		worker_eth(h)->dst_addr = e->mac;
		worker_eth(h)->src_addr = c->ports[e->port].mac;
		worker_tx(w, e->port, h);
	}
	e->nheld = 0;
}

static void worker_arp(struct worker *w, const struct cfg *c, struct rte_mbuf *m, uint16_t port)
{
	struct rte_arp_hdr *arp;
	struct neigh_entry *e;
	uint32_t sip, tip, bits;
	bool for_us;

	if (rte_pktmbuf_data_len(m) < RTE_ETHER_HDR_LEN + sizeof(*arp)) {
		worker_drop(w, m, STATS_DROP_ARP_MALFORMED);
		return;
	}
	arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, RTE_ETHER_HDR_LEN);
	if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4) {
		worker_drop(w, m, STATS_DROP_ARP_MALFORMED);
		return;
	}
	sip = arp->arp_data.arp_sip;
	tip = arp->arp_data.arp_tip;
	for_us = kmap_get(c->local, tip, &bits);
	if (sip != 0 && !rte_is_multicast_ether_addr(&arp->arp_data.arp_sha)) {
		/* RFC 826: update a known sender; add it if the packet is for us. */
		e = neigh_learn(w->neigh, port, sip, &arp->arp_data.arp_sha, w->now_ms, for_us,
				worker_neigh_drop, w);
		if (e != NULL) {
			struct worker_learn l = { .ip = sip,
						  .port = port,
						  .mac = arp->arp_data.arp_sha };

			worker_learned(w, c, e);
			for (uint16_t i = 0; i < worker_count; i++)
				if (worker_list[i] != w)
					rte_ring_mp_enqueue_elem(worker_list[i]->learn, &l,
								 sizeof(l));
		}
	}
	if (for_us && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
		arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
		arp->arp_data.arp_tha = arp->arp_data.arp_sha;
		arp->arp_data.arp_tip = sip;
		arp->arp_data.arp_sha = c->ports[port].mac;
		arp->arp_data.arp_sip = tip;
		worker_reflect(w, c, m, port);
		return;
	}
	if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) && for_us) {
		rte_pktmbuf_free(m); /* consumed: we learned from it */
		return;
	}
	worker_drop(w, m, STATS_DROP_ARP_IGNORED);
}

static void worker_learn_drain(struct worker *w, const struct cfg *c)
{
	for (int i = 0; i < 64; i++) {
		struct worker_learn l;
		struct neigh_entry *e;

		if (rte_ring_sc_dequeue_elem(w->learn, &l, sizeof(l)) != 0)
			break;
		/* Only entries this lcore already waits for or uses. */
		e = neigh_learn(w->neigh, l.port, l.ip, &l.mac, w->now_ms, false, worker_neigh_drop,
				w);
		if (e != NULL)
			worker_learned(w, c, e);
	}
}

/* ---- the loop -------------------------------------------------------- */

/*
 * A TCP or UDP packet to own address @pm->dst (kmap "local" bits @bits), and
 * the flow its key found (NULL: none) in direction @dir.
 */
static void worker_l4(struct worker *w, const struct cfg *c, struct rte_mbuf *m,
		      const struct pkt_meta *pm, uint16_t port, uint32_t bits, struct flow *f,
		      enum flow_dir dir)
{
	uint32_t svc;

	if (likely(f != NULL)) {
		/* A client SYN or datagram may open a new connection on the tuple. */
		bool opens = dir == FLOW_DIR_FWD &&
			     (pm->proto == IPPROTO_UDP ||
			      (pm->tcp_flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == TCPSTATE_SYN);

		if (unlikely(worker_flow_orphaned(c, f))) {
			/* "down" ends live flows (the sender gets a reset at once);
			 * it does not refuse the client's next connection. */
			worker_flow_end(w, c, f, false);
			if (!opens) {
				worker_refuse(w, c, m, pm, port, STATS_DROP_BACKEND_DOWN);
				return;
			}
		} else if (unlikely(opens && pm->proto == IPPROTO_TCP &&
				    (f->state == FLOW_CLOSING || f->state == FLOW_CLOSED) &&
				    !tcpstate_syn_retransmit(f, pm->tcp_flags, pm->tcp_seq))) {
			/* A new connection on a closing tuple gets a new SNAT tuple:
			 * the backend may hold the old one in TIME_WAIT. A SYN with
			 * the old ISN is a retransmission and stays with the flow. */
			worker_flow_end(w, c, f, false);
		} else {
			worker_forward(w, c, m, pm, f, dir, port);
			return;
		}
	}
	if ((bits & CFG_LOCAL_VIP) &&
	    kmap_get(c->svcmap, cfg_svc_key(pm->dst, pm->dport, pm->proto), &svc)) {
		worker_flow_create(w, c, m, pm, svc, port);
		return;
	}
	if ((bits & CFG_LOCAL_SNAT) && pm->proto == IPPROTO_TCP && hc_is_check_port(pm->dport)) {
		worker_check_tcp_reply(w, c, m, pm, port);
		return;
	}
	worker_drop(w, m, (bits & CFG_LOCAL_SNAT) ? STATS_DROP_NO_FLOW : STATS_DROP_NO_SERVICE);
}

/* What the first pass over a burst found a packet to be. */
enum worker_kind {
	WORKER_DONE, /* dropped already */
	WORKER_ARP,
	WORKER_ICMP,
	WORKER_L4, /* TCP or UDP to an own address: its key is hashed */
};

/*
 * One burst in three passes, so that the cache misses of its packets
 * overlap: parse each and hash its flow key (the packet headers were
 * prefetched first); prefetch the hash slots, then look up all the keys and
 * prefetch the flows and their LRU neighbours (flow_lookup_burst()); then
 * handle each packet in order. A packet whose flow an earlier one of the
 * burst created or ended is looked up again (flow_table_gen()).
 */
static void worker_burst(struct worker *w, const struct cfg *c, uint16_t port,
			 struct rte_mbuf **pkts, uint16_t n)
{
	struct pkt_meta pm[WORKER_BURST];
	struct flow_key key[WORKER_BURST];
	uint32_t hash[WORKER_BURST], bits[WORKER_BURST], gen;
	struct flow *fl[WORKER_BURST];
	uint8_t kind[WORKER_BURST], dir[WORKER_BURST], want[WORKER_BURST];

	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		kind[i] = WORKER_DONE;
		want[i] = 0;
		if (pkt_parse(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m), &pm[i]) <
		    0) {
			worker_drop(w, m, pm[i].drop);
			continue;
		}
		if (pm[i].kind == PKT_ARP) {
			kind[i] = WORKER_ARP;
			continue;
		}
		if (!kmap_get(c->local, pm[i].dst, &bits[i])) {
			worker_drop(w, m, STATS_DROP_IP_NOT_LOCAL);
			continue;
		}
		if (pm[i].proto == IPPROTO_ICMP) {
			kind[i] = WORKER_ICMP;
			continue;
		}
		kind[i] = WORKER_L4;
		want[i] = 1;
		flow_key_set(&key[i], pm[i].proto, pm[i].src, pm[i].sport, pm[i].dst, pm[i].dport);
		hash[i] = flow_key_hash(&key[i]);
	}
	flow_prefetch_slots(w->ft, hash, want, n);
	flow_lookup_burst(w->ft, key, hash, want, n, fl, dir);
	gen = flow_table_gen(w->ft);
	for (uint16_t i = 0; i < n; i++) {
		switch (kind[i]) {
		case WORKER_ARP:
			worker_arp(w, c, pkts[i], port);
			break;
		case WORKER_ICMP:
			worker_icmp(w, c, pkts[i], &pm[i], port);
			break;
		case WORKER_L4: {
			enum flow_dir d = (enum flow_dir)dir[i];
			struct flow *f = fl[i];

			if (unlikely(flow_table_gen(w->ft) != gen))
				f = flow_lookup_hash(w->ft, &key[i], hash[i], &d);
			worker_l4(w, c, pkts[i], &pm[i], port, bits[i], f, d);
			break;
		}
		default:
			break;
		}
	}
}

void worker_process(struct worker *w, const struct cfg *c, uint16_t port, struct rte_mbuf **pkts,
		    uint16_t n)
{
	for (uint16_t i = 0; i < n; i += WORKER_BURST)
		worker_burst(w, c, port, pkts + i,
			     (uint16_t)(n - i < WORKER_BURST ? n - i : WORKER_BURST));
}

/*
 * Idle flows and quarantined tuples whose time is up, at most @budget of each
 * per call: again at the next poll while there is a backlog, else once a
 * millisecond. worker_poll() gives twice the new flows a poll can bring (a
 * burst per port), so expiry always catches up.
 */
static void worker_expire(struct worker *w, const struct cfg *c, uint32_t budget)
{
	struct flow *fl[WORKER_BURST];
	uint64_t to[FLOW_CLASS_COUNT];
	uint32_t n = 0, k, q;

	for (int s = 0; s < CFG_TCP_STATE_COUNT; s++)
		to[s] = (uint64_t)c->to.tcp[s] * 1000;
	to[FLOW_UDP] = (uint64_t)c->to.udp * 1000;
	do {
		k = flow_expired_burst(w->ft, w->now_ms, to, fl, WORKER_BURST);
		for (uint32_t i = 0; i < k; i++)
			worker_flow_end(w, c, fl[i], true);
		n += k;
	} while (k == WORKER_BURST && n < budget);
	q = palloc_expire(&w->palloc, w->now_ms, budget);
	w->expire_due_ms = n >= budget || q >= budget ? w->now_ms : w->now_ms + 1;
}

static void worker_timers(struct worker *w, const struct cfg *c)
{
	neigh_timer(w->neigh, w->now_ms, worker_arp_request, worker_neigh_drop, w);
	if (w->idx == 0 && hc_probes != NULL)
		worker_checks_send(w, c);
}

void worker_poll(struct worker *w, uint16_t nports)
{
	const struct cfg *c = cfg_current();
	struct rte_mbuf *pkts[WORKER_BURST];
	uint64_t tsc = rte_rdtsc();

	w->now_ms = tsc / worker_tsc_per_ms;
	for (uint16_t p = 0; p < nports; p++) {
		uint16_t n = rte_eth_rx_burst(p, w->qid, pkts, WORKER_BURST);

		if (n == 0)
			continue;
		w->stats.rx_packets += n;
		worker_process(w, c, p, pkts, n);
	}
	worker_learn_drain(w, c);
	if (tsc - w->last_drain_tsc > w->drain_tsc) {
		for (uint16_t p = 0; p < nports; p++)
			worker_flush(w, p);
		w->last_drain_tsc = tsc;
	}
	if (w->now_ms >= w->expire_due_ms)
		worker_expire(w, c, 2u * WORKER_BURST * nports);
	if (w->now_ms - w->last_timer_ms >= WORKER_TIMER_MS) {
		worker_timers(w, c);
		w->last_timer_ms = w->now_ms;
	}
}

int worker_main(void *arg)
{
	struct worker *w = arg;
	uint16_t nports;

	/* Online before the first look at the config, or a publish could free
	 * the snapshot under us without waiting. */
	rte_rcu_qsbr_thread_register(cfg_rcu, w->idx);
	rte_rcu_qsbr_thread_online(cfg_rcu, w->idx);
	nports = cfg_current()->nports;
	worker_start(w);
	while (!worker_quit) {
		worker_poll(w, nports);
		/* Nothing from the snapshot is kept past this point. */
		rte_rcu_qsbr_quiescent(cfg_rcu, w->idx);
	}
	for (uint16_t p = 0; p < nports; p++)
		worker_flush(w, p);
	rte_rcu_qsbr_thread_offline(cfg_rcu, w->idx);
	rte_rcu_qsbr_thread_unregister(cfg_rcu, w->idx);
	return 0;
}
