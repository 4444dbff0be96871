/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The commands that change the configuration.
 *
 * Each handler edits x->c, a private copy of the current snapshot (see
 * ctl_priv.h): it validates everything, and on any error refuses with a
 * one-line reason; ctl_exec() then frees the copy, so a refused command
 * changes nothing however far it got. Defaults belong to cfg_new(), not here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_random.h>

#include "bsel.h"
#include "cfg.h"
#include "ctl_priv.h"
#include "ctl_proto.h"

#define CTL_MAX_SECONDS	      604800u /* a week: longer timeouts are typos */
#define CTL_MAX_CHECK_SECONDS 3600u
#define CTL_MAX_CHECK_COUNT   100u

/*
 * Collect "KEY VALUE" pairs: vals[i] gets the value of keys[i] (NULL-terminated
 * list) or stays NULL. Unknown, valueless or repeated keys are refused.
 */
static int ctl_opts(struct ctl_ctx *x, int argc, char **argv, const char *const keys[],
		    const char *vals[])
{
	for (int i = 0; i < argc; i += 2) {
		int k = 0;

		while (keys[k] != NULL && strcmp(keys[k], argv[i]) != 0)
			k++;
		if (keys[k] == NULL || i + 1 >= argc)
			return ctl_usage(x);
		if (vals[k] != NULL)
			return ctl_fail(x, -EINVAL, "\"%s\" given twice", keys[k]);
		vals[k] = argv[i + 1];
	}
	return 0;
}

/* Addresses that can be a host: not 0/8, loopback, multicast or reserved. */
static bool ctl_ip_unicast(uint32_t ip)
{
	uint8_t first = (uint8_t)(ntohl(ip) >> 24);

	return first != 0 && first != 127 && first < 224;
}

static int ctl_host(struct ctl_ctx *x, const char *s, uint32_t *ip)
{
	if (ctl_parse_ip(s, ip) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address", s);
	if (!ctl_ip_unicast(*ip))
		return ctl_fail(x, -EINVAL, "%s: not a unicast host address", s);
	return 0;
}

static int ctl_dev(struct ctl_ctx *x, const char *s, uint16_t *port)
{
	int p = cfg_port_find(x->c, s);

	if (p < 0)
		return ctl_fail(x, -ENODEV, "no such device \"%s\"", s);
	*port = (uint16_t)p;
	return 0;
}

static uint32_t ctl_mask(uint8_t plen)
{
	return plen == 0 ? 0 : htonl(~0u << (32 - plen));
}

static uint32_t ctl_gen_next(struct cfg *c)
{
	/* gen 0 means "never set" in per-lcore counters; skip it on wrap-around. */
	if (c->next_gen == 0)
		c->next_gen = 1;
	return c->next_gen++;
}

/*
 * The origin of a SNAT address's timestamp clock (palloc.h): random, so that
 * TSvals say nothing of uptime, and the same for the same address for the
 * daemon's lifetime, so that an address deleted and added again does not
 * restart its clock somewhere behind what its backends saw.
 */
static uint32_t ctl_ts_base(uint32_t ip)
{
	static uint64_t secret;

	while (secret == 0)
		secret = rte_rand();
	return rte_hash_crc_4byte(ip, (uint32_t)secret) ^ (uint32_t)(secret >> 32);
}

/* ---- interfaces and L3 ---- */

int ctl_cmd_interface(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	const char *name;
	int p;

	if (argc != 3 || strcmp(argv[1], "name") != 0)
		return ctl_usage(x);
	name = argv[2];
	p = cfg_port_find(c, argv[0]);
	if (p < 0)
		return ctl_fail(x, -ENODEV, "no such port \"%s\"", argv[0]);
	/* An all-digit name would shadow a port id in every "dev" argument. */
	if (!ctl_name_valid(name) || strspn(name, "0123456789") == strlen(name))
		return ctl_fail(x, -EINVAL,
				"bad name \"%s\": 1-31 of A-Z a-z 0-9 _ . -, not all digits", name);
	for (int q = 0; q < CFG_MAX_PORTS; q++) {
		if (q == p || !c->ports[q].present)
			continue;
		if (strcmp(c->ports[q].name, name) == 0 || strcmp(c->ports[q].dev, name) == 0)
			return ctl_fail(x, -EEXIST, "name \"%s\" is taken by port %d", name, q);
	}
	snprintf(c->ports[p].name, sizeof(c->ports[p].name), "%s", name);
	return 0;
}

/* Parse "A.B.C.D/LEN dev DEV" of addr add/del. */
static int ctl_addr_args(struct ctl_ctx *x, int argc, char **argv, struct cfg_addr *a)
{
	int ret;

	if (argc != 3 || strcmp(argv[1], "dev") != 0)
		return ctl_usage(x);
	if (strcmp(argv[0], "default") == 0 || strchr(argv[0], '/') == NULL ||
	    ctl_parse_prefix(argv[0], &a->ip, &a->plen) < 0 || a->plen == 0)
		return ctl_fail(x, -EINVAL, "%s: bad address/length (expected A.B.C.D/1-32)",
				argv[0]);
	if (!ctl_ip_unicast(a->ip))
		return ctl_fail(x, -EINVAL, "%s: not a unicast host address", argv[0]);
	ret = ctl_dev(x, argv[2], &a->port);
	return ret;
}

int ctl_cmd_addr_add(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	struct cfg_addr a = { 0 };
	char buf[CTL_ADDR_SIZE];
	int ret;

	ret = ctl_addr_args(x, argc, argv, &a);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->naddrs; i++)
		if (c->addrs[i].ip == a.ip)
			return ctl_fail(x, -EEXIST, "%s exists on %s", ctl_fmt_ip(a.ip, buf),
					ctl_port_label(c, c->addrs[i].port));
	if (c->naddrs >= CFG_MAX_ADDRS)
		return ctl_fail(x, -ENOSPC, "no room for more addresses (%d)", CFG_MAX_ADDRS);
	c->addrs[c->naddrs++] = a;
	return 0;
}

