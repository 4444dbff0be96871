/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The telemetry commands, without the EAL and without DPDK's telemetry
 * thread: the test links with --wrap for rte_telemetry_register_cmd() and
 * the rte_tel_data_*() calls, so telemetry_init() hands the callbacks to
 * the test, and the data they build lands in a fake that keeps it readable
 * and applies DPDK 22.11's rules (key characters, 256 dict entries, what a
 * container may hold). A fake worker holds counters, so the values can be
 * checked against "show ... --json" and "clear stats".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <cmocka.h>
#include <rte_telemetry.h>

#include "cfg.h"
#include "ctl.h"
#include "ctl_env.h"
#include "stats.h"
#include "telemetry.h"
#include "worker.h"

/* ---- the fake telemetry data ---- */

enum fk_type {
	FK_NONE,
	FK_DICT,
	FK_ARRAY_STR,
	FK_U64,
	FK_STR,
	FK_CONT
};

struct fk;

struct fk_ent {
	char name[RTE_TEL_MAX_STRING_LEN];
	enum fk_type type;
	uint64_t u;
	char s[RTE_TEL_MAX_STRING_LEN];
	struct fk *child;
	int keep;
};

struct fk {
	enum fk_type type;
	unsigned int n;
	struct fk_ent e[RTE_TEL_MAX_ARRAY_ENTRIES];
};

int __wrap_rte_telemetry_register_cmd(const char *cmd, telemetry_cb fn, const char *help);
struct rte_tel_data *__wrap_rte_tel_data_alloc(void);
void __wrap_rte_tel_data_free(struct rte_tel_data *data);
int __wrap_rte_tel_data_start_dict(struct rte_tel_data *d);
int __wrap_rte_tel_data_start_array(struct rte_tel_data *d, enum rte_tel_value_type type);
int __wrap_rte_tel_data_add_dict_u64(struct rte_tel_data *d, const char *name, uint64_t val);
int __wrap_rte_tel_data_add_dict_int(struct rte_tel_data *d, const char *name, int val);
int __wrap_rte_tel_data_add_dict_string(struct rte_tel_data *d, const char *name, const char *val);
int __wrap_rte_tel_data_add_dict_container(struct rte_tel_data *d, const char *name,
					   struct rte_tel_data *val, int keep);
int __wrap_rte_tel_data_add_array_string(struct rte_tel_data *d, const char *str);

static unsigned int fk_live; /* allocated and not freed: leaks show here, not only in ASan */

static struct fk *fk_of(struct rte_tel_data *d)
{
	return (struct fk *)d;
}

struct rte_tel_data *__wrap_rte_tel_data_alloc(void)
{
	struct fk *f = calloc(1, sizeof(*f));

	if (f != NULL)
		fk_live++;
	return (struct rte_tel_data *)f;
}

static void fk_free_children(struct fk *f)
{
	for (unsigned int i = 0; i < f->n; i++)
		if (f->e[i].type == FK_CONT && !f->e[i].keep)
			__wrap_rte_tel_data_free((struct rte_tel_data *)f->e[i].child);
}

void __wrap_rte_tel_data_free(struct rte_tel_data *data)
{
	if (data == NULL)
		return;
	fk_free_children(fk_of(data));
	free(data);
	fk_live--;
}

int __wrap_rte_tel_data_start_dict(struct rte_tel_data *d)
{
	fk_of(d)->type = FK_DICT;
	fk_of(d)->n = 0;
	return 0;
}

int __wrap_rte_tel_data_start_array(struct rte_tel_data *d, enum rte_tel_value_type type)
{
	/* Sluice only uses string arrays. */
	assert_int_equal(type, RTE_TEL_STRING_VAL);
	fk_of(d)->type = FK_ARRAY_STR;
	fk_of(d)->n = 0;
	return 0;
}

