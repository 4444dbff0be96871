/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_rcu_qsbr.h>

#include "bsel.h"
#include "cfg.h"
#include "kmap.h"

struct rte_rcu_qsbr *cfg_rcu;
static struct cfg *cfg_cur;

struct cfg *cfg_new(void)
{
	struct cfg *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	/* RFC 5382 REQ-5: established >= 2 h 4 min; transitory >= 4 min. */
	c->to.tcp[CFG_TCP_SYN] = 30;
	c->to.tcp[CFG_TCP_ESTABLISHED] = 7440;
	c->to.tcp[CFG_TCP_CLOSING] = 240;
	c->to.tcp[CFG_TCP_CLOSED] = 10;
	c->to.udp = 300;
	c->to.tw_quarantine = CFG_DEFAULT_TW_QUARANTINE;
	c->to.ts_rewrite = true;
	c->to.tw_reuse = false;
	c->next_gen = 1;
	if (cfg_derive(c) < 0) {
		cfg_free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

int cfg_init(uint16_t nports, const char *const devs[], const struct rte_ether_addr macs[])
{
	struct cfg *c = cfg_new();

	if (c == NULL)
		return -ENOMEM;
	if (nports > CFG_MAX_PORTS)
		nports = CFG_MAX_PORTS;
	for (uint16_t p = 0; p < nports; p++) {
		c->ports[p].present = true;
		snprintf(c->ports[p].dev, sizeof(c->ports[p].dev), "%s", devs[p]);
		c->ports[p].mac = macs[p];
	}
	c->nports = nports;
	cfg_publish(c);
	return 0;
}

static void cfg_free_derived(struct cfg *c)
{
	kmap_free(c->local);
	kmap_free(c->svcmap);
	kmap_free(c->neighmap);
	free(c->fib);
	c->local = c->svcmap = c->neighmap = NULL;
	c->fib = NULL;
	c->nfib = 0;
}

struct cfg *cfg_clone(const struct cfg *src)
{
	struct cfg *c = malloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	memcpy(c, src, sizeof(*c));
	c->gen = 0; /* unpublished: it may change until cfg_publish() */
	c->local = c->svcmap = c->neighmap = NULL;
	c->fib = NULL;
	c->nfib = 0;
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		bsel_table_ref(c->services[s].bsel);
	return c;
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	cfg_free_derived(c);
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		bsel_table_unref(c->services[s].bsel);
	free(c);
}

static uint32_t cfg_mask(uint8_t plen)
{
	return plen == 0 ? 0 : rte_cpu_to_be_32(~0u << (32 - plen));
}

static int cfg_route_cmp(const void *a, const void *b)
{
	const struct cfg_route *ra = a, *rb = b;

	if (ra->plen != rb->plen)
		return rb->plen - ra->plen;
	/* Connected routes win over static ones of the same prefix. */
	return (int)rb->connected - (int)ra->connected;
}

static int cfg_derive_fib(struct cfg *c)
{
	uint16_t n = 0;

	c->fib = calloc((size_t)c->naddrs + c->nroutes + 1, sizeof(c->fib[0]));
	if (c->fib == NULL)
		return -ENOMEM;
	for (uint16_t i = 0; i < c->naddrs; i++) {
		struct cfg_route *r = &c->fib[n++];

		r->plen = c->addrs[i].plen;
		r->prefix = c->addrs[i].ip & cfg_mask(r->plen);
		r->port = c->addrs[i].port;
		r->connected = true;
	}
	for (uint16_t i = 0; i < c->nroutes; i++)
		c->fib[n++] = c->routes[i];
	qsort(c->fib, n, sizeof(c->fib[0]), cfg_route_cmp);
	c->nfib = n;
	return 0;
}

static int cfg_local_add(struct kmap *m, uint32_t ip, uint32_t bits)
{
	uint32_t v = 0;

	kmap_get(m, ip, &v);
	return kmap_put(m, ip, v | bits);
}

int cfg_derive(struct cfg *c)
{
	int rc = -ENOMEM;

	cfg_free_derived(c);
	c->local = kmap_create(CFG_MAX_ADDRS + CFG_MAX_SERVICES + CFG_MAX_SNAT);
	c->svcmap = kmap_create(CFG_MAX_SERVICES);
	c->neighmap = kmap_create(CFG_MAX_NEIGH);
	if (c->local == NULL || c->svcmap == NULL || c->neighmap == NULL)
		goto fail;
	if ((rc = cfg_derive_fib(c)) < 0)
		goto fail;
	for (uint16_t i = 0; i < c->naddrs; i++)
		if ((rc = cfg_local_add(c->local, c->addrs[i].ip, CFG_LOCAL_OWN)) < 0)
			goto fail;
	for (uint32_t i = 0; i < CFG_MAX_SNAT; i++)
		if (c->snat[i].used &&
		    (rc = cfg_local_add(c->local, c->snat[i].ip, CFG_LOCAL_SNAT | (i << 8))) < 0)
			goto fail;
	for (uint16_t i = 0; i < c->nneigh; i++)
		if ((rc = kmap_put(c->neighmap, ((uint64_t)c->neigh[i].port << 32) | c->neigh[i].ip,
				   i)) < 0)
			goto fail;
	for (uint32_t s = 0; s < CFG_MAX_SERVICES; s++) {
		struct cfg_service *svc = &c->services[s];

		if (!svc->used) {
			bsel_table_unref(svc->bsel);
			svc->bsel = NULL;
			continue;
		}
		if ((rc = cfg_local_add(c->local, svc->vip, CFG_LOCAL_VIP)) < 0 ||
		    (rc = kmap_put(c->svcmap, cfg_svc_key(svc->vip, svc->l4port, svc->proto), s)) <
			    0)
			goto fail;
		if (svc->bsel == NULL || svc->bsel_dirty) {
			struct bsel_table *t = bsel_table_build(c, (int)s);

			if (t == NULL) {
				rc = -ENOMEM;
				goto fail;
			}
			bsel_table_unref(svc->bsel);
			svc->bsel = t;
			svc->bsel_dirty = false;
		}
	}
	return 0;
fail:
	cfg_free_derived(c);
	return rc;
}

struct cfg *cfg_current(void)
{
	return __atomic_load_n(&cfg_cur, __ATOMIC_ACQUIRE);
}

void cfg_publish(struct cfg *c)
{
	struct cfg *old = cfg_cur;

	c->gen = old != NULL ? old->gen + 1 : 1;
	__atomic_store_n(&cfg_cur, c, __ATOMIC_RELEASE);
	if (old == NULL)
		return;
	/* Workers that may still hold @old report a quiescent state first. */
	if (cfg_rcu != NULL)
		rte_rcu_qsbr_synchronize(cfg_rcu, RTE_QSBR_THRID_INVALID);
	cfg_free(old);
}

int cfg_service_find(const struct cfg *c, const char *name)
{
	for (int s = 0; s < CFG_MAX_SERVICES; s++)
		if (c->services[s].used && strcmp(c->services[s].name, name) == 0)
			return s;
	return -1;
}

int cfg_backend_find(const struct cfg *c, int svc, uint32_t ip, uint16_t l4port)
{
	for (int b = 0; b < CFG_MAX_BACKENDS; b++) {
		const struct cfg_backend *be = &c->backends[b];

		if (be->used && be->svc == svc && be->ip == ip && be->l4port == l4port)
			return b;
	}
	return -1;
}

int cfg_snat_find(const struct cfg *c, uint32_t ip)
{
	for (int i = 0; i < CFG_MAX_SNAT; i++)
		if (c->snat[i].used && c->snat[i].ip == ip)
			return i;
	return -1;
}

int cfg_port_find(const struct cfg *c, const char *dev)
{
	char *end;
	unsigned long id;

	for (int p = 0; p < CFG_MAX_PORTS; p++)
		if (c->ports[p].present && c->ports[p].name[0] != '\0' &&
		    strcmp(c->ports[p].name, dev) == 0)
			return p;
	id = strtoul(dev, &end, 10);
	if (*dev != '\0' && *end == '\0')
		return id < CFG_MAX_PORTS && c->ports[id].present ? (int)id : -1;
	for (int p = 0; p < CFG_MAX_PORTS; p++)
		if (c->ports[p].present && strcmp(c->ports[p].dev, dev) == 0)
			return p;
	return -1;
}

int cfg_route_lookup(const struct cfg *c, uint32_t dst, uint16_t *port, uint32_t *nexthop)
{
	/* Longest prefix first: the first match wins. Few routes, and only
	 * looked up when a flow is created, never per packet. */
	for (uint16_t i = 0; i < c->nfib; i++) {
		const struct cfg_route *r = &c->fib[i];

		if ((dst & cfg_mask(r->plen)) == r->prefix) {
			*port = r->port;
			*nexthop = r->gw != 0 ? r->gw : dst;
			return 0;
		}
	}
	return -ENETUNREACH;
}

uint32_t cfg_port_addr(const struct cfg *c, uint16_t port, uint32_t near)
{
	uint32_t any = 0;

	for (uint16_t i = 0; i < c->naddrs; i++) {
		const struct cfg_addr *a = &c->addrs[i];

		if (a->port != port)
			continue;
		if (((a->ip ^ near) & cfg_mask(a->plen)) == 0)
			return a->ip;
		if (any == 0)
			any = a->ip;
	}
	for (int i = 0; any == 0 && i < CFG_MAX_SNAT; i++)
		if (c->snat[i].used && c->snat[i].port == port)
			any = c->snat[i].ip;
	return any;
}

const char *cfg_sched_name(uint8_t sched)
{
	static const char *const names[] = { "maglev", "wrr", "rr", "lc" };

	return sched < 4 ? names[sched] : "?";
}

const char *cfg_backend_state_name(uint8_t state)
{
	static const char *const names[] = { "up", "drain", "down" };

	return state < 3 ? names[state] : "?";
}

const char *cfg_health_name(uint8_t health)
{
	static const char *const names[] = { "unchecked", "up", "down" };

	return health < 3 ? names[health] : "?";
}

const char *cfg_tcp_state_name(uint8_t state)
{
	static const char *const names[] = { "syn", "established", "closing", "closed", "udp" };

	return state < 5 ? names[state] : "?";
}
