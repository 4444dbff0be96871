/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sluice: the dataplane daemon. Parses arguments, initialises the EAL, ports
 * and workers, applies the start-up config, then serves the control socket
 * on the main lcore until SIGINT/SIGTERM. No packet logic lives here.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>
#include <rte_rcu_qsbr.h>

#include "cfg.h"
#include "ctl.h"
#include "ctl_proto.h"
#include "hc.h"
#include "port.h"
#include "telemetry.h"
#include "worker.h"

#define MAIN_DEFAULT_MAX_FLOWS (1u << 20)

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

static void main_usage(FILE *out)
{
	fprintf(out,
		"usage: sluice [EAL options] -- [-f FILE] [-s PATH] [--max-flows N]\n"
		"                                 [--max-spaces N] [--max-quarantine N]\n"
		"  -f, --config FILE   apply FILE (sluicectl commands, one per line, '#' comments)\n"
		"                      before forwarding starts; an error aborts start-up with\n"
		"                      \"FILE:LINE: message\" and exit 1\n"
		"  -s, --socket PATH   control socket (default %s)\n"
		"      --max-flows N   flow table size per worker lcore (default %u)\n"
		"      --max-spaces N  port spaces per worker lcore: one per (protocol, backend,\n"
		"                      SNAT address) in use, %zu bytes each with one worker\n"
		"                      (default %u)\n"
		"      --max-quarantine N\n"
		"                      quarantined tuples plus live TCP flows per worker lcore,\n"
		"                      %zu bytes each (default: twice --max-flows)\n"
		"  -h, --help          this text\n"
		"Every EAL worker lcore (-l) runs a worker with one rx/tx queue on every port;\n"
		"the main lcore serves the control socket. Ports are the EAL's (PCI or --vdev).\n",
		CTL_DEFAULT_SOCKET, MAIN_DEFAULT_MAX_FLOWS, palloc_space_bytes_of(1024, 16),
		PALLOC_DEFAULT_SPACES, palloc_qent_bytes());
}

struct main_opts {
	const char *config;
	const char *socket;
	struct worker_limits lim;
};

static int main_count(const char *opt, const char *arg, unsigned long lo, unsigned long hi,
		      uint32_t *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || n < lo || n > hi) {
		fprintf(stderr, "sluice: --%s: %lu..%lu\n", opt, lo, hi);
		return -1;
	}
	*v = (uint32_t)n;
	return 0;
}

