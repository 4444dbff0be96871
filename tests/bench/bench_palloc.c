/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_palloc: what a new flow's tuple costs, and what state costs in memory.
 *
 * Cost. One worker, one SNAT address with ports 1024-65535 (64512 tuples),
 * one TCP backend. For each occupancy level the backend's space is filled by
 * the allocator itself to that share of its tuples, half held by live flows
 * and half by the TIME_WAIT quarantine alone (taken, quarantined for an hour,
 * released). Then one palloc_get() and the palloc_release() of the same flow
 * are timed separately, many times, so the occupancy stays constant. At 100%
 * palloc_get() answers -ENOSPC after searching the whole space, about the
 * longest search there can be. Everything is hot in cache: this is the allocator's own
 * work, not the cache misses of a busy lcore.
 *
 * The levels take turns in rounds (one chunk of samples each, a different
 * level first every round), so a machine whose speed drifts during the run
 * (a busy neighbour on a VM, a frequency change) weighs on all levels alike;
 * the ratio of the medians is also given per round, to show the spread.
 *
 * Timer. rte_rdtsc_precise() (a full barrier, then rdtsc) around each call,
 * so the call cannot leak out of its window; the median cost of an empty
 * window is measured and subtracted from every statistic. TSC ticks are
 * reference cycles: the core may run faster or slower. Means include
 * interrupts and preemption; medians hardly move with them. As a cross-check free of
 * per-call timer cost, a batch of get+release pairs is timed as a whole.
 *
 * Memory. Bytes per live flow (a created flow table's size over its
 * capacity: struct flow plus its share of hash slots), per quarantined tuple
 * (palloc_qent_bytes()) and per port space (palloc_space_bytes(), checked
 * against what palloc_init() allocated), for 1 and 2 workers.
 *
 * No EAL: the flow table and palloc use calloc() on node -1, and the TSC is
 * read directly. Not a test (nothing is asserted against a time); run by
 * tools/bench. Exit status 0; 1 if the allocator misbehaved (a failed
 * allocation below 100%, a wrong error at 100%, a held count that drifted);
 * 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>

#include "bench.h"
#include "cfg.h"
#include "flow.h"
#include "palloc.h"

/* Host order. Not RTE_IPV4(), which shifts a signed int into its sign bit (UBSan). */
#define BENCH_IP(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

#define BENCH_LO	   1024
#define BENCH_HI	   65535
#define BENCH_SEED	   0x5eedULL
#define BENCH_QUAR_MS	   (3600u * 1000u) /* never expires during a run */
#define BENCH_ITERS	   200000u
#define BENCH_ROUNDS	   20u
#define BENCH_MAX_ROUNDS   1000u
#define BENCH_WARMUP	   2000u /* untimed get+release before each chunk */
#define BENCH_GOAL_RATIO   3.0
#define BENCH_SNAT_IP	   BENCH_IP(198, 19, 0, 2)
#define BENCH_BACKEND_IP   BENCH_IP(198, 19, 0, 11)
#define BENCH_BACKEND_PORT 8080

/* The last level is the full space: palloc_get() answers -ENOSPC, nothing to release. */
static const unsigned int bench_pcts[] = { 0, 50, 90, 99, 100 };
#define BENCH_NLEVELS (sizeof(bench_pcts) / sizeof(bench_pcts[0]))
#define BENCH_TOP     (BENCH_NLEVELS - 2) /* the highest level that allocates */

struct bench_level {
	unsigned int pct;
	uint32_t held, live, quarantined;
	struct palloc pa;
	struct flow *flows;  /* the live flows holding tuples */
	struct flow probe;   /* the flow taken and released */
	uint32_t *a, *r;     /* samples: alloc, release */
	uint32_t *round_med; /* alloc median of each round's chunk */
	uint64_t pair_cycles, pair_count;
	/* Results. */
	struct bench_stat alloc, release;
	double pair_mean; /* get + release, timed as a batch (no timer per call) */
};