int ctl_cmd_addr_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	struct cfg_addr a = { 0 };
	int ret;

	ret = ctl_addr_args(x, argc, argv, &a);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->naddrs; i++) {
		if (c->addrs[i].ip != a.ip || c->addrs[i].plen != a.plen ||
		    c->addrs[i].port != a.port)
			continue;
		memmove(&c->addrs[i], &c->addrs[i + 1], (c->naddrs - i - 1) * sizeof(c->addrs[0]));
		c->naddrs--;
		return 0;
	}
	return ctl_fail(x, -ENOENT, "no address %s on %s", argv[0], ctl_port_label(c, a.port));
}

static int ctl_route_prefix(struct ctl_ctx *x, const char *s, uint32_t *prefix, uint8_t *plen)
{
	char buf[CTL_ADDR_SIZE];

	if (ctl_parse_prefix(s, prefix, plen) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad prefix (expected A.B.C.D/0-32 or default)", s);
	if ((*prefix & ~ctl_mask(*plen)) != 0)
		return ctl_fail(x, -EINVAL, "%s: host bits set (the prefix is %s/%u)", s,
				ctl_fmt_ip(*prefix & ctl_mask(*plen), buf), *plen);
	return 0;
}

int ctl_cmd_route_add(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const keys[] = { "via", "dev", NULL };
	const char *vals[3] = { NULL };
	struct cfg *c = x->c;
	struct cfg_route r = { 0 };
	int ret;

	if (argc < 1)
		return ctl_usage(x);
	ret = ctl_opts(x, argc - 1, argv + 1, keys, vals);
	if (ret < 0)
		return ret;
	if (vals[1] == NULL)
		return ctl_usage(x);
	ret = ctl_route_prefix(x, argv[0], &r.prefix, &r.plen);
	if (ret < 0)
		return ret;
	if (vals[0] != NULL && (ret = ctl_host(x, vals[0], &r.gw)) < 0)
		return ret;
	ret = ctl_dev(x, vals[1], &r.port);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->nroutes; i++)
		if (c->routes[i].prefix == r.prefix && c->routes[i].plen == r.plen)
			return ctl_fail(x, -EEXIST, "a route to %s exists", argv[0]);
	if (c->nroutes >= CFG_MAX_ROUTES)
		return ctl_fail(x, -ENOSPC, "no room for more routes (%d)", CFG_MAX_ROUTES);
	c->routes[c->nroutes++] = r;
	return 0;
}

