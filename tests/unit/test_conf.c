/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sample configs in conf/ are accepted by the daemon's parser, as the
 * daemon reads them (ctl_apply_file() against two fake ports named like the
 * devices they are written for), and they configure what their comments say.
 *
 * Usage: test_conf CONFDIR (meson passes the source tree's conf/).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "bsel.h"
#include "cfg.h"
#include "ctl.h"
#include "ctl_env.h"

static const char *conf_dir;
static char conf_path[4096];

static const char *conf(const char *name)
{
	snprintf(conf_path, sizeof(conf_path), "%s/%s", conf_dir, name);
	return conf_path;
}

/* The two ports of conf/baremetal.conf: PCI functions bound to vfio-pci. */
static int setup_pci(void **state)
{
	(void)state;
	return ctl_env_ports("0000:3b:00.0", "0000:3b:00.1");
}

/* The two ports of conf/lab.conf: af_packet vdevs. */
static int setup_vdev(void **state)
{
	(void)state;
	return ctl_env_ports("net_af_packet0", "net_af_packet1");
}

static int teardown(void **state)
{
	(void)state;
	ctl_buf_free(&out);
	return 0;
}

/* A line that configures a health check (leading blanks and case as the parser sees them). */
static bool is_check_line(const char *line)
{
	char name[64];
	int end = 0;

	return sscanf(line, " service set %63s check %n", name, &end) == 1 && end > 0;
}

static const struct cfg_service *service(const struct cfg *c, const char *name)
{
	int s = cfg_service_find(c, name);

	if (s < 0)
		fail_msg("no service \"%s\"", name);
	return &c->services[s];
}

static const struct cfg_backend *backend(const struct cfg *c, const char *svc, const char *ip,
					 uint16_t l4port)
{
	int b = cfg_backend_find(c, cfg_service_find(c, svc), ip4(ip), htons(l4port));

	if (b < 0)
		fail_msg("no backend %s:%u in \"%s\"", ip, l4port, svc);
	return &c->backends[b];
}

static int backend_count(const struct cfg *c, const char *svc)
{
	int s = cfg_service_find(c, svc), n = 0;

	for (int b = 0; b < CFG_MAX_BACKENDS; b++)
		n += c->backends[b].used && c->backends[b].svc == s;
	return n;
}

static const struct cfg_snat *snat(const struct cfg *c, const char *ip)
{
	int n = cfg_snat_find(c, ip4(ip));

	if (n < 0)
		fail_msg("no SNAT address %s", ip);
	return &c->snat[n];
}

/* ---- conf/lab.conf ---- */

static void lab_conf_applies_cleanly(void **state)
{
	const struct cfg *c;

	(void)state;
	assert_int_equal(ctl_apply_file(conf("lab.conf"), stderr), 0);
	c = cfg_current();
	assert_string_equal(c->ports[0].name, "ext");
	assert_string_equal(c->ports[1].name, "int");
	assert_int_equal(c->naddrs, 2);
	assert_int_equal(snat(c, "198.19.0.2")->lo, 1024);
	assert_int_equal(snat(c, "198.19.0.3")->hi, 65535);
	assert_int_equal(service(c, "web")->sched, CFG_SCHED_WRR);
	assert_int_equal(service(c, "web")->proto, IPPROTO_TCP);
	assert_int_equal(backend(c, "web", "198.19.0.13", 8080)->weight, 3);
	assert_int_equal(backend_count(c, "web"), 3);
	assert_int_equal(service(c, "echo")->sched, CFG_SCHED_RR);
	assert_int_equal(service(c, "echo")->proto, IPPROTO_UDP);
	assert_int_equal(backend_count(c, "echo"), 3);
}

/* ---- conf/baremetal.conf ---- */

/* What the file's comments promise, checked in the published snapshot. */
static void baremetal_is_configured(const struct cfg *c)
{
	const struct cfg_service *web, *rdp;
	uint16_t port;
	uint32_t nh;

	assert_string_equal(c->ports[0].name, "ext");
	assert_string_equal(c->ports[1].name, "int");
	assert_int_equal(c->naddrs, 2);
	assert_int_equal(c->nroutes, 2);
	/* A client anywhere goes back through the upstream router... */
	assert_int_equal(cfg_route_lookup(c, ip4("203.0.113.7"), &port, &nh), 0);
	assert_int_equal(port, 0);
	assert_int_equal(nh, ip4("198.18.0.1"));
	/* ...a routed backend through the internal one, an on-link backend directly. */
	assert_int_equal(cfg_route_lookup(c, ip4("198.19.1.12"), &port, &nh), 0);
	assert_int_equal(port, 1);
	assert_int_equal(nh, ip4("198.19.0.1"));
	assert_int_equal(cfg_route_lookup(c, ip4("198.19.0.22"), &port, &nh), 0);
	assert_int_equal(port, 1);
	assert_int_equal(nh, ip4("198.19.0.22"));
	assert_int_equal(c->nneigh, 1);
	assert_int_equal(c->neigh[0].ip, ip4("198.19.0.1"));
	assert_int_equal(c->neigh[0].port, 1);

	assert_int_equal(snat(c, "198.19.0.10")->lo, 1024);
	assert_int_equal(snat(c, "198.19.0.10")->hi, 65535);
	assert_int_equal(snat(c, "198.19.0.11")->lo, 20000);
	assert_int_equal(snat(c, "198.19.0.11")->hi, 59999);
	assert_int_equal(snat(c, "198.19.0.11")->port, 1);

	assert_int_equal(c->to.tcp[CFG_TCP_SYN], 10);
	assert_int_equal(c->to.tcp[CFG_TCP_ESTABLISHED], 3600);
	assert_int_equal(c->to.tcp[CFG_TCP_CLOSING], 120);
	assert_int_equal(c->to.tcp[CFG_TCP_CLOSED], 10);
	assert_int_equal(c->to.udp, 60);
	assert_int_equal(c->to.tw_quarantine, 65);
	assert_true(c->to.ts_rewrite);
	assert_false(c->to.tw_reuse);

	web = service(c, "web");
	assert_int_equal(web->vip, ip4("198.18.0.80"));
	assert_int_equal(web->l4port, htons(443));
	assert_int_equal(web->sched, CFG_SCHED_MAGLEV);
	assert_true(web->snat_all);
	assert_int_equal(web->tw_quarantine, CFG_INHERIT);
	assert_int_equal(backend_count(c, "web"), 4);
	assert_int_equal(backend(c, "web", "198.19.1.11", 443)->weight, 100);
	assert_int_equal(backend(c, "web", "198.19.1.14", 443)->weight, 50);
	assert_non_null(web->bsel);
	assert_int_equal(web->bsel->count, 4);

	rdp = service(c, "rdp");
	assert_int_equal(rdp->vip, ip4("198.18.0.81"));
	assert_int_equal(rdp->sched, CFG_SCHED_LC);
	assert_false(rdp->snat_all);
	assert_int_equal(rdp->snat_mask, UINT64_C(1) << cfg_snat_find(c, ip4("198.19.0.11")));
	assert_int_equal(rdp->tw_quarantine, 240);
	assert_int_equal(backend_count(c, "rdp"), 3);
	assert_int_equal(backend(c, "rdp", "198.19.0.23", 3389)->weight, 1);
}

static void baremetal_conf_every_line_is_accepted(void **state)
{
	int nchecks = 0, nlines = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	(void)state;
	f = fopen(conf("baremetal.conf"), "r");
	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) >= 0) {
		int ret;

		nlines++;
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		ret = ctl_exec(line, false, &out);
		if (ret != 0)
			fail_msg("baremetal.conf:%d: \"%s\" refused (%d): %s", nlines, line, ret,
				 out.data);
		nchecks += is_check_line(line);
	}
	free(line);
	fclose(f);
	/* One check per service, as the sample promises. */
	assert_int_equal(nchecks, 2);
	baremetal_is_configured(cfg_current());
}

/* As the daemon reads it at start-up. */
static void baremetal_conf_applies_as_a_file(void **state)
{
	char msg[512] = { 0 };
	const struct cfg *c;
	FILE *err;

	(void)state;
	err = fmemopen(msg, sizeof(msg) - 1, "w");
	assert_non_null(err);
	assert_int_equal(ctl_apply_file(conf("baremetal.conf"), err), 0);
	fclose(err);
	assert_string_equal(msg, "");
	c = cfg_current();
	baremetal_is_configured(c);
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_check *ck = &c->services[s].check;

		if (!c->services[s].used)
			continue;
		assert_int_equal(ck->kind, CFG_CHECK_TCP);
		assert_int_equal(ck->interval_s, 2);
		assert_int_equal(ck->timeout_s, 1);
		assert_int_equal(ck->rise, 2);
		assert_int_equal(ck->fall, 3);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(lab_conf_applies_cleanly, setup_vdev, teardown),
		cmocka_unit_test_setup_teardown(baremetal_conf_every_line_is_accepted, setup_pci,
						teardown),
		cmocka_unit_test_setup_teardown(baremetal_conf_applies_as_a_file, setup_pci,
						teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s CONFDIR\n", argv[0]);
		return 2;
	}
	conf_dir = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