struct bench_mem {
	size_t flow_size;	  /* sizeof(struct flow) */
	uint32_t flow_cap[2];	  /* tables measured */
	double flow_bytes[2];	  /* table bytes / capacity */
	size_t qent_bytes;	  /* palloc_qent_bytes() */
	uint32_t space_ports[3];  /* ports per share: 1 worker; 2 workers (worker 0, 1) */
	size_t space_bytes[3];	  /* palloc_space_bytes(), same order */
	double space_alloced[3];  /* (palloc_init() bytes - quarantine) / max_spaces */
	size_t space_per_addr[2]; /* per SNAT address per backend, summed over workers: 1, 2 */
};

struct bench {
	struct cfg *c;
	struct cfg_service *svc;
	uint32_t iters;	 /* timed samples per level */
	uint32_t rounds; /* the levels take turns, one chunk each, this many times */
	uint32_t chunk;	 /* iters / rounds */
	uint32_t tuples; /* of the backend's space */
	double overhead; /* median cycles of an empty timer window */
	double tsc_hz;	 /* estimated */
	int cpu;	 /* pinned to, or -1 */
	uint32_t *tmp;	 /* scratch for medians */
	struct bench_level lv[BENCH_NLEVELS];
	double ratio;				/* alloc median, top level / empty */
	double ratio_min, ratio_med, ratio_max; /* the same, per round */
	struct bench_mem mem;
};

static void bench_die(const char *what)
{
	fprintf(stderr, "bench_palloc: %s\n", what);
	exit(1);
}

static void bench_timer_overhead(struct bench *b)
{
	b->overhead = bench_timer_overhead_of(b->tmp, b->iters);
}

static void bench_cfg(struct bench *b)
{
	struct cfg_snat *sn;

	b->c = cfg_new();
	if (b->c == NULL)
		bench_die("cfg_new failed");
	sn = &b->c->snat[0];
	sn->used = true;
	sn->gen = b->c->next_gen++;
	sn->ip = rte_cpu_to_be_32(BENCH_SNAT_IP);
	sn->lo = BENCH_LO;
	sn->hi = BENCH_HI;
	b->svc = &b->c->services[0];
	b->svc->used = true;
	b->svc->gen = b->c->next_gen++;
	snprintf(b->svc->name, sizeof(b->svc->name), "bench");
	b->svc->vip = rte_cpu_to_be_32(BENCH_IP(198, 18, 0, 100));
	b->svc->l4port = rte_cpu_to_be_16(80);
	b->svc->proto = IPPROTO_TCP;
	b->svc->sched = CFG_SCHED_RR;
	b->svc->snat_all = true;
	/* As if published (cfg.h): never edited from here on, and palloc_get()
	 * keeps what it derives from a published snapshot, as on a worker. */
	b->c->gen = 1;
}

static void bench_flow_init(struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->proto = IPPROTO_TCP;
	f->cip = rte_cpu_to_be_32(BENCH_IP(198, 18, 0, 10));
	f->cport = rte_cpu_to_be_16(40000);
	f->vip = rte_cpu_to_be_32(BENCH_IP(198, 18, 0, 100));
	f->vport = rte_cpu_to_be_16(80);
	f->bip = rte_cpu_to_be_32(BENCH_BACKEND_IP);
	f->bport = rte_cpu_to_be_16(BENCH_BACKEND_PORT);
}

static void bench_get(struct bench *b, struct palloc *pa, struct flow *f)
{
	uint64_t tried;

	if (palloc_get(pa, b->c, b->svc, f, &tried) != 0)
		bench_die("palloc_get failed below full occupancy");
}

/*
 * A fresh port space for @lv holding lv->held tuples, every odd one by the
 * quarantine alone, the others by live flows.
 */