/* DPDK 22.11's valid_name() and limits. */
static int fk_dict_slot(struct rte_tel_data *d, const char *name, struct fk_ent **e)
{
	struct fk *f = fk_of(d);

	if (f->type != FK_DICT)
		return -EINVAL;
	if (f->n >= RTE_TEL_MAX_DICT_ENTRIES)
		return -ENOSPC;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '/'))
			return -EINVAL;
	if (strlen(name) >= RTE_TEL_MAX_STRING_LEN)
		return E2BIG;
	*e = &f->e[f->n++];
	snprintf((*e)->name, sizeof((*e)->name), "%s", name);
	return 0;
}

int __wrap_rte_tel_data_add_dict_u64(struct rte_tel_data *d, const char *name, uint64_t val)
{
	struct fk_ent *e;
	int ret = fk_dict_slot(d, name, &e);

	if (ret == 0) {
		e->type = FK_U64;
		e->u = val;
	}
	return ret;
}

int __wrap_rte_tel_data_add_dict_int(struct rte_tel_data *d, const char *name, int val)
{
	return __wrap_rte_tel_data_add_dict_u64(d, name, (uint64_t)val);
}

int __wrap_rte_tel_data_add_dict_string(struct rte_tel_data *d, const char *name, const char *val)
{
	struct fk_ent *e;
	int ret = fk_dict_slot(d, name, &e);

	if (ret != 0)
		return ret;
	e->type = FK_STR;
	if (strlen(val) >= RTE_TEL_MAX_STRING_LEN)
		return E2BIG;
	snprintf(e->s, sizeof(e->s), "%s", val);
	return 0;
}

int __wrap_rte_tel_data_add_dict_container(struct rte_tel_data *d, const char *name,
					   struct rte_tel_data *val, int keep)
{
	struct fk_ent *e;
	int ret;

	/* 22.11: a dict holds dicts and arrays of values, never an array of containers. */
	if (fk_of(val)->type != FK_DICT && fk_of(val)->type != FK_ARRAY_STR)
		return -EINVAL;
	ret = fk_dict_slot(d, name, &e);
	if (ret != 0)
		return ret;
	e->type = FK_CONT;
	e->child = fk_of(val);
	e->keep = keep;
	return 0;
}

int __wrap_rte_tel_data_add_array_string(struct rte_tel_data *d, const char *str)
{
	struct fk *f = fk_of(d);

	if (f->type != FK_ARRAY_STR)
		return -EINVAL;
	if (f->n >= RTE_TEL_MAX_ARRAY_ENTRIES)
		return -ENOSPC;
	snprintf(f->e[f->n++].s, RTE_TEL_MAX_STRING_LEN, "%s", str);
	return 0;
}

/* The JSON DPDK prints for @f (no spaces; Sluice's strings need no escapes). */
static void fk_json(const struct fk *f, struct ctl_buf *b)
{
	ctl_printf(b, "%c", f->type == FK_DICT ? '{' : '[');
	for (unsigned int i = 0; i < f->n; i++) {
		const struct fk_ent *e = &f->e[i];

		ctl_printf(b, "%s", i ? "," : "");
		if (f->type == FK_DICT)
			ctl_printf(b, "\"%s\":", e->name);
		if (f->type == FK_ARRAY_STR || e->type == FK_STR)
			ctl_printf(b, "\"%s\"", e->s);
		else if (e->type == FK_U64)
			ctl_printf(b, "%" PRIu64, e->u);
		else
			fk_json(e->child, b);
	}
	ctl_printf(b, "%c", f->type == FK_DICT ? '}' : ']');
}

/* ---- the registered commands ---- */

#define NCMDS_MAX 16

static struct {
	char cmd[64];
	telemetry_cb fn;
	char help[RTE_TEL_MAX_STRING_LEN];
} cmds[NCMDS_MAX];
static unsigned int ncmds;

