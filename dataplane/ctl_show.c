/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "show" commands and "clear stats".
 *
 * Counters live in per-lcore memory with one writer each (stats.h); shows sum
 * them over worker_list[] and count a per-object entry only when its gen is
 * the gen of the object in the current snapshot, so an entry left over from a
 * deleted object in a reused slot is never shown as the new object's.
 * "clear stats" never writes worker memory: it records a baseline here that
 * every show subtracts from the monotonic counters. Gauges (active flows,
 * tuples in use) are not cleared.
 *
 * Output is deterministic for equal state: objects in slot order, workers in
 * index order. Human output is a table with a header line; with --json every
 * show prints exactly one JSON document.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_version.h>

#include "cfg.h"
#include "ctl_priv.h"
#include "flow.h"
#include "hc.h"
#include "neigh.h"
#include "palloc.h"
#include "stats.h"
#include "tcpstate.h"
#include "worker.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif

#define CTL_FLOWS_LIMIT 100
#define CTL_TAB_COLS	16

/* ---- baseline of "clear stats" ---- */

struct ctl_base_obj {
	uint32_t gen;
	uint64_t total;
	uint64_t alloc_failures;
	uint64_t tw_reuses;
};

static struct {
	struct stats_lcore lcore[WORKER_MAX]; /* by worker index */
	struct ctl_base_obj svc[CFG_MAX_SERVICES];
	struct ctl_base_obj be[CFG_MAX_BACKENDS];
	struct ctl_base_obj snat[CFG_MAX_SNAT];
} ctl_base;

static uint64_t ctl_since(uint64_t now, uint64_t base)
{
	/* Never negative, even if a reader raced a worker at clear time. */
	return now >= base ? now - base : 0;
}

static const struct worker *ctl_worker(uint16_t i)
{
	return i < worker_count && i < WORKER_MAX ? worker_list[i] : NULL;
}

/* Counters of worker @i since "clear stats". */
static void ctl_lcore_net(uint16_t i, struct stats_lcore *net)
{
	const struct worker *w = ctl_worker(i);
	const struct stats_lcore *b = &ctl_base.lcore[i];

	memset(net, 0, sizeof(*net));
	if (w == NULL)
		return;
#define CTL_NET(name) net->name = ctl_since(w->stats.name, b->name);
	STATS_LCORE_COUNTERS(CTL_NET)
#undef CTL_NET
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		net->drops[r] = ctl_since(w->stats.drops[r], b->drops[r]);
}

static void ctl_sum_service(const struct cfg *c, int s, uint64_t *active, uint64_t *total)
{
	*active = *total = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_worker(i);

		if (w == NULL || w->svc[s].gen != c->services[s].gen)
			continue;
		*active += w->svc[s].active;
		*total += w->svc[s].total;
	}
}

uint64_t ctl_stats_service_total(const struct cfg *c, int slot)
{
	uint64_t active, total;

	ctl_sum_service(c, slot, &active, &total);
	return total;
}

static void ctl_sum_backend(const struct cfg *c, int b, uint64_t *active, uint64_t *total,
			    uint64_t *fail)
{
	*active = *total = *fail = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_worker(i);

		if (w == NULL || w->be[b].gen != c->backends[b].gen)
			continue;
		*active += w->be[b].active;
		*total += w->be[b].total;
		*fail += w->be[b].alloc_failures;
	}
}

static void ctl_sum_snat(const struct cfg *c, int n, uint64_t *in_use, uint64_t *fail,
			 uint64_t *reuses)
{
	*in_use = *fail = *reuses = 0;
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_worker(i);

		if (w == NULL || w->snat[n].gen != c->snat[n].gen)
			continue;
		*in_use += w->snat[n].in_use;
		*fail += w->snat[n].alloc_failures;
		*reuses += w->snat[n].tw_reuses;
	}
}

/*
 * Tuples on SNAT address @sip over every lcore's port spaces: held by live
 * flows, held by the quarantine alone, and (with @bip set) held among the
 * ports [lo, hi] toward (proto, bip:bport). @bip 0: every backend.
 */
struct ctl_space_sum {
	uint64_t live, quarantined, held;
};

static void ctl_sum_spaces(uint32_t sip, uint8_t proto, uint32_t bip, uint16_t bport, uint16_t lo,
			   uint16_t hi, struct ctl_space_sum *sum)
{
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = ctl_worker(i);

		if (w == NULL)
			continue;
		for (uint32_t s = 0; s < w->palloc.spaces_used; s++) {
			const struct palloc_space *sp = palloc_space_at(&w->palloc, s);

			if (sp == NULL || sp->sip != sip)
				continue;
			if (bip != 0 &&
			    (sp->bip != bip || sp->bport != bport || sp->proto != proto))
				continue;
			sum->live += sp->live;
			sum->quarantined += sp->quarantined;
			if (bip != 0)
				sum->held += palloc_space_held(&w->palloc, s, lo, hi);
		}
	}
}

/* What is left of a baseline for an object whose gen is @gen. */
static const struct ctl_base_obj *ctl_base_of(const struct ctl_base_obj *b, uint32_t gen)
{
	static const struct ctl_base_obj none;

	return b->gen == gen ? b : &none;
}