int ctl_cmd_route_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	uint32_t prefix = 0;
	uint8_t plen = 0;
	int ret;

	if (argc != 1)
		return ctl_usage(x);
	ret = ctl_route_prefix(x, argv[0], &prefix, &plen);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->nroutes; i++) {
		if (c->routes[i].prefix != prefix || c->routes[i].plen != plen)
			continue;
		memmove(&c->routes[i], &c->routes[i + 1],
			(c->nroutes - i - 1) * sizeof(c->routes[0]));
		c->nroutes--;
		return 0;
	}
	return ctl_fail(x, -ENOENT, "no static route to %s", argv[0]);
}

int ctl_cmd_neigh_add(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const keys[] = { "lladdr", "dev", NULL };
	const char *vals[3] = { NULL };
	struct cfg *c = x->c;
	struct cfg_neigh n = { 0 };
	int ret;

	if (argc != 5)
		return ctl_usage(x);
	ret = ctl_opts(x, argc - 1, argv + 1, keys, vals);
	if (ret < 0)
		return ret;
	if (vals[0] == NULL || vals[1] == NULL)
		return ctl_usage(x);
	ret = ctl_host(x, argv[0], &n.ip);
	if (ret < 0)
		return ret;
	if (ctl_parse_mac(vals[0], &n.mac) < 0 || !rte_is_valid_assigned_ether_addr(&n.mac))
		return ctl_fail(x, -EINVAL,
				"%s: bad MAC address (expected a unicast xx:xx:xx:xx:xx:xx)",
				vals[0]);
	ret = ctl_dev(x, vals[1], &n.port);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->nneigh; i++)
		if (c->neigh[i].ip == n.ip && c->neigh[i].port == n.port)
			return ctl_fail(x, -EEXIST, "%s exists on %s", argv[0],
					ctl_port_label(c, n.port));
	if (c->nneigh >= CFG_MAX_NEIGH)
		return ctl_fail(x, -ENOSPC, "no room for more static neighbours (%d)",
				CFG_MAX_NEIGH);
	c->neigh[c->nneigh++] = n;
	return 0;
}

int ctl_cmd_neigh_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	uint32_t ip = 0;
	uint16_t port = 0;
	int ret;

	if (argc != 3 || strcmp(argv[1], "dev") != 0)
		return ctl_usage(x);
	if (ctl_parse_ip(argv[0], &ip) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address", argv[0]);
	ret = ctl_dev(x, argv[2], &port);
	if (ret < 0)
		return ret;
	for (uint16_t i = 0; i < c->nneigh; i++) {
		if (c->neigh[i].ip != ip || c->neigh[i].port != port)
			continue;
		memmove(&c->neigh[i], &c->neigh[i + 1], (c->nneigh - i - 1) * sizeof(c->neigh[0]));
		c->nneigh--;
		return 0;
	}
	return ctl_fail(x, -ENOENT, "no static neighbour %s on %s", argv[0],
			ctl_port_label(c, port));
}

/* ---- SNAT pool ---- */

static int ctl_ports_range(struct ctl_ctx *x, const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[16];
	char *dash;
	uint32_t l, h;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash == NULL)
		goto bad;
	*dash = '\0';
	if (ctl_parse_u32(buf, 1, 65535, &l) < 0 || ctl_parse_u32(dash + 1, 1, 65535, &h) < 0 ||
	    l > h)
		goto bad;
	*lo = (uint16_t)l;
	*hi = (uint16_t)h;
	return 0;
bad:
	return ctl_fail(x, -EINVAL, "%s: bad port range (expected LO-HI, 1 <= LO <= HI <= 65535)",
			s);
}

/* The service whose VIP is @ip, or -1. */
static int ctl_vip_owner(const struct cfg *c, uint32_t ip)
{
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		if (c->services[s].used && c->services[s].vip == ip)
			return s;
	return -1;
}

