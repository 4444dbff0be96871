/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_dp: the worker's own loop, worker_poll(), on one lcore, fed through
 * two ring ethdevs (the net_ring driver, rte_eth_from_rings()): port 0 "ext"
 * faces the clients, port 1 "int" the backends, as in conf/lab.conf. The
 * configuration goes in through ctl_exec(), the command language sluicectl
 * speaks; the daemon's code does everything else: rx burst, parse, flow
 * lookup, scheduling, SNAT tuple allocation, TIME_WAIT quarantine,
 * timestamps, NAT, neighbour lookup, buffered tx burst, timers and expiry.
 *
 * The harness stands in for the clients, the backends and the NIC: it builds
 * frames into mbufs, enqueues them on a port's rx ring, calls worker_poll()
 * until the frames come out of the tx rings, checks what came out, and frees
 * it. Only worker_poll() is timed (rte_rdtsc() around each call, summed over
 * the run), so the cycles per packet are the worker's alone, burst I/O on the
 * rings included. The ring driver neither allocates mbufs on rx nor frees
 * them on tx, which a NIC driver does; the floor pays the same.
 *
 * Cases (see tools/bench --help and README "Benchmark"):
 *   floor   rx burst, swap MACs, tx burst of the same frames, on one port
 *   est     established TCP flows, both directions, timestamp rewriting on
 *           (service on port 80) and off (port 81), 1k/100k/1M flows: half
 *           the flows of each service, the two interleaved in one table;
 *           bursts of 32 flows drawn at random, the rows take turns
 *   conn    whole TCP connections, 7 packets: SYN, SYN-ACK, ACK, request
 *           (100 bytes), response (300 bytes), FIN/ACK from the backend,
 *           the client's ACK of it; in rounds of 256 connections
 *   udp     UDP request/response flows (a new flow for each request)
 * The conn and udp cases run in steady state: timeouts are 1 s (closing
 * state, UDP) and the quarantine 1 s, and the measured part starts after a
 * warm-up longer than both, so flow expiry and quarantine expiry run at the
 * rate of creation within the timed worker_poll() calls. Their cost per flow
 * does not depend on those durations; the table sizes do.
 *
 * The clients are 198.18.128.0/17 behind a gateway (port, address) of
 * (1 << 15) * 64000 distinct tuples, the backends 16 addresses on port int,
 * the SNAT pool 16 addresses: all static neighbours, no ARP.
 *
 * Output: a JSON document on stdout (tools/bench formats it); progress on
 * stderr. Exit status 0 when every case ran, 1 if the dataplane misbehaved
 * (a frame lost, refused or wrong), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "cfg.h"
#include "ctl.h"
#include "flow.h"
#include "palloc.h"
#include "port.h"
#include "stats.h"
#include "tcpstate.h"
#include "worker.h"

#include "frame.h" /* tests/unit: frame builder */

#define BN_RING	     4096u
#define BN_STEP	     256u /* frames in flight per step: 8 bursts */
#define BN_BACKENDS  16u
#define BN_SNATS     16u
#define BN_CLIENT    TF_IP(198, 18, 128, 0)
#define BN_GATEWAY   TF_IP(198, 18, 0, 254)
#define BN_VIP	     TF_IP(198, 18, 0, 100)
#define BN_BACKEND   TF_IP(198, 19, 0, 11)
#define BN_SNAT	     TF_IP(198, 19, 0, 101)
#define BN_PORT_ON   80
#define BN_PORT_OFF  81
#define BN_PORT_CONN 82
#define BN_PORT_UDP  53
#define BN_BPORT_TCP 8080
#define BN_BPORT_UDP 5353
#define BN_REQ	     100u /* request payload, bytes */
#define BN_RESP	     300u /* response payload */
#define BN_UDP_REQ   40u
#define BN_UDP_RESP  120u
#define BN_PSH	     0x08
#define BN_WARMUP_MS 2600u /* closing timeout + quarantine + timer ticks */
#define BN_ISN_MUL   2654435761u

/* A flow the harness drives: its client tuple is a function of id. */
struct bn_flow {
	uint32_t id;
	uint32_t sip, bip; /* host order, learned from the SYN the backend got */
	uint16_t sport, bport;
	uint32_t tsv_b; /* the TSval the backend saw (echoed in its TSecr) */
	uint8_t alive;
};

/* The cells of the table: cycles and packets of the timed worker_poll() calls. */
struct bn_cell {
	uint64_t cycles, packets, flows;
};

struct bn {
	struct worker *w;
	struct rte_mempool *pool;
	struct rte_ring *rxr[2], *txr[2];
	double hz;
	bool quick;
	uint64_t iters; /* timed packets per est row */
	uint64_t next_id;
	uint64_t seed;	  /* for tf_rand() */
	uint32_t isn_inv; /* BN_ISN_MUL^-1 mod 2^32: a client ISN names its flow */
	bool misbehaved;
	uint64_t poll_cycles; /* of every timed worker_poll() */
	struct rte_mbuf *out[2][BN_STEP * 2];
	uint32_t nout[2];
	FILE *js;
	bool first_case;
};