int ctl_clear_stats(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	uint64_t a;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	memset(&ctl_base, 0, sizeof(ctl_base));
	for (uint16_t i = 0; i < worker_count && i < WORKER_MAX; i++)
		if (worker_list[i] != NULL)
			ctl_base.lcore[i] = worker_list[i]->stats;
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		if (!c->services[s].used)
			continue;
		ctl_base.svc[s].gen = c->services[s].gen;
		ctl_sum_service(c, s, &a, &ctl_base.svc[s].total);
	}
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		if (!c->backends[b].used)
			continue;
		ctl_base.be[b].gen = c->backends[b].gen;
		ctl_sum_backend(c, b, &a, &ctl_base.be[b].total, &ctl_base.be[b].alloc_failures);
	}
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		if (!c->snat[n].used)
			continue;
		ctl_base.snat[n].gen = c->snat[n].gen;
		ctl_sum_snat(c, n, &a, &ctl_base.snat[n].alloc_failures,
			     &ctl_base.snat[n].tw_reuses);
	}
	return 0;
}

/* ---- output helpers ---- */

/* Rows of tab-separated cells, printed with aligned columns. */
struct ctl_tab {
	struct ctl_buf rows;
};

__attribute__((format(printf, 2, 3))) static void ctl_tab_row(struct ctl_tab *t, const char *fmt,
							      ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vprintf(&t->rows, fmt, ap);
	va_end(ap);
	ctl_printf(&t->rows, "\n");
}

static void ctl_tab_flush(struct ctl_tab *t, struct ctl_buf *out)
{
	size_t width[CTL_TAB_COLS] = { 0 };
	const char *p;
	size_t col = 0, cell = 0;

	if (t->rows.len == 0)
		return;
	for (p = t->rows.data; *p != '\0'; p++) {
		if (*p == '\t' || *p == '\n') {
			if (col < CTL_TAB_COLS && cell > width[col])
				width[col] = cell;
			col = *p == '\t' ? col + 1 : 0;
			cell = 0;
		} else {
			cell++;
		}
	}
	col = 0;
	for (p = t->rows.data; *p != '\0';) {
		size_t len = strcspn(p, "\t\n");

		if (p[len] == '\t') {
			ctl_printf(out, "%-*.*s  ", (int)(col < CTL_TAB_COLS ? width[col] : len),
				   (int)len, p);
			col++;
		} else {
			ctl_printf(out, "%.*s\n", (int)len, p);
			col = 0;
		}
		p += len + 1;
	}
	ctl_buf_free(&t->rows);
}

static void ctl_jstr(struct ctl_buf *b, const char *key, const char *val)
{
	ctl_printf(b, "\"%s\":", key);
	ctl_json_str(b, val);
}

static void ctl_ju64(struct ctl_buf *b, const char *key, uint64_t val)
{
	ctl_printf(b, "\"%s\":%" PRIu64, key, val);
}

static const char *ctl_fmt_mac(const struct rte_ether_addr *m, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m->addr_bytes[0], m->addr_bytes[1],
		 m->addr_bytes[2], m->addr_bytes[3], m->addr_bytes[4], m->addr_bytes[5]);
	return buf;
}

static const char *ctl_proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

/* ---- version, interfaces, L3 ---- */

int ctl_show_version(struct ctl_ctx *x, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json) {
		ctl_printf(x->out, "{");
		ctl_jstr(x->out, "version", SLUICE_VERSION);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "dpdk", rte_version());
		ctl_printf(x->out, "}\n");
	} else {
		ctl_printf(x->out, "sluice %s (%s)\n", SLUICE_VERSION, rte_version());
	}
	return 0;
}

