/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench: what the benchmarks share: pinning to one CPU, the TSC rate, the
 * cost of the timer itself, and the summary of a set of timed samples.
 * Timing on a shared VM is noisy: every figure is a median of many windows,
 * net of the timer, and the benchmarks compare cases measured in one run.
 */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

/* The including file defines _GNU_SOURCE first (sched_getcpu, CPU_SET). */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <rte_cycles.h>

struct bench_stat {
	double median, mean, p99;
};

static inline int bench_cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static inline int bench_cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/*
 * Median, mean and 99th percentile of @n samples, each less @overhead and
 * divided by @per (the operations one sample timed). Sorts @s.
 */
static inline struct bench_stat bench_stat_of(uint32_t *s, uint32_t n, double overhead, double per)
{
	struct bench_stat st;
	double sum = 0;

	qsort(s, n, sizeof(*s), bench_cmp_u32);
	for (uint32_t i = 0; i < n; i++)
		sum += s[i];
	st.median = (s[n / 2] - overhead) / per;
	st.mean = (sum / n - overhead) / per;
	st.p99 = (s[(uint64_t)n * 99 / 100] - overhead) / per;
	return st;
}

/* TSC ticks per second against CLOCK_MONOTONIC over ~100 ms; for the ns column only. */
static inline double bench_tsc_hz(void)
{
	struct timespec t0, t1;
	uint64_t c0, c1;
	double ns;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	c0 = rte_rdtsc_precise();
	do {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	} while (ns < 1e8);
	c1 = rte_rdtsc_precise();
	return (c1 - c0) * 1e9 / ns;
}

/* Stay on one CPU: a migration mid-window would time two TSCs. Returns it, or -1. */
static inline int bench_pin(void)
{
	int cpu = sched_getcpu();
	cpu_set_t set;

	if (cpu < 0)
		return -1;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? cpu : -1;
}

/* The median cost of an empty timed window, over @n tries (@tmp holds @n). */
static inline uint32_t bench_timer_overhead_of(uint32_t *tmp, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t0 = rte_rdtsc_precise();
		uint64_t t1 = rte_rdtsc_precise();

		tmp[i] = (uint32_t)(t1 - t0);
	}
	qsort(tmp, n, sizeof(*tmp), bench_cmp_u32);
	return tmp[n / 2];
}

#endif
