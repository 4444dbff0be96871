/* SPDX-License-Identifier: BSD-3-Clause */
#include "tcpstate.h"

static inline int tcpstate_after_eq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

uint8_t tcpstate_next(struct flow *f, enum flow_dir dir, const struct tcpstate_seg *s)
{
	uint16_t seen = f->tcp_seen;
	uint8_t flags = s->flags;
	uint8_t state;

	if (dir == FLOW_DIR_FWD && (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == TCPSTATE_SYN &&
	    f->state == FLOW_SYN && !(seen & TCPSTATE_SEEN_SYNACK))
		f->isn_c = s->seq;
	if (dir == FLOW_DIR_REV &&
	    (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == (TCPSTATE_SYN | TCPSTATE_ACK))
		seen |= TCPSTATE_SEEN_SYNACK;
	/* ACKs of the other side's FIN. */
	if ((flags & TCPSTATE_ACK) && !(flags & TCPSTATE_RST)) {
		if (dir == FLOW_DIR_REV && (seen & TCPSTATE_SEEN_FIN_CLIENT) &&
		    tcpstate_after_eq(s->ack, f->fin_c + 1))
			seen |= TCPSTATE_FIN_CLIENT_ACKED;
		if (dir == FLOW_DIR_FWD && (seen & TCPSTATE_SEEN_FIN_BACKEND) &&
		    tcpstate_after_eq(s->ack, f->fin_b + 1))
			seen |= TCPSTATE_FIN_BACKEND_ACKED;
	}
	/* SYN+FIN is not a close (Linux drops it in LISTEN): ignore its FIN, or a
	 * client could make the backend look passive and skip the quarantine. */
	if ((flags & TCPSTATE_FIN) && !(flags & (TCPSTATE_RST | TCPSTATE_SYN))) {
		/* The FIN occupies the sequence number after the data. */
		uint32_t fin = s->seq + s->len;

		if (dir == FLOW_DIR_FWD) {
			if (!(seen & TCPSTATE_SEEN_FIN_CLIENT)) {
				if (!(seen & TCPSTATE_SEEN_FIN_BACKEND))
					seen |= TCPSTATE_CLIENT_FIN_FIRST;
				seen |= TCPSTATE_SEEN_FIN_CLIENT;
				f->fin_c = fin;
			} else {
				seen |= TCPSTATE_FIN_RETRANSMITTED;
			}
		} else if (!(seen & TCPSTATE_SEEN_FIN_BACKEND)) {
			if (!(seen & TCPSTATE_SEEN_FIN_CLIENT))
				seen |= TCPSTATE_BACKEND_FIN_FIRST;
			else if ((flags & TCPSTATE_ACK) && s->ack == f->fin_c + 1)
				/* Exactly: a passive backend acknowledges the client's FIN and
				 * nothing beyond it; a stale FIN it never accepted does not
				 * count. */
				seen |= TCPSTATE_BACKEND_PASSIVE;
			seen |= TCPSTATE_SEEN_FIN_BACKEND;
			f->fin_b = fin;
		} else {
			seen |= TCPSTATE_FIN_RETRANSMITTED;
		}
	}
	/* After a reset nothing reopens the flow; a new SYN makes a new flow. A
	 * reset after both FINs does not undo TCPSTATE_TW: a backend with
	 * tcp_rfc1337 keeps its TIME_WAIT. */
	if (flags & TCPSTATE_RST) {
		seen |= TCPSTATE_SEEN_RST;
	} else if ((seen & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND |
			    TCPSTATE_BACKEND_PASSIVE | TCPSTATE_SEEN_RST)) ==
		   (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND)) {
		seen |= TCPSTATE_TW;
	}
	f->tcp_seen = seen;
	if (seen & TCPSTATE_SEEN_RST)
		return FLOW_CLOSED;
	if ((seen & (TCPSTATE_FIN_CLIENT_ACKED | TCPSTATE_FIN_BACKEND_ACKED)) ==
	    (TCPSTATE_FIN_CLIENT_ACKED | TCPSTATE_FIN_BACKEND_ACKED))
		return FLOW_CLOSED;
	if (seen & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND))
		return FLOW_CLOSING;
	state = f->state;
	if (state == FLOW_SYN) {
		/* The client's ACK of the SYN-ACK completes the handshake. */
		if (dir == FLOW_DIR_FWD && (seen & TCPSTATE_SEEN_SYNACK) &&
		    (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == TCPSTATE_ACK)
			return FLOW_ESTABLISHED;
		return FLOW_SYN;
	}
	return state == FLOW_CLOSED ? FLOW_CLOSED : FLOW_ESTABLISHED;
}