static void bn_die(const char *what)
{
	fprintf(stderr, "bench_dp: %s\n", what);
	exit(1);
}

static void bn_ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bn_ctl(const char *fmt, ...)
{
	struct ctl_buf out = { 0 };
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (ctl_exec(line, false, &out) < 0) {
		fprintf(stderr, "bench_dp: \"%s\": %.*s\n", line, (int)out.len, out.data);
		exit(1);
	}
	ctl_buf_free(&out);
}

static char *bn_ip(uint32_t host, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", host >> 24, (host >> 16) & 255, (host >> 8) & 255,
		 host & 255);
	return buf;
}

/* ---- set-up ------------------------------------------------------------ */

static void bn_ports(struct bn *b)
{
	const char *devs[2] = { "bench_ext", "bench_int" };
	struct rte_ether_addr macs[2];

	for (int p = 0; p < 2; p++) {
		char name[32];
		int id;

		snprintf(name, sizeof(name), "bn_rx%d", p);
		b->rxr[p] = rte_ring_create(name, BN_RING, (int)rte_socket_id(),
					    RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "bn_tx%d", p);
		b->txr[p] = rte_ring_create(name, BN_RING, (int)rte_socket_id(),
					    RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (b->rxr[p] == NULL || b->txr[p] == NULL)
			bn_die("ring creation failed");
		id = rte_eth_from_rings(devs[p], &b->rxr[p], 1, &b->txr[p], 1, rte_socket_id());
		if (id != p)
			bn_die("rte_eth_from_rings gave an unexpected port id");
		rte_eth_macaddr_get((uint16_t)p, &macs[p]);
	}
	cfg_rcu = rte_zmalloc("rcu", rte_rcu_qsbr_get_memsize(1), RTE_CACHE_LINE_SIZE);
	if (cfg_rcu == NULL || rte_rcu_qsbr_init(cfg_rcu, 1) != 0)
		bn_die("RCU init failed");
	/* No reader ever goes online: a publish never waits (one thread). */
	if (cfg_init(2, devs, macs) < 0)
		bn_die("cfg_init failed");
	b->pool = port_pool((int)rte_socket_id(), 2, 1);
	if (b->pool == NULL)
		bn_die("mbuf pool");
}

static void bn_config(void)
{
	char a[16], g[16];

	bn_ctl("interface 0 name ext");
	bn_ctl("interface 1 name int");
	bn_ctl("addr add 198.18.0.1/24 dev ext");
	bn_ctl("addr add 198.19.0.1/24 dev int");
	bn_ctl("route add 198.18.128.0/17 via %s dev ext", bn_ip(BN_GATEWAY, g));
	bn_ctl("neigh add %s lladdr 02:00:00:00:01:fe dev ext", g);
	for (uint32_t i = 0; i < BN_BACKENDS; i++)
		bn_ctl("neigh add %s lladdr 02:00:00:00:02:%02x dev int", bn_ip(BN_BACKEND + i, a),
		       i);
	for (uint32_t i = 0; i < BN_SNATS; i++)
		bn_ctl("snat add %s dev int", bn_ip(BN_SNAT + i, a));
	bn_ctl("service add est-on vip 198.18.0.100 port %d proto tcp sched rr", BN_PORT_ON);
	bn_ctl("service add est-off vip 198.18.0.100 port %d proto tcp sched rr", BN_PORT_OFF);
	bn_ctl("service set est-off ts-rewrite off");
	bn_ctl("service add conn vip 198.18.0.100 port %d proto tcp sched rr", BN_PORT_CONN);
	bn_ctl("service add dns vip 198.18.0.100 port %d proto udp sched rr", BN_PORT_UDP);
	for (uint32_t i = 0; i < BN_BACKENDS; i++) {
		bn_ip(BN_BACKEND + i, a);
		bn_ctl("backend add est-on %s:%d", a, BN_BPORT_TCP);
		bn_ctl("backend add est-off %s:%d", a, BN_BPORT_TCP);
		bn_ctl("backend add conn %s:%d", a, BN_BPORT_TCP);
		bn_ctl("backend add dns %s:%d", a, BN_BPORT_UDP);
	}
	bn_ctl("set tcp timeout closing 1");
	bn_ctl("set tcp tw-quarantine 1");
	bn_ctl("set udp timeout 1");
}

/* A worker sized for @flows flows; the previous one, if any, is freed. */
static void bn_worker(struct bn *b, uint32_t flows)
{
	struct worker_limits lim = {
		.max_flows = flows,
		.max_spaces = 4096,
		.max_quarantine = 2 * flows,
	};

	worker_free(b->w);
	worker_list[0] = NULL;
	b->w = worker_create(rte_lcore_id(), 0, 1, &lim, b->pool);
	if (b->w == NULL)
		bn_die("worker_create failed (memory)");
	worker_list[0] = b->w;
	worker_count = 1;
	worker_start(b->w);
}

static void bn_ports_start(void)
{
	for (uint16_t p = 0; p < 2; p++)
		if (port_setup(p, 1) < 0)
			bn_die("port_setup failed");
}

/* ---- frames ------------------------------------------------------------ */

static inline uint32_t bn_cip(uint32_t id)
{
	return BN_CLIENT + (id & 0x7fff);
}

static inline uint16_t bn_cport(uint32_t id)
{
	return (uint16_t)(1024 + (id >> 15) % 64000);
}

static inline uint32_t bn_id_of(uint32_t cip, uint16_t cport)
{
	return (uint32_t)(cport - 1024) << 15 | (cip - BN_CLIENT);
}

static inline uint32_t bn_isn_c(uint32_t id)
{
	return id * BN_ISN_MUL;
}

static inline uint32_t bn_isn_b(uint32_t id)
{
	return ~id * 40503u;
}

static inline uint32_t bn_ts_c(uint32_t id)
{
	return id * 7919u + 12345u;
}

static inline uint32_t bn_ts_b(uint32_t id)
{
	return id * 31u + 777u;
}

/* An mbuf holding the @len bytes of frame @buf. */
static struct rte_mbuf *bn_mbuf_of(struct bn *b, const uint8_t *buf, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(b->pool);

	if (m == NULL)
		bn_die("out of mbufs");
	memcpy(rte_pktmbuf_mtod(m, void *), buf, len);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	return m;
}

static struct rte_mbuf *bn_mbuf(struct bn *b, const struct tf_spec *s)
{
	static uint8_t buf[TF_MAX];
	uint32_t len = tf_build(buf, s);

	return bn_mbuf_of(b, buf, len);
}

/* TCP stages of a connection, in order. */
enum bn_stage {
	BN_SYN,
	BN_SYNACK,
	BN_ACK,
	BN_REQUEST,
	BN_RESPONSE,
	BN_FIN_B,
	BN_ACK_FIN,
	BN_STAGES,
	BN_EST_REV = BN_STAGES, /* established: the backend's pure ACK */
};

static inline bool bn_from_client(int st)
{
	return st == BN_SYN || st == BN_ACK || st == BN_REQUEST || st == BN_ACK_FIN;
}

/* The frame of stage @st of flow @f toward VIP port @vport. */
static struct rte_mbuf *bn_tcp(struct bn *b, const struct bn_flow *f, int st, uint16_t vport)
{
	uint8_t syn_opts[20] = {
		2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7
	};
	uint8_t opts[12] = { 1, 1, 8, 10 };
	uint32_t id = f->id, ic = bn_isn_c(id), ib = bn_isn_b(id);
	struct tf_spec s = { .proto = IPPROTO_TCP, .opts = opts, .optlen = sizeof(opts) };

	if (bn_from_client(st)) {
		s.src = bn_cip(id);
		s.sport = bn_cport(id);
		s.dst = BN_VIP;
		s.dport = vport;
		tf_wr32(opts + 4, bn_ts_c(id));
		tf_wr32(opts + 8, bn_ts_b(id));
	} else {
		s.src = f->bip;
		s.sport = f->bport;
		s.dst = f->sip;
		s.dport = f->sport;
		tf_wr32(opts + 4, bn_ts_b(id));
		tf_wr32(opts + 8, f->tsv_b);
	}
	switch (st) {
	case BN_SYN:
		s.tcp_flags = TCPSTATE_SYN;
		s.seq = ic;
		s.opts = syn_opts;
		s.optlen = sizeof(syn_opts);
		tf_wr32(syn_opts + 8, bn_ts_c(id));
		break;
	case BN_SYNACK:
		s.tcp_flags = TCPSTATE_SYN | TCPSTATE_ACK;
		s.seq = ib;
		s.ack = ic + 1;
		break;
	case BN_ACK:
		s.tcp_flags = TCPSTATE_ACK;
		s.seq = ic + 1;
		s.ack = ib + 1;
		break;
	case BN_REQUEST:
		s.tcp_flags = TCPSTATE_ACK | BN_PSH;
		s.seq = ic + 1;
		s.ack = ib + 1;
		s.payload = BN_REQ;
		break;
	case BN_RESPONSE:
		s.tcp_flags = TCPSTATE_ACK | BN_PSH;
		s.seq = ib + 1;
		s.ack = ic + 1 + BN_REQ;
		s.payload = BN_RESP;
		break;
	case BN_FIN_B:
		s.tcp_flags = TCPSTATE_ACK | TCPSTATE_FIN;
		s.seq = ib + 1 + BN_RESP;
		s.ack = ic + 1 + BN_REQ;
		break;
	case BN_ACK_FIN:
		s.tcp_flags = TCPSTATE_ACK;
		s.seq = ic + 1 + BN_REQ;
		s.ack = ib + 2 + BN_RESP;
		break;
	case BN_EST_REV:
		s.tcp_flags = TCPSTATE_ACK;
		s.seq = ib + 1 + BN_RESP;
		s.ack = ic + 1 + BN_REQ;
		break;
	default:
		break;
	}
	return bn_mbuf(b, &s);
}

static struct rte_mbuf *bn_udp(struct bn *b, const struct bn_flow *f, bool request)
{
	struct tf_spec s = { .proto = IPPROTO_UDP };
	static uint8_t buf[TF_MAX];
	uint32_t len;

	if (request) {
		s.src = bn_cip(f->id);
		s.sport = bn_cport(f->id);
		s.dst = BN_VIP;
		s.dport = BN_PORT_UDP;
		s.payload = BN_UDP_REQ;
	} else {
		s.src = f->bip;
		s.sport = f->bport;
		s.dst = f->sip;
		s.dport = f->sport;
		s.payload = BN_UDP_RESP;
	}
	len = tf_build(buf, &s);
	/* The request names its flow (the backend sees no client tuple). */
	tf_wr32(buf + TF_ETH + 20 + 8, f->id);
	tf_fix(buf);
	return bn_mbuf_of(b, buf, len);
}

/* What the harness reads back from a frame that came out. */
struct bn_out {
	uint8_t proto, flags;
	uint32_t src, dst, seq, ack, tsval, tsecr, word; /* word: first 4 UDP payload bytes */
	uint16_t sport, dport;
	bool ts;
};

static bool bn_parse(const struct rte_mbuf *m, struct bn_out *o)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *), *ip = f + TF_ETH, *l4;
	uint32_t len = rte_pktmbuf_data_len(m), ihl;

	memset(o, 0, sizeof(*o));
	if (len < TF_ETH + 20 || tf_rd16(f + 12) != 0x0800)
		return false;
	ihl = (ip[0] & 15u) * 4;
	l4 = ip + ihl;
	o->proto = ip[9];
	o->src = tf_rd32(ip + 12);
	o->dst = tf_rd32(ip + 16);
	if (o->proto == IPPROTO_UDP) {
		if (len < TF_ETH + ihl + 12)
			return false;
		o->sport = tf_rd16(l4);
		o->dport = tf_rd16(l4 + 2);
		o->word = tf_rd32(l4 + 8);
		return true;
	}
	if (o->proto != IPPROTO_TCP || len < TF_ETH + ihl + 20)
		return false;
	o->sport = tf_rd16(l4);
	o->dport = tf_rd16(l4 + 2);
	o->seq = tf_rd32(l4 + 4);
	o->ack = tf_rd32(l4 + 8);
	o->flags = l4[13];
	for (uint32_t i = 20, hl = (l4[12] >> 4) * 4u; i < hl && TF_ETH + ihl + hl <= len;) {
		if (l4[i] == 0)
			break;
		if (l4[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= hl || l4[i + 1] < 2 || i + l4[i + 1] > hl)
			break;
		if (l4[i] == 8 && l4[i + 1] == 10) {
			o->ts = true;
			o->tsval = tf_rd32(l4 + i + 2);
			o->tsecr = tf_rd32(l4 + i + 6);
		}
		i += l4[i + 1];
	}
	return true;
}

