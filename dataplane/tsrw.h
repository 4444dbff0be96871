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
 * (nat_tcp_add32()). Packets whose timestamp option is malformed
 * (pkt_meta.tcp_ts_bad) have tcp_ts 0 and are never touched.
 */
#ifndef SLUICE_TSRW_H
#define SLUICE_TSRW_H

#include <stdint.h>

#include "flow.h"
#include "nat.h"
#include "pkt.h"
#include "tcpstate.h"

/*
 * The timestamps of a packet of @f travelling in @dir, with its TCP header at
 * @tcp and metadata @pm (pm->tcp_ts != 0). TSecr is rewritten only where it
 * is valid, on segments with ACK set (RFC 7323 s3.2).
 */
static inline void tsrw_packet(struct flow *f, uint8_t *tcp, const struct pkt_meta *pm,
			       enum flow_dir dir)
{
	uint32_t v;

	if (dir == FLOW_DIR_FWD) {
		v = (f->ts & FLOW_TS_REWRITE) ? nat_tcp_add32(tcp, pm->tcp_ts + 2u, f->ts_off) :
						nat_rd32_host(tcp, pm->tcp_ts + 2u);
		if ((int32_t)(v - f->ts_max) > 0)
			f->ts_max = v;
	} else {
		/* The backend agreed to timestamps (RFC 7323: it answered the SYN
		 * with the option), so its TIME_WAIT will compare them. */
		f->ts |= FLOW_TS_BACKEND;
		if ((f->ts & FLOW_TS_REWRITE) && (pm->tcp_flags & TCPSTATE_ACK))
			nat_tcp_add32(tcp, pm->tcp_ts + 6u, -f->ts_off);
	}
}

#endif