static int main_parse(int argc, char **argv, struct main_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "socket", required_argument, NULL, 's' },
		{ "max-flows", required_argument, NULL, 'm' },
		{ "max-spaces", required_argument, NULL, 'S' },
		{ "max-quarantine", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	o->socket = CTL_DEFAULT_SOCKET;
	o->lim.max_flows = MAIN_DEFAULT_MAX_FLOWS;
	o->lim.max_spaces = PALLOC_DEFAULT_SPACES;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "f:s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			o->config = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'm':
			if (main_count("max-flows", optarg, 1024, 1ul << 26, &o->lim.max_flows) < 0)
				return -1;
			break;
		case 'S':
			if (main_count("max-spaces", optarg, 16, 1ul << 20, &o->lim.max_spaces) < 0)
				return -1;
			break;
		case 'Q':
			if (main_count("max-quarantine", optarg, 1024, 1ul << 28,
				       &o->lim.max_quarantine) < 0)
				return -1;
			break;
		case 'h':
			main_usage(stdout);
			exit(0);
		default:
			main_usage(stderr);
			return -1;
		}
	}
	if (o->lim.max_quarantine == 0)
		o->lim.max_quarantine = 2 * o->lim.max_flows;
	if (optind != argc) {
		fprintf(stderr, "sluice: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* Report where things sit; a worker far from its ports pays for every packet. */
static void main_numa_report(uint16_t nports)
{
	if (numa_available() < 0) {
		fprintf(stderr, "sluice: libnuma: no NUMA support, one memory node assumed\n");
		return;
	}
	for (uint16_t i = 0; i < worker_count; i++) {
		const struct worker *w = worker_list[i];
		int node = numa_node_of_cpu((int)rte_lcore_to_cpu_id((int)w->lcore));

		fprintf(stderr, "sluice: worker %u on lcore %u, NUMA node %d of %d\n", w->idx,
			w->lcore, node, numa_num_configured_nodes());
		for (uint16_t p = 0; p < nports; p++) {
			int ps = rte_eth_dev_socket_id(p);

			if (ps >= 0 && node >= 0 && ps != node)
				fprintf(stderr,
					"sluice: warning: port %u is on node %d, worker %u on node %d\n",
					p, ps, w->idx, node);
		}
	}
}

static int main_workers(uint16_t nports, const struct worker_limits *lim)
{
	unsigned int lcore;
	uint16_t count = (uint16_t)rte_lcore_count() - 1, idx = 0;

	if (count == 0) {
		fprintf(stderr,
			"sluice: no worker lcore: give the EAL at least two (e.g. -l 0,1)\n");
		return -1;
	}
	if (count > WORKER_MAX) {
		fprintf(stderr, "sluice: at most %u worker lcores\n", WORKER_MAX);
		return -1;
	}
	RTE_LCORE_FOREACH_WORKER (lcore) {
		int socket = (int)rte_lcore_to_socket_id(lcore);
		struct rte_mempool *pool = port_pool(socket, nports, count);

		if (pool == NULL) {
			fprintf(stderr, "sluice: mbuf pool on socket %d: %s\n", socket,
				rte_strerror(rte_errno));
			return -1;
		}
		worker_list[idx] = worker_create(lcore, idx, count, lim, pool);
		if (worker_list[idx] == NULL) {
			fprintf(stderr, "sluice: worker on lcore %u: out of memory\n", lcore);
			return -1;
		}
		idx++;
	}
	worker_count = count;
	cfg_rcu = rte_zmalloc("rcu", rte_rcu_qsbr_get_memsize(count), RTE_CACHE_LINE_SIZE);
	if (cfg_rcu == NULL || rte_rcu_qsbr_init(cfg_rcu, count) != 0) {
		fprintf(stderr, "sluice: RCU init failed\n");
		return -1;
	}
	return 0;
}

static int main_ports(uint16_t nports)
{
	const char *devs[CFG_MAX_PORTS];
	char names[CFG_MAX_PORTS][RTE_ETH_NAME_MAX_LEN];
	struct rte_ether_addr macs[CFG_MAX_PORTS];

	for (uint16_t p = 0; p < nports; p++) {
		if (rte_eth_dev_get_name_by_port(p, names[p]) != 0 ||
		    rte_eth_macaddr_get(p, &macs[p]) != 0) {
			fprintf(stderr, "sluice: port %u: cannot read name/MAC\n", p);
			return -1;
		}
		devs[p] = names[p];
	}
	return cfg_init(nports, devs, macs);
}

int main(int argc, char **argv)
{
	struct main_opts o = { 0 };
	uint16_t nports;
	unsigned int lcore;
	int n, rc = 1;
	uint64_t last_tick;

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			main_usage(stdout);
			return 0;
		}
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "sluice: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	if (main_parse(argc, argv, &o) < 0)
		goto out_eal;
	/* Lets dpdk-dumpcap (a secondary process) capture on our ports. */
	if (rte_eal_process_type() == RTE_PROC_PRIMARY && rte_pdump_init() < 0) {
		fprintf(stderr, "sluice: pdump init failed: %s\n", rte_strerror(rte_errno));
		goto out_eal;
	}

	nports = rte_eth_dev_count_avail();
	if (nports == 0 || nports > CFG_MAX_PORTS) {
		fprintf(stderr, "sluice: %u ports; need 1..%u (PCI NICs or --vdev)\n", nports,
			CFG_MAX_PORTS);
		goto out_eal;
	}
	if (main_workers(nports, &o.lim) < 0 || main_ports(nports) < 0)
		goto out_eal;
	n = hc_init();
	if (n < 0) {
		fprintf(stderr, "sluice: health-check rings: %s\n", rte_strerror(-n));
		goto out_eal;
	}
	if (o.config != NULL && ctl_apply_file(o.config, stderr) < 0)
		goto out_eal;
	for (uint16_t p = 0; p < nports; p++) {
		int r = port_setup(p, worker_count);

		if (r < 0) {
			fprintf(stderr, "sluice: port %u: setup failed: %s\n", p, rte_strerror(-r));
			goto out_ports;
		}
	}
	/* Observation only: without it the dataplane still forwards. */
	n = telemetry_init();
	if (n < 0)
		fprintf(stderr, "sluice: telemetry commands: %s\n", strerror(-n));
	n = ctl_server_open(o.socket);
	if (n < 0) {
		fprintf(stderr, "sluice: control socket %s: %s\n", o.socket, strerror(-n));
		goto out_ports;
	}
	main_numa_report(nports);

	signal(SIGINT, main_on_signal);
	signal(SIGTERM, main_on_signal);
	signal(SIGPIPE, SIG_IGN);
	for (uint16_t i = 0; i < worker_count; i++)
		rte_eal_remote_launch(worker_main, worker_list[i], worker_list[i]->lcore);
	fprintf(stderr, "sluice: forwarding on %u ports with %u workers; control socket %s\n",
		nports, worker_count, o.socket);

	last_tick = ctl_clock_ms();
	while (!main_stop) {
		/* Short waits: health-check probes and timeouts are due to the 10 ms. */
		ctl_server_poll(10);
		/* It publishes health changes: serialised with telemetry readers. */
		ctl_lock();
		hc_poll(ctl_clock_ms());
		ctl_unlock();
		if (ctl_clock_ms() - last_tick >= 1000) {
			ctl_tick();
			last_tick += 1000;
		}
	}
	fprintf(stderr, "sluice: stopping\n");
	worker_quit = true;
	RTE_LCORE_FOREACH_WORKER (lcore)
		rte_eal_wait_lcore(lcore);
	ctl_server_close();
	rc = 0;
out_ports:
	/* Held to the end: telemetry callbacks must not read what rte_eal_cleanup() frees. */
	ctl_lock();
	port_stop_all(nports);
out_eal:
	if (rte_eal_process_type() == RTE_PROC_PRIMARY)
		rte_pdump_uninit();
	rte_eal_cleanup();
	return rc;
}