/* ---- driving the worker ------------------------------------------------ */

static inline uint64_t bn_poll(struct bn *b)
{
	uint64_t t0 = rte_rdtsc(), t;

	worker_poll(b->w, 2);
	t = rte_rdtsc() - t0;
	b->poll_cycles += t;
	return t;
}

/*
 * Put @n frames on port @in's rx ring and poll until @n frames came out of
 * the tx rings, or the worker has had nothing to do for 1 ms (it dropped
 * some). The frames that came out are in b->out, by port. Returns the
 * cycles of the worker_poll() calls.
 */
static uint64_t bn_step(struct bn *b, uint16_t in, struct rte_mbuf **pk, uint32_t n)
{
	uint64_t cycles = 0, quiet = 0, ms = (uint64_t)(b->hz / 1000);
	uint64_t start = rte_rdtsc();

	b->nout[0] = b->nout[1] = 0;
	if (rte_ring_enqueue_burst(b->rxr[in], (void **)pk, n, NULL) != n)
		bn_die("rx ring full");
	for (;;) {
		cycles += bn_poll(b);
		for (int p = 0; p < 2; p++)
			b->nout[p] +=
				rte_ring_dequeue_burst(b->txr[p], (void **)&b->out[p][b->nout[p]],
						       BN_STEP * 2 - b->nout[p], NULL);
		if (b->nout[0] + b->nout[1] >= n)
			break;
		if (rte_ring_count(b->rxr[in]) == 0) {
			uint64_t now = rte_rdtsc();

			if (quiet == 0)
				quiet = now;
			else if (now - quiet > ms)
				break;
		}
		if (rte_rdtsc() - start > 1000 * ms)
			bn_die("the worker stalled for a second");
	}
	return cycles;
}

