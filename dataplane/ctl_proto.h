/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket protocol between sluicectl and the daemon.
 *
 * A UNIX stream socket. The client sends one request: struct ctl_req
 * followed by req.len bytes of command text (one command line, no newline).
 * The daemon answers with struct ctl_rep followed by rep.len bytes: on
 * success (status 0) the command's output, on refusal (status = -errno) a
 * one-line reason. A connection may carry several requests in turn.
 * Integers are in host byte order (the socket is local).
 */
#ifndef SLUICE_CTL_PROTO_H
#define SLUICE_CTL_PROTO_H

#include <stdint.h>

#define CTL_PROTO_MAGIC	   0x534c4331u /* "SLC1" */
#define CTL_DEFAULT_SOCKET "/run/sluice/sluice.sock"
#define CTL_REQ_MAX	   4096u       /* longest command line */
#define CTL_REP_MAX	   (64u << 20) /* longest reply */

#define CTL_REQ_JSON 0x1u

struct ctl_req {
	uint32_t magic;
	uint32_t id;
	uint32_t flags; /* CTL_REQ_* */
	uint32_t len;
};

struct ctl_rep {
	uint32_t magic;
	uint32_t id;
	int32_t status; /* 0 or -errno */
	uint32_t len;
};

#endif
