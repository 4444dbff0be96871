/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tsrw: per-flow TCP timestamp rewriting, on one packet.
 *
 * A flow whose client SYN carried the timestamp option (FLOW_TS_SEEN) keeps
 * the newest TSval' it forwarded to the backend (f->ts_max), which the port
 * space turns into the high-water mark that later SYNs must pass (palloc.h).
 * A flow that is rewritten (FLOW_TS_REWRITE) shows the backend
 * TSval' = TSval + ts_off (mod 2^32) on every client packet, the offset fixed
 * at the SYN by palloc_ts_open(); the backend's TSecr, which echoes a TSval',
 * goes back to the client as TSecr - ts_off, exactly the client's own value.
 * Adding a constant keeps the order of a flow's TSvals, so PAWS on the flow
 * is unaffected. The backend's own TSval is never changed: SYN cookies keep
 * option bits in its low bits, and the client echoes it to the backend as is.
 *
 * Checksums are updated incrementally; the option may sit at any byte offset
 * (nat_tcp_add32()). Only the timestamp option Linux would use is touched
 * (pkt_tcp_options(): one of length 10; others are ignored, and a packet
 * with two is dropped before it gets here).
 */
#ifndef SLUICE_TSRW_H
#define SLUICE_TSRW_H

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "nat.h"
#include "pkt.h"
#include "tcpstate.h"

/*
 * How fast a flow's TSval' may advance: the credit grows by TSRW_RATE ticks
 * per ms (a 1 MHz clock, 1000 times the fastest RFC 7323 clock) up to
 * TSRW_CREDIT_MAX, and starts at TSRW_CREDIT_START at the SYN. A segment
 * whose TSval' would advance ts_max by more than the credit is dropped
 * (ts_implausible): forwarded, it could make the backend's ts_recent jump
 * where ts_max cannot follow it in signed 32-bit order, and a client could
 * then forge the proof of reuse, or push its address's clock half the 32-bit
 * space ahead of tuples the backends still hold.
 */
#define TSRW_RATE	  1000u
#define TSRW_CREDIT_START (1u << 20)
#define TSRW_CREDIT_MAX	  (1u << 30)

/* Start the rate limit of @f's TSvals at @now_ms (the SYN). */
static inline void tsrw_start(struct flow *f, uint64_t now_ms)
{
	f->ts_credit = TSRW_CREDIT_START;
	f->ts_raised = (uint32_t)now_ms;
}

/*
 * The timestamps of a packet of @f travelling in @dir at @now_ms, with its
 * TCP header at @tcp and metadata @pm (pm->tcp_ts != 0). TSecr is rewritten
 * only where it is valid, on segments with ACK set (RFC 7323 s3.2). Returns
 * false, touching nothing, for a client segment whose TSval' advances faster
 * than the credit allows: the caller drops it.
 */
static inline bool tsrw_packet(struct flow *f, uint8_t *tcp, const struct pkt_meta *pm,
			       enum flow_dir dir, uint64_t now_ms)
{
	if (dir == FLOW_DIR_FWD) {
		uint32_t off = (f->ts & FLOW_TS_REWRITE) ? f->ts_off : 0;
		uint32_t v = nat_rd32_host(tcp, pm->tcp_ts + 2u) + off;
		int32_t ahead = (int32_t)(v - f->ts_max);

		if (ahead > 0) {
			uint32_t dt = (uint32_t)now_ms - f->ts_raised;
			uint64_t credit = f->ts_credit + (uint64_t)dt * TSRW_RATE;

			if (credit > TSRW_CREDIT_MAX)
				credit = TSRW_CREDIT_MAX;
			if ((uint32_t)ahead > credit)
				return false;
			f->ts_credit = (uint32_t)credit - (uint32_t)ahead;
			f->ts_raised = (uint32_t)now_ms;
			f->ts_max = v;
		}
		if (off != 0)
			nat_tcp_add32(tcp, pm->tcp_ts + 2u, off);
	} else {
		/* The backend agreed to timestamps (RFC 7323: it answered the SYN
		 * with the option), so its TIME_WAIT will compare them. */
		f->ts |= FLOW_TS_BACKEND;
		if ((f->ts & FLOW_TS_REWRITE) && (pm->tcp_flags & TCPSTATE_ACK))
			nat_tcp_add32(tcp, pm->tcp_ts + 6u, -f->ts_off);
	}
	return true;
}

#endif