int __wrap_rte_telemetry_register_cmd(const char *cmd, telemetry_cb fn, const char *help)
{
	/* DPDK 22.11's checks. */
	if (strlen(cmd) >= 56 || fn == NULL || cmd[0] != '/' ||
	    strlen(help) >= RTE_TEL_MAX_STRING_LEN || ncmds >= NCMDS_MAX)
		return -EINVAL;
	for (const char *p = cmd; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '/'))
			return -EINVAL;
	snprintf(cmds[ncmds].cmd, sizeof(cmds[ncmds].cmd), "%s", cmd);
	snprintf(cmds[ncmds].help, sizeof(cmds[ncmds].help), "%s", help);
	cmds[ncmds++].fn = fn;
	return 0;
}

/* The reply of the last ask(), as DPDK keeps it: a dict on the stack. */
static struct fk reply;
static int reply_ret;

static void reply_clear(void)
{
	fk_free_children(&reply);
	memset(&reply, 0, sizeof(reply));
}

/* Run @cmd ("/sluice/x" or "/sluice/x,param") as DPDK's client handler does. */
static int ask(const char *line)
{
	char buf[128];
	const char *param = NULL;
	char *comma;

	snprintf(buf, sizeof(buf), "%s", line);
	comma = strchr(buf, ',');
	if (comma != NULL) {
		*comma = '\0';
		param = comma + 1;
	}
	reply_clear();
	for (unsigned int i = 0; i < ncmds; i++)
		if (strcmp(cmds[i].cmd, buf) == 0)
			return reply_ret = cmds[i].fn(buf, param, (struct rte_tel_data *)&reply);
	fail_msg("%s is not registered", buf);
	return -1;
}

static const struct fk_ent *get(const struct fk *f, const char *name)
{
	assert_int_equal(f->type, FK_DICT);
	for (unsigned int i = 0; i < f->n; i++)
		if (strcmp(f->e[i].name, name) == 0)
			return &f->e[i];
	fail_msg("no key \"%s\"", name);
	return NULL;
}

static uint64_t get_u64(const struct fk *f, const char *name)
{
	const struct fk_ent *e = get(f, name);

	assert_int_equal(e->type, FK_U64);
	return e->u;
}

static const char *get_str(const struct fk *f, const char *name)
{
	const struct fk_ent *e = get(f, name);

	assert_int_equal(e->type, FK_STR);
	return e->s;
}

static const struct fk *get_obj(const struct fk *f, const char *name)
{
	const struct fk_ent *e = get(f, name);

	assert_int_equal(e->type, FK_CONT);
	return e->child;
}

/* Item @i of a list reply. */
static const struct fk *item(const char *what, unsigned int i)
{
	char key[16];

	snprintf(key, sizeof(key), "%u", i);
	return get_obj(get_obj(&reply, what), key);
}

/* ---- set-up: the lab config and one fake worker ---- */

static struct worker *w;

/* `show WHAT --json` has "KEY":VALUE somewhere. */
static void show_has(const char *what, const char *key, uint64_t value)
{
	char want[96];

	assert_int_equal(ctl_exec(what, true, &out), 0);
	snprintf(want, sizeof(want), "\"%s\":%" PRIu64 ",", key, value);
	if (strstr(out.data, want) == NULL)
		fail_msg("%s --json lacks %s: %s", what, want, out.data);
}

static const char *const lab_conf[] = {
	"interface 0 name ext",
	"interface 1 name int",
	"addr add 198.18.0.1/24 dev ext",
	"addr add 198.19.0.1/24 dev int",
	"snat add 198.19.0.2 dev int",
	"snat add 198.19.0.3 ports 40000-40999 dev int",
	"service add web vip 198.18.0.100 port 80 proto tcp sched wrr",
	"backend add web 198.19.0.11:8080 weight 1",
	"backend add web 198.19.0.12:8080 weight 2",
	"service add echo vip 198.18.0.100 port 5353 proto udp sched rr",
	"backend add echo 198.19.0.11:5353",
};

