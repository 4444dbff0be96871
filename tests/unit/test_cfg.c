/* SPDX-License-Identifier: BSD-3-Clause */
/* cfg: routes (longest prefix, connected vs static), port names, derived maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

#include <cmocka.h>

#include "cfg.h"
#include "frame.h"
#include "kmap.h"

static void addr_add(struct cfg *c, uint32_t ip, uint8_t plen, uint16_t port)
{
	c->addrs[c->naddrs++] = (struct cfg_addr){ .ip = tf_n32(ip), .plen = plen, .port = port };
}

static void route_add(struct cfg *c, uint32_t prefix, uint8_t plen, uint32_t gw, uint16_t port)
{
	c->routes[c->nroutes++] = (struct cfg_route){
		.prefix = tf_n32(prefix), .plen = plen, .gw = gw ? tf_n32(gw) : 0, .port = port
	};
}

static void expect_route(const struct cfg *c, uint32_t dst, uint16_t port, uint32_t nh)
{
	uint16_t p = 0xffff;
	uint32_t n = 0;

	assert_int_equal(cfg_route_lookup(c, tf_n32(dst), &p, &n), 0);
	assert_int_equal(p, port);
	assert_int_equal(n, tf_n32(nh));
}

static void expect_no_route(const struct cfg *c, uint32_t dst)
{
	uint16_t p;
	uint32_t n;

	assert_int_equal(cfg_route_lookup(c, tf_n32(dst), &p, &n), -ENETUNREACH);
}

static void new_config_has_defaults(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->to.tcp[CFG_TCP_ESTABLISHED], 7440);
	assert_true(c->to.tcp[CFG_TCP_SYN] > 0);
	assert_true(c->to.udp > 0);
	assert_int_equal(c->nfib, 0);
	assert_non_null(c->local);
	expect_no_route(c, TF_IP(8, 8, 8, 8));
	cfg_free(c);
}

static void route_lookup_takes_longest_prefix(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	addr_add(c, TF_IP(198, 18, 0, 1), 24, 0);
	addr_add(c, TF_IP(198, 19, 0, 1), 16, 1);
	route_add(c, TF_IP(172, 16, 0, 0), 12, TF_IP(198, 19, 0, 254), 1);
	route_add(c, TF_IP(172, 16, 5, 0), 24, TF_IP(198, 19, 0, 253), 1);
	route_add(c, TF_IP(172, 16, 5, 9), 32, TF_IP(198, 18, 0, 9), 0);
	assert_int_equal(cfg_derive(c), 0);
	/* Connected: the next hop is the destination itself. */
	expect_route(c, TF_IP(198, 18, 0, 77), 0, TF_IP(198, 18, 0, 77));
	expect_route(c, TF_IP(198, 19, 200, 3), 1, TF_IP(198, 19, 200, 3));
	/* Static, most specific first. */
	expect_route(c, TF_IP(172, 16, 5, 8), 1, TF_IP(198, 19, 0, 253));
	expect_route(c, TF_IP(172, 16, 5, 9), 0, TF_IP(198, 18, 0, 9));
	expect_route(c, TF_IP(172, 16, 6, 1), 1, TF_IP(198, 19, 0, 254));
	expect_route(c, TF_IP(172, 31, 255, 255), 1, TF_IP(198, 19, 0, 254));
	expect_no_route(c, TF_IP(172, 32, 0, 0));
	expect_no_route(c, TF_IP(198, 20, 0, 1));
	expect_no_route(c, TF_IP(0, 0, 0, 0));
	expect_no_route(c, TF_IP(255, 255, 255, 255));
	cfg_free(c);
}

