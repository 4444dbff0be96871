/* SPDX-License-Identifier: BSD-3-Clause */
#include "tcpstate.h"

uint8_t tcpstate_next(uint8_t state, uint8_t *seen, enum flow_dir dir, uint8_t flags)
{
	/* After a reset nothing reopens the flow; a new SYN makes a new flow. */
	if ((flags & TCPSTATE_RST) || (*seen & TCPSTATE_SEEN_RST)) {
		*seen |= TCPSTATE_SEEN_RST;
		return FLOW_CLOSED;
	}
	if (dir == FLOW_DIR_REV &&
	    (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == (TCPSTATE_SYN | TCPSTATE_ACK))
		*seen |= TCPSTATE_SEEN_SYNACK;
	if (flags & TCPSTATE_FIN) {
		uint8_t mine =
			dir == FLOW_DIR_FWD ? TCPSTATE_SEEN_FIN_CLIENT : TCPSTATE_SEEN_FIN_BACKEND;

		if (!(*seen & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND)))
			*seen |= dir == FLOW_DIR_FWD ? TCPSTATE_CLIENT_FIN_FIRST :
						       TCPSTATE_BACKEND_FIN_FIRST;
		*seen |= mine;
	}
	if ((*seen & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND)) ==
	    (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND))
		return FLOW_CLOSED;
	if (*seen & (TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_SEEN_FIN_BACKEND))
		return FLOW_CLOSING;
	if (state == FLOW_SYN) {
		/* The client's ACK of the SYN-ACK completes the handshake. */
		if (dir == FLOW_DIR_FWD && (*seen & TCPSTATE_SEEN_SYNACK) &&
		    (flags & (TCPSTATE_SYN | TCPSTATE_ACK)) == TCPSTATE_ACK)
			return FLOW_ESTABLISHED;
		return FLOW_SYN;
	}
	return state == FLOW_CLOSED ? FLOW_CLOSED : FLOW_ESTABLISHED;
}
