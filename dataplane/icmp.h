/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * icmp: packets the appliance answers or originates itself, built on plain
 * buffers: echo replies, ICMP errors (time exceeded, port unreachable) and
 * TCP resets. The worker supplies the buffers and sends the results; these
 * functions never read past the lengths they are given.
 */
#ifndef SLUICE_ICMP_H
#define SLUICE_ICMP_H

#include <stdint.h>

#include "pkt.h"

/* Largest ICMP error we build: IP + ICMP + quoted data <= 576 (RFC 1812). */
#define ICMP_ERROR_MAX_IP 576u

/*
 * Turn the echo request in @frame (described by @m) into an echo reply in
 * place: addresses swapped, TTL 64, checksums fixed. The Ethernet header is
 * left to the caller.
 */
void icmp_echo_reply(uint8_t *frame, const struct pkt_meta *m);

/*
 * Build an IPv4 ICMP error of @type/@code from @src to the sender of the
 * packet at @orig (@orig_len bytes of IP packet) into @out (room @room bytes,
 * from the IP header on). @mtu goes in the next-hop MTU field (type 3 code 4).
 * Returns the IP length written, or 0 if @room is too small.
 */
uint32_t icmp_error_build(uint8_t *out, uint32_t room, uint8_t type, uint8_t code, uint16_t mtu,
			  uint32_t src, const uint8_t *orig, uint32_t orig_len);

/*
 * Turn the TCP segment in @frame into the RST that answers it (RFC 793
 * "Reset Generation"), in place: addresses and ports swapped, no payload or
 * options, TTL 64. Returns the new IP length (the frame is 14 bytes more).
 */
uint32_t icmp_tcp_rst(uint8_t *frame, const struct pkt_meta *m);

/* Lengths of the health-check probes below (IP header on). */
#define ICMP_PROBE_SYN_LEN  44u /* IP 20 + TCP 20 + MSS option 4 */
#define ICMP_PROBE_ECHO_LEN 36u /* IP 20 + ICMP 8 + 8 bytes of data */
#define ICMP_PROBE_MAX_LEN  ICMP_PROBE_SYN_LEN

/*
 * Health-check probes (hc.h) into @out (room @room bytes, from the IP header
 * on). A TCP SYN from @src:@sport to @dst:@dport with sequence @isn and an
 * MSS option; an ICMP echo request from @src to @dst with @id and @seq.
 * Addresses and ports in network byte order, @isn/@id/@seq in host order.
 * Return the IP length written, or 0 if @room is too small.
 */
uint32_t icmp_probe_syn(uint8_t *out, uint32_t room, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t isn);
uint32_t icmp_probe_echo(uint8_t *out, uint32_t room, uint32_t src, uint32_t dst, uint16_t id,
			 uint16_t seq);

#endif