static void bn_free_out(struct bn *b)
{
	for (int p = 0; p < 2; p++) {
		rte_pktmbuf_free_bulk(b->out[p], b->nout[p]);
		b->nout[p] = 0;
	}
}

static uint64_t bn_drops(const struct bn *b)
{
	uint64_t n = 0;

	for (int i = 0; i < STATS_DROP_COUNT; i++)
		n += b->w->stats.drops[i];
	return n;
}

static void bn_print_drops(const struct bn *b)
{
	for (int i = 0; i < STATS_DROP_COUNT; i++)
		if (b->w->stats.drops[i] != 0)
			fprintf(stderr, "bench_dp:   drop %s: %" PRIu64 "\n",
				stats_drop_name((enum stats_drop)i), b->w->stats.drops[i]);
}

static void bn_misbehaved(const struct bn *b, const char *what)
{
	fprintf(stderr, "bench_dp: %s\n", what);
	bn_print_drops(b);
	exit(1);
}

/*
 * Stage @st of the @n flows in @fl: send, then check and learn from what
 * came out. A connection whose frame did not come out where it should is
 * marked dead (*lost counts them). Returns the cycles of the step.
 */
static uint64_t bn_tcp_stage(struct bn *b, struct bn_flow *fl, uint32_t n, int st, uint16_t vport,
			     uint64_t *lost)
{
	struct rte_mbuf *pk[BN_STEP];
	uint32_t sent = 0, base = fl[0].id;
	bool client = bn_from_client(st);
	uint16_t outp = client ? 1 : 0;
	uint64_t cycles;

	for (uint32_t i = 0; i < n; i++)
		if (fl[i].alive)
			pk[sent++] = bn_tcp(b, &fl[i], st, vport);
	if (sent == 0)
		return 0;
	cycles = bn_step(b, client ? 0 : 1, pk, sent);
	for (uint32_t i = 0; i < b->nout[outp]; i++) {
		struct bn_out o;
		uint32_t id;
		struct bn_flow *f;

		if (!bn_parse(b->out[outp][i], &o) || o.proto != IPPROTO_TCP)
			continue;
		if (client) {
			uint32_t d = st == BN_SYN ? 0 : st == BN_ACK_FIN ? 1 + BN_REQ : 1;

			/* The client's sequence numbers pass unchanged: they name the flow. */
			id = (o.seq - d) * b->isn_inv;
		} else {
			id = bn_id_of(o.dst, o.dport);
		}
		if (id - base >= n)
			continue;
		f = &fl[id - base];
		if (!f->alive)
			continue;
		if (client) {
			if (st == BN_SYN) {
				if (o.flags != TCPSTATE_SYN || !o.ts)
					continue;
				f->sip = o.src;
				f->sport = o.sport;
				f->bip = o.dst;
				f->bport = o.dport;
				f->tsv_b = o.tsval;
			} else if (o.src != f->sip || o.sport != f->sport || o.dst != f->bip ||
				   (o.ts && o.tsval != f->tsv_b)) {
				continue;
			}
		} else if (o.src != BN_VIP || o.sport != vport ||
			   (o.ts && o.tsecr != bn_ts_c(id))) {
			continue; /* TSecr must come back exactly as the client sent it */
		}
		f->alive = 2;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (fl[i].alive == 2)
			fl[i].alive = 1;
		else if (fl[i].alive == 1) {
			fl[i].alive = 0;
			(*lost)++;
		}
	}
	bn_free_out(b);
	return cycles;
}