static int setup(void **state)
{
	size_t size = (sizeof(*w) + 63) / 64 * 64;

	(void)state;
	if (ctl_env_ports("net_ring0", "net_ring1") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(lab_conf) / sizeof(lab_conf[0]); i++)
		ok(lab_conf[i]);
	w = aligned_alloc(64, size);
	if (w == NULL)
		return -1;
	memset(w, 0, size);
	w->lcore = 3;
	worker_list[0] = w;
	worker_count = 1;
	/* Earlier tests' baselines must not apply to this config's reused gens. */
	ok("clear stats");
	if (ncmds == 0 && telemetry_init() != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	reply_clear();
	worker_count = 0;
	worker_list[0] = NULL;
	free(w);
	ctl_buf_free(&out);
	return fk_live == 0 ? 0 : -1;
}

/* Backend @addr:@port's slot, and the gen a worker counts it under. */
static int backend_slot(const char *svc, const char *addr, uint16_t port)
{
	const struct cfg *c = cfg_current();
	struct in_addr a;
	int s = cfg_service_find(c, svc), b;

	assert_true(s >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &a), 1);
	b = cfg_backend_find(c, s, a.s_addr, htons(port));
	assert_true(b >= 0);
	return b;
}

/* ---- tests ---- */

static void every_command_is_registered_with_help(void **state)
{
	static const char *const want[] = { "/sluice/stats", "/sluice/drops", "/sluice/services",
					    "/sluice/backends", "/sluice/snat" };

	(void)state;
	assert_int_equal(ncmds, 5);
	for (size_t i = 0; i < 5; i++) {
		unsigned int j = 0;

		while (j < ncmds && strcmp(cmds[j].cmd, want[i]) != 0)
			j++;
		assert_true(j < ncmds);
		assert_true(strlen(cmds[j].help) > 0);
	}
}

static void stats_are_the_sums_show_stats_prints_since_clear(void **state)
{
	const struct fk *drops, *wk;

	(void)state;
	w->stats.flows_created = 7;
	w->stats.rx_packets = 100;
	w->stats.tx_packets = 90;
	w->stats.drops[STATS_DROP_NO_SERVICE] = 4;
	assert_int_equal(ask("/sluice/stats"), 0);
	assert_int_equal(get_u64(&reply, "flows_active"), 0);
	assert_int_equal(get_u64(&reply, "flows_created"), 7);
	assert_int_equal(get_u64(&reply, "rx_packets"), 100);
	assert_int_equal(get_u64(&reply, "tx_packets"), 90);
	assert_int_equal(get_u64(&reply, "drops_total"), 4);
	drops = get_obj(&reply, "drops");
	assert_int_equal(drops->n, STATS_DROP_COUNT);
	for (int r = 0; r < STATS_DROP_COUNT; r++)
		assert_int_equal(get_u64(drops, stats_drop_name((enum stats_drop)r)),
				 r == STATS_DROP_NO_SERVICE ? 4 : 0);
	wk = get_obj(get_obj(&reply, "workers"), "0");
	assert_int_equal(get_u64(wk, "lcore"), 3);
	assert_int_equal(get_u64(wk, "flows_created"), 7);
	show_has("show stats", "flows_created", 7);

	/* After "clear stats", both count from the baseline. */
	ok("clear stats");
	w->stats.flows_created += 5;
	w->stats.rx_packets += 1;
	assert_int_equal(ask("/sluice/stats"), 0);
	assert_int_equal(get_u64(&reply, "flows_created"), 5);
	assert_int_equal(get_u64(&reply, "rx_packets"), 1);
	assert_int_equal(get_u64(&reply, "drops_total"), 0);
	show_has("show stats", "flows_created", 5);
	show_has("show stats", "rx_packets", 1);
	assert_int_equal(ask("/sluice/drops"), 0);
	assert_int_equal(reply.n, STATS_DROP_COUNT);
	assert_int_equal(get_u64(&reply, "no_service"), 0);
}

