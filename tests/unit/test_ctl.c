/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command language, without the EAL: every command of the contract in a
 * good form is accepted and lands in the published snapshot; every bad form
 * is refused with a reason and leaves the snapshot untouched (same pointer,
 * same "show --json" output); the config file reports FILE:LINE; the socket
 * answers requests and drops garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "bsel.h"
#include "cfg.h"
#include "ctl.h"
#include "ctl_env.h"
#include "ctl_priv.h"
#include "ctl_proto.h"
#include "stats.h"

static char reason[CTL_REQ_MAX]; /* of the last refusal */

static int run(const char *line)
{
	return ctl_exec(line, false, &out);
}

static int run_json(const char *line)
{
	return ctl_exec(line, true, &out);
}

/* Everything a refused command must leave as it was, as the user sees it. */
static char *snapshot_text(void)
{
	static const char *const shows[] = {
		"show interfaces", "show addrs",    "show routes", "show neigh",
		"show services",   "show backends", "show snat",   "show settings",
	};
	struct ctl_buf all = { 0 };

	for (size_t i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
		assert_int_equal(run_json(shows[i]), 0);
		ctl_printf(&all, "%s\n", out.data);
	}
	return all.data;
}

/* @line is refused with @err, a one-line reason, and nothing changes. */
static void refused(const char *line, int err)
{
	struct cfg *before = cfg_current();
	char *text = snapshot_text();
	char *after;
	int ret;

	ret = run(line);
	if (ret != err)
		fail_msg("\"%s\": expected %d, got %d (%s)", line, err, ret,
			 out.data ? out.data : "");
	assert_non_null(out.data);
	assert_true(out.len > 0);
	assert_null(strchr(out.data, '\n'));
	snprintf(reason, sizeof(reason), "%s", out.data);
	assert_ptr_equal(cfg_current(), before);
	after = snapshot_text();
	assert_string_equal(text, after);
	free(text);
	free(after);
}

/* @line is refused and the reason contains @what. */
static void refused_with(const char *line, int err, const char *what)
{
	refused(line, err);
	if (strstr(reason, what) == NULL)
		fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", line, reason, what);
}

static const char *const lab_conf[] = {
	"interface 0 name ext",
	"interface 1 name int",
	"addr add 198.18.0.1/24 dev ext",
	"addr add 198.19.0.1/24 dev int",
	"snat add 198.19.0.2 dev int",
	"snat add 198.19.0.3 dev int",
	"service add web vip 198.18.0.100 port 80 proto tcp sched wrr",
	"backend add web 198.19.0.11:8080 weight 1",
	"backend add web 198.19.0.12:8080 weight 2",
	"backend add web 198.19.0.13:8080 weight 3",
	"service add echo vip 198.18.0.100 port 5353 proto udp sched rr",
	"backend add echo 198.19.0.11:5353",
	"backend add echo 198.19.0.12:5353",
	"backend add echo 198.19.0.13:5353",
};

static void lab(void)
{
	for (size_t i = 0; i < sizeof(lab_conf) / sizeof(lab_conf[0]); i++)
		ok(lab_conf[i]);
}

static int setup(void **state)
{
	(void)state;
	return ctl_env_ports("net_ring0", "net_ring1");
}

static int teardown(void **state)
{
	(void)state;
	ctl_buf_free(&out);
	return 0;
}

/* ---- good forms ---- */

static void lab_config_is_accepted_and_published(void **state)
{
	const struct cfg *c;
	int web, b;

	(void)state;
	lab();
	c = cfg_current();
	assert_string_equal(c->ports[0].name, "ext");
	assert_int_equal(c->naddrs, 2);
	web = cfg_service_find(c, "web");
	assert_true(web >= 0);
	assert_int_equal(c->services[web].vip, ip4("198.18.0.100"));
	assert_int_equal(c->services[web].l4port, htons(80));
	assert_int_equal(c->services[web].proto, IPPROTO_TCP);
	assert_int_equal(c->services[web].sched, CFG_SCHED_WRR);
	assert_true(c->services[web].snat_all);
	assert_int_not_equal(c->services[web].gen, 0);
	b = cfg_backend_find(c, web, ip4("198.19.0.13"), htons(8080));
	assert_true(b >= 0);
	assert_int_equal(c->backends[b].weight, 3);
	assert_int_equal(c->backends[b].state, CFG_BACKEND_UP);
	assert_int_not_equal(c->backends[b].gen, 0);
	assert_int_not_equal(c->backends[b].gen, c->services[web].gen);
	assert_non_null(c->services[web].bsel);
	assert_int_equal(c->services[web].bsel->count, 3);
	/* Same VIP and port, other protocol: a different service. */
	assert_true(cfg_service_find(c, "echo") >= 0);
}