static void bench_fill(struct bench *b, struct bench_level *lv)
{
	struct flow tmp;

	lv->held = (uint32_t)((uint64_t)b->tuples * lv->pct / 100);
	lv->flows = calloc(lv->held / 2 + 1, sizeof(*lv->flows));
	lv->a = calloc(b->iters, sizeof(*lv->a));
	lv->r = calloc(b->iters, sizeof(*lv->r));
	lv->round_med = calloc(b->rounds, sizeof(*lv->round_med));
	if (lv->flows == NULL || lv->a == NULL || lv->r == NULL || lv->round_med == NULL)
		bench_die("out of memory");
	if (palloc_init(&lv->pa, 0, 1, BENCH_SEED, 16, 2 * b->tuples + 16, -1, 0) < 0)
		bench_die("palloc_init failed");
	lv->live = 0;
	for (uint32_t i = 0; i < lv->held; i++) {
		struct flow *f = i % 2 == 0 ? &lv->flows[lv->live++] : &tmp;

		bench_flow_init(f);
		bench_get(b, &lv->pa, f);
		if (i % 2 == 1) {
			palloc_quarantine(&lv->pa, f, BENCH_QUAR_MS, 0);
			palloc_release(&lv->pa, f);
		}
	}
	lv->quarantined = lv->held - lv->live;
	bench_flow_init(&lv->probe);
}

/* The backend's space of @lv still holds exactly lv->held tuples. */
static void bench_check_held(struct bench *b, struct bench_level *lv)
{
	struct flow *f = &lv->probe;
	uint32_t n;

	bench_get(b, &lv->pa, f);
	n = palloc_space_held(&lv->pa, f->space, BENCH_LO, BENCH_HI);
	palloc_release(&lv->pa, f);
	if (n != lv->held + 1)
		bench_die("held tuple count drifted during the run");
}

/* One chunk of @lv: warm up, b->chunk timed samples, then as many pairs timed as a batch. */
static void bench_chunk(struct bench *b, struct bench_level *lv, uint32_t round)
{
	struct palloc *pa = &lv->pa;
	struct flow *f = &lv->probe;
	uint32_t *a = lv->a + (size_t)round * b->chunk;
	uint32_t *r = lv->r + (size_t)round * b->chunk;
	uint64_t t0, t1, t2, tried;
	int rc;

	for (uint32_t i = 0; i < BENCH_WARMUP; i++) {
		rc = palloc_get(pa, b->c, b->svc, f, &tried);
		if (rc == 0)
			palloc_release(pa, f);
	}
	for (uint32_t i = 0; i < b->chunk; i++) {
		t0 = rte_rdtsc_precise();
		rc = palloc_get(pa, b->c, b->svc, f, &tried);
		t1 = rte_rdtsc_precise();
		if (rc == 0)
			palloc_release(pa, f);
		t2 = rte_rdtsc_precise();
		if (rc != (lv->pct == 100 ? -ENOSPC : 0))
			bench_die("palloc_get: unexpected result");
		a[i] = (uint32_t)(t1 - t0);
		r[i] = (uint32_t)(t2 - t1);
	}
	memcpy(b->tmp, a, b->chunk * sizeof(*a));
	qsort(b->tmp, b->chunk, sizeof(*b->tmp), bench_cmp_u32);
	lv->round_med[round] = b->tmp[b->chunk / 2];
	if (lv->pct == 100)
		return;
	t0 = rte_rdtsc_precise();
	for (uint32_t i = 0; i < b->chunk; i++) {
		bench_get(b, pa, f);
		palloc_release(pa, f);
	}
	t1 = rte_rdtsc_precise();
	lv->pair_cycles += t1 - t0;
	lv->pair_count += b->chunk;
}

/*
 * The levels take turns, one chunk each per round, starting with a different
 * level every round: a machine that slows down or speeds up during the run
 * (a busy neighbour, a frequency change) then weighs on every level alike
 * rather than on whichever ran at the time.
 */
