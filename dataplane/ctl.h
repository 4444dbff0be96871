/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl: the command language and the control socket.
 *
 * One parser serves the config file (sluice -f), the socket (sluicectl) and
 * the tests: ctl_exec() takes one command line. Commands that change the
 * configuration edit a copy of the current snapshot and publish it only if
 * every step succeeded, so a refused command changes nothing. Everything here
 * runs on the control thread (the EAL main lcore); nothing here runs on a
 * worker.
 *
 * The control lock. Other threads read what the control thread changes: the
 * telemetry callbacks (DPDK's telemetry threads) read cfg_current(), the
 * per-lcore counters and the "clear stats" baselines. cfg_publish() frees the
 * old snapshot once the workers are past it (RCU covers workers only), so a
 * reader that is not a worker holds ctl_lock() from its cfg_current() until
 * it is done with the snapshot. The control thread holds it for each command
 * (ctl_exec() takes it), for ctl_tick(), and around anything else that
 * publishes a snapshot or writes a baseline (a health-check tick, say).
 * Workers never take it: nothing on the fast path waits for it. It is
 * recursive, so a holder may call ctl_exec() or ctl_tick(); hold it briefly
 * (one command, one tick, one telemetry reply), since cfg_publish() under it
 * waits for every worker's quiescent state.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A growable output buffer. */
struct ctl_buf {
	char *data;
	size_t len;
	size_t cap;
};

void ctl_buf_free(struct ctl_buf *b);
void ctl_buf_reset(struct ctl_buf *b);
__attribute__((format(printf, 2, 3))) void ctl_printf(struct ctl_buf *b, const char *fmt, ...);

/*
 * Execute one command line (comments and blank lines are no-ops). Output goes
 * to @out; with @json, "show" commands print one JSON document. Returns 0, or
 * -errno with a one-line reason in @out (no trailing newline) and nothing
 * changed.
 */
int ctl_exec(const char *line, bool json, struct ctl_buf *out);

/*
 * The control side's clock in ms (CLOCK_MONOTONIC): rates, client timeouts,
 * health-check schedules and the time a backend's health last changed. It
 * needs no EAL, unlike the workers' TSC clock.
 */
uint64_t ctl_clock_ms(void);

/* Take and release the control lock (see the top of this file). Never fail. */
void ctl_lock(void);
void ctl_unlock(void);

/*
 * Apply every line of @path in order. On the first error print
 * "PATH:LINE: reason" to @err and return -1; 0 when all applied.
 */
int ctl_apply_file(const char *path, FILE *err);

/* Create the control socket at @path (its directory too). 0 or -errno. */
int ctl_server_open(const char *path);

/* Serve clients for up to @timeout_ms. */
void ctl_server_poll(int timeout_ms);

/*
 * Once per second: sample counters for rates ("new flows/s"), free drained
 * SNAT slots. Takes the control lock.
 */
void ctl_tick(void);

void ctl_server_close(void);

#endif