static void every_command_of_the_contract_is_accepted(void **state)
{
	static const char *const good[] = {
		"interface net_ring1 name lan",
		"interface lan name int",
		"addr add 10.0.0.1/8 dev 0",
		"addr del 10.0.0.1/8 dev net_ring0",
		"route add 10.1.0.0/16 via 198.19.0.254 dev int",
		"route add 10.2.0.0/16 dev ext",
		"route add default via 198.18.0.254 dev ext",
		"route del 10.2.0.0/16",
		"route del default",
		"neigh add 198.19.0.11 lladdr 02:00:00:00:00:0b dev int",
		"neigh del 198.19.0.11 dev int",
		"snat add 198.19.0.4 ports 2000-2999 dev int",
		"snat add 198.19.0.5 dev int ports 3000-3999",
		"snat del 198.19.0.5",
		"service add api vip 198.18.1.1 port 443 proto tcp",
		"service add dns vip 198.18.1.1 port 53 proto udp sched lc snat 198.19.0.2,198.19.0.4",
		"service set api sched maglev",
		"service set api snat 198.19.0.3",
		"service set api snat all",
		"backend add api 198.19.0.21:8443",
		"backend add api 198.19.0.22:8443 weight 0",
		"backend set api 198.19.0.21:8443 weight 5",
		"backend set api 198.19.0.21:8443 state drain",
		"backend set api 198.19.0.21:8443 state down",
		"backend set api 198.19.0.21:8443 state up",
		"backend del api 198.19.0.22:8443",
		"service del dns",
		"set tcp timeout syn 10",
		"set tcp timeout established 3600",
		"set tcp timeout closing 60",
		"set tcp timeout closed 5",
		"set udp timeout 30",
		"show version",
		"show interfaces",
		"show addrs",
		"show routes",
		"show neigh",
		"show services",
		"show services web",
		"show backends",
		"show backends web",
		"show snat",
		"show portspace web 198.19.0.11:8080",
		"show flows",
		"show flows service web backend 198.19.0.11:8080 limit 5",
		"show stats",
		"show drops",
		"show settings",
		"clear stats",
		"help",
	};

	(void)state;
	lab();
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ok(good[i]);
		if (strncmp(good[i], "show ", 5) == 0 && run_json(good[i]) != 0)
			fail_msg("\"%s --json\" refused: %s", good[i], out.data);
	}
}

static void global_settings_are_stored(void **state)
{
	const struct cfg *c;

	(void)state;
	ok("set tcp timeout established 100");
	ok("set udp timeout 42");
	c = cfg_current();
	assert_int_equal(c->to.tcp[CFG_TCP_ESTABLISHED], 100);
	assert_int_equal(c->to.udp, 42);
	ok("show settings");
	assert_non_null(strstr(out.data, "set tcp timeout established 100\n"));
}

static void comments_and_blank_lines_change_nothing(void **state)
{
	static const char *const noops[] = { "", "   ", "\t", "# a comment", "   # indented" };
	struct cfg *before;

	(void)state;
	lab();
	before = cfg_current();
	for (size_t i = 0; i < sizeof(noops) / sizeof(noops[0]); i++) {
		assert_int_equal(run(noops[i]), 0);
		assert_int_equal(out.len, 0);
	}
	assert_ptr_equal(cfg_current(), before);
	/* A trailing comment ends the command. */
	ok("backend add web 198.19.0.14:8080 # the fourth one");
	assert_true(cfg_backend_find(cfg_current(), cfg_service_find(cfg_current(), "web"),
				     ip4("198.19.0.14"), htons(8080)) >= 0);
}

/* ---- bad forms ---- */

static void unknown_commands_are_refused(void **state)
{
	(void)state;
	lab();
	refused_with("frobnicate", -EINVAL, "unknown command");
	refused_with("show", -EINVAL, "show version");
	refused_with("service frob web", -EINVAL, "service add");
	refused("servic add web", -EINVAL);
	refused("show stats now", -EINVAL);
}

static void backend_add_refuses_bad_address_and_changes_nothing(void **state)
{
	(void)state;
	lab();
	refused_with("backend add web 1.2.3:80", -EINVAL,
		     "backend add: 1.2.3:80: bad address:port");
	refused("backend add web 1.2.3.4", -EINVAL);
	refused("backend add web 1.2.3.4:0", -EINVAL);
	refused("backend add web 1.2.3.4:65536", -EINVAL);
	refused("backend add web 01.2.3.4:80", -EINVAL);
	refused("backend add web 1.2.3.4:+80", -EINVAL);
	refused("backend add web 0.0.0.0:80", -EINVAL);
	refused("backend add web 224.0.0.1:80", -EINVAL);
	refused("backend add web 1.2.3.4:80 weight 65536", -EINVAL);
	refused("backend add web 1.2.3.4:80 weight -1", -EINVAL);
	refused("backend add web 1.2.3.4:80 weight", -EINVAL);
	refused("backend add web 1.2.3.4:80 weight 1 weight 2", -EINVAL);
	refused("backend add web 1.2.3.4:80 state sideways", -EINVAL);
	refused("backend add web", -EINVAL);
}

static void backend_add_refuses_duplicates_and_unknown_service(void **state)
{
	(void)state;
	lab();
	refused_with("backend add web 198.19.0.11:8080", -EEXIST, "exists");
	refused_with("backend add nope 198.19.0.11:8080", -ENOENT, "no such service \"nope\"");
	/* The same backend in another service is fine. */
	ok("service add web2 vip 198.18.0.101 port 80 proto tcp");
	ok("backend add web2 198.19.0.11:8080");
}

static void backend_weight_and_state_change_the_selection_table(void **state)
{
	const struct cfg *c;
	int web;

	(void)state;
	lab();
	ok("backend set web 198.19.0.11:8080 state drain");
	c = cfg_current();
	web = cfg_service_find(c, "web");
	assert_int_equal(c->services[web].bsel->count, 2);
	ok("backend set web 198.19.0.12:8080 weight 0");
	c = cfg_current();
	assert_int_equal(c->services[web].bsel->count, 1);
	ok("backend set web 198.19.0.11:8080 state up weight 4");
	c = cfg_current();
	assert_int_equal(c->services[web].bsel->count, 2);
	assert_int_equal(
		c->backends[cfg_backend_find(c, web, ip4("198.19.0.11"), htons(8080))].weight, 4);
	ok("backend del web 198.19.0.13:8080");
	c = cfg_current();
	assert_int_equal(c->services[web].bsel->count, 1);
	refused("backend set web 198.19.0.13:8080 weight 1", -ENOENT);
	refused("backend set web 198.19.0.11:8080", -EINVAL);
	refused("backend set web 198.19.0.11:8080 colour blue", -EINVAL);
}

