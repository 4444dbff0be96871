/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcpstate: what the load balancer knows of a TCP connection's state, and of
 * how it closed.
 *
 * A pure function of the flow's tracking fields and the new segment, so it is
 * unit-testable and cheap. States (enum flow_class): SYN until the client
 * acknowledges the backend's SYN-ACK; ESTABLISHED; CLOSING once either side
 * sent FIN; CLOSED once both FINs were sent and acknowledged, or on RST.
 *
 * Close tracking, for the TIME_WAIT quarantine. The side that sends its FIN
 * before it has received the other side's FIN is an active closer and ends in
 * TIME_WAIT (RFC 793: FIN-WAIT-1 -> FIN-WAIT-2 or CLOSING -> TIME-WAIT). The
 * backend is a passive closer exactly when its FIN acknowledges the client's
 * FIN; in every other case (it closed first, or both closed at once) it will
 * hold the tuple in TIME_WAIT once it has both received the client's FIN and
 * had its own acknowledged. TCPSTATE_TW is set when the load balancer has
 * forwarded both FINs and the backend was not passive: from then on the
 * backend is in, or about to enter, TIME_WAIT, and every segment it receives
 * re-arms that state (Linux tcp_timewait_state_process()). Sequence numbers
 * are compared as signed 32-bit differences.
 */
#ifndef SLUICE_TCPSTATE_H
#define SLUICE_TCPSTATE_H

#include <stdint.h>

#include "flow.h"

#define TCPSTATE_SEEN_SYNACK	   0x0001 /* backend answered the SYN */
#define TCPSTATE_SEEN_FIN_CLIENT   0x0002
#define TCPSTATE_SEEN_FIN_BACKEND  0x0004
#define TCPSTATE_SEEN_RST	   0x0008
#define TCPSTATE_BACKEND_FIN_FIRST 0x0010 /* backend's FIN came before the client's */
#define TCPSTATE_CLIENT_FIN_FIRST  0x0020
#define TCPSTATE_BACKEND_PASSIVE   0x0040 /* backend's FIN acknowledged the client's */
#define TCPSTATE_FIN_CLIENT_ACKED  0x0080 /* the backend acknowledged the client's FIN */
#define TCPSTATE_FIN_BACKEND_ACKED 0x0100 /* the client acknowledged the backend's FIN */
#define TCPSTATE_TW		   0x0200 /* the backend holds (or enters) TIME_WAIT */
#define TCPSTATE_FIN_RETRANSMITTED 0x0400 /* a FIN was seen again */

/* TCP header flag bits. */
#define TCPSTATE_FIN 0x01
#define TCPSTATE_SYN 0x02
#define TCPSTATE_RST 0x04
#define TCPSTATE_ACK 0x10

/* A segment as close tracking needs it; sequence numbers in host order. */
struct tcpstate_seg {
	uint8_t flags;
	uint32_t seq, ack;
	uint32_t len; /* payload bytes */
};

/*
 * Apply @s travelling in @dir to @f's state and tracking fields (f->state,
 * f->tcp_seen, f->isn_c, f->fin_c, f->fin_b). Returns the new state; does not
 * store it in f->state (the caller moves the flow between classes).
 */
uint8_t tcpstate_next(struct flow *f, enum flow_dir dir, const struct tcpstate_seg *s);

/* Does a client segment with @flags and @seq retransmit @f's first SYN? */
static inline int tcpstate_syn_retransmit(const struct flow *f, uint8_t flags, uint32_t seq)
{
	return (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == TCPSTATE_SYN && seq == f->isn_c;
}

/*
 * A flow ending now whose backend may be in TIME_WAIT although its quarantine
 * never started: it sent its FIN as an active closer and the client's FIN was
 * never seen (idle-out, reset of a draining flow...). Err on the safe side.
 */
static inline int tcpstate_end_may_tw(uint16_t seen)
{
	return (seen & (TCPSTATE_SEEN_FIN_BACKEND | TCPSTATE_BACKEND_PASSIVE | TCPSTATE_SEEN_RST |
			TCPSTATE_TW)) == TCPSTATE_SEEN_FIN_BACKEND;
}

#endif