static void bench_run(struct bench *b)
{
	double ratios[BENCH_MAX_ROUNDS];

	for (size_t i = 0; i < BENCH_NLEVELS; i++) {
		b->lv[i].pct = bench_pcts[i];
		bench_fill(b, &b->lv[i]);
	}
	for (uint32_t round = 0; round < b->rounds; round++)
		for (size_t k = 0; k < BENCH_NLEVELS; k++)
			bench_chunk(b, &b->lv[(round + k) % BENCH_NLEVELS], round);
	for (size_t i = 0; i < BENCH_NLEVELS; i++) {
		struct bench_level *lv = &b->lv[i];

		if (lv->pct < 100)
			bench_check_held(b, lv);
		lv->alloc = bench_stat_of(lv->a, b->iters, b->overhead, 1);
		lv->release = bench_stat_of(lv->r, b->iters, b->overhead, 1);
		lv->pair_mean = lv->pair_count ? (double)lv->pair_cycles / lv->pair_count : 0;
	}
	b->ratio = b->lv[BENCH_TOP].alloc.median / b->lv[0].alloc.median;
	for (uint32_t round = 0; round < b->rounds; round++)
		ratios[round] = (b->lv[BENCH_TOP].round_med[round] - b->overhead) /
				(b->lv[0].round_med[round] - b->overhead);
	qsort(ratios, b->rounds, sizeof(ratios[0]), bench_cmp_double);
	b->ratio_min = ratios[0];
	b->ratio_med = ratios[b->rounds / 2];
	b->ratio_max = ratios[b->rounds - 1];
}

static void bench_free(struct bench *b)
{
	for (size_t i = 0; i < BENCH_NLEVELS; i++) {
		struct bench_level *lv = &b->lv[i];

		palloc_free(&lv->pa);
		free(lv->flows);
		free(lv->a);
		free(lv->r);
		free(lv->round_med);
	}
	free(b->tmp);
	cfg_free(b->c);
}

static void bench_memory(struct bench_mem *m)
{
	/* The daemon's default --max-flows, and a count whose hash slots round up. */
	static const uint32_t caps[2] = { 1u << 20, 1000000 };
	struct palloc pa;
	int k = 0;

	m->flow_size = sizeof(struct flow);
	for (int i = 0; i < 2; i++) {
		struct flow_table *ft = flow_table_create(caps[i], -1);

		if (ft == NULL)
			bench_die("flow_table_create failed");
		m->flow_cap[i] = flow_capacity(ft);
		m->flow_bytes[i] = (double)flow_table_size(ft) / flow_capacity(ft);
		flow_table_free(ft);
	}
	m->qent_bytes = palloc_qent_bytes();
	for (uint16_t nw = 1; nw <= 2; nw++) {
		m->space_per_addr[nw - 1] = 0;
		for (uint16_t w = 0; w < nw; w++, k++) {
			if (palloc_init(&pa, w, nw, BENCH_SEED, PALLOC_DEFAULT_SPACES, 1, -1, 0) <
			    0)
				bench_die("palloc_init failed");
			m->space_ports[k] = palloc_share_size(&pa, BENCH_LO, BENCH_HI);
			m->space_bytes[k] = palloc_space_bytes(&pa);
			m->space_alloced[k] =
				(double)(pa.mem_size - palloc_qent_bytes()) / PALLOC_DEFAULT_SPACES;
			m->space_per_addr[nw - 1] += m->space_bytes[k];
			palloc_free(&pa);
		}
	}
}

static double bench_ns(const struct bench *b, double cycles)
{
	return cycles * 1e9 / b->tsc_hz;
}