static void service_add_refuses_bad_forms(void **state)
{
	(void)state;
	lab();
	refused("service add api vip 198.18.1.1 port 443", -EINVAL);
	refused("service add api port 443 proto tcp", -EINVAL);
	refused("service add api vip 198.18.1 port 443 proto tcp", -EINVAL);
	refused("service add api vip 198.18.1.1 port 0 proto tcp", -EINVAL);
	refused("service add api vip 198.18.1.1 port 65536 proto tcp", -EINVAL);
	refused("service add api vip 198.18.1.1 port 443 proto sctp", -EINVAL);
	refused("service add api vip 198.18.1.1 port 443 proto tcp sched random", -EINVAL);
	refused("service add api vip 198.18.1.1 port 443 proto tcp vip 198.18.1.2", -EINVAL);
	refused("service add api vip 198.18.1.1 port 443 proto tcp colour red", -EINVAL);
	refused("service add api! vip 198.18.1.1 port 443 proto tcp", -EINVAL);
	refused("service add abcdefghijabcdefghijabcdefghijab vip 198.18.1.1 port 443 proto tcp",
		-EINVAL);
	refused_with("service add api vip 198.18.1.1 port 443 proto tcp snat 198.19.0.9", -ENOENT,
		     "198.19.0.9");
	refused("service add api vip 198.18.1.1 port 443 proto tcp snat 198.19.0.2,", -EINVAL);
	refused("service add api vip 198.19.0.2 port 443 proto tcp", -EEXIST);
	/* 31 characters is the longest name. */
	ok("service add abcdefghijabcdefghijabcdefghija vip 198.18.1.1 port 443 proto tcp");
}

static void service_add_refuses_duplicates(void **state)
{
	(void)state;
	lab();
	refused_with("service add web vip 198.18.1.1 port 80 proto tcp", -EEXIST,
		     "service \"web\" exists");
	refused_with("service add web2 vip 198.18.0.100 port 80 proto tcp", -EEXIST, "web");
}

static void service_snat_list_selects_pool_addresses(void **state)
{
	const struct cfg *c;
	int web, a, b;

	(void)state;
	lab();
	ok("service set web snat 198.19.0.3");
	c = cfg_current();
	web = cfg_service_find(c, "web");
	a = cfg_snat_find(c, ip4("198.19.0.2"));
	b = cfg_snat_find(c, ip4("198.19.0.3"));
	assert_false(c->services[web].snat_all);
	assert_int_equal(c->services[web].snat_mask, UINT64_C(1) << b);
	ok("service set web snat 198.19.0.2,198.19.0.3");
	c = cfg_current();
	assert_int_equal(c->services[web].snat_mask, (UINT64_C(1) << a) | (UINT64_C(1) << b));
	/* The only address of a restricted service cannot go. */
	ok("service set web snat 198.19.0.2");
	refused_with("snat del 198.19.0.2", -EBUSY, "only SNAT address");
	ok("service set web snat 198.19.0.2,198.19.0.3");
	/* Deleting a pool address takes it out of every service's list; it
	 * drains (still local, no new flows) until its last flow ends. */
	ok("snat del 198.19.0.2");
	c = cfg_current();
	assert_int_equal(c->services[web].snat_mask, UINT64_C(1) << b);
	assert_true(c->snat[a].used && c->snat[a].draining);
	ok("show snat");
	assert_non_null(strstr(out.data, "draining"));
	refused("snat del 198.19.0.2", -ENOENT);
	refused("service set web snat 198.19.0.2", -ENOENT);
	ok("service set web snat all");
	assert_true(cfg_current()->services[web].snat_all);
	/* No flow holds a tuple on it (no workers here): the next tick frees it. */
	ctl_snat_reap();
	assert_int_equal(cfg_snat_find(cfg_current(), ip4("198.19.0.2")), -1);
}

static void snat_add_takes_back_a_draining_address(void **state)
{
	const struct cfg *c;
	int a;

	(void)state;
	lab();
	a = cfg_snat_find(cfg_current(), ip4("198.19.0.2"));
	ok("snat del 198.19.0.2");
	ok("snat add 198.19.0.2 ports 2000-2999 dev int");
	c = cfg_current();
	assert_int_equal(cfg_snat_find(c, ip4("198.19.0.2")), a);
	assert_false(c->snat[a].draining);
	assert_int_equal(c->snat[a].lo, 2000);
}

