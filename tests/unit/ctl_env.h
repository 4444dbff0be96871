/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command language's test environment, without the EAL, shared by the
 * unit tests that configure Sluice the way an operator does (ctl_exec()):
 * two fake ports, one output buffer, ok() for a command that must be
 * accepted, ip4() for addresses. Include after cmocka.h.
 */
#ifndef SLUICE_TEST_CTL_ENV_H
#define SLUICE_TEST_CTL_ENV_H

#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "cfg.h"
#include "ctl.h"

static struct ctl_buf out;

/* @line is accepted; else the test fails with the reason. */
static inline void ok(const char *line)
{
	int ret = ctl_exec(line, false, &out);

	if (ret != 0)
		fail_msg("\"%s\" refused (%d): %s", line, ret, out.data ? out.data : "");
}

static inline uint32_t ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* A fresh published snapshot with two ports of these device names. */
static inline int ctl_env_ports(const char *dev0, const char *dev1)
{
	const char *const devs[] = { dev0, dev1 };
	static const struct rte_ether_addr macs[] = {
		{ { 0x02, 0, 0, 0, 0, 0x10 } },
		{ { 0x02, 0, 0, 0, 0, 0x11 } },
	};

	return cfg_init(2, devs, macs);
}

#endif