static void bn_flows_init(struct bn *b, struct bn_flow *fl, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		memset(&fl[i], 0, sizeof(fl[i]));
		fl[i].id = (uint32_t)b->next_id++;
		fl[i].alive = 1;
	}
}

/* ---- JSON -------------------------------------------------------------- */

static void bn_json_row(struct bn *b, const char *name, const char *dir, const char *ts,
			uint64_t flows, const struct bn_cell *c, uint64_t conns, uint64_t lost)
{
	double cpp = c->packets ? (double)c->cycles / (double)c->packets : 0;

	fprintf(b->js, "%s\n    {\"case\": \"%s\"", b->first_case ? "" : ",", name);
	b->first_case = false;
	if (dir != NULL)
		fprintf(b->js, ", \"dir\": \"%s\"", dir);
	if (ts != NULL)
		fprintf(b->js, ", \"ts_rewrite\": \"%s\"", ts);
	if (flows != 0)
		fprintf(b->js, ", \"flows\": %" PRIu64, flows);
	fprintf(b->js,
		", \"packets\": %" PRIu64 ", \"cycles\": %" PRIu64
		", \"cycles_per_packet\": %.1f, \"mpps\": %.3f",
		c->packets, c->cycles, cpp, cpp > 0 ? b->hz / cpp / 1e6 : 0);
	if (conns != 0) {
		double cpc = (double)c->cycles / (double)conns;

		fprintf(b->js,
			", \"connections\": %" PRIu64 ", \"cycles_per_connection\": %.1f"
			", \"connections_per_s\": %.0f, \"lost\": %" PRIu64,
			conns, cpc, b->hz / cpc, lost);
	}
	fputc('}', b->js);
	fflush(b->js);
}

/* ---- cases ------------------------------------------------------------- */