static void service_check_is_stored_and_validated(void **state)
{
	const struct cfg *c;
	int web, b;

	(void)state;
	lab();
	web = cfg_service_find(cfg_current(), "web");
	b = cfg_backend_find(cfg_current(), web, ip4("198.19.0.11"), htons(8080));
	ok("service set web check tcp");
	c = cfg_current();
	assert_int_equal(c->services[web].check.kind, CFG_CHECK_TCP);
	assert_int_equal(c->services[web].check.interval_s, 2);
	assert_int_equal(c->services[web].check.timeout_s, 1);
	assert_int_equal(c->services[web].check.rise, 2);
	assert_int_equal(c->services[web].check.fall, 3);
	/* Switched on: every backend starts up. */
	assert_int_equal(c->backends[b].health, CFG_HEALTH_UP);
	ok("service set web check tcp interval 5 timeout 2 rise 3 fall 4");
	c = cfg_current();
	assert_int_equal(c->services[web].check.interval_s, 5);
	assert_int_equal(c->services[web].check.timeout_s, 2);
	assert_int_equal(c->services[web].check.rise, 3);
	assert_int_equal(c->services[web].check.fall, 4);
	ok("backend add web 198.19.0.14:8080");
	c = cfg_current();
	assert_int_equal(
		c->backends[cfg_backend_find(c, web, ip4("198.19.0.14"), htons(8080))].health,
		CFG_HEALTH_UP);
	ok("show backends web");
	assert_non_null(strstr(out.data, " up     up      0s"));
	ok("service set web check off");
	c = cfg_current();
	assert_int_equal(c->services[web].check.kind, CFG_CHECK_OFF);
	assert_int_equal(c->backends[b].health, CFG_HEALTH_UNCHECKED);
	/* UDP services are checked with ICMP echo (an extension), not TCP. */
	refused_with("service set echo check tcp", -EINVAL, "check icmp");
	ok("service set echo check icmp interval 3");
	assert_int_equal(
		cfg_current()->services[cfg_service_find(cfg_current(), "echo")].check.kind,
		CFG_CHECK_ICMP);
	refused("service set web check tcp interval 0", -EINVAL);
	refused("service set web check tcp interval 1 timeout 2", -EINVAL);
	refused("service set web check tcp rise", -EINVAL);
	refused("service set web check tcp rise 0", -EINVAL);
	refused("service set web check tcp fall 101", -EINVAL);
	refused("service set web check tcp weight 2", -EINVAL);
	refused("service set web check http", -EINVAL);
	refused("service set web check", -EINVAL);
	/* Probes leave from ports no SNAT address may give to flows. */
	refused_with("snat add 198.19.0.9 ports 900-1000 dev int", -EINVAL,
		     "overlap 1000-1023, the source ports of health checks");
	refused("snat add 198.19.0.9 ports 1023-2000 dev int", -EINVAL);
	refused("snat add 198.19.0.9 ports 1-65535 dev int", -EINVAL);
	ok("snat add 198.19.0.9 ports 1-999 dev int");
	refused("service set web tw-quarantine -1", -EINVAL);
	refused("service set web tw-quarantine 604801", -EINVAL);
	refused("service set web tw-quarantine soon", -EINVAL);
	refused("service set web ts-rewrite maybe", -EINVAL);
	refused("service set web tw-reuse", -EINVAL);
	refused("service set web tw-reuse 1", -EINVAL);
	refused("service set nope sched rr", -ENOENT);
	refused("service set web sched", -EINVAL);
	refused("service set web sched random", -EINVAL);
}

static void service_del_removes_its_backends(void **state)
{
	const struct cfg *c;
	uint32_t old_gen;
	int s;

	(void)state;
	lab();
	old_gen = cfg_current()->services[cfg_service_find(cfg_current(), "web")].gen;
	ok("service del web");
	c = cfg_current();
	assert_int_equal(cfg_service_find(c, "web"), -1);
	for (int b = 0; b < CFG_MAX_BACKENDS; b++)
		assert_false(c->backends[b].used && c->backends[b].l4port == htons(8080));
	assert_int_equal(run_json("show backends"), 0);
	assert_null(strstr(out.data, "8080"));
	assert_non_null(strstr(out.data, "5353"));
	/* A new service in the reused slot is a new object. */
	ok("service add web vip 198.18.0.100 port 80 proto tcp");
	c = cfg_current();
	s = cfg_service_find(c, "web");
	assert_int_not_equal(c->services[s].gen, old_gen);
	assert_int_equal(run_json("show backends web"), 0);
	assert_string_equal(out.data, "[]\n");
}

static void delete_of_unknown_objects_is_refused(void **state)
{
	(void)state;
	lab();
	refused("service del nope", -ENOENT);
	refused("backend del web 198.19.0.99:8080", -ENOENT);
	refused("backend del nope 198.19.0.11:8080", -ENOENT);
	refused("snat del 198.19.0.99", -ENOENT);
	refused("addr del 198.18.0.1/16 dev ext", -ENOENT);
	refused("addr del 198.18.0.1/24 dev int", -ENOENT);
	refused("route del 10.0.0.0/8", -ENOENT);
	refused("neigh del 198.19.0.11 dev int", -ENOENT);
}

static void addr_add_refuses_duplicates_and_bad_forms(void **state)
{
	(void)state;
	lab();
	refused_with("addr add 198.18.0.1/24 dev ext", -EEXIST, "exists");
	refused("addr add 198.18.0.1/16 dev int", -EEXIST);
	refused("addr add 198.18.0.2 dev ext", -EINVAL);
	refused("addr add 198.18.0.2/33 dev ext", -EINVAL);
	refused("addr add 198.18.0.2/0 dev ext", -EINVAL);
	refused("addr add 198.18.0.256/24 dev ext", -EINVAL);
	refused("addr add 198.18.0.2/24", -EINVAL);
	refused_with("addr add 198.18.0.2/24 dev eth9", -ENODEV, "eth9");
	refused("addr add 198.18.0.2/24 dev 7", -ENODEV);
}