static void backends_carry_the_contract_keys_in_show_order(void **state)
{
	const struct cfg *c = cfg_current();
	int b = backend_slot("web", "198.19.0.12", 8080);
	const struct fk *e;

	(void)state;
	w->be[b].gen = c->backends[b].gen;
	w->be[b].active = 2;
	w->be[b].total = 11;
	w->be[b].alloc_failures = 1;
	assert_int_equal(ask("/sluice/backends"), 0);
	assert_int_equal(get_u64(&reply, "count"), 3);
	assert_int_equal(get_u64(&reply, "shown"), 3);
	assert_int_equal(get_u64(&reply, "truncated"), 0);
	e = item("backends", 1);
	assert_string_equal(get_str(e, "service"), "web");
	assert_string_equal(get_str(e, "addr"), "198.19.0.12");
	assert_int_equal(get_u64(e, "port"), 8080);
	assert_int_equal(get_u64(e, "weight"), 2);
	assert_string_equal(get_str(e, "state"), "up");
	assert_string_equal(get_str(e, "health"), "unchecked");
	assert_int_equal(get_u64(e, "active_flows"), 2);
	assert_int_equal(get_u64(e, "total_flows"), 11);
	assert_int_equal(get_u64(e, "alloc_failures"), 1);
	/* The health checks' fields, as show backends has them. */
	assert_int_equal(get_u64(e, "checks_ok"), 0);
	assert_int_equal(get_u64(e, "checks_failed"), 0);
	assert_string_equal(get_str(e, "last_check"), "none");
	show_has("show backends web", "checks_ok", 0);
	show_has("show backends web", "total_flows", 11);
	assert_string_equal(get_str(item("backends", 2), "service"), "echo");

	/* The health the snapshot holds, and the baseline of "clear stats". */
	ok("clear stats");
	w->be[b].total += 3;
	((struct cfg *)c)->backends[b].health = CFG_HEALTH_DOWN;
	assert_int_equal(ask("/sluice/backends,web"), 0);
	assert_int_equal(get_u64(&reply, "count"), 2);
	e = item("backends", 1);
	assert_int_equal(get_u64(e, "total_flows"), 3);
	assert_int_equal(get_u64(e, "active_flows"), 2); /* a gauge: not cleared */
	assert_string_equal(get_str(e, "health"), "down");
	show_has("show backends web", "total_flows", 3);
	((struct cfg *)c)->backends[b].health = CFG_HEALTH_UNCHECKED;
}

static void services_and_snat_carry_the_contract_keys(void **state)
{
	const struct cfg *c = cfg_current();
	int s = cfg_service_find(c, "web"), n = cfg_snat_find(c, htonl(0xc6130003));
	const struct fk *e, *snat;

	(void)state;
	assert_true(s >= 0 && n >= 0);
	w->svc[s].gen = c->services[s].gen;
	w->svc[s].active = 1;
	w->svc[s].total = 9;
	w->snat[n].gen = c->snat[n].gen;
	w->snat[n].in_use = 1;
	w->snat[n].alloc_failures = 6;
	assert_int_equal(ask("/sluice/services"), 0);
	assert_int_equal(get_u64(&reply, "count"), 2);
	e = item("services", 0);
	assert_string_equal(get_str(e, "name"), "web");
	assert_string_equal(get_str(e, "vip"), "198.18.0.100");
	assert_int_equal(get_u64(e, "port"), 80);
	assert_string_equal(get_str(e, "proto"), "tcp");
	assert_string_equal(get_str(e, "sched"), "wrr");
	assert_int_equal(get_u64(e, "backends"), 2);
	assert_int_equal(get_u64(e, "active_flows"), 1);
	assert_int_equal(get_u64(e, "total_flows"), 9);
	assert_int_equal(get_u64(e, "snat_all"), 1);
	assert_int_equal(get_u64(e, "tw_quarantine"), 60);
	snat = get_obj(e, "snat");
	assert_int_equal(snat->type, FK_ARRAY_STR);
	assert_int_equal(snat->n, 2);
	assert_string_equal(snat->e[1].s, "198.19.0.3");
	show_has("show services web", "total_flows", 9);

	assert_int_equal(ask("/sluice/snat"), 0);
	assert_int_equal(get_u64(&reply, "count"), 2);
	e = item("snat", 1);
	assert_string_equal(get_str(e, "addr"), "198.19.0.3");
	assert_string_equal(get_str(e, "ports"), "40000-40999");
	assert_int_equal(get_u64(e, "in_use"), 1);
	assert_int_equal(get_u64(e, "quarantined"), 0);
	assert_int_equal(get_u64(e, "alloc_failures"), 6);
	show_has("show snat", "alloc_failures", 6);
}