/* Floor: what any DPDK forwarder pays here: rx burst, swap MACs, tx burst. */
static void bn_floor(struct bn *b)
{
	struct bn_flow f = { .id = 1, .alive = 1 };
	struct rte_mbuf *pk[WORKER_BURST], *rx[WORKER_BURST];
	struct bn_cell c = { 0 };
	uint64_t bursts = b->iters / WORKER_BURST;

	for (uint64_t i = 0; i < bursts; i++) {
		uint64_t t0;
		uint16_t n, sent;

		for (uint32_t k = 0; k < WORKER_BURST; k++) {
			f.id = (uint32_t)(i * WORKER_BURST + k);
			pk[k] = bn_tcp(b, &f, BN_REQUEST, BN_PORT_ON);
		}
		rte_ring_enqueue_burst(b->rxr[0], (void **)pk, WORKER_BURST, NULL);
		t0 = rte_rdtsc();
		n = rte_eth_rx_burst(0, 0, rx, WORKER_BURST);
		for (uint16_t k = 0; k < n; k++) {
			struct rte_ether_hdr *e = rte_pktmbuf_mtod(rx[k], struct rte_ether_hdr *);
			struct rte_ether_addr t = e->dst_addr;

			e->dst_addr = e->src_addr;
			e->src_addr = t;
		}
		sent = rte_eth_tx_burst(0, 0, rx, n);
		c.cycles += rte_rdtsc() - t0;
		c.packets += sent;
		n = (uint16_t)rte_ring_dequeue_burst(b->txr[0], (void **)rx, WORKER_BURST, NULL);
		rte_pktmbuf_free_bulk(rx, n);
	}
	bn_json_row(b, "floor", NULL, NULL, 0, &c, 0, 0);
}

static const char *const bn_dir_json[2] = { "c->b", "b->c" };

/* Established flows: @n in the table, half with rewriting on, half off. */
static void bn_established(struct bn *b, uint32_t n)
{
	struct bn_flow *fl = calloc(n, sizeof(*fl));
	struct bn_cell cell[2][2] = { 0 }; /* [ts on/off][dir] */
	struct rte_mbuf *pk[WORKER_BURST];
	uint64_t lost = 0, t0 = rte_rdtsc();
	uint32_t half = n / 2;

	if (fl == NULL)
		bn_die("out of memory");
	bn_worker(b, n + 1024);
	bn_flows_init(b, fl, n);
	/* Open them all: handshake and request (untimed but real). */
	for (uint32_t i = 0, k; i < n; i += k) {
		uint16_t vport = i < half ? BN_PORT_ON : BN_PORT_OFF;

		k = n - i < BN_STEP ? n - i : BN_STEP;
		if (i < half && i + k > half) /* a step is all one service */
			k = half - i;
		for (int st = BN_SYN; st <= BN_RESPONSE; st++)
			bn_tcp_stage(b, &fl[i], k, st, vport, &lost);
	}
	if (lost != 0)
		bn_misbehaved(b, "flows lost while opening the established set");
	fprintf(stderr, "bench_dp: %u flows open in %.1f s; %u in the table\n", n,
		(double)(rte_rdtsc() - t0) / b->hz, flow_count(b->w->ft));
	if (n >= 1000000) {
		long pages = 0, rss = 0;
		FILE *f = fopen("/proc/self/statm", "r");

		if (f != NULL && fscanf(f, "%ld %ld", &pages, &rss) == 2)
			fprintf(b->js,
				"%s\n    {\"case\": \"memory\", \"flows\": %u, \"rss_bytes\": %ld"
				", \"flow_bytes\": %zu, \"table_bytes_per_flow\": %.1f}",
				b->first_case ? "" : ",", n, rss * sysconf(_SC_PAGESIZE),
				sizeof(struct flow),
				(double)flow_table_size(b->w->ft) / flow_capacity(b->w->ft));
		b->first_case = false;
		if (f != NULL)
			fclose(f);
	}
	/* Rows take turns burst by burst: on c->b, on b->c, off c->b, off b->c. */
	for (uint64_t r = 0; r < b->iters / WORKER_BURST; r++) {
		for (int ts = 0; ts < 2; ts++) {
			for (int d = 0; d < 2; d++) {
				struct bn_flow *sel[WORKER_BURST];
				uint16_t vport = ts == 0 ? BN_PORT_ON : BN_PORT_OFF;
				uint32_t ok = 0;

				for (uint32_t k = 0; k < WORKER_BURST; k++) {
					uint32_t i = (uint32_t)(tf_rand(&b->seed) % half);

					sel[k] = &fl[ts == 0 ? i : half + i];
					pk[k] = bn_tcp(b, sel[k], d == 0 ? BN_REQUEST : BN_EST_REV,
						       vport);
				}
				cell[ts][d].cycles += bn_step(b, d == 0 ? 0 : 1, pk, WORKER_BURST);
				cell[ts][d].packets += WORKER_BURST;
				for (uint32_t k = 0; k < b->nout[d == 0 ? 1 : 0]; k++) {
					struct bn_out o;

					if (!bn_parse(b->out[d == 0 ? 1 : 0][k], &o) || !o.ts)
						continue;
					if (d == 0 ? o.dport == BN_BPORT_TCP &&
							     o.tsval == sel[k]->tsv_b :
						     o.sport == vport &&
							     o.tsecr == bn_ts_c(sel[k]->id))
						ok++;
				}
				bn_free_out(b);
				if (ok != WORKER_BURST)
					bn_misbehaved(b, "an established packet came out wrong");
			}
		}
	}
	for (int ts = 0; ts < 2; ts++)
		for (int d = 0; d < 2; d++)
			bn_json_row(b, "est", bn_dir_json[d], ts == 0 ? "on" : "off", n,
				    &cell[ts][d], 0, 0);
	free(fl);
}