static void route_add_validates_prefix_gateway_and_device(void **state)
{
	const struct cfg *c;

	(void)state;
	lab();
	refused_with("route add 10.1.2.3/16 via 198.18.0.254 dev ext", -EINVAL, "host bits");
	refused("route add 10.0.0.0/33 dev ext", -EINVAL);
	refused("route add 10.0.0.0/8 via 198.18.0 dev ext", -EINVAL);
	refused("route add 10.0.0.0/8 via 198.18.0.254", -EINVAL);
	refused("route add 10.0.0.0/8 via 198.18.0.254 dev nope", -ENODEV);
	refused("route add 10.0.0.0/8 dev ext via", -EINVAL);
	ok("route add default via 198.18.0.254 dev ext");
	refused("route add 0.0.0.0/0 via 198.18.0.253 dev ext", -EEXIST);
	c = cfg_current();
	assert_int_equal(c->nroutes, 1);
	assert_int_equal(c->routes[0].plen, 0);
	assert_int_equal(c->routes[0].gw, ip4("198.18.0.254"));
	assert_int_equal(run_json("show routes"), 0);
	assert_non_null(strstr(out.data, "\"prefix\":\"0.0.0.0/0\",\"via\":\"198.18.0.254\""));
	assert_non_null(strstr(out.data, "\"type\":\"connected\""));
}

static void neigh_add_validates_mac_and_refuses_duplicates(void **state)
{
	(void)state;
	lab();
	refused("neigh add 198.19.0.11 lladdr 02:00:00:00:00 dev int", -EINVAL);
	refused("neigh add 198.19.0.11 lladdr 02:00:00:00:00:0g dev int", -EINVAL);
	refused("neigh add 198.19.0.11 lladdr 01:00:5e:00:00:01 dev int", -EINVAL);
	refused("neigh add 198.19.0.11 lladdr 00:00:00:00:00:00 dev int", -EINVAL);
	refused("neigh add 198.19.0.11 lladdr 02:00:00:00:00:0b", -EINVAL);
	ok("neigh add 198.19.0.11 lladdr 02:00:00:00:00:0B dev int");
	refused("neigh add 198.19.0.11 lladdr 02:00:00:00:00:0c dev int", -EEXIST);
	assert_int_equal(run("show neigh"), 0);
	assert_non_null(strstr(out.data, "02:00:00:00:00:0b"));
	assert_non_null(strstr(out.data, "permanent"));
}

static void snat_add_validates_port_range_and_capacity(void **state)
{
	const struct cfg *c;
	char line[64];
	int n;

	(void)state;
	lab();
	refused("snat add 198.19.0.4 ports 2000-1000 dev int", -EINVAL);
	refused("snat add 198.19.0.4 ports 0-1000 dev int", -EINVAL);
	refused("snat add 198.19.0.4 ports 1-65536 dev int", -EINVAL);
	refused("snat add 198.19.0.4 ports 5000 dev int", -EINVAL);
	refused("snat add 198.19.0.4 ports 1000-2000", -EINVAL);
	refused_with("snat add 198.19.0.2 dev int", -EEXIST, "exists");
	refused_with("snat add 198.18.0.100 dev ext", -EEXIST, "VIP");
	ok("snat add 198.19.0.4 ports 5000-5000 dev int");
	c = cfg_current();
	n = cfg_snat_find(c, ip4("198.19.0.4"));
	assert_int_equal(c->snat[n].lo, 5000);
	assert_int_equal(c->snat[n].hi, 5000);
	assert_int_equal(c->snat[cfg_snat_find(c, ip4("198.19.0.2"))].lo, 1024);
	assert_int_equal(c->snat[cfg_snat_find(c, ip4("198.19.0.2"))].hi, 65535);
	for (n = 3; n < CFG_MAX_SNAT; n++) {
		snprintf(line, sizeof(line), "snat add 10.0.%d.1 dev int", n);
		ok(line);
	}
	refused_with("snat add 10.1.0.1 dev int", -ENOSPC, "no room");
}

static void interface_names_are_unique_and_not_numeric(void **state)
{
	(void)state;
	lab();
	refused_with("interface 1 name ext", -EEXIST, "taken");
	refused("interface 1 name net_ring0", -EEXIST);
	refused("interface 5 name x", -ENODEV);
	refused("interface 1 name 7", -EINVAL);
	refused("interface 1 name bad/name", -EINVAL);
	refused("interface 1 label x", -EINVAL);
	ok("interface int name lan");
	ok("addr add 10.0.0.1/8 dev lan");
	refused("addr add 10.0.0.2/8 dev int", -ENODEV);
}

static void tw_quarantine_global_and_per_service(void **state)
{
	const struct cfg *c;
	int s;

	(void)state;
	lab();
	c = cfg_current();
	s = cfg_service_find(c, "web");
	assert_int_equal(c->to.tw_quarantine, 60);
	assert_int_equal(cfg_tw_quarantine_ms(c, (uint16_t)s, c->services[s].gen), 60000);
	ok("set tcp tw-quarantine 0");
	c = cfg_current();
	assert_int_equal(cfg_tw_quarantine_ms(c, (uint16_t)s, c->services[s].gen), 0);
	ok("service set web tw-quarantine 120");
	ok("set tcp tw-quarantine 30");
	c = cfg_current();
	assert_int_equal(cfg_tw_quarantine_ms(c, (uint16_t)s, c->services[s].gen), 120000);
	/* A flow of a service that is gone (other gen) gets the global value. */
	assert_int_equal(cfg_tw_quarantine_ms(c, (uint16_t)s, c->services[s].gen + 1), 30000);
	assert_int_equal(run_json("show services web"), 0);
	assert_non_null(strstr(out.data, "\"tw_quarantine\":120,\"tw_quarantine_override\":true"));
	assert_int_equal(run_json("show settings"), 0);
	assert_non_null(strstr(out.data, "\"tw_quarantine\":30"));
	ok("service set web tw-quarantine default");
	c = cfg_current();
	assert_int_equal(cfg_tw_quarantine_ms(c, (uint16_t)s, c->services[s].gen), 30000);
	assert_int_equal(run_json("show services web"), 0);
	assert_non_null(strstr(out.data, "\"tw_quarantine\":30,\"tw_quarantine_override\":false"));
	ok("set tcp tw-quarantine 60");
}