static void default_route_catches_the_rest(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	addr_add(c, TF_IP(198, 18, 0, 1), 24, 0);
	route_add(c, 0, 0, TF_IP(198, 18, 0, 254), 0);
	route_add(c, TF_IP(10, 0, 0, 0), 8, TF_IP(198, 18, 0, 253), 0);
	assert_int_equal(cfg_derive(c), 0);
	expect_route(c, TF_IP(8, 8, 8, 8), 0, TF_IP(198, 18, 0, 254));
	expect_route(c, TF_IP(0, 0, 0, 0), 0, TF_IP(198, 18, 0, 254));
	expect_route(c, TF_IP(255, 255, 255, 255), 0, TF_IP(198, 18, 0, 254));
	expect_route(c, TF_IP(10, 1, 2, 3), 0, TF_IP(198, 18, 0, 253));
	expect_route(c, TF_IP(198, 18, 0, 5), 0, TF_IP(198, 18, 0, 5));
	cfg_free(c);
}

static void connected_route_wins_over_static_of_same_prefix(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	/* The static route comes first in the list, and still loses. */
	route_add(c, TF_IP(198, 18, 0, 0), 24, TF_IP(198, 19, 0, 9), 1);
	addr_add(c, TF_IP(198, 18, 0, 1), 24, 0);
	addr_add(c, TF_IP(198, 19, 0, 1), 24, 1);
	assert_int_equal(cfg_derive(c), 0);
	expect_route(c, TF_IP(198, 18, 0, 50), 0, TF_IP(198, 18, 0, 50));
	/* A longer static route still beats a connected one. */
	route_add(c, TF_IP(198, 18, 0, 128), 25, TF_IP(198, 19, 0, 9), 1);
	assert_int_equal(cfg_derive(c), 0);
	expect_route(c, TF_IP(198, 18, 0, 200), 1, TF_IP(198, 19, 0, 9));
	expect_route(c, TF_IP(198, 18, 0, 100), 0, TF_IP(198, 18, 0, 100));
	cfg_free(c);
}

static void port_is_found_by_name_id_or_device(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	c->ports[0].present = true;
	snprintf(c->ports[0].name, sizeof(c->ports[0].name), "ext");
	snprintf(c->ports[0].dev, sizeof(c->ports[0].dev), "net_af_packet0");
	c->ports[1].present = true;
	snprintf(c->ports[1].dev, sizeof(c->ports[1].dev), "0000:00:08.0");
	c->ports[3].present = false; /* named but not probed */
	snprintf(c->ports[3].name, sizeof(c->ports[3].name), "gone");
	c->nports = 2;
	assert_int_equal(cfg_port_find(c, "ext"), 0);
	assert_int_equal(cfg_port_find(c, "0"), 0);
	assert_int_equal(cfg_port_find(c, "1"), 1);
	assert_int_equal(cfg_port_find(c, "net_af_packet0"), 0);
	assert_int_equal(cfg_port_find(c, "0000:00:08.0"), 1);
	assert_int_equal(cfg_port_find(c, "2"), -1);
	assert_int_equal(cfg_port_find(c, "3"), -1);
	assert_int_equal(cfg_port_find(c, "16"), -1);
	assert_int_equal(cfg_port_find(c, "99999999999999999999"), -1);
	assert_int_equal(cfg_port_find(c, "gone"), -1);
	assert_int_equal(cfg_port_find(c, "int"), -1);
	assert_int_equal(cfg_port_find(c, ""), -1);
	cfg_free(c);
}