/* Whole connections, in steady state after a warm-up. */
static void bn_connections(struct bn *b, uint64_t measure_ms)
{
	struct bn_flow fl[BN_STEP];
	struct bn_cell c = { 0 };
	uint64_t lost = 0, done = 0, drops0, start = rte_rdtsc(), ms = (uint64_t)(b->hz / 1000);
	bool timed = false;

	bn_worker(b, 2u << 20);
	drops0 = bn_drops(b);
	for (;;) {
		uint64_t cyc = 0, l0 = lost, el = (rte_rdtsc() - start) / ms;

		if (!timed && el >= BN_WARMUP_MS) {
			timed = true;
			lost = 0;
			l0 = 0;
			drops0 = bn_drops(b);
		}
		if (timed && el >= BN_WARMUP_MS + measure_ms)
			break;
		bn_flows_init(b, fl, BN_STEP);
		for (int st = BN_SYN; st < BN_STAGES; st++)
			cyc += bn_tcp_stage(b, fl, BN_STEP, st, BN_PORT_CONN, &lost);
		if (timed) {
			c.cycles += cyc;
			c.packets += (uint64_t)BN_STEP * BN_STAGES - (lost - l0);
			done += BN_STEP - (lost - l0);
		}
	}
	fprintf(stderr,
		"bench_dp: conn: %" PRIu64 " connections timed, %" PRIu64
		" lost; %u flows and %u quarantined tuples in the tables\n",
		done, lost, flow_count(b->w->ft), palloc_quarantine_used(&b->w->palloc));
	bn_json_row(b, "conn", NULL, "on", 0, &c, done, lost);
	if (lost != 0 || bn_drops(b) != drops0) {
		fprintf(stderr, "bench_dp: connections were lost\n");
		bn_print_drops(b);
		b->misbehaved = true;
	}
}

/* UDP request/response flows, a new flow for each request. */
static void bn_udp_flows(struct bn *b, uint64_t measure_ms)
{
	struct bn_flow fl[BN_STEP];
	struct rte_mbuf *pk[BN_STEP];
	struct bn_cell c = { 0 };
	uint64_t lost = 0, done = 0, start = rte_rdtsc(), ms = (uint64_t)(b->hz / 1000);
	bool timed = false;

	bn_worker(b, 2u << 20);
	for (;;) {
		uint64_t el = (rte_rdtsc() - start) / ms, cyc;
		uint32_t ok = 0;

		if (!timed && el >= BN_WARMUP_MS)
			timed = true;
		if (timed && el >= BN_WARMUP_MS + measure_ms)
			break;
		bn_flows_init(b, fl, BN_STEP);
		for (uint32_t i = 0; i < BN_STEP; i++)
			pk[i] = bn_udp(b, &fl[i], true);
		cyc = bn_step(b, 0, pk, BN_STEP);
		for (uint32_t i = 0; i < b->nout[1]; i++) {
			struct bn_out o;
			uint32_t k;

			if (!bn_parse(b->out[1][i], &o) || o.proto != IPPROTO_UDP)
				continue;
			k = o.word - fl[0].id;
			if (k >= BN_STEP)
				continue;
			fl[k].sip = o.src;
			fl[k].sport = o.sport;
			fl[k].bip = o.dst;
			fl[k].bport = o.dport;
			fl[k].alive = 2;
		}
		bn_free_out(b);
		for (uint32_t i = 0; i < BN_STEP; i++) {
			if (fl[i].alive != 2) {
				fl[i].alive = 0;
				continue;
			}
			pk[ok++] = bn_udp(b, &fl[i], false);
		}
		cyc += bn_step(b, 1, pk, ok);
		ok = 0;
		for (uint32_t i = 0; i < b->nout[0]; i++) {
			struct bn_out o;

			if (bn_parse(b->out[0][i], &o) && o.proto == IPPROTO_UDP &&
			    o.src == BN_VIP && o.sport == BN_PORT_UDP &&
			    bn_id_of(o.dst, o.dport) - fl[0].id < BN_STEP)
				ok++;
		}
		bn_free_out(b);
		if (timed) {
			c.cycles += cyc;
			c.packets += BN_STEP + ok;
			done += ok;
			lost += BN_STEP - ok;
		}
	}
	fprintf(stderr,
		"bench_dp: udp: %" PRIu64 " flows timed, %" PRIu64 " lost; %u in the table\n", done,
		lost, flow_count(b->w->ft));
	bn_json_row(b, "udp", NULL, NULL, 0, &c, done, lost);
	if (lost != 0) {
		fprintf(stderr, "bench_dp: UDP flows were lost\n");
		bn_print_drops(b);
		b->misbehaved = true;
	}
}

/* ---- main -------------------------------------------------------------- */