static void ts_rewrite_and_tw_reuse_global_and_per_service(void **state)
{
	const struct cfg *c;
	int s;

	(void)state;
	lab();
	c = cfg_current();
	s = cfg_service_find(c, "web");
	/* Defaults of the contract: rewriting on, reuse off. */
	assert_true(cfg_ts_rewrite(c, (uint16_t)s));
	assert_false(cfg_tw_reuse(c, (uint16_t)s));
	ok("set tcp ts-rewrite off");
	ok("set tcp tw-reuse on");
	c = cfg_current();
	assert_false(cfg_ts_rewrite(c, (uint16_t)s));
	assert_true(cfg_tw_reuse(c, (uint16_t)s));
	ok("service set web ts-rewrite on tw-reuse off");
	c = cfg_current();
	assert_true(cfg_ts_rewrite(c, (uint16_t)s));
	assert_false(cfg_tw_reuse(c, (uint16_t)s));
	assert_int_equal(run_json("show services web"), 0);
	assert_non_null(strstr(out.data, "\"ts_rewrite\":true,\"ts_rewrite_override\":true"));
	assert_non_null(strstr(out.data, "\"tw_reuse\":false,\"tw_reuse_override\":true"));
	assert_int_equal(run("show settings"), 0);
	assert_non_null(strstr(out.data, "set tcp ts-rewrite off\n"));
	assert_non_null(strstr(out.data, "set tcp tw-reuse on\n"));
	ok("service set web ts-rewrite default tw-reuse default");
	c = cfg_current();
	assert_false(cfg_ts_rewrite(c, (uint16_t)s));
	assert_true(cfg_tw_reuse(c, (uint16_t)s));
	ok("set tcp ts-rewrite on");
	ok("set tcp tw-reuse off");
	assert_int_equal(run_json("show settings"), 0);
	assert_non_null(strstr(out.data, "\"ts_rewrite\":true,\"tw_reuse\":false"));
}

static void set_commands_refuse_bad_values(void **state)
{
	(void)state;
	refused("set tcp timeout syn 0", -EINVAL);
	refused("set tcp timeout listen 10", -EINVAL);
	refused("set tcp timeout syn", -EINVAL);
	refused("set tcp ts-rewrite maybe", -EINVAL);
	refused("set tcp ts-rewrite", -EINVAL);
	refused("set tcp tw-reuse yes", -EINVAL);
	refused("set tcp tw-quarantine -1", -EINVAL);
	refused("set tcp tw-quarantine 1e3", -EINVAL);
	refused("set tcp frobs 1", -EINVAL);
	refused("set udp timeout 0", -EINVAL);
	refused("set udp timeout", -EINVAL);
	refused("set sctp timeout 5", -EINVAL);
}

static void overlong_and_binary_lines_are_refused(void **state)
{
	char *line = malloc(CTL_REQ_MAX + 2);

	(void)state;
	memset(line, 'a', CTL_REQ_MAX + 1);
	line[CTL_REQ_MAX + 1] = '\0';
	refused(line, -E2BIG);
	free(line);
	refused("show version\nshow stats", -EINVAL);
	refused("show\x01version", -EINVAL);
}

/* ---- shows ---- */

