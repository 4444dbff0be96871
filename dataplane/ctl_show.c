/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "show" commands: formatting only. The values of stats, drops,
 * services, backends and SNAT addresses, and "clear stats", are ctl_view.c's
 * (summed per-lcore counters minus the "clear stats" baseline), shared with
 * the telemetry commands.
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

/* A ctl_view_out that writes the members of one JSON object. */
struct ctl_jobj {
	struct ctl_view_out out;
	struct ctl_buf *b;
	bool more; /* a member is written: the next one needs a comma */
};

static struct ctl_buf *ctl_jobj_next(void *sink)
{
	struct ctl_jobj *j = sink;

	if (j->more)
		ctl_printf(j->b, ",");
	j->more = true;
	return j->b;
}

static void ctl_jobj_u64(void *sink, const char *key, uint64_t val)
{
	ctl_ju64(ctl_jobj_next(sink), key, val);
}

static void ctl_jobj_str(void *sink, const char *key, const char *val)
{
	ctl_jstr(ctl_jobj_next(sink), key, val);
}

static void ctl_jobj_flag(void *sink, const char *key, bool val)
{
	ctl_printf(ctl_jobj_next(sink), "\"%s\":%s", key, val ? "true" : "false");
}

static void ctl_jobj_addrs(void *sink, const char *key, const char (*addr)[CTL_ADDR_SIZE],
			   unsigned int n)
{
	struct ctl_buf *b = ctl_jobj_next(sink);

	ctl_printf(b, "\"%s\":[", key);
	for (unsigned int i = 0; i < n; i++) {
		ctl_printf(b, "%s", i != 0 ? "," : "");
		ctl_json_str(b, addr[i]);
	}
	ctl_printf(b, "]");
}

/* Prints "{" (after a "," unless @first) and returns where the members go; "}" is the caller's. */
static const struct ctl_view_out *ctl_jobj_open(struct ctl_jobj *j, struct ctl_buf *b, bool first)
{
	*j = (struct ctl_jobj){
		.out = { ctl_jobj_u64, ctl_jobj_str, ctl_jobj_flag, ctl_jobj_addrs, j },
		.b = b,
	};
	ctl_printf(b, "%s{", first ? "" : ",");
	return &j->out;
}

static const char *ctl_fmt_mac(const struct rte_ether_addr *m, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m->addr_bytes[0], m->addr_bytes[1],
		 m->addr_bytes[2], m->addr_bytes[3], m->addr_bytes[4], m->addr_bytes[5]);
	return buf;
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
		const struct worker *w = ctl_view_worker(wi);

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