static void bn_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_dp [--quick] [--iters N] [--flows N[,N...]] [--seconds S] [--only CASE]\n"
		"  --quick      1k and 100k flows, fewer packets, 1 s of connections\n"
		"  --iters N    timed packets per established row and for the floor\n"
		"               (default 640000, --quick 64000)\n"
		"  --flows LIST established flow counts (default 1000,100000,1000000)\n"
		"  --seconds S  measured seconds of the conn and udp cases (default 4)\n"
		"  --only CASE  floor, est, conn or udp alone (for profiling)\n"
		"Prints one JSON document on stdout (tools/bench formats it).\n");
}

/* The inverse of BN_ISN_MUL modulo 2^32 (Newton), to name flows by their ISN. */
static uint32_t bn_inverse(uint32_t a)
{
	uint32_t x = a;

	for (int i = 0; i < 5; i++)
		x *= 2 - a * x;
	return x;
}

/*
 * Each run has a file prefix of its own (the pid), so the EAL's runtime
 * directory would pile up under /var/run/dpdk: remove its files and itself.
 * Nothing else attaches to this process, so nothing needs them.
 */
static void bn_runtime_dir_remove(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "quick", no_argument, NULL, 'q' },
						  { "iters", required_argument, NULL, 'i' },
						  { "flows", required_argument, NULL, 'f' },
						  { "seconds", required_argument, NULL, 's' },
						  { "only", required_argument, NULL, 'o' },
						  { "help", no_argument, NULL, 'h' },
						  { NULL, 0, NULL, 0 } };
	uint32_t flows[8] = { 1000, 100000, 1000000 }, nflows = 3;
	uint64_t iters = 0, seconds = 0;
	struct bn b = { .js = stdout, .first_case = true, .next_id = 1 };
	char cpu[16], prefix[64];
	char *eal[] = { argv[0],
			"-l",
			cpu,
			"--no-huge",
			"-m",
			"256",
			"--no-pci",
			"--log-level=*:error",
			"--no-telemetry",
			"--file-prefix",
			prefix };
	const char *only = NULL;
	int opt, c;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			b.quick = true;
			break;
		case 'i':
			iters = strtoull(optarg, NULL, 10);
			if (iters < WORKER_BURST)
				goto usage;
			break;
		case 's':
			seconds = strtoull(optarg, NULL, 10);
			if (seconds < 1 || seconds > 600)
				goto usage;
			break;
		case 'f': {
			char *s = optarg, *end;

			for (nflows = 0; nflows < 8 && *s != '\0'; nflows++) {
				unsigned long v = strtoul(s, &end, 10);

				if (end == s || v < 2 * BN_STEP || v > 8000000)
					goto usage;
				flows[nflows] = (uint32_t)v;
				s = *end == ',' ? end + 1 : end;
				if (*end != ',' && *end != '\0')
					goto usage;
			}
			break;
		}
		case 'o':
			only = optarg;
			if (strcmp(only, "floor") != 0 && strcmp(only, "est") != 0 &&
			    strcmp(only, "conn") != 0 && strcmp(only, "udp") != 0)
				goto usage;
			break;
		case 'h':
			bn_usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	if (b.quick && nflows == 3)
		nflows = 2;
	if (iters == 0)
		iters = b.quick ? 64000 : 640000;
	if (seconds == 0)
		seconds = b.quick ? 1 : 4;
	b.iters = iters;
	c = sched_getcpu();
	snprintf(cpu, sizeof(cpu), "%d", c < 0 ? 0 : c);
	snprintf(prefix, sizeof(prefix), "sluice-bench-%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal), eal) < 0) {
		fprintf(stderr, "bench_dp: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	b.hz = (double)rte_get_tsc_hz();
	b.isn_inv = bn_inverse(BN_ISN_MUL);
	b.seed = 0x5eedb0a7ULL;
	bn_ports(&b);
	bn_config();
	bn_worker(&b, 1024);
	bn_ports_start();

	fprintf(b.js,
		"{\n  \"tsc_hz\": %.0f, \"cpu\": %s, \"burst\": %d, \"quick\": %s,\n"
		"  \"cases\": [",
		b.hz, cpu, WORKER_BURST, b.quick ? "true" : "false");
	if (only == NULL || strcmp(only, "floor") == 0) {
		fprintf(stderr, "bench_dp: floor\n");
		bn_floor(&b);
	}
	for (uint32_t i = 0; i < nflows && (only == NULL || strcmp(only, "est") == 0); i++) {
		fprintf(stderr, "bench_dp: established, %u flows\n", flows[i]);
		bn_established(&b, flows[i]);
	}
	if (only == NULL || strcmp(only, "conn") == 0) {
		fprintf(stderr, "bench_dp: connections\n");
		bn_connections(&b, seconds * 1000);
	}
	if (only == NULL || strcmp(only, "udp") == 0) {
		fprintf(stderr, "bench_dp: udp\n");
		bn_udp_flows(&b, seconds * 1000);
	}
	fprintf(b.js, "\n  ]\n}\n");
	worker_free(b.w);
	port_stop_all(2);
	bn_runtime_dir_remove(rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	return b.misbehaved ? 1 : 0;
usage:
	bn_usage(stderr);
	return 2;
}