static void bench_print_text(const struct bench *b)
{
	const struct bench_mem *m = &b->mem;

	printf("palloc: TCP toward one backend, one SNAT address, ports %u-%u "
	       "(%u tuples, 1 worker)\n",
	       BENCH_LO, BENCH_HI, b->tuples);
	printf("%u timed get+release per level in %u interleaved rounds, seed 0x%llx, CPU %d, "
	       "TSC ~%.2f GHz\n",
	       b->iters, b->rounds, (unsigned long long)BENCH_SEED, b->cpu, b->tsc_hz / 1e9);
	printf("cycles: TSC ticks, net of the timer (empty window: %.0f, subtracted); held tuples "
	       "half live, half quarantined\n\n",
	       b->overhead);
	printf("occupancy   held   live quarant |      palloc_get           |  palloc_release     "
	       "   | get+release\n");
	printf("                                |  median    mean     p99 ns |  median    mean     "
	       "p99 | batch mean\n");
	for (size_t i = 0; i < BENCH_NLEVELS; i++) {
		const struct bench_level *lv = &b->lv[i];

		printf("%8u%% %6u %6u %7u | %7.0f %7.1f %7.0f %3.0f | ", lv->pct, lv->held,
		       lv->live, lv->quarantined, lv->alloc.median, lv->alloc.mean, lv->alloc.p99,
		       bench_ns(b, lv->alloc.median));
		if (lv->pct == 100)
			printf("(-ENOSPC, nothing to release)\n");
		else
			printf("%7.0f %7.1f %7.0f | %10.1f\n", lv->release.median, lv->release.mean,
			       lv->release.p99, lv->pair_mean);
	}
	printf("\npalloc_get median at %u%% / at %u%%: %.2f (goal: at most %.0f: %s); "
	       "per round: min %.2f, median %.2f, max %.2f\n",
	       bench_pcts[BENCH_TOP], bench_pcts[0], b->ratio, BENCH_GOAL_RATIO,
	       b->ratio <= BENCH_GOAL_RATIO ? "met" : "NOT met", b->ratio_min, b->ratio_med,
	       b->ratio_max);

	printf("\nmemory\n");
	for (int i = 0; i < 2; i++)
		printf("  per live flow: %.2f bytes (table of %u flows: struct flow %zu + hash "
		       "slots and in-use flag %.2f)\n",
		       m->flow_bytes[i], m->flow_cap[i], m->flow_size,
		       m->flow_bytes[i] - (double)m->flow_size);
	printf("  per quarantined tuple: %zu bytes (struct palloc_qent)\n", m->qent_bytes);
	printf("  per port space, 1 worker: %zu bytes (%u ports; palloc_init allocates %.1f)\n",
	       m->space_bytes[0], m->space_ports[0], m->space_alloced[0]);
	printf("  per port space, 2 workers: %zu + %zu bytes (%u + %u ports; palloc_init "
	       "allocates %.1f + %.1f)\n",
	       m->space_bytes[1], m->space_bytes[2], m->space_ports[1], m->space_ports[2],
	       m->space_alloced[1], m->space_alloced[2]);
	printf("  per SNAT address per backend, all workers: %zu bytes with 1 worker, %zu with "
	       "2\n",
	       m->space_per_addr[0], m->space_per_addr[1]);
}

static void bench_json_stat(const char *name, const struct bench_stat *s, const char *end)
{
	printf("\"%s\": {\"median\": %.1f, \"mean\": %.2f, \"p99\": %.1f}%s", name, s->median,
	       s->mean, s->p99, end);
}