int ctl_show_interfaces(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	bool first = true;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "PORT\tNAME\tDEVICE\tMAC\tLINK\tSPEED\tRX-PACKETS\tTX-PACKETS\t"
				"RX-DROPPED\tTX-DROPPED");
	for (uint16_t p = 0; p < CFG_MAX_PORTS; p++) {
		const struct cfg_port *cp = &c->ports[p];
		struct rte_eth_stats st = { 0 };
		struct rte_eth_link link = { 0 };
		const char *state = "unknown";
		char mac[18], speed[16] = "-";
		uint64_t rx_drop, tx_drop;

		if (!cp->present)
			continue;
		/*
		 * Only ports the EAL probed have ethdev state. The check reads a
		 * static array, so it is also safe in unit tests without an EAL.
		 */
		if (rte_eth_dev_is_valid_port(p)) {
			if (rte_eth_stats_get(p, &st) != 0)
				memset(&st, 0, sizeof(st));
			if (rte_eth_link_get_nowait(p, &link) == 0) {
				state = link.link_status ? "up" : "down";
				if (link.link_status &&
				    link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN &&
				    link.link_speed != RTE_ETH_SPEED_NUM_NONE)
					snprintf(speed, sizeof(speed), "%u", link.link_speed);
			}
		}
		/* Dropped by the NIC for want of descriptors or mbufs, or failed. */
		rx_drop = st.imissed + st.rx_nombuf + st.ierrors;
		tx_drop = st.oerrors;
		ctl_fmt_mac(&cp->mac, mac);
		if (!x->json) {
			ctl_tab_row(&t,
				    "%u\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
				    "\t%" PRIu64,
				    p, cp->name[0] ? cp->name : "-", cp->dev, mac, state, speed,
				    st.ipackets, st.opackets, rx_drop, tx_drop);
			continue;
		}
		ctl_printf(x->out, "%s{\"port\":%u,", first ? "" : ",", p);
		ctl_jstr(x->out, "name", cp->name);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "device", cp->dev);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "mac", mac);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "link", state);
		ctl_printf(x->out, ",\"speed_mbps\":%s,", strcmp(speed, "-") ? speed : "null");
		ctl_ju64(x->out, "rx_packets", st.ipackets);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "tx_packets", st.opackets);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "rx_bytes", st.ibytes);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "tx_bytes", st.obytes);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "rx_dropped", rx_drop);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "tx_dropped", tx_drop);
		ctl_printf(x->out, "}");
		first = false;
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_addrs(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	char ip[CTL_ADDR_SIZE];

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "ADDRESS\tDEV");
	for (uint16_t i = 0; i < c->naddrs; i++) {
		const struct cfg_addr *a = &c->addrs[i];

		ctl_fmt_ip(a->ip, ip);
		if (!x->json) {
			ctl_tab_row(&t, "%s/%u\t%s", ip, a->plen, ctl_port_label(c, a->port));
			continue;
		}
		ctl_printf(x->out, "%s{", i ? "," : "");
		ctl_jstr(x->out, "addr", ip);
		ctl_printf(x->out, ",\"plen\":%u,", a->plen);
		ctl_jstr(x->out, "dev", ctl_port_label(c, a->port));
		ctl_printf(x->out, ",\"port\":%u}", a->port);
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_routes(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	char pfx[CTL_ADDR_SIZE], gw[CTL_ADDR_SIZE];

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "PREFIX\tVIA\tDEV\tTYPE");
	/* The fib is what the dataplane uses: longest prefix first. */
	for (uint16_t i = 0; i < c->nfib && c->fib != NULL; i++) {
		const struct cfg_route *r = &c->fib[i];
		const char *type = r->connected ? "connected" : "static";

		ctl_fmt_ip(r->prefix, pfx);
		ctl_fmt_ip(r->gw, gw);
		if (!x->json) {
			ctl_tab_row(&t, "%s/%u\t%s\t%s\t%s", pfx, r->plen, r->gw ? gw : "-",
				    ctl_port_label(c, r->port), type);
			continue;
		}
		ctl_printf(x->out, "%s{\"prefix\":\"%s/%u\",\"via\":", i ? "," : "", pfx, r->plen);
		if (r->gw)
			ctl_json_str(x->out, gw);
		else
			ctl_printf(x->out, "null");
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "dev", ctl_port_label(c, r->port));
		ctl_printf(x->out, ",\"port\":%u,", r->port);
		ctl_jstr(x->out, "type", type);
		ctl_printf(x->out, "}");
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

static void ctl_neigh_row(struct ctl_ctx *x, struct ctl_tab *t, bool *first, uint32_t ip,
			  uint16_t port, const struct rte_ether_addr *mac, const char *state,
			  int lcore)
{
	const struct cfg *c = x->c;
	char a[CTL_ADDR_SIZE], m[18], lc[12] = "-";

	ctl_fmt_ip(ip, a);
	if (mac != NULL)
		ctl_fmt_mac(mac, m);
	if (lcore >= 0)
		snprintf(lc, sizeof(lc), "%d", lcore);
	if (!x->json) {
		ctl_tab_row(t, "%s\t%s\t%s\t%s\t%s", a, mac ? m : "-", ctl_port_label(c, port),
			    state, lc);
		return;
	}
	ctl_printf(x->out, "%s{", *first ? "" : ",");
	ctl_jstr(x->out, "addr", a);
	ctl_printf(x->out, ",\"mac\":");
	if (mac != NULL)
		ctl_json_str(x->out, m);
	else
		ctl_printf(x->out, "null");
	ctl_printf(x->out, ",");
	ctl_jstr(x->out, "dev", ctl_port_label(c, port));
	ctl_printf(x->out, ",\"port\":%u,", port);
	ctl_jstr(x->out, "state", state);
	ctl_printf(x->out, ",\"lcore\":%s}", lcore >= 0 ? lc : "null");
	*first = false;
}

int ctl_show_neigh(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	bool first = true;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "ADDRESS\tMAC\tDEV\tSTATE\tLCORE");
	for (uint16_t i = 0; i < c->nneigh; i++)
		ctl_neigh_row(x, &t, &first, c->neigh[i].ip, c->neigh[i].port, &c->neigh[i].mac,
			      "permanent", -1);
	/* Each lcore has its own cache; entries are read racily, for display only. */
	for (uint16_t wi = 0; wi < worker_count; wi++) {
		const struct worker *w = ctl_worker(wi);

		if (w == NULL || w->neigh == NULL)
			continue;
		for (uint32_t i = 0; i < NEIGH_MAX; i++) {
			const struct neigh_entry *e = &w->neigh->e[i];
			uint8_t state = e->state;

			if (state == NEIGH_FREE)
				continue;
			ctl_neigh_row(x, &t, &first, e->ip, e->port,
				      state == NEIGH_REACHABLE ? &e->mac : NULL,
				      neigh_state_name(state), (int)w->lcore);
		}
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

/* ---- services, backends, SNAT ---- */

/* May new flows of @svc take tuples on SNAT slot @n? */
static bool ctl_svc_may_use(const struct cfg *c, const struct cfg_service *svc, int n)
{
	return c->snat[n].used && !c->snat[n].draining &&
	       (svc->snat_all || (svc->snat_mask & (UINT64_C(1) << n)) != 0);
}

static void ctl_svc_snat_text(const struct cfg *c, const struct cfg_service *svc, struct ctl_buf *b)
{
	char ip[CTL_ADDR_SIZE];
	bool any = false;

	if (svc->snat_all) {
		ctl_printf(b, "all");
		return;
	}
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		if (!ctl_svc_may_use(c, svc, n))
			continue;
		ctl_printf(b, "%s%s", any ? "," : "", ctl_fmt_ip(c->snat[n].ip, ip));
		any = true;
	}
	if (!any)
		ctl_printf(b, "none");
}

int ctl_show_services(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	struct ctl_buf snat = { 0 };
	bool first = true;
	int only = -1;

	if (argc > 1)
		return ctl_usage(x);
	if (argc == 1) {
		only = cfg_service_find(c, argv[0]);
		if (only < 0)
			return ctl_fail(x, -ENOENT, "no such service \"%s\"", argv[0]);
	}
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t,
			    "NAME\tVIP\tPORT\tPROTO\tSCHED\tSNAT\tBACKENDS\tACTIVE\tTOTAL\tNEW/S");
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_service *svc = &c->services[s];
		char vip[CTL_ADDR_SIZE];
		uint64_t active, total, rate;
		unsigned int nbe = 0;

		if (!svc->used || (only >= 0 && s != only))
			continue;
		for (int b = 0; b < CFG_MAX_BACKENDS; b++)
			if (c->backends[b].used && c->backends[b].svc == s)
				nbe++;
		ctl_sum_service(c, s, &active, &total);
		total = ctl_since(total, ctl_base_of(&ctl_base.svc[s], svc->gen)->total);
		rate = ctl_rate_service(s, svc->gen);
		ctl_fmt_ip(svc->vip, vip);
		ctl_buf_reset(&snat);
		ctl_svc_snat_text(c, svc, &snat);
		if (!x->json) {
			ctl_tab_row(
				&t,
				"%s\t%s\t%u\t%s\t%s\t%s\t%u\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64,
				svc->name, vip, ntohs(svc->l4port), ctl_proto_name(svc->proto),
				cfg_sched_name(svc->sched), snat.data, nbe, active, total, rate);
			continue;
		}
		ctl_printf(x->out, "%s{", first ? "" : ",");
		ctl_jstr(x->out, "name", svc->name);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "vip", vip);
		ctl_printf(x->out, ",\"port\":%u,", ntohs(svc->l4port));
		ctl_jstr(x->out, "proto", ctl_proto_name(svc->proto));
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "sched", cfg_sched_name(svc->sched));
		ctl_printf(x->out, ",\"snat_all\":%s,\"snat\":[", svc->snat_all ? "true" : "false");
		for (int n = 0, k = 0; n < CFG_MAX_SNAT; n++) {
			char ip[CTL_ADDR_SIZE];

			if (!ctl_svc_may_use(c, svc, n))
				continue;
			ctl_printf(x->out, "%s", k++ ? "," : "");
			ctl_json_str(x->out, ctl_fmt_ip(c->snat[n].ip, ip));
		}
		ctl_printf(x->out, "],\"backends\":%u,", nbe);
		ctl_ju64(x->out, "active_flows", active);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "total_flows", total);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "new_flows_per_s", rate);
		if (svc->proto == IPPROTO_TCP)
			ctl_printf(x->out,
				   ",\"tw_quarantine\":%u,\"tw_quarantine_override\":%s"
				   ",\"ts_rewrite\":%s,\"ts_rewrite_override\":%s"
				   ",\"tw_reuse\":%s,\"tw_reuse_override\":%s",
				   cfg_tw_quarantine_ms(c, (uint16_t)s, svc->gen) / 1000,
				   svc->tw_quarantine == CFG_INHERIT ? "false" : "true",
				   cfg_ts_rewrite(c, (uint16_t)s) ? "true" : "false",
				   svc->ts_rewrite == CFG_INHERIT ? "false" : "true",
				   cfg_tw_reuse(c, (uint16_t)s) ? "true" : "false",
				   svc->tw_reuse == CFG_INHERIT ? "false" : "true");
		ctl_printf(x->out, "}");
		first = false;
	}
	ctl_buf_free(&snat);
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_backends(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	bool first = true;
	int only = -1;
	uint64_t now = worker_clock_ms();

	if (argc > 1)
		return ctl_usage(x);
	if (argc == 1) {
		only = cfg_service_find(c, argv[0]);
		if (only < 0)
			return ctl_fail(x, -ENOENT, "no such service \"%s\"", argv[0]);
	}
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "SERVICE\tADDRESS\tPORT\tWEIGHT\tSTATE\tHEALTH\tSINCE\tCHECKS "
				"OK/FAILED\tLAST\tACTIVE\tTOTAL");
	/* Grouped by service, both in slot order. */
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_service *svc = &c->services[s];

		if (!svc->used || (only >= 0 && s != only))
			continue;
		for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
			const struct cfg_backend *be = &c->backends[b];
			const struct ctl_base_obj *base;
			uint64_t active, total, fail, since;
			struct hc_info hi = { 0 };
			char ip[CTL_ADDR_SIZE], checks[48];

			if (!be->used || be->svc != s)
				continue;
			/* Seconds since its health last changed (or checks went on or off). */
			since = (now - be->health_ms) / 1000;
			hc_backend_info(b, be->gen, &hi);
			ctl_sum_backend(c, b, &active, &total, &fail);
			base = ctl_base_of(&ctl_base.be[b], be->gen);
			total = ctl_since(total, base->total);
			fail = ctl_since(fail, base->alloc_failures);
			ctl_fmt_ip(be->ip, ip);
			if (!x->json) {
				bool checked = be->health != CFG_HEALTH_UNCHECKED;

				snprintf(checks, sizeof(checks), "%" PRIu64 "/%" PRIu64, hi.ok,
					 hi.failed);
				ctl_tab_row(&t,
					    "%s\t%s\t%u\t%u\t%s\t%s\t%" PRIu64 "s\t%s\t%s\t%" PRIu64
					    "\t%" PRIu64,
					    svc->name, ip, ntohs(be->l4port), be->weight,
					    cfg_backend_state_name(be->state),
					    cfg_health_name(be->health), since,
					    checked ? checks : "-",
					    checked ? hc_result_name(hi.last) : "-", active, total);
				continue;
			}
			ctl_printf(x->out, "%s{", first ? "" : ",");
			ctl_jstr(x->out, "service", svc->name);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "addr", ip);
			ctl_printf(x->out, ",\"port\":%u,\"weight\":%u,", ntohs(be->l4port),
				   be->weight);
			ctl_jstr(x->out, "state", cfg_backend_state_name(be->state));
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "health", cfg_health_name(be->health));
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "active_flows", active);
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "total_flows", total);
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "alloc_failures", fail);
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "health_since_s", since);
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "checks_ok", hi.ok);
			ctl_printf(x->out, ",");
			ctl_ju64(x->out, "checks_failed", hi.failed);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "last_check", hc_result_name(hi.last));
			ctl_printf(x->out, "}");
			first = false;
		}
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

