/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The telemetry commands (telemetry.h): ctl_view.h's values put into DPDK
 * telemetry containers.
 *
 * A reply that does not fit DPDK's output buffer is not refused by DPDK: it
 * silently leaves out whatever does not fit. So every container here keeps
 * count of the bytes of JSON DPDK 22.11 will print for it (telemetry_json.h:
 * no spaces, strings escaped), and a list entry that would push the reply
 * past TEL_BUDGET is left out on purpose, and said to be.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <rte_telemetry.h>

#include "cfg.h"
#include "ctl.h"
#include "ctl_view.h"
#include "stats.h"
#include "telemetry.h"

/*
 * DPDK 22.11 writes a reply into 16 KB, "{\"CMD\":" and "}" included (the
 * command name is under 56 bytes); the rest is for our JSON. Kept well
 * clear of the edge: DPDK also needs a NUL in every intermediate buffer.
 */
#define TEL_OUTPUT_SIZE (16 * 1024)
#define TEL_BUDGET	(TEL_OUTPUT_SIZE - 128)
/* Room a list reply keeps for its own keys: count, shown, truncated. */
#define TEL_LIST_KEYS	96

/* A container being filled, and the size of the JSON DPDK will print for it. */
struct tel_box {
	struct rte_tel_data *d;
	size_t size;	    /* bytes: "{}" or "[]" and every entry */
	unsigned int count; /* entries */
	int err;	    /* first failure, 0 if none */
};

/* Bytes of @s as DPDK prints it: quoted; " backslash LF CR tab escaped; other controls dropped. */
static size_t tel_json_str_size(const char *s)
{
	size_t n = 2;

	for (; *s != '\0'; s++) {
		if (strchr("\"\\\n\r\t", *s) != NULL)
			n += 2;
		else if ((unsigned char)*s >= 0x20)
			n++;
	}
	return n;
}

static size_t tel_u64_size(uint64_t v)
{
	char buf[24];

	return (size_t)snprintf(buf, sizeof(buf), "%" PRIu64, v);
}

static void tel_box_start(struct tel_box *b, struct rte_tel_data *d)
{
	*b = (struct tel_box){ .d = d, .size = 2 };
	rte_tel_data_start_dict(d);
}

/* A fresh dict to nest; on failure @b->d is NULL and @b->err -ENOMEM. */
static void tel_box_new(struct tel_box *b)
{
	struct rte_tel_data *d = rte_tel_data_alloc();

	if (d == NULL) {
		*b = (struct tel_box){ .err = -ENOMEM };
		return;
	}
	tel_box_start(b, d);
}

/* One more entry of @vsize bytes added to @b by a DPDK call that returned @ret. */
static void tel_box_added(struct tel_box *b, const char *name, size_t vsize, int ret)
{
	if (ret != 0) {
		/* Names and values here are short and valid: a bug. It fails @b (a
		 * list leaves @b out, a reply answers null). */
		if (b->err == 0)
			b->err = ret < 0 ? ret : -E2BIG;
		return;
	}
	b->size += (b->count != 0) + (name != NULL ? strlen(name) + 3 : 0) + vsize;
	b->count++;
}

static void tel_u64(struct tel_box *b, const char *name, uint64_t v)
{
	tel_box_added(b, name, tel_u64_size(v), rte_tel_data_add_dict_u64(b->d, name, v));
}

static void tel_str(struct tel_box *b, const char *name, const char *s)
{
	tel_box_added(b, name, tel_json_str_size(s), rte_tel_data_add_dict_string(b->d, name, s));
}

/*
 * Nest @sub in @b as @name if @b stays within @budget bytes. Returns 0,
 * -ENOSPC if it would not fit (or @b has RTE_TEL_MAX_DICT_ENTRIES), or
 * @sub's own failure, which leaves @sub out but does not fail @b. @sub is
 * @b's or freed either way.
 */
static int tel_put(struct tel_box *b, const char *name, struct tel_box *sub, size_t budget)
{
	size_t size = b->size + (b->count != 0) + strlen(name) + 3 + sub->size;
	int ret;

	if (sub->err != 0 || size > budget) {
		rte_tel_data_free(sub->d);
		return sub->err != 0 ? sub->err : -ENOSPC;
	}
	ret = rte_tel_data_add_dict_container(b->d, name, sub->d, 0);
	if (ret < 0)
		rte_tel_data_free(sub->d);
	/* Past RTE_TEL_MAX_DICT_ENTRIES is a full list, not a broken reply. */
	if (ret == -ENOSPC)
		return ret;
	tel_box_added(b, name, sub->size, ret);
	return ret;
}

