/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl internals shared by ctl.c (parser, table, socket), ctl_cmd.c (commands
 * that change the configuration), ctl_show.c (observation) and ctl_view.c
 * (the values the shows print, ctl_view.h). Control thread only, like
 * everything in ctl.h, and with the control lock held (ctl_exec() and
 * ctl_tick() take it).
 *
 * A command handler gets the words after the command's own words. Handlers of
 * editing commands get x->c, a private copy of the current snapshot that
 * ctl_exec() derives and publishes if the handler returns 0, and frees
 * otherwise; every other handler gets the current snapshot, read-only. A
 * handler refuses with ctl_fail(), which replaces the output with a one-line
 * reason prefixed by the command words.
 */
#ifndef SLUICE_CTL_PRIV_H
#define SLUICE_CTL_PRIV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "ctl.h"
#include "ctl_view.h"

struct ctl_ctx {
	struct cfg *c;	     /* edit: the copy; otherwise cfg_current() */
	struct ctl_buf *out; /* output, or the reason on refusal */
	bool json;	     /* "show": one JSON document */
	const char *cmd;     /* the command words, for reasons */
	const char *args;    /* its arguments, for the usage line */
};

typedef int (*ctl_cmd_fn)(struct ctl_ctx *x, int argc, char **argv);

/* Replace the output with "CMD: reason"; returns @err (a negative errno). */
__attribute__((format(printf, 3, 4))) int ctl_fail(struct ctl_ctx *x, int err, const char *fmt,
						   ...);
__attribute__((format(printf, 2, 0))) void ctl_vprintf(struct ctl_buf *b, const char *fmt,
						       va_list ap);
/* The standard refusal for a malformed command: "CMD: usage: CMD ARGS". */
int ctl_usage(struct ctl_ctx *x);

/* Strict parsers; 0 or -EINVAL. Addresses come out in network byte order. */
int ctl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v);
int ctl_parse_ip(const char *s, uint32_t *ip);
int ctl_parse_prefix(const char *s, uint32_t *prefix, uint8_t *plen); /* "default" too */
int ctl_parse_ipport(const char *s, uint32_t *ip, uint16_t *l4port);
int ctl_parse_mac(const char *s, struct rte_ether_addr *mac);
int ctl_parse_onoff(const char *s, bool *on);
bool ctl_name_valid(const char *s);

/* "tcp", "udp", or "?". */
const char *ctl_proto_name(uint8_t proto);
/* How a port is shown: its interface name, else its device name. */
const char *ctl_port_label(const struct cfg *c, uint16_t port);
void ctl_json_str(struct ctl_buf *b, const char *s);

/* Rates sampled by ctl_tick(): new flows per second of service @slot. */
uint64_t ctl_rate_service(int slot, uint32_t gen);
/* Of ctl_view.c, with the counters: flows ever created by service @slot on
 * all lcores (raw: no baseline); freeing the slots of deleted SNAT addresses
 * whose last flow has ended; the handler of "clear stats". */
uint64_t ctl_stats_service_total(const struct cfg *c, int slot);
void ctl_snat_reap(void);
int ctl_clear_stats(struct ctl_ctx *x, int argc, char **argv);

/* Handlers of ctl_cmd.c. */
int ctl_cmd_interface(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_addr_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_addr_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_route_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_route_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_neigh_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_neigh_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_snat_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_snat_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_service_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_service_set(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_service_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_backend_add(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_backend_set(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_backend_del(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_set_tcp(struct ctl_ctx *x, int argc, char **argv);
int ctl_cmd_set_udp(struct ctl_ctx *x, int argc, char **argv);

/* Handlers of ctl_show.c. */
int ctl_show_version(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_interfaces(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_addrs(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_routes(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_neigh(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_services(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_backends(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_snat(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_portspace(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_flows(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_stats(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_drops(struct ctl_ctx *x, int argc, char **argv);
int ctl_show_settings(struct ctl_ctx *x, int argc, char **argv);

#endif