void ctl_snat_reap(void)
{
	struct cfg *c = cfg_current(), *n = NULL;

	for (int s = 0; s < CFG_MAX_SNAT; s++) {
		uint64_t in_use, fail, reuses;

		if (!c->snat[s].used || !c->snat[s].draining)
			continue;
		/* No worker can take a new tuple here any more (the draining
		 * snapshot was published and waited for), so 0 stays 0. */
		ctl_sum_snat(c, s, &in_use, &fail, &reuses);
		if (in_use != 0)
			continue;
		if (n == NULL && (n = cfg_clone(c)) == NULL)
			return;
		memset(&n->snat[s], 0, sizeof(n->snat[s]));
	}
	if (n == NULL)
		return;
	if (cfg_derive(n) < 0) {
		cfg_free(n);
		return;
	}
	cfg_publish(n);
}

int ctl_show_snat(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	bool first = true;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "ADDRESS\tPORTS\tDEV\tSTATE\tIN-USE\tQUARANTINED\tALLOC-FAILURES\t"
				"TW-REUSES");
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		const struct cfg_snat *sn = &c->snat[n];
		struct ctl_space_sum sum = { 0 };
		char ip[CTL_ADDR_SIZE], ports[16];
		uint64_t in_use, fail, reuses;

		if (!sn->used)
			continue;
		ctl_sum_snat(c, n, &in_use, &fail, &reuses);
		ctl_sum_spaces(sn->ip, 0, 0, 0, 0, 0, &sum);
		fail = ctl_since(fail, ctl_base_of(&ctl_base.snat[n], sn->gen)->alloc_failures);
		reuses = ctl_since(reuses, ctl_base_of(&ctl_base.snat[n], sn->gen)->tw_reuses);
		ctl_fmt_ip(sn->ip, ip);
		snprintf(ports, sizeof(ports), "%u-%u", sn->lo, sn->hi);
		if (!x->json) {
			ctl_tab_row(&t,
				    "%s\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
				    "\t%" PRIu64,
				    ip, ports, ctl_port_label(c, sn->port),
				    sn->draining ? "draining" : "active", in_use, sum.quarantined,
				    fail, reuses);
			continue;
		}
		ctl_printf(x->out, "%s{", first ? "" : ",");
		ctl_jstr(x->out, "addr", ip);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "ports", ports);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "dev", ctl_port_label(c, sn->port));
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "state", sn->draining ? "draining" : "active");
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "in_use", in_use);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "quarantined", sum.quarantined);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "alloc_failures", fail);
		ctl_printf(x->out, ",");
		ctl_ju64(x->out, "tw_reuses", reuses);
		ctl_printf(x->out, "}");
		first = false;
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_portspace(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	const struct cfg_service *svc;
	struct ctl_space_sum sum = { 0 };
	uint64_t ports = 0, free_;
	char name[CTL_ADDR_SIZE];
	uint32_t ip = 0;
	uint16_t l4port = 0;
	int s, b;

	if (argc != 2)
		return ctl_usage(x);
	s = cfg_service_find(c, argv[0]);
	if (s < 0)
		return ctl_fail(x, -ENOENT, "no such service \"%s\"", argv[0]);
	svc = &c->services[s];
	if (ctl_parse_ipport(argv[1], &ip, &l4port) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address:port", argv[1]);
	b = cfg_backend_find(c, s, ip, l4port);
	if (b < 0)
		return ctl_fail(x, -ENOENT, "no backend %s in service \"%s\"", argv[1], svc->name);
	/* The tuples toward this backend address on the service's SNAT addresses,
	 * whichever service holds them: a tuple is unique per backend, not per
	 * service. */
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		if (!ctl_svc_may_use(c, svc, n))
			continue;
		ports += (uint64_t)c->snat[n].hi - c->snat[n].lo + 1;
		ctl_sum_spaces(c->snat[n].ip, svc->proto, ip, l4port, c->snat[n].lo, c->snat[n].hi,
			       &sum);
	}
	free_ = ctl_since(ports, sum.held);
	ctl_fmt_ipport(ip, l4port, name);
	if (x->json) {
		ctl_printf(x->out, "{");
		ctl_jstr(x->out, "service", svc->name);
		ctl_printf(x->out, ",");
		ctl_jstr(x->out, "backend", name);
		ctl_printf(x->out,
			   ",\"in_use\":%" PRIu64 ",\"quarantined\":%" PRIu64 ",\"free\":%" PRIu64
			   ",\"total\":%" PRIu64 "}\n",
			   sum.live, sum.quarantined, free_, ports);
	} else {
		struct ctl_tab t = { 0 };

		ctl_tab_row(&t, "SERVICE\tBACKEND\tIN-USE\tQUARANTINED\tFREE\tTOTAL");
		ctl_tab_row(&t, "%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64,
			    svc->name, name, sum.live, sum.quarantined, free_, ports);
		ctl_tab_flush(&t, x->out);
	}
	return 0;
}