static void bench_print_json(const struct bench *b)
{
	const struct bench_mem *m = &b->mem;

	printf("{\n  \"tuples\": %u, \"ports\": [%u, %u], \"workers\": 1, \"proto\": \"tcp\",\n",
	       b->tuples, BENCH_LO, BENCH_HI);
	printf("  \"iterations\": %u, \"rounds\": %u, \"seed\": %llu, \"cpu\": %d, "
	       "\"tsc_hz\": %.0f,\n",
	       b->iters, b->rounds, (unsigned long long)BENCH_SEED, b->cpu, b->tsc_hz);
	printf("  \"timer_overhead_cycles\": %.0f,\n  \"levels\": [\n", b->overhead);
	for (size_t i = 0; i < BENCH_NLEVELS; i++) {
		const struct bench_level *lv = &b->lv[i];

		printf("    {\"occupancy_pct\": %u, \"held\": %u, \"live\": %u, "
		       "\"quarantined\": %u,\n     ",
		       lv->pct, lv->held, lv->live, lv->quarantined);
		if (lv->pct == 100) {
			printf("\"result\": \"ENOSPC\", ");
			bench_json_stat("alloc_cycles", &lv->alloc, "}");
		} else {
			bench_json_stat("alloc_cycles", &lv->alloc, ",\n     ");
			bench_json_stat("release_cycles", &lv->release, ",\n     ");
			printf("\"pair_batch_mean_cycles\": %.2f}", lv->pair_mean);
		}
		printf("%s\n", i + 1 < BENCH_NLEVELS ? "," : "");
	}
	printf("  ],\n");
	printf("  \"alloc_median_ratio\": {\"high_pct\": %u, \"low_pct\": %u, \"ratio\": %.3f, "
	       "\"round_min\": %.3f, \"round_median\": %.3f, \"round_max\": %.3f,\n",
	       bench_pcts[BENCH_TOP], bench_pcts[0], b->ratio, b->ratio_min, b->ratio_med,
	       b->ratio_max);
	printf("    \"goal_max\": %.1f, \"goal_met\": %s},\n", BENCH_GOAL_RATIO,
	       b->ratio <= BENCH_GOAL_RATIO ? "true" : "false");
	printf("  \"memory\": {\n    \"flow_struct_bytes\": %zu,\n", m->flow_size);
	printf("    \"bytes_per_live_flow\": [{\"capacity\": %u, \"bytes\": %.2f}, "
	       "{\"capacity\": %u, \"bytes\": %.2f}],\n",
	       m->flow_cap[0], m->flow_bytes[0], m->flow_cap[1], m->flow_bytes[1]);
	printf("    \"bytes_per_quarantined_tuple\": %zu,\n", m->qent_bytes);
	printf("    \"bytes_per_space\": {\"1_worker\": [%zu], \"2_workers\": [%zu, %zu]},\n",
	       m->space_bytes[0], m->space_bytes[1], m->space_bytes[2]);
	printf("    \"ports_per_space\": {\"1_worker\": [%u], \"2_workers\": [%u, %u]},\n",
	       m->space_ports[0], m->space_ports[1], m->space_ports[2]);
	printf("    \"bytes_per_snat_addr_per_backend\": {\"1_worker\": %zu, \"2_workers\": %zu}\n",
	       m->space_per_addr[0], m->space_per_addr[1]);
	printf("  }\n}\n");
}

static void bench_usage(FILE *out)
{
	fprintf(out,
		"usage: bench_palloc [--json] [--iters N] [--rounds R]\n"
		"  --json       one JSON document instead of the table\n"
		"  --iters N    timed get+release per level (default %u, at least 100)\n"
		"  --rounds R   the levels take turns R times, N/R samples each time "
		"(default %u or N/100\n"
		"               if less; at most %u; N/R must be at least 100)\n",
		BENCH_ITERS, BENCH_ROUNDS, BENCH_MAX_ROUNDS);
}

static int bench_arg(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "iters", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { .iters = BENCH_ITERS, .rounds = BENCH_ROUNDS };
	struct palloc pa;
	bool json = false, rounds_set = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "jn:r:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'n':
			if (bench_arg(optarg, 100, 100000000, &b.iters) < 0)
				goto usage;
			break;
		case 'r':
			if (bench_arg(optarg, 1, BENCH_MAX_ROUNDS, &b.rounds) < 0)
				goto usage;
			rounds_set = true;
			break;
		case 'h':
			bench_usage(stdout);
			return 0;
		default:
			goto usage;
		}
	}
	if (!rounds_set && b.iters / b.rounds < 100)
		b.rounds = b.iters / 100;
	if (optind != argc || b.iters / b.rounds < 100)
		goto usage;
	/* Whole chunks only: every level gets the same number of samples per round. */
	b.chunk = b.iters / b.rounds;
	b.iters = b.chunk * b.rounds;

	b.cpu = bench_pin();
	bench_cfg(&b);
	if (palloc_init(&pa, 0, 1, BENCH_SEED, 16, 16, -1, 0) < 0)
		bench_die("palloc_init failed");
	b.tuples = palloc_share_size(&pa, BENCH_LO, BENCH_HI);
	palloc_free(&pa);
	b.tmp = calloc(b.iters, sizeof(*b.tmp));
	if (b.tmp == NULL)
		bench_die("out of memory");
	b.tsc_hz = bench_tsc_hz();
	bench_timer_overhead(&b);
	bench_run(&b);
	bench_memory(&b.mem);
	if (json)
		bench_print_json(&b);
	else
		bench_print_text(&b);
	bench_free(&b);
	return 0;

usage:
	bench_usage(stderr);
	return 2;
}