/*
 * A list reply: {"count", "shown", "truncated", @what: {"0": ..., ...}}. For
 * each entry there is, tel_list_next() says whether to build it; a built
 * one goes in with tel_list_put(); tel_list_end() closes the reply. An entry
 * that could not be built (out of memory) is left out, and counted as not
 * shown, like one that did not fit.
 */
struct tel_list {
	struct tel_box top, items;
	const char *what;
	uint64_t count; /* entries there are */
	bool full;	/* one did not fit: no more are built */
};

static void tel_list_start(struct tel_list *l, struct rte_tel_data *d, const char *what)
{
	tel_box_start(&l->top, d);
	tel_box_new(&l->items);
	l->what = what;
	l->count = 0;
	l->full = l->items.d == NULL;
}

static bool tel_list_next(struct tel_list *l)
{
	l->count++;
	return !l->full;
}

static void tel_list_put(struct tel_list *l, struct tel_box *entry)
{
	char key[16];

	snprintf(key, sizeof(key), "%u", l->items.count);
	if (tel_put(&l->items, key, entry, TEL_BUDGET - TEL_LIST_KEYS - l->top.size) == -ENOSPC)
		l->full = true;
}

/* 0, or the failure of the reply's own keys (a bug: DPDK refused a name). */
static int tel_list_end(struct tel_list *l)
{
	tel_u64(&l->top, "count", l->count);
	tel_u64(&l->top, "shown", l->items.count);
	tel_u64(&l->top, "truncated", l->items.count < l->count);
	if (l->items.d != NULL)
		tel_put(&l->top, l->what, &l->items, TEL_BUDGET);
	return l->top.err;
}

/* ---- the commands; each runs with the control lock held ---- */

static int tel_stats(const struct cfg *c, const char *params, struct rte_tel_data *d)
{
	struct ctl_view_stats v;
	struct tel_box top, drops, workers;

	(void)c;
	if (params != NULL)
		return -EINVAL;
	ctl_view_stats(&v);
	tel_box_start(&top, d);
	tel_u64(&top, "flows_active", v.flows_active);
#define TEL_COUNTER(name) tel_u64(&top, #name, v.sum.name);
	STATS_LCORE_COUNTERS(TEL_COUNTER)
#undef TEL_COUNTER
	tel_u64(&top, "drops_total", v.drops_total);
	tel_box_new(&drops);
	for (int r = 0; r < STATS_DROP_COUNT && drops.d != NULL; r++)
		tel_u64(&drops, stats_drop_name((enum stats_drop)r), v.sum.drops[r]);
	tel_put(&top, "drops", &drops, TEL_BUDGET);
	tel_box_new(&workers);
	for (uint16_t i = 0; i < v.nworkers && workers.d != NULL; i++) {
		const struct ctl_view_worker *w = &v.w[i];
		struct tel_box e;
		char key[8];

		tel_box_new(&e);
		if (e.d != NULL) {
			tel_u64(&e, "lcore", w->lcore);
			tel_u64(&e, "rx_packets", w->net.rx_packets);
			tel_u64(&e, "tx_packets", w->net.tx_packets);
			tel_u64(&e, "flows_created", w->net.flows_created);
			tel_u64(&e, "flows_active", w->flows_active);
			tel_u64(&e, "flows_expired", w->net.flows_expired);
			tel_u64(&e, "flows_closed", w->net.flows_closed);
		}
		snprintf(key, sizeof(key), "%u", i);
		/* At most 16 workers of about 150 bytes: they always fit. */
		tel_put(&workers, key, &e, TEL_BUDGET);
	}
	tel_put(&top, "workers", &workers, TEL_BUDGET);
	return top.err;
}

static int tel_drops(const struct cfg *c, const char *params, struct rte_tel_data *d)
{
	struct ctl_view_stats v;
	struct tel_box top;

	(void)c;
	if (params != NULL)
		return -EINVAL;
	ctl_view_stats(&v);
	tel_box_start(&top, d);
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		tel_u64(&top, stats_drop_name((enum stats_drop)r), v.sum.drops[r]);
	return top.err;
}

/* A ctl_view_out into a tel_box: flags become 0 or 1, addresses a string array. */
static void tel_out_u64(void *sink, const char *key, uint64_t val)
{
	tel_u64(sink, key, val);
}

static void tel_out_str(void *sink, const char *key, const char *val)
{
	tel_str(sink, key, val);
}

static void tel_out_flag(void *sink, const char *key, bool val)
{
	tel_u64(sink, key, val);
}