/* ---- flows ---- */

/* Who started the close of @f: NULL while nobody has. */
static const char *ctl_closed_by(const struct flow *f)
{
	uint16_t s = f->tcp_seen;

	if (f->proto != IPPROTO_TCP)
		return NULL;
	if ((s & TCPSTATE_SEEN_RST) &&
	    !(s & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND)))
		return "reset";
	if (s & TCPSTATE_CLIENT_FIN_FIRST)
		return (s & TCPSTATE_TW) ? "both" : "client";
	if (s & TCPSTATE_BACKEND_FIN_FIRST)
		return "backend";
	return NULL;
}

int ctl_show_flows(struct ctl_ctx *x, int argc, char **argv)
{
	const struct cfg *c = x->c;
	struct ctl_tab t = { 0 };
	const char *svc_name = NULL, *be_name = NULL, *limit_s = NULL;
	uint32_t limit = CTL_FLOWS_LIMIT, bip = 0;
	uint64_t shown = 0, matched = 0;
	uint16_t bport = 0;
	int svc = -1;

	for (int i = 0; i < argc; i += 2) {
		const char **slot = strcmp(argv[i], "service") == 0 ? &svc_name :
				    strcmp(argv[i], "backend") == 0 ? &be_name :
				    strcmp(argv[i], "limit") == 0   ? &limit_s :
								      NULL;

		if (slot == NULL || i + 1 >= argc)
			return ctl_usage(x);
		if (*slot != NULL)
			return ctl_fail(x, -EINVAL, "\"%s\" given twice", argv[i]);
		*slot = argv[i + 1];
	}
	if (svc_name != NULL) {
		svc = cfg_service_find(c, svc_name);
		if (svc < 0)
			return ctl_fail(x, -ENOENT, "no such service \"%s\"", svc_name);
	}
	if (be_name != NULL && ctl_parse_ipport(be_name, &bip, &bport) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address:port", be_name);
	/* limit 0: every flow. */
	if (limit_s != NULL && ctl_parse_u32(limit_s, 0, UINT32_MAX, &limit) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad limit", limit_s);
	if (x->json)
		ctl_printf(x->out, "[");
	else
		ctl_tab_row(&t, "CLIENT\tVIP\tSNAT\tBACKEND\tPROTO\tSTATE\tAGE\tTS-OFFSET\tLCORE\t"
				"SERVICE");
	for (uint16_t wi = 0; wi < worker_count; wi++) {
		const struct worker *w = ctl_worker(wi);
		uint32_t cap;

		if (w == NULL || w->ft == NULL)
			continue;
		cap = flow_capacity(w->ft);
		for (uint32_t i = 0; i < cap; i++) {
			const struct flow *f = flow_at(w->ft, i);
			char cl[CTL_ADDR_SIZE], vip[CTL_ADDR_SIZE], sn[CTL_ADDR_SIZE],
				be[CTL_ADDR_SIZE];
			const char *state, *sname = "-", *closed_by;
			char tstate[24], tsoff[16];
			bool quar;
			uint64_t age;

			if (f == NULL)
				continue;
			if (svc >= 0 && (f->svc != svc || f->svc_gen != c->services[svc].gen))
				continue;
			if (be_name != NULL && (f->bip != bip || f->bport != bport))
				continue;
			matched++;
			if (limit != 0 && shown >= limit)
				continue;
			shown++;
			if (f->svc < CFG_MAX_SERVICES && c->services[f->svc].used &&
			    c->services[f->svc].gen == f->svc_gen)
				sname = c->services[f->svc].name;
			state = f->proto == IPPROTO_UDP ? "udp" : cfg_tcp_state_name(f->state);
			closed_by = ctl_closed_by(f);
			quar = f->proto == IPPROTO_TCP && palloc_flow_quarantined(&w->palloc, f);
			snprintf(tstate, sizeof(tstate), "%s%s", state, quar ? "+tw" : "");
			age = w->now_ms > f->created_ms ? (w->now_ms - f->created_ms) / 1000 : 0;
			/* The offset as added mod 2^32, shown signed; "-" when not rewritten. */
			if (f->ts & FLOW_TS_REWRITE)
				snprintf(tsoff, sizeof(tsoff), "%+d", (int32_t)f->ts_off);
			else
				snprintf(tsoff, sizeof(tsoff), "-");
			ctl_fmt_ipport(f->cip, f->cport, cl);
			ctl_fmt_ipport(f->vip, f->vport, vip);
			ctl_fmt_ipport(f->sip, f->sport, sn);
			ctl_fmt_ipport(f->bip, f->bport, be);
			if (!x->json) {
				ctl_tab_row(&t, "%s\t%s\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\t%u\t%s",
					    cl, vip, sn, be, ctl_proto_name(f->proto), tstate, age,
					    tsoff, w->lcore, sname);
				continue;
			}
			ctl_printf(x->out, "%s{", shown > 1 ? "," : "");
			ctl_jstr(x->out, "client", cl);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "vip", vip);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "snat", sn);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "backend", be);
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "proto", ctl_proto_name(f->proto));
			ctl_printf(x->out, ",");
			ctl_jstr(x->out, "state", state);
			ctl_printf(x->out, ",");
			if (closed_by != NULL)
				ctl_jstr(x->out, "closed_by", closed_by);
			else
				ctl_printf(x->out, "\"closed_by\":null");
			ctl_printf(x->out, ",\"quarantined\":%s,", quar ? "true" : "false");
			ctl_ju64(x->out, "age_s", age);
			if (f->ts & FLOW_TS_REWRITE)
				ctl_printf(x->out, ",\"ts_offset\":%d", (int32_t)f->ts_off);
			else
				ctl_printf(x->out, ",\"ts_offset\":null");
			ctl_printf(x->out, ",\"ts_rewrite\":%s,\"lcore\":%u,",
				   (f->ts & FLOW_TS_REWRITE) ? "true" : "false", w->lcore);
			ctl_jstr(x->out, "service", sname);
			ctl_printf(x->out, "}");
		}
	}
	if (x->json) {
		ctl_printf(x->out, "]\n");
	} else {
		ctl_tab_flush(&t, x->out);
		if (matched > shown)
			ctl_printf(x->out,
				   "(%" PRIu64 " of %" PRIu64
				   " flows shown; \"limit 0\" shows all)\n",
				   shown, matched);
	}
	return 0;
}