static void bad_params_answer_null(void **state)
{
	(void)state;
	assert_true(ask("/sluice/backends,nosuch") < 0);
	assert_true(ask("/sluice/services,nosuch") < 0);
	assert_true(ask("/sluice/stats,x") < 0);
	assert_true(ask("/sluice/snat,x") < 0);
	/* A bare comma is no parameter. */
	assert_int_equal(ask("/sluice/stats,"), 0);
	assert_int_equal(ask("/sluice/services,echo"), 0);
	assert_int_equal(get_u64(&reply, "count"), 1);
}

static void many_backends_are_cut_to_fit_16k_and_say_so(void **state)
{
	struct ctl_buf json = { 0 };
	char line[96];
	uint64_t shown;

	(void)state;
	ok("service add a_long_service_name_of_31_chars vip 198.18.0.101 port 80 proto tcp");
	for (int i = 0; i < 300; i++) {
		snprintf(line, sizeof(line),
			 "backend add a_long_service_name_of_31_chars 198.19.%d.%d:65535 weight "
			 "65535",
			 1 + i / 200, 1 + i % 200);
		ok(line);
	}
	assert_int_equal(ask("/sluice/backends"), 0);
	shown = get_u64(&reply, "shown");
	assert_int_equal(get_u64(&reply, "count"), 303);
	assert_int_equal(get_u64(&reply, "truncated"), 1);
	assert_true(shown >= 50 && shown < 303);
	assert_int_equal(get_obj(&reply, "backends")->n, shown);
	/* Keys 0..shown-1, in show order. */
	assert_string_equal(get_str(item("backends", 0), "service"), "web");
	assert_string_equal(get_str(item("backends", (unsigned int)shown - 1), "service"),
			    "a_long_service_name_of_31_chars");
	/* What DPDK would write: the whole reply within its 16 KB buffer, NUL included. */
	ctl_printf(&json, "{\"/sluice/backends\":");
	fk_json(&reply, &json);
	ctl_printf(&json, "}");
	assert_true(json.len < 16 * 1024);
	/* Not wasteful either: one more entry (about 230 bytes) would not have fit. */
	assert_true(json.len + 230 > 16 * 1024 - 128 - 96);
	ctl_buf_free(&json);
	/* One service's list is short enough again. */
	assert_int_equal(ask("/sluice/backends,web"), 0);
	assert_int_equal(get_u64(&reply, "truncated"), 0);
}

/* ---- the control lock ---- */

static void *ask_stats(void *arg)
{
	(void)arg;
	ask("/sluice/stats");
	return NULL;
}

static void callbacks_wait_for_the_control_lock(void **state)
{
	struct timespec ms50 = { .tv_nsec = 50 * 1000 * 1000 };
	pthread_t t;

	(void)state;
	reply_ret = 1;
	ctl_lock();
	assert_int_equal(pthread_create(&t, NULL, ask_stats, NULL), 0);
	nanosleep(&ms50, NULL);
	/* Still waiting: ask() sets reply_ret only once the callback returned. */
	assert_int_equal(reply_ret, 1);
	ctl_unlock();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(reply_ret, 0);
	/* Recursive: a holder may still run commands. */
	ctl_lock();
	ok("clear stats");
	ctl_unlock();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(every_command_is_registered_with_help),
		T(stats_are_the_sums_show_stats_prints_since_clear),
		T(backends_carry_the_contract_keys_in_show_order),
		T(services_and_snat_carry_the_contract_keys),
		T(bad_params_answer_null),
		T(many_backends_are_cut_to_fit_16k_and_say_so),
		T(callbacks_wait_for_the_control_lock),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