static void shows_print_json_with_contract_keys(void **state)
{
	int lines = 0;

	(void)state;
	lab();
	assert_int_equal(run_json("show version"), 0);
	assert_non_null(strstr(out.data, "\"version\":\"0.1.0\""));
	assert_non_null(strstr(out.data, "\"dpdk\":\"DPDK "));
	assert_int_equal(run_json("show stats"), 0);
	assert_string_equal(
		out.data,
		"{\"flows_active\":0,\"flows_created\":0,\"flows_expired\":0,\"flows_closed\":0,"
		"\"rx_packets\":0,\"tx_packets\":0,\"icmp_errors_translated\":0,\"icmp_sent\":0,"
		"\"arp_requests_sent\":0,\"ts_flows_rewritten\":0,\"ts_malformed\":0,"
		"\"tw_reuses\":0,\"checks_sent\":0,\"check_replies\":0,\"drops_total\":0,\"drops\":{"
		"\"eth_truncated\":0,\"eth_unsupported\":0,\"arp_malformed\":0,\"arp_ignored\":0,"
		"\"ipv6_unsupported\":0,\"ip_truncated\":0,\"ip_bad_version\":0,\"ip_bad_ihl\":0,"
		"\"ip_bad_checksum\":0,\"ip_fragment\":0,\"ttl_exceeded\":0,\"ip_not_local\":0,"
		"\"l4_unsupported\":0,\"tcp_truncated\":0,\"tcp_bad_doff\":0,\"tcp_bad_option\":0,"
		"\"tcp_ts_duplicate\":0,\"ts_implausible\":0,"
		"\"udp_truncated\":0,\"icmp_truncated\":0,\"icmp_unsupported\":0,"
		"\"icmp_error_no_flow\":0,\"no_service\":0,\"tcp_no_flow\":0,\"no_flow\":0,"
		"\"no_backend\":0,\"alloc_failed\":0,\"flow_table_full\":0,\"quarantine_full\":0,"
		"\"portspace_full\":0,\"backend_down\":0,"
		"\"no_route\":0,\"neigh_unresolved\":0,\"neigh_queue_full\":0,\"tx_full\":0,"
		"\"mbuf_alloc_failed\":0,\"icmp_rate_limited\":0,\"check_unexpected\":0,"
		"\"check_queue_full\":0},\"workers\":[]}\n");
	assert_int_equal(run("show drops"), 0);
	for (const char *p = out.data; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, STATS_DROP_COUNT);
	assert_int_equal(run_json("show snat"), 0);
	assert_string_equal(
		out.data,
		"[{\"addr\":\"198.19.0.2\",\"ports\":\"1024-65535\",\"dev\":\"int\","
		"\"state\":\"active\",\"in_use\":0,\"quarantined\":0,\"alloc_failures\":0,\"tw_reuses\":0},"
		"{\"addr\":\"198.19.0.3\",\"ports\":\"1024-65535\",\"dev\":\"int\","
		"\"state\":\"active\",\"in_use\":0,\"quarantined\":0,\"alloc_failures\":0,\"tw_reuses\":0}]\n");
	assert_int_equal(run_json("show backends echo"), 0);
	assert_non_null(strstr(out.data,
			       "{\"service\":\"echo\",\"addr\":\"198.19.0.11\",\"port\":5353,"
			       "\"weight\":1,\"state\":\"up\",\"health\":\"unchecked\","
			       "\"active_flows\":0,\"total_flows\":0"));
	assert_int_equal(run_json("show services web"), 0);
	assert_non_null(strstr(out.data, "{\"name\":\"web\",\"vip\":\"198.18.0.100\",\"port\":80,"
					 "\"proto\":\"tcp\",\"sched\":\"wrr\""));
	assert_non_null(strstr(
		out.data,
		"\"backends\":3,\"active_flows\":0,\"total_flows\":0,"
		"\"new_flows_per_s\":0,\"tw_quarantine\":60,\"tw_quarantine_override\":false,"
		"\"ts_rewrite\":true,\"ts_rewrite_override\":false,"
		"\"tw_reuse\":false,\"tw_reuse_override\":false}"));
	assert_int_equal(run_json("show flows"), 0);
	assert_string_equal(out.data, "[]\n");
	assert_int_equal(run_json("show interfaces"), 0);
	assert_non_null(strstr(out.data, "{\"port\":0,\"name\":\"ext\",\"device\":\"net_ring0\","
					 "\"mac\":\"02:00:00:00:00:10\""));
}

static void portspace_counts_the_service_pool(void **state)
{
	(void)state;
	lab();
	assert_int_equal(run_json("show portspace web 198.19.0.11:8080"), 0);
	assert_non_null(strstr(out.data, "\"backend\":\"198.19.0.11:8080\",\"in_use\":0,"
					 "\"quarantined\":0,\"free\":129024"));
	ok("service set web snat 198.19.0.3");
	assert_int_equal(run_json("show portspace web 198.19.0.11:8080"), 0);
	assert_non_null(strstr(out.data, "\"free\":64512"));
	refused("show portspace web 198.19.0.99:8080", -ENOENT);
	refused("show portspace nope 198.19.0.11:8080", -ENOENT);
	refused("show portspace web", -EINVAL);
}

static void human_shows_have_a_header_and_aligned_columns(void **state)
{
	(void)state;
	lab();
	ok("show backends");
	assert_int_equal(strncmp(out.data, "SERVICE  ADDRESS      PORT  WEIGHT  STATE  HEALTH", 49),
			 0);
	assert_non_null(strstr(out.data, "\nweb      198.19.0.11  8080  1       up     unchecked"));
	refused("show services nope", -ENOENT);
	refused("show backends nope", -ENOENT);
	refused("show flows service nope", -ENOENT);
	refused("show flows limit many", -EINVAL);
	refused("show flows backend 1.2.3", -EINVAL);
}

/* ---- the config file ---- */

static void apply_file_reports_path_and_line_of_first_error(void **state)
{
	char path[] = "/tmp/test_ctl_XXXXXX";
	char msg[512] = { 0 };
	const struct cfg *c;
	FILE *err, *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("# comment\r\n"
	      "interface 0 name ext\n"
	      "addr add 198.18.0.1/33 dev ext\n"
	      "\n"
	      "addr add 198.18.0.2/24 dev ext\n",
	      f);
	fclose(f);
	err = fmemopen(msg, sizeof(msg) - 1, "w");
	assert_non_null(err);
	assert_int_equal(ctl_apply_file(path, err), -1);
	fclose(err);
	unlink(path);
	assert_int_equal(strncmp(msg, path, strlen(path)), 0);
	assert_int_equal(strncmp(msg + strlen(path), ":3: addr add: ", 14), 0);
	assert_non_null(strchr(msg, '\n'));
	c = cfg_current();
	assert_string_equal(c->ports[0].name, "ext"); /* line 2 applied */
	assert_int_equal(c->naddrs, 0);		      /* line 5 never reached */
}

static void apply_file_of_the_lab_config_succeeds(void **state)
{
	char path[] = "/tmp/test_ctl_XXXXXX";
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	for (size_t i = 0; i < sizeof(lab_conf) / sizeof(lab_conf[0]); i++)
		fprintf(f, "%s\n", lab_conf[i]);
	fclose(f);
	assert_int_equal(ctl_apply_file(path, stderr), 0);
	unlink(path);
	assert_true(cfg_service_find(cfg_current(), "echo") >= 0);
	f = fopen("/dev/null", "w");
	assert_int_equal(ctl_apply_file("/nonexistent/sluice.conf", f), -1);
	fclose(f);
}