int ctl_cmd_snat_add(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const keys[] = { "ports", "dev", NULL };
	const char *vals[3] = { NULL };
	struct cfg *c = x->c;
	struct cfg_snat sn = { .used = true, .lo = 1024, .hi = 65535 };
	int ret, slot = -1, s;

	if (argc < 1)
		return ctl_usage(x);
	ret = ctl_opts(x, argc - 1, argv + 1, keys, vals);
	if (ret < 0)
		return ret;
	if (vals[1] == NULL)
		return ctl_usage(x);
	ret = ctl_host(x, argv[0], &sn.ip);
	if (ret < 0)
		return ret;
	if (vals[0] != NULL && (ret = ctl_ports_range(x, vals[0], &sn.lo, &sn.hi)) < 0)
		return ret;
	if (sn.lo <= CFG_CHECK_PORT_HI && sn.hi >= CFG_CHECK_PORT_LO)
		return ctl_fail(x, -EINVAL,
				"ports %u-%u overlap %u-%u, the source ports of health checks",
				sn.lo, sn.hi, CFG_CHECK_PORT_LO, CFG_CHECK_PORT_HI);
	ret = ctl_dev(x, vals[1], &sn.port);
	if (ret < 0)
		return ret;
	slot = cfg_snat_find(c, sn.ip);
	if (slot >= 0 && !c->snat[slot].draining)
		return ctl_fail(x, -EEXIST, "%s exists", argv[0]);
	if (slot >= 0) {
		/* Deleted but still draining: take it back, flows and counters intact. */
		sn.gen = c->snat[slot].gen;
		sn.ts_base = c->snat[slot].ts_base;
		c->snat[slot] = sn;
		return 0;
	}
	/* Replies to a SNAT address must never be taken for client traffic to a VIP. */
	s = ctl_vip_owner(c, sn.ip);
	if (s >= 0)
		return ctl_fail(x, -EEXIST, "%s is the VIP of service \"%s\"", argv[0],
				c->services[s].name);
	for (int i = 0; i < CFG_MAX_SNAT && slot < 0; i++)
		if (!c->snat[i].used)
			slot = i;
	if (slot < 0)
		return ctl_fail(x, -ENOSPC, "no room for more SNAT addresses (%d)", CFG_MAX_SNAT);
	sn.gen = ctl_gen_next(c);
	sn.ts_base = ctl_ts_base(sn.ip);
	c->snat[slot] = sn;
	return 0;
}

int ctl_cmd_snat_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	uint32_t ip = 0;
	int slot;

	if (argc != 1)
		return ctl_usage(x);
	if (ctl_parse_ip(argv[0], &ip) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address", argv[0]);
	slot = cfg_snat_find(c, ip);
	if (slot < 0 || c->snat[slot].draining)
		return ctl_fail(x, -ENOENT, "no SNAT address %s", argv[0]);
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_service *svc = &c->services[s];

		if (svc->used && !svc->snat_all && svc->snat_mask == (UINT64_C(1) << slot))
			return ctl_fail(x, -EBUSY,
					"%s is the only SNAT address of service \"%s\"; change its "
					"snat list first",
					argv[0], svc->name);
	}
	/* Live flows keep their tuples: the address drains instead of vanishing. */
	c->snat[slot].draining = true;
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		c->services[s].snat_mask &= ~(UINT64_C(1) << slot);
	return 0;
}

/* ---- services ---- */

static int ctl_service_get(struct ctl_ctx *x, const char *name)
{
	int s = cfg_service_find(x->c, name);

	if (s < 0)
		return ctl_fail(x, -ENOENT, "no such service \"%s\"", name);
	return s;
}

static int ctl_sched_parse(struct ctl_ctx *x, const char *s, uint8_t *sched)
{
	static const char *const names[] = {
		[CFG_SCHED_MAGLEV] = "maglev",
		[CFG_SCHED_WRR] = "wrr",
		[CFG_SCHED_RR] = "rr",
		[CFG_SCHED_LC] = "lc",
	};

	for (uint8_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(names[i], s) == 0) {
			*sched = i;
			return 0;
		}
	}
	return ctl_fail(x, -EINVAL, "%s: unknown scheduler (maglev, wrr, rr or lc)", s);
}

