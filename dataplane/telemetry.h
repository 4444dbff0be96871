/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * telemetry: Sluice's state as DPDK telemetry commands, for dpdk-telemetry.py
 * and anything else that speaks the telemetry socket
 * (/var/run/dpdk/PREFIX/dpdk_telemetry.v2):
 *
 *   /sluice/stats              = show stats
 *   /sluice/drops              = show drops
 *   /sluice/services[,NAME]    = show services [NAME]
 *   /sluice/backends[,SERVICE] = show backends [SERVICE]
 *   /sluice/snat               = show snat
 *
 * Each reply carries the values and keys of the "show ... --json" of the same
 * name (ctl_view.h computes them for both, "clear stats" included), within
 * what DPDK 22.11 telemetry can carry: true/false are 1/0, and since an array
 * cannot hold objects, a list of objects is an object keyed "0", "1", ... in
 * the order the show prints them. A list reply is
 *   {"count": N, "shown": M, "truncated": 0|1, "<what>": {"0": {...}, ...}}
 * because a reply is at most 16 KB: a list stops before the first entry that
 * would not fit, and count, shown and truncated say so. An unknown NAME or
 * SERVICE, or a parameter to a command that takes none, answers null.
 *
 * Threads: the callbacks run on DPDK's telemetry threads (one per connected
 * client), concurrently with the control thread. Each holds ctl_lock() (ctl.h)
 * from its cfg_current() until its reply is built; workers are never waited
 * for, and nothing here runs on a worker.
 */
#ifndef SLUICE_TELEMETRY_H
#define SLUICE_TELEMETRY_H

/*
 * Register the commands. Call once, after cfg_init() and the workers are set
 * up (a callback may run as soon as it is registered). 0 or -errno
 * (-ENOMEM, or -EINVAL if DPDK refused a name).
 */
int telemetry_init(void);

#endif