static void derive_marks_local_addresses(void **state)
{
	struct cfg *c = cfg_new();
	uint32_t v;

	(void)state;
	addr_add(c, TF_IP(198, 18, 0, 1), 24, 0);
	c->snat[7].used = true;
	c->snat[7].ip = tf_n32(TF_SNAT);
	c->snat[7].port = 1;
	c->services[2].used = true;
	c->services[2].vip = tf_n32(TF_IP(198, 18, 0, 1)); /* VIP on the own address */
	c->services[2].l4port = tf_n16(80);
	c->services[2].proto = IPPROTO_TCP;
	snprintf(c->services[2].name, sizeof(c->services[2].name), "web");
	assert_int_equal(cfg_derive(c), 0);
	assert_true(kmap_get(c->local, tf_n32(TF_IP(198, 18, 0, 1)), &v));
	assert_int_equal(v, CFG_LOCAL_OWN | CFG_LOCAL_VIP);
	assert_true(kmap_get(c->local, tf_n32(TF_SNAT), &v));
	assert_true(v & CFG_LOCAL_SNAT);
	assert_int_equal(CFG_LOCAL_SNAT_SLOT(v), 7);
	assert_false(kmap_get(c->local, tf_n32(TF_IP(198, 18, 0, 2)), &v));
	assert_true(kmap_get(
		c->svcmap, cfg_svc_key(tf_n32(TF_IP(198, 18, 0, 1)), tf_n16(80), IPPROTO_TCP), &v));
	assert_int_equal(v, 2);
	assert_false(kmap_get(
		c->svcmap, cfg_svc_key(tf_n32(TF_IP(198, 18, 0, 1)), tf_n16(80), IPPROTO_UDP), &v));
	assert_int_equal(cfg_service_find(c, "web"), 2);
	assert_int_equal(cfg_service_find(c, "mail"), -1);
	assert_int_equal(cfg_snat_find(c, tf_n32(TF_SNAT)), 7);
	assert_int_equal(cfg_snat_find(c, tf_n32(TF_VIP)), -1);
	/* ARP source: the own address covering the target, else the pool's. */
	assert_int_equal(cfg_port_addr(c, 0, tf_n32(TF_IP(198, 18, 0, 9))),
			 tf_n32(TF_IP(198, 18, 0, 1)));
	assert_int_equal(cfg_port_addr(c, 1, tf_n32(TF_IP(10, 1, 0, 9))), tf_n32(TF_SNAT));
	assert_int_equal(cfg_port_addr(c, 2, tf_n32(TF_IP(10, 1, 0, 9))), 0);
	cfg_free(c);
}

static void backend_find_matches_service_address_and_port(void **state)
{
	struct cfg *c = cfg_new();

	(void)state;
	c->backends[3] = (struct cfg_backend){ .used = true, .svc = 1, .ip = 5, .l4port = 80 };
	c->backends[9] = (struct cfg_backend){ .used = true, .svc = 2, .ip = 5, .l4port = 80 };
	assert_int_equal(cfg_backend_find(c, 1, 5, 80), 3);
	assert_int_equal(cfg_backend_find(c, 2, 5, 80), 9);
	assert_int_equal(cfg_backend_find(c, 1, 5, 81), -1);
	assert_int_equal(cfg_backend_find(c, 0, 5, 80), -1);
	cfg_free(c);
}

static void names_of_enums(void **state)
{
	(void)state;
	assert_string_equal(cfg_sched_name(CFG_SCHED_MAGLEV), "maglev");
	assert_string_equal(cfg_sched_name(CFG_SCHED_LC), "lc");
	assert_string_equal(cfg_sched_name(200), "?");
	assert_string_equal(cfg_backend_state_name(CFG_BACKEND_DRAIN), "drain");
	assert_string_equal(cfg_backend_state_name(3), "?");
	assert_string_equal(cfg_tcp_state_name(CFG_TCP_CLOSING), "closing");
	assert_string_equal(cfg_tcp_state_name(4), "udp");
	assert_string_equal(cfg_tcp_state_name(5), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(new_config_has_defaults),
		cmocka_unit_test(route_lookup_takes_longest_prefix),
		cmocka_unit_test(default_route_catches_the_rest),
		cmocka_unit_test(connected_route_wins_over_static_of_same_prefix),
		cmocka_unit_test(port_is_found_by_name_id_or_device),
		cmocka_unit_test(derive_marks_local_addresses),
		cmocka_unit_test(backend_find_matches_service_address_and_port),
		cmocka_unit_test(names_of_enums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