/* "A.B.C.D[,A.B.C.D...]" of pool addresses, or "all". */
static int ctl_snat_list(struct ctl_ctx *x, const char *list, bool *all, uint64_t *mask)
{
	char buf[CTL_REQ_MAX + 1];
	char *save = NULL;
	size_t len = strlen(list);

	if (strcmp(list, "all") == 0) {
		*all = true;
		*mask = 0;
		return 0;
	}
	if (len == 0 || len >= sizeof(buf) || list[0] == ',' || list[len - 1] == ',' ||
	    strstr(list, ",,") != NULL)
		return ctl_fail(x, -EINVAL, "%s: bad SNAT list (expected A.B.C.D[,A.B.C.D...])",
				list);
	memcpy(buf, list, len + 1);
	*all = false;
	*mask = 0;
	for (char *a = strtok_r(buf, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
		uint32_t ip;
		int slot;

		if (ctl_parse_ip(a, &ip) < 0)
			return ctl_fail(x, -EINVAL, "%s: bad address", a);
		slot = cfg_snat_find(x->c, ip);
		if (slot < 0 || x->c->snat[slot].draining)
			return ctl_fail(x, -ENOENT, "no SNAT address %s (add it with \"snat add\")",
					a);
		*mask |= UINT64_C(1) << slot;
	}
	return 0;
}

int ctl_cmd_service_add(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const keys[] = { "vip", "port", "proto", "sched", "snat", NULL };
	const char *vals[6] = { NULL };
	struct cfg *c = x->c;
	struct cfg_service svc = { .used = true,
				   .sched = CFG_SCHED_MAGLEV,
				   .snat_all = true,
				   .tw_quarantine = CFG_INHERIT,
				   .ts_rewrite = CFG_INHERIT,
				   .tw_reuse = CFG_INHERIT };
	char buf[CTL_ADDR_SIZE];
	uint32_t l4port;
	int ret, slot = -1;

	if (argc < 1)
		return ctl_usage(x);
	ret = ctl_opts(x, argc - 1, argv + 1, keys, vals);
	if (ret < 0)
		return ret;
	if (vals[0] == NULL || vals[1] == NULL || vals[2] == NULL)
		return ctl_usage(x);
	if (!ctl_name_valid(argv[0]))
		return ctl_fail(x, -EINVAL, "bad name \"%s\": 1-31 of A-Z a-z 0-9 _ . -", argv[0]);
	if (cfg_service_find(c, argv[0]) >= 0)
		return ctl_fail(x, -EEXIST, "service \"%s\" exists", argv[0]);
	ret = ctl_host(x, vals[0], &svc.vip);
	if (ret < 0)
		return ret;
	if (ctl_parse_u32(vals[1], 1, 65535, &l4port) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad port (1-65535)", vals[1]);
	svc.l4port = htons((uint16_t)l4port);
	if (strcmp(vals[2], "tcp") == 0)
		svc.proto = IPPROTO_TCP;
	else if (strcmp(vals[2], "udp") == 0)
		svc.proto = IPPROTO_UDP;
	else
		return ctl_fail(x, -EINVAL, "%s: bad protocol (tcp or udp)", vals[2]);
	if (vals[3] != NULL && (ret = ctl_sched_parse(x, vals[3], &svc.sched)) < 0)
		return ret;
	if (vals[4] != NULL && (ret = ctl_snat_list(x, vals[4], &svc.snat_all, &svc.snat_mask)) < 0)
		return ret;
	if (cfg_snat_find(c, svc.vip) >= 0)
		return ctl_fail(x, -EEXIST, "%s is a SNAT address", vals[0]);
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_service *o = &c->services[s];

		if (o->used && o->vip == svc.vip && o->l4port == svc.l4port &&
		    o->proto == svc.proto)
			return ctl_fail(x, -EEXIST, "service \"%s\" already has %s/%s", o->name,
					ctl_fmt_ipport(svc.vip, svc.l4port, buf), vals[2]);
		if (!o->used && slot < 0)
			slot = s;
	}
	if (slot < 0)
		return ctl_fail(x, -ENOSPC, "no room for more services (%d)", CFG_MAX_SERVICES);
	snprintf(svc.name, sizeof(svc.name), "%s", argv[0]);
	svc.gen = ctl_gen_next(c);
	svc.bsel_dirty = true;
	/* An unused slot may still hold a table reference until the next derive. */
	bsel_table_unref(c->services[slot].bsel);
	c->services[slot] = svc;
	return 0;
}

/*
 * Parse "check tcp|icmp [interval S] [timeout S] [rise N] [fall N]" or
 * "check off" for a service of protocol @proto into @ck.
 */
static int ctl_check_parse(struct ctl_ctx *x, int argc, char **argv, uint8_t proto,
			   struct cfg_check *ck)
{
	static const char *const keys[] = { "interval", "timeout", "rise", "fall", NULL };
	const char *vals[5] = { NULL };
	uint32_t v[4] = { CFG_CHECK_INTERVAL, CFG_CHECK_TIMEOUT, CFG_CHECK_RISE, CFG_CHECK_FALL };
	uint8_t kind;
	int ret;

	if (argc == 1 && strcmp(argv[0], "off") == 0) {
		*ck = (struct cfg_check){ .kind = CFG_CHECK_OFF };
		return 0;
	}
	if (argc < 1)
		return ctl_usage(x);
	if (strcmp(argv[0], "tcp") == 0)
		kind = CFG_CHECK_TCP;
	else if (strcmp(argv[0], "icmp") == 0) /* an extension, for UDP services */
		kind = CFG_CHECK_ICMP;
	else
		return ctl_usage(x);
	if (kind == CFG_CHECK_TCP && proto != IPPROTO_TCP)
		return ctl_fail(x, -EINVAL,
				"check tcp: a UDP service's backends are checked with "
				"\"check icmp\"");
	ret = ctl_opts(x, argc - 1, argv + 1, keys, vals);
	if (ret < 0)
		return ret;
	for (int i = 0; i < 2; i++)
		if (vals[i] != NULL && ctl_parse_u32(vals[i], 1, CTL_MAX_CHECK_SECONDS, &v[i]) < 0)
			return ctl_fail(x, -EINVAL, "%s %s: bad seconds (1-%u)", keys[i], vals[i],
					CTL_MAX_CHECK_SECONDS);
	if (v[1] > v[0])
		return ctl_fail(x, -EINVAL, "timeout %u exceeds interval %u", v[1], v[0]);
	for (int i = 2; i < 4; i++)
		if (vals[i] != NULL && ctl_parse_u32(vals[i], 1, CTL_MAX_CHECK_COUNT, &v[i]) < 0)
			return ctl_fail(x, -EINVAL, "%s %s: bad count (1-%u)", keys[i], vals[i],
					CTL_MAX_CHECK_COUNT);
	*ck = (struct cfg_check){ .kind = kind,
				  .interval_s = (uint16_t)v[0],
				  .timeout_s = (uint16_t)v[1],
				  .rise = (uint8_t)v[2],
				  .fall = (uint8_t)v[3] };
	return 0;
}

/* The health a backend of a service with check @kind starts with (hc.h). */
static uint8_t ctl_health_initial(uint8_t kind)
{
	return kind == CFG_CHECK_OFF ? CFG_HEALTH_UNCHECKED : CFG_HEALTH_UP;
}

/* Service slot @s's checks become @ck: its backends' health starts over if they go on or off. */
static void ctl_check_set(struct cfg *c, int s, const struct cfg_check *ck)
{
	struct cfg_service *svc = &c->services[s];
	bool was = svc->check.kind != CFG_CHECK_OFF, is = ck->kind != CFG_CHECK_OFF;

	svc->check = *ck;
	if (was == is)
		return;
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		struct cfg_backend *be = &c->backends[b];

		if (be->used && be->svc == s) {
			be->health = ctl_health_initial(ck->kind);
			be->health_ms = ctl_clock_ms();
		}
	}
	svc->bsel_dirty = true;
}