/* ---- counters ---- */

int ctl_show_stats(struct ctl_ctx *x, int argc, char **argv)
{
	struct stats_lcore net[WORKER_MAX], sum = { 0 };
	uint64_t active[WORKER_MAX] = { 0 }, active_sum = 0, drops = 0;
	uint16_t n = worker_count < WORKER_MAX ? worker_count : WORKER_MAX;
	struct ctl_tab t = { 0 };

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	for (uint16_t i = 0; i < n; i++) {
		const struct worker *w = ctl_worker(i);

		ctl_lcore_net(i, &net[i]);
		if (w != NULL && w->ft != NULL)
			active[i] = flow_count(w->ft);
		active_sum += active[i];
#define CTL_SUM(name) sum.name += net[i].name;
		STATS_LCORE_COUNTERS(CTL_SUM)
#undef CTL_SUM
		for (int r = 0; r < STATS_DROP_COUNT; r++)
			sum.drops[r] += net[i].drops[r];
	}
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		drops += sum.drops[r];
	if (x->json) {
		struct ctl_buf *o = x->out;

		ctl_printf(o, "{\"flows_active\":%" PRIu64, active_sum);
#define CTL_JSON(name)      \
	ctl_printf(o, ","); \
	ctl_ju64(o, #name, sum.name);
		STATS_LCORE_COUNTERS(CTL_JSON)
#undef CTL_JSON
		ctl_printf(o, ",\"drops_total\":%" PRIu64 ",\"drops\":{", drops);
		for (int r = 0; r < STATS_DROP_COUNT; r++)
			ctl_printf(o, "%s\"%s\":%" PRIu64, r ? "," : "",
				   stats_drop_name((enum stats_drop)r), sum.drops[r]);
		ctl_printf(o, "},\"workers\":[");
		for (uint16_t i = 0; i < n; i++) {
			const struct worker *w = ctl_worker(i);

			ctl_printf(o,
				   "%s{\"lcore\":%u,\"rx_packets\":%" PRIu64
				   ",\"tx_packets\":%" PRIu64 ",\"flows_created\":%" PRIu64
				   ",\"flows_active\":%" PRIu64 ",\"flows_expired\":%" PRIu64
				   ",\"flows_closed\":%" PRIu64 "}",
				   i ? "," : "", w != NULL ? w->lcore : 0, net[i].rx_packets,
				   net[i].tx_packets, net[i].flows_created, active[i],
				   net[i].flows_expired, net[i].flows_closed);
		}
		ctl_printf(o, "]}\n");
		return 0;
	}
	ctl_tab_row(&t, "COUNTER\tVALUE");
	ctl_tab_row(&t, "flows_active\t%" PRIu64, active_sum);
#define CTL_ROW(name) ctl_tab_row(&t, #name "\t%" PRIu64, sum.name);
	STATS_LCORE_COUNTERS(CTL_ROW)
#undef CTL_ROW
	ctl_tab_row(&t, "drops\t%" PRIu64, drops);
	ctl_tab_flush(&t, x->out);
	ctl_printf(x->out, "\n");
	ctl_tab_row(&t,
		    "LCORE\tRX-PACKETS\tTX-PACKETS\tFLOWS-CREATED\tFLOWS-ACTIVE\tFLOWS-EXPIRED");
	for (uint16_t i = 0; i < n; i++) {
		const struct worker *w = ctl_worker(i);

		ctl_tab_row(&t, "%u\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64,
			    w != NULL ? w->lcore : 0, net[i].rx_packets, net[i].tx_packets,
			    net[i].flows_created, active[i], net[i].flows_expired);
	}
	ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_drops(struct ctl_ctx *x, int argc, char **argv)
{
	uint64_t sum[STATS_DROP_COUNT] = { 0 };
	struct ctl_tab t = { 0 };

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	for (uint16_t i = 0; i < worker_count && i < WORKER_MAX; i++) {
		struct stats_lcore net;

		ctl_lcore_net(i, &net);
		for (int r = 0; r < STATS_DROP_COUNT; r++)
			sum[r] += net.drops[r];
	}
	if (x->json)
		ctl_printf(x->out, "{");
	/* No header line: the contract is one reason per line. */
	for (int r = 0; r < STATS_DROP_COUNT; r++) {
		const char *name = stats_drop_name((enum stats_drop)r);

		if (x->json)
			ctl_printf(x->out, "%s\"%s\":%" PRIu64, r ? "," : "", name, sum[r]);
		else
			ctl_tab_row(&t, "%s\t%" PRIu64, name, sum[r]);
	}
	if (x->json)
		ctl_printf(x->out, "}\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_settings(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const states[CFG_TCP_STATE_COUNT] = { "syn", "established", "closing",
								 "closed" };
	const struct cfg_timeouts *to = &x->c->to;

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	if (x->json) {
		ctl_printf(x->out, "{\"tcp\":{\"timeout\":{");
		for (int s = 0; s < CFG_TCP_STATE_COUNT; s++)
			ctl_printf(x->out, "%s\"%s\":%u", s ? "," : "", states[s], to->tcp[s]);
		ctl_printf(x->out,
			   "},\"tw_quarantine\":%u,\"ts_rewrite\":%s,\"tw_reuse\":%s},"
			   "\"udp\":{\"timeout\":%u}}\n",
			   to->tw_quarantine, to->ts_rewrite ? "true" : "false",
			   to->tw_reuse ? "true" : "false", to->udp);
		return 0;
	}
	/* Printed as the commands that set them, so the output is a valid config. */
	for (int s = 0; s < CFG_TCP_STATE_COUNT; s++)
		ctl_printf(x->out, "set tcp timeout %s %u\n", states[s], to->tcp[s]);
	ctl_printf(x->out, "set udp timeout %u\n", to->udp);
	ctl_printf(x->out, "set tcp tw-quarantine %u\n", to->tw_quarantine);
	ctl_printf(x->out, "set tcp ts-rewrite %s\n", to->ts_rewrite ? "on" : "off");
	ctl_printf(x->out, "set tcp tw-reuse %s\n", to->tw_reuse ? "on" : "off");
	return 0;
}
