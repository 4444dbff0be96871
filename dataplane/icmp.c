/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>

#include "icmp.h"
#include "nat.h"

void icmp_echo_reply(uint8_t *frame, const struct pkt_meta *m)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	uint32_t a = nat_rd32(ip + 12);

	nat_wr32(ip + 12, nat_rd32(ip + 16));
	nat_wr32(ip + 16, a);
	ip[8] = 64;
	nat_ip_csum_set(ip);
	/* Type 8 -> 0 changes one 16-bit word of the ICMP header. */
	nat_wr16(icmp + 2, nat_csum16(nat_rd16(icmp + 2), nat_rd16(icmp), 0));
	icmp[0] = 0;
	icmp[1] = 0;
}

static void icmp_ip_header(uint8_t *ip, uint32_t len, uint8_t proto, uint32_t src, uint32_t dst)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	nat_wr16(ip + 2, rte_cpu_to_be_16((uint16_t)len));
	nat_wr16(ip + 6, rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG));
	ip[8] = 64;
	ip[9] = proto;
	nat_wr32(ip + 12, src);
	nat_wr32(ip + 16, dst);
	nat_ip_csum_set(ip);
}

uint32_t icmp_error_build(uint8_t *out, uint32_t room, uint8_t type, uint8_t code, uint16_t mtu,
			  uint32_t src, const uint8_t *orig, uint32_t orig_len)
{
	uint32_t quote = orig_len, len;
	uint8_t *icmp = out + 20;

	if (quote > ICMP_ERROR_MAX_IP - 28)
		quote = ICMP_ERROR_MAX_IP - 28;
	len = 28 + quote;
	if (room < len || orig_len < 20)
		return 0;
	memset(icmp, 0, 8);
	icmp[0] = type;
	icmp[1] = code;
	if (type == 3 && code == 4)
		nat_wr16(icmp + 6, rte_cpu_to_be_16(mtu));
	memcpy(icmp + 8, orig, quote);
	nat_wr16(icmp + 2, nat_csum_full(icmp, 8 + quote, 0));
	icmp_ip_header(out, len, IPPROTO_ICMP, src, nat_rd32(orig + 12));
	return len;
}

/* The TCP checksum of the @len-byte segment at @tcp behind the IP header @ip. */
static uint16_t icmp_tcp_csum(const uint8_t *ip, const uint8_t *tcp, uint16_t len)
{
	uint32_t sum = (uint32_t)nat_rd16(ip + 12) + nat_rd16(ip + 14) + nat_rd16(ip + 16) +
		       nat_rd16(ip + 18) + rte_cpu_to_be_16(IPPROTO_TCP) + rte_cpu_to_be_16(len);

	return nat_csum_full(tcp, len, sum);
}

uint32_t icmp_tcp_rst(uint8_t *frame, const struct pkt_meta *m)
{
	uint8_t *ip = frame + m->l3_off;
	uint8_t *tcp = frame + m->l4_off;
	uint32_t src = nat_rd32(ip + 16), dst = nat_rd32(ip + 12);
	uint16_t sport = nat_rd16(tcp + 2), dport = nat_rd16(tcp);
	uint32_t seq = rte_be_to_cpu_32(nat_rd32(tcp + 4));
	uint32_t ack = rte_be_to_cpu_32(nat_rd32(tcp + 8));
	uint32_t seglen = m->l4_len - m->tcp_hlen;
	uint8_t flags = m->tcp_flags;
	uint8_t *nip = frame + 14;
	uint8_t *ntcp = nip + 20;

	if (flags & 0x02) /* SYN counts as one */
		seglen++;
	if (flags & 0x01) /* FIN too */
		seglen++;
	memset(ntcp, 0, 20);
	nat_wr16(ntcp, sport);
	nat_wr16(ntcp + 2, dport);
	if (flags & 0x10) {
		nat_wr32(ntcp + 4, rte_cpu_to_be_32(ack));
		ntcp[13] = 0x04;
	} else {
		nat_wr32(ntcp + 8, rte_cpu_to_be_32(seq + seglen));
		ntcp[13] = 0x14;
	}
	ntcp[12] = 5 << 4;
	icmp_ip_header(nip, 40, IPPROTO_TCP, src, dst);
	nat_wr16(ntcp + 16, icmp_tcp_csum(nip, ntcp, 20));
	return 40;
}

uint32_t icmp_probe_syn(uint8_t *out, uint32_t room, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t isn)
{
	uint8_t *tcp = out + 20;

	if (room < ICMP_PROBE_SYN_LEN)
		return 0;
	memset(tcp, 0, 24);
	nat_wr16(tcp, sport);
	nat_wr16(tcp + 2, dport);
	nat_wr32(tcp + 4, rte_cpu_to_be_32(isn));
	tcp[12] = 6 << 4;
	tcp[13] = 0x02; /* SYN */
	nat_wr16(tcp + 14, rte_cpu_to_be_16(1024));
	tcp[20] = 2; /* MSS 536: any server accepts it, and the answer is small */
	tcp[21] = 4;
	nat_wr16(tcp + 22, rte_cpu_to_be_16(536));
	icmp_ip_header(out, ICMP_PROBE_SYN_LEN, IPPROTO_TCP, src, dst);
	nat_wr16(tcp + 16, icmp_tcp_csum(out, tcp, 24));
	return ICMP_PROBE_SYN_LEN;
}

uint32_t icmp_probe_echo(uint8_t *out, uint32_t room, uint32_t src, uint32_t dst, uint16_t id,
			 uint16_t seq)
{
	static const uint8_t data[8] = { 's', 'l', 'u', 'i', 'c', 'e', 'h', 'c' };
	uint8_t *icmp = out + 20;

	if (room < ICMP_PROBE_ECHO_LEN)
		return 0;
	memset(icmp, 0, 8);
	icmp[0] = 8;
	nat_wr16(icmp + 4, rte_cpu_to_be_16(id));
	nat_wr16(icmp + 6, rte_cpu_to_be_16(seq));
	memcpy(icmp + 8, data, sizeof(data));
	nat_wr16(icmp + 2, nat_csum_full(icmp, 16, 0));
	icmp_ip_header(out, ICMP_PROBE_ECHO_LEN, IPPROTO_ICMP, src, dst);
	return ICMP_PROBE_ECHO_LEN;
}