/* ---- the socket ---- */

static int client_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	strcpy(addr.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* Read exactly @size bytes, serving the daemon side in between. */
static ssize_t client_read(int fd, void *buf, size_t size)
{
	size_t got = 0;

	for (int i = 0; i < 50 && got < size; i++) {
		ssize_t n;

		ctl_server_poll(10);
		n = recv(fd, (char *)buf + got, size - got, MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n > 0)
			got += (size_t)n;
	}
	return (ssize_t)got;
}

static void socket_answers_requests_and_drops_garbage(void **state)
{
	char dir[] = "/tmp/test_ctl_sockXXXXXX";
	char path[128], text[256];
	struct ctl_req req = { .magic = CTL_PROTO_MAGIC, .id = 7 };
	struct ctl_rep rep;
	const char *cmd = "service del nope";
	int fd, stale;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/dir/ctl.sock", dir);
	/* A stale socket left by a dead daemon is replaced. */
	assert_int_equal(ctl_server_open(path), 0);
	ctl_server_close();
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un addr = { .sun_family = AF_UNIX };

		strcpy(addr.sun_path, path);
		assert_int_equal(bind(stale, (struct sockaddr *)&addr, sizeof(addr)), 0);
		close(stale);
	}
	assert_int_equal(ctl_server_open(path), 0);

	/* A refused command: status and reason, connection kept. */
	fd = client_connect(path);
	req.len = (uint32_t)strlen(cmd);
	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	assert_int_equal(send(fd, cmd, req.len, 0), (ssize_t)req.len);
	assert_int_equal(client_read(fd, &rep, sizeof(rep)), sizeof(rep));
	assert_int_equal(rep.magic, CTL_PROTO_MAGIC);
	assert_int_equal(rep.id, 7);
	assert_int_equal(rep.status, -ENOENT);
	assert_true(rep.len < sizeof(text));
	assert_int_equal(client_read(fd, text, rep.len), rep.len);
	text[rep.len] = '\0';
	assert_string_equal(text, "service del: no such service \"nope\"");

	/* A JSON show on the same connection. */
	cmd = "show version";
	req.id = 8;
	req.flags = CTL_REQ_JSON;
	req.len = (uint32_t)strlen(cmd);
	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	assert_int_equal(send(fd, cmd, req.len, 0), (ssize_t)req.len);
	assert_int_equal(client_read(fd, &rep, sizeof(rep)), sizeof(rep));
	assert_int_equal(rep.status, 0);
	assert_int_equal(rep.id, 8);
	assert_int_equal(client_read(fd, text, rep.len), rep.len);
	assert_int_equal(strncmp(text, "{\"version\":", 11), 0);
	close(fd);

	/* Bad magic, then an oversized length: the daemon hangs up. */
	fd = client_connect(path);
	req.magic = 0xdeadbeef;
	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	assert_int_equal(client_read(fd, &rep, sizeof(rep)), 0);
	close(fd);
	fd = client_connect(path);
	req.magic = CTL_PROTO_MAGIC;
	req.len = CTL_REQ_MAX + 1;
	assert_int_equal(send(fd, &req, sizeof(req), 0), sizeof(req));
	assert_int_equal(client_read(fd, &rep, sizeof(rep)), 0);
	close(fd);

	ctl_server_close();
	assert_int_equal(access(path, F_OK), -1);
	/* Never unlink what is not a socket. */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(ctl_server_open(path), -EEXIST);
	unlink(path);
	snprintf(text, sizeof(text), "%s/sub/dir", dir);
	rmdir(text);
	snprintf(text, sizeof(text), "%s/sub", dir);
	rmdir(text);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(lab_config_is_accepted_and_published),
		T(every_command_of_the_contract_is_accepted),
		T(global_settings_are_stored),
		T(comments_and_blank_lines_change_nothing),
		T(unknown_commands_are_refused),
		T(backend_add_refuses_bad_address_and_changes_nothing),
		T(backend_add_refuses_duplicates_and_unknown_service),
		T(backend_weight_and_state_change_the_selection_table),
		T(service_add_refuses_bad_forms),
		T(service_add_refuses_duplicates),
		T(service_snat_list_selects_pool_addresses),
		T(snat_add_takes_back_a_draining_address),
		T(service_check_is_stored_and_validated),
		T(service_del_removes_its_backends),
		T(delete_of_unknown_objects_is_refused),
		T(addr_add_refuses_duplicates_and_bad_forms),
		T(route_add_validates_prefix_gateway_and_device),
		T(neigh_add_validates_mac_and_refuses_duplicates),
		T(snat_add_validates_port_range_and_capacity),
		T(interface_names_are_unique_and_not_numeric),
		T(set_commands_refuse_bad_values),
		T(overlong_and_binary_lines_are_refused),
		T(shows_print_json_with_contract_keys),
		T(tw_quarantine_global_and_per_service),
		T(ts_rewrite_and_tw_reuse_global_and_per_service),
		T(portspace_counts_the_service_pool),
		T(human_shows_have_a_header_and_aligned_columns),
		T(apply_file_reports_path_and_line_of_first_error),
		T(apply_file_of_the_lab_config_succeeds),
		T(socket_answers_requests_and_drops_garbage),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