int ctl_cmd_service_set(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg_service *svc;
	int s, ret;

	if (argc < 3)
		return ctl_usage(x);
	s = ctl_service_get(x, argv[0]);
	if (s < 0)
		return s;
	svc = &x->c->services[s];
	for (int i = 1; i < argc; i += 2) {
		const char *key = argv[i];
		uint32_t secs;
		bool on;

		if (strcmp(key, "check") == 0) {
			struct cfg_check ck;

			/* "check" takes the rest of the line. */
			ret = ctl_check_parse(x, argc - i - 1, argv + i + 1, svc->proto, &ck);
			if (ret < 0)
				return ret;
			ctl_check_set(x->c, s, &ck);
			break;
		}
		if (i + 1 >= argc)
			return ctl_usage(x);
		if (strcmp(key, "sched") == 0) {
			ret = ctl_sched_parse(x, argv[i + 1], &svc->sched);
			if (ret < 0)
				return ret;
			svc->bsel_dirty = true;
		} else if (strcmp(key, "snat") == 0) {
			ret = ctl_snat_list(x, argv[i + 1], &svc->snat_all, &svc->snat_mask);
			if (ret < 0)
				return ret;
		} else if (strcmp(key, "tw-quarantine") == 0) {
			/* "default" (an extension) drops the override. */
			if (strcmp(argv[i + 1], "default") == 0) {
				svc->tw_quarantine = CFG_INHERIT;
				continue;
			}
			if (ctl_parse_u32(argv[i + 1], 0, CTL_MAX_SECONDS, &secs) < 0)
				return ctl_fail(x, -EINVAL, "%s: bad seconds (0-%u) or \"default\"",
						argv[i + 1], CTL_MAX_SECONDS);
			svc->tw_quarantine = (int32_t)secs;
		} else if (strcmp(key, "ts-rewrite") == 0 || strcmp(key, "tw-reuse") == 0) {
			int8_t *v = key[1] == 's' ? &svc->ts_rewrite : &svc->tw_reuse;

			/* "default" (an extension) drops the override. */
			if (strcmp(argv[i + 1], "default") == 0) {
				*v = CFG_INHERIT;
				continue;
			}
			if (ctl_parse_onoff(argv[i + 1], &on) < 0)
				return ctl_fail(x, -EINVAL, "%s: expected on, off or default",
						argv[i + 1]);
			*v = on;
		} else {
			return ctl_usage(x);
		}
	}
	return 0;
}