static void tel_out_addrs(void *sink, const char *key, const char (*addr)[CTL_ADDR_SIZE],
			  unsigned int n)
{
	struct tel_box *e = sink;
	struct rte_tel_data *a = rte_tel_data_alloc();
	struct tel_box arr = { .d = a, .size = 2 };

	if (a == NULL) {
		e->err = -ENOMEM;
		return;
	}
	rte_tel_data_start_array(a, RTE_TEL_STRING_VAL);
	for (unsigned int i = 0; i < n; i++)
		tel_box_added(&arr, NULL, tel_json_str_size(addr[i]),
			      rte_tel_data_add_array_string(a, addr[i]));
	tel_put(e, key, &arr, TEL_BUDGET);
}

static const struct ctl_view_out *tel_out(struct ctl_view_out *o, struct tel_box *e)
{
	*o = (struct ctl_view_out){ tel_out_u64, tel_out_str, tel_out_flag, tel_out_addrs, e };
	return o;
}

static int tel_services(const struct cfg *c, const char *params, struct rte_tel_data *d)
{
	struct tel_list l;
	int only = -1;

	if (params != NULL && (only = cfg_service_find(c, params)) < 0)
		return -ENOENT;
	tel_list_start(&l, d, "services");
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		struct ctl_view_service v;
		struct ctl_view_out o;
		struct tel_box e;

		if (!c->services[s].used || (only >= 0 && s != only))
			continue;
		if (!tel_list_next(&l))
			continue;
		tel_box_new(&e);
		if (e.d != NULL) {
			ctl_view_service(c, s, &v);
			ctl_view_service_put(&v, tel_out(&o, &e));
		}
		tel_list_put(&l, &e);
	}
	return tel_list_end(&l);
}

static int tel_backends(const struct cfg *c, const char *params, struct rte_tel_data *d)
{
	struct tel_list l;
	int only = -1;

	if (params != NULL && (only = cfg_service_find(c, params)) < 0)
		return -ENOENT;
	tel_list_start(&l, d, "backends");
	for (int b = ctl_view_backend_next(c, only, -1); b >= 0;
	     b = ctl_view_backend_next(c, only, b)) {
		struct ctl_view_backend v;
		struct ctl_view_out o;
		struct tel_box e;

		if (!tel_list_next(&l))
			continue;
		tel_box_new(&e);
		if (e.d != NULL) {
			ctl_view_backend(c, b, &v);
			ctl_view_backend_put(&v, tel_out(&o, &e));
		}
		tel_list_put(&l, &e);
	}
	return tel_list_end(&l);
}

static int tel_snat(const struct cfg *c, const char *params, struct rte_tel_data *d)
{
	struct tel_list l;

	if (params != NULL)
		return -EINVAL;
	tel_list_start(&l, d, "snat");
	for (int n = 0; n < CFG_MAX_SNAT; n++) {
		struct ctl_view_snat v;
		struct ctl_view_out o;
		struct tel_box e;

		if (!c->snat[n].used)
			continue;
		if (!tel_list_next(&l))
			continue;
		tel_box_new(&e);
		if (e.d != NULL) {
			ctl_view_snat(c, n, &v);
			ctl_view_snat_put(&v, tel_out(&o, &e));
		}
		tel_list_put(&l, &e);
	}
	return tel_list_end(&l);
}

/* ---- registration ---- */

static const struct tel_cmd {
	const char *name;
	int (*fn)(const struct cfg *c, const char *params, struct rte_tel_data *d);
	const char *help;
} tel_cmds[] = {
	{ "/sluice/stats", tel_stats,
	  "Sluice counters since clear stats, as show stats. No params" },
	{ "/sluice/drops", tel_drops, "Sluice drops by reason, as show drops. No params" },
	{ "/sluice/services", tel_services,
	  "Sluice services, as show services. Params: service name (optional)" },
	{ "/sluice/backends", tel_backends,
	  "Sluice backends, as show backends. Params: service name (optional)" },
	{ "/sluice/snat", tel_snat, "Sluice SNAT addresses, as show snat. No params" },
};

#define TEL_NCMDS (sizeof(tel_cmds) / sizeof(tel_cmds[0]))

/* The one callback: every command reads under the control lock. */
static int tel_callback(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct cfg *c;
	int ret = -ENOENT;

	/* DPDK passes NULL without a ',' but "" after a bare one. */
	if (params != NULL && params[0] == '\0')
		params = NULL;
	for (size_t i = 0; i < TEL_NCMDS; i++) {
		if (strcmp(cmd, tel_cmds[i].name) != 0)
			continue;
		ctl_lock();
		c = cfg_current();
		ret = c != NULL ? tel_cmds[i].fn(c, params, d) : -EAGAIN;
		ctl_unlock();
		break;
	}
	return ret;
}

int telemetry_init(void)
{
	for (size_t i = 0; i < TEL_NCMDS; i++) {
		int ret = rte_telemetry_register_cmd(tel_cmds[i].name, tel_callback,
						     tel_cmds[i].help);

		if (ret < 0)
			return ret;
	}
	return 0;
}