/* The SNAT column of "show services": "all", the addresses, or "none". */
static void ctl_svc_snat_text(const struct ctl_view_service *v, struct ctl_buf *b)
{
	if (v->snat_all) {
		ctl_printf(b, "all");
		return;
	}
	if (v->nsnat == 0) {
		ctl_printf(b, "none");
		return;
	}
	for (unsigned int i = 0; i < v->nsnat; i++)
		ctl_printf(b, "%s%s", i != 0 ? "," : "", v->snat[i]);
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
		struct ctl_view_service v;
		struct ctl_jobj j;

		if (!svc->used || (only >= 0 && s != only))
			continue;
		ctl_view_service(c, s, &v);
		if (!x->json) {
			ctl_buf_reset(&snat);
			ctl_svc_snat_text(&v, &snat);
			ctl_tab_row(&t,
				    "%s\t%s\t%u\t%s\t%s\t%s\t%u\t%" PRIu64 "\t%" PRIu64
				    "\t%" PRIu64,
				    v.name, v.vip, v.port, v.proto, v.sched, snat.data, v.backends,
				    v.active_flows, v.total_flows, v.new_flows_per_s);
			continue;
		}
		ctl_view_service_put(&v, ctl_jobj_open(&j, x->out, first));
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
	for (int b = ctl_view_backend_next(c, only, -1); b >= 0;
	     b = ctl_view_backend_next(c, only, b)) {
		struct ctl_view_backend v;
		struct ctl_jobj j;

		ctl_view_backend(c, b, &v);
		if (!x->json) {
			char checks[48];

			snprintf(checks, sizeof(checks), "%" PRIu64 "/%" PRIu64, v.checks_ok,
				 v.checks_failed);
			ctl_tab_row(&t,
				    "%s\t%s\t%u\t%u\t%s\t%s\t%" PRIu64 "s\t%s\t%s\t%" PRIu64
				    "\t%" PRIu64,
				    v.service, v.addr, v.port, v.weight, v.state, v.health,
				    v.health_since_s, v.checked ? checks : "-",
				    v.checked ? v.last_check : "-", v.active_flows, v.total_flows);
			continue;
		}
		ctl_view_backend_put(&v, ctl_jobj_open(&j, x->out, first));
		ctl_printf(x->out, "}");
		first = false;
	}
	if (x->json)
		ctl_printf(x->out, "]\n");
	else
		ctl_tab_flush(&t, x->out);
	return 0;
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
		struct ctl_view_snat v;
		struct ctl_jobj j;

		if (!c->snat[n].used)
			continue;
		ctl_view_snat(c, n, &v);
		if (!x->json) {
			ctl_tab_row(&t,
				    "%s\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
				    "\t%" PRIu64,
				    v.addr, v.ports, v.dev, v.state, v.in_use, v.quarantined,
				    v.alloc_failures, v.tw_reuses);
			continue;
		}
		ctl_view_snat_put(&v, ctl_jobj_open(&j, x->out, first));
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
	struct ctl_view_spaces sum = { 0 };
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
		if (!cfg_svc_snat(c, svc, n))
			continue;
		ports += (uint64_t)c->snat[n].hi - c->snat[n].lo + 1;
		ctl_view_spaces(c->snat[n].ip, svc->proto, ip, l4port, c->snat[n].lo, c->snat[n].hi,
				&sum);
	}
	free_ = ports >= sum.held ? ports - sum.held : 0;
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
		const struct worker *w = ctl_view_worker(wi);
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
	struct ctl_view_stats v;
	struct ctl_tab t = { 0 };

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	ctl_view_stats(&v);
	if (x->json) {
		struct ctl_buf *o = x->out;

		ctl_printf(o, "{\"flows_active\":%" PRIu64, v.flows_active);
#define CTL_JSON(name)      \
	ctl_printf(o, ","); \
	ctl_ju64(o, #name, v.sum.name);
		STATS_LCORE_COUNTERS(CTL_JSON)
#undef CTL_JSON
		ctl_printf(o, ",\"drops_total\":%" PRIu64 ",\"drops\":{", v.drops_total);
		for (int r = 0; r < STATS_DROP_COUNT; r++)
			ctl_printf(o, "%s\"%s\":%" PRIu64, r ? "," : "",
				   stats_drop_name((enum stats_drop)r), v.sum.drops[r]);
		ctl_printf(o, "},\"workers\":[");
		for (uint16_t i = 0; i < v.nworkers; i++) {
			const struct ctl_view_worker *w = &v.w[i];

			ctl_printf(o,
				   "%s{\"lcore\":%u,\"rx_packets\":%" PRIu64
				   ",\"tx_packets\":%" PRIu64 ",\"flows_created\":%" PRIu64
				   ",\"flows_active\":%" PRIu64 ",\"flows_expired\":%" PRIu64
				   ",\"flows_closed\":%" PRIu64 "}",
				   i ? "," : "", w->lcore, w->net.rx_packets, w->net.tx_packets,
				   w->net.flows_created, w->flows_active, w->net.flows_expired,
				   w->net.flows_closed);
		}
		ctl_printf(o, "]}\n");
		return 0;
	}
	ctl_tab_row(&t, "COUNTER\tVALUE");
	ctl_tab_row(&t, "flows_active\t%" PRIu64, v.flows_active);
#define CTL_ROW(name) ctl_tab_row(&t, #name "\t%" PRIu64, v.sum.name);
	STATS_LCORE_COUNTERS(CTL_ROW)
#undef CTL_ROW
	ctl_tab_row(&t, "drops\t%" PRIu64, v.drops_total);
	ctl_tab_flush(&t, x->out);
	ctl_printf(x->out, "\n");
	ctl_tab_row(&t,
		    "LCORE\tRX-PACKETS\tTX-PACKETS\tFLOWS-CREATED\tFLOWS-ACTIVE\tFLOWS-EXPIRED");
	for (uint16_t i = 0; i < v.nworkers; i++) {
		const struct ctl_view_worker *w = &v.w[i];

		ctl_tab_row(&t, "%u\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64,
			    w->lcore, w->net.rx_packets, w->net.tx_packets, w->net.flows_created,
			    w->flows_active, w->net.flows_expired);
	}
	ctl_tab_flush(&t, x->out);
	return 0;
}

int ctl_show_drops(struct ctl_ctx *x, int argc, char **argv)
{
	struct ctl_view_stats v;
	struct ctl_tab t = { 0 };

	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	ctl_view_stats(&v);
	if (x->json)
		ctl_printf(x->out, "{");
	/* No header line: the contract is one reason per line. */
	for (int r = 0; r < STATS_DROP_COUNT; r++) {
		const char *name = stats_drop_name((enum stats_drop)r);

		if (x->json)
			ctl_printf(x->out, "%s\"%s\":%" PRIu64, r ? "," : "", name, v.sum.drops[r]);
		else
			ctl_tab_row(&t, "%s\t%" PRIu64, name, v.sum.drops[r]);
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