int ctl_cmd_service_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	int s;

	if (argc != 1)
		return ctl_usage(x);
	s = ctl_service_get(x, argv[0]);
	if (s < 0)
		return s;
	for (int b = 0; b < CFG_MAX_BACKENDS; b++)
		if (c->backends[b].used && c->backends[b].svc == s)
			memset(&c->backends[b], 0, sizeof(c->backends[b]));
	/* The copy holds its own reference to the table (cfg_clone). */
	bsel_table_unref(c->services[s].bsel);
	memset(&c->services[s], 0, sizeof(c->services[s]));
	return 0;
}

/* ---- backends ---- */

/* Resolve "SERVICE A.B.C.D:N"; stores the service slot and the address. */
static int ctl_backend_args(struct ctl_ctx *x, char **argv, int *svc, uint32_t *ip,
			    uint16_t *l4port)
{
	*svc = ctl_service_get(x, argv[0]);
	if (*svc < 0)
		return *svc;
	if (ctl_parse_ipport(argv[1], ip, l4port) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad address:port", argv[1]);
	if (!ctl_ip_unicast(*ip))
		return ctl_fail(x, -EINVAL, "%s: not a unicast host address", argv[1]);
	return 0;
}

static int ctl_backend_state_parse(struct ctl_ctx *x, const char *s, uint8_t *state)
{
	if (strcmp(s, "up") == 0)
		*state = CFG_BACKEND_UP;
	else if (strcmp(s, "drain") == 0)
		*state = CFG_BACKEND_DRAIN;
	else if (strcmp(s, "down") == 0)
		*state = CFG_BACKEND_DOWN;
	else
		return ctl_fail(x, -EINVAL, "%s: bad state (up, drain or down)", s);
	return 0;
}

static int ctl_weight_parse(struct ctl_ctx *x, const char *s, uint16_t *weight)
{
	uint32_t w;

	if (ctl_parse_u32(s, 0, 65535, &w) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad weight (0-65535)", s);
	*weight = (uint16_t)w;
	return 0;
}

/* Apply "weight W" / "state S" pairs to @be. */
static int ctl_backend_opts(struct ctl_ctx *x, int argc, char **argv, struct cfg_backend *be)
{
	static const char *const keys[] = { "weight", "state", NULL };
	const char *vals[3] = { NULL };
	int ret;

	ret = ctl_opts(x, argc, argv, keys, vals);
	if (ret < 0)
		return ret;
	if (vals[0] != NULL && (ret = ctl_weight_parse(x, vals[0], &be->weight)) < 0)
		return ret;
	if (vals[1] != NULL && (ret = ctl_backend_state_parse(x, vals[1], &be->state)) < 0)
		return ret;
	return 0;
}

int ctl_cmd_backend_add(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	struct cfg_backend be = { .used = true, .weight = 1, .state = CFG_BACKEND_UP };
	int svc, ret, slot = -1;

	if (argc < 2)
		return ctl_usage(x);
	ret = ctl_backend_args(x, argv, &svc, &be.ip, &be.l4port);
	if (ret < 0)
		return ret;
	ret = ctl_backend_opts(x, argc - 2, argv + 2, &be);
	if (ret < 0)
		return ret;
	if (cfg_backend_find(c, svc, be.ip, be.l4port) >= 0)
		return ctl_fail(x, -EEXIST, "%s exists in service \"%s\"", argv[1],
				c->services[svc].name);
	for (int b = 0; b < CFG_MAX_BACKENDS && slot < 0; b++)
		if (!c->backends[b].used)
			slot = b;
	if (slot < 0)
		return ctl_fail(x, -ENOSPC, "no room for more backends (%d)", CFG_MAX_BACKENDS);
	be.svc = (uint16_t)svc;
	be.gen = ctl_gen_next(c);
	be.health = ctl_health_initial(c->services[svc].check.kind);
	be.health_ms = ctl_clock_ms();
	c->backends[slot] = be;
	c->services[svc].bsel_dirty = true;
	return 0;
}

int ctl_cmd_backend_set(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	uint32_t ip = 0;
	uint16_t l4port = 0;
	int svc, b, ret;

	if (argc < 4)
		return ctl_usage(x);
	ret = ctl_backend_args(x, argv, &svc, &ip, &l4port);
	if (ret < 0)
		return ret;
	b = cfg_backend_find(c, svc, ip, l4port);
	if (b < 0)
		return ctl_fail(x, -ENOENT, "no backend %s in service \"%s\"", argv[1],
				c->services[svc].name);
	ret = ctl_backend_opts(x, argc - 2, argv + 2, &c->backends[b]);
	if (ret < 0)
		return ret;
	c->services[svc].bsel_dirty = true;
	return 0;
}

int ctl_cmd_backend_del(struct ctl_ctx *x, int argc, char **argv)
{
	struct cfg *c = x->c;
	uint32_t ip = 0;
	uint16_t l4port = 0;
	int svc, b, ret;

	if (argc != 2)
		return ctl_usage(x);
	ret = ctl_backend_args(x, argv, &svc, &ip, &l4port);
	if (ret < 0)
		return ret;
	b = cfg_backend_find(c, svc, ip, l4port);
	if (b < 0)
		return ctl_fail(x, -ENOENT, "no backend %s in service \"%s\"", argv[1],
				c->services[svc].name);
	/* Flows still pointing at the slot see the gen change and are reset. */
	memset(&c->backends[b], 0, sizeof(c->backends[b]));
	c->services[svc].bsel_dirty = true;
	return 0;
}

/* ---- global TCP/UDP behaviour ---- */

static int ctl_seconds(struct ctl_ctx *x, const char *s, uint32_t min, uint32_t *v)
{
	if (ctl_parse_u32(s, min, CTL_MAX_SECONDS, v) < 0)
		return ctl_fail(x, -EINVAL, "%s: bad seconds (%u-%u)", s, min, CTL_MAX_SECONDS);
	return 0;
}

int ctl_cmd_set_tcp(struct ctl_ctx *x, int argc, char **argv)
{
	static const char *const states[CFG_TCP_STATE_COUNT] = {
		[CFG_TCP_SYN] = "syn",
		[CFG_TCP_ESTABLISHED] = "established",
		[CFG_TCP_CLOSING] = "closing",
		[CFG_TCP_CLOSED] = "closed",
	};
	struct cfg_timeouts *to = &x->c->to;

	if (argc == 2 && strcmp(argv[0], "tw-quarantine") == 0)
		return ctl_seconds(x, argv[1], 0, &to->tw_quarantine);
	if (argc == 2 && (strcmp(argv[0], "ts-rewrite") == 0 || strcmp(argv[0], "tw-reuse") == 0)) {
		bool *v = argv[0][1] == 's' ? &to->ts_rewrite : &to->tw_reuse;

		if (ctl_parse_onoff(argv[1], v) < 0)
			return ctl_fail(x, -EINVAL, "%s: expected on or off", argv[1]);
		return 0;
	}
	if (argc == 3 && strcmp(argv[0], "timeout") == 0) {
		for (int s = 0; s < CFG_TCP_STATE_COUNT; s++)
			if (strcmp(argv[1], states[s]) == 0)
				return ctl_seconds(x, argv[2], 1, &to->tcp[s]);
		return ctl_fail(x, -EINVAL,
				"%s: unknown state (syn, established, closing or closed)", argv[1]);
	}
	return ctl_usage(x);
}

int ctl_cmd_set_udp(struct ctl_ctx *x, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[0], "timeout") != 0)
		return ctl_usage(x);
	return ctl_seconds(x, argv[1], 1, &x->c->to.udp);
}
