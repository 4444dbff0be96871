/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcpstate: what the load balancer knows of a TCP connection's state.
 *
 * A pure function of the previous state, the flags seen so far and the new
 * segment, so it is unit-testable and cheap. It records who sent the first
 * FIN (the client or the backend): the port-space work needs it to decide
 * whether the backend will hold the tuple in TIME_WAIT.
 *
 * States (enum flow_class): SYN until the client acknowledges the backend's
 * SYN-ACK; ESTABLISHED; CLOSING once either side sent FIN; CLOSED once both
 * did, or on RST.
 */
#ifndef SLUICE_TCPSTATE_H
#define SLUICE_TCPSTATE_H

#include <stdint.h>

#include "flow.h"

#define TCPSTATE_SEEN_SYNACK	   0x01 /* backend answered the SYN */
#define TCPSTATE_SEEN_FIN_CLIENT   0x02
#define TCPSTATE_SEEN_FIN_BACKEND  0x04
#define TCPSTATE_SEEN_RST	   0x08
#define TCPSTATE_BACKEND_FIN_FIRST 0x10 /* backend's FIN came before the client's */
#define TCPSTATE_CLIENT_FIN_FIRST  0x20

#define TCPSTATE_FIN 0x01
#define TCPSTATE_SYN 0x02
#define TCPSTATE_RST 0x04
#define TCPSTATE_ACK 0x10

/*
 * Apply a segment with TCP @flags travelling in @dir to (@state, *@seen).
 * Returns the new state and updates *@seen.
 */
uint8_t tcpstate_next(uint8_t state, uint8_t *seen, enum flow_dir dir, uint8_t flags);

#endif
