/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "port.h"
#include "worker.h"

static struct rte_mempool *port_pools[RTE_MAX_NUMA_NODES];

struct rte_mempool *port_pool(int socket, uint16_t nports, uint16_t nworkers)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	unsigned int n;

	if (socket < 0 || socket >= RTE_MAX_NUMA_NODES)
		socket = 0;
	if (port_pools[socket] != NULL)
		return port_pools[socket];
	/* Enough for full rings on every queue, bursts, held and tx-buffered
	 * packets, and the per-lcore caches. */
	n = (unsigned int)nports * nworkers * (PORT_RX_DESC + PORT_TX_DESC + 2 * WORKER_BURST) +
	    nworkers * (NEIGH_MAX * NEIGH_HOLD / 4 + 512) + 4096;
	snprintf(name, sizeof(name), "sl_pool_%d", socket);
	port_pools[socket] =
		rte_pktmbuf_pool_create(name, n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	return port_pools[socket];
}

int port_setup(uint16_t port, uint16_t nworkers)
{
	struct rte_eth_conf conf = { 0 };
	struct rte_eth_dev_info info;
	int rc;

	rc = rte_eth_dev_info_get(port, &info);
	if (rc < 0)
		return rc;
	if (nworkers > info.max_rx_queues || nworkers > info.max_tx_queues) {
		fprintf(stderr, "sluice: port %u supports %u/%u queues, %u workers need one each\n",
			port, info.max_rx_queues, info.max_tx_queues, nworkers);
		return -EINVAL;
	}
	if (nworkers > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(port, nworkers, nworkers, &conf);
	if (rc < 0)
		return rc;
	for (uint16_t q = 0; q < nworkers; q++) {
		const struct worker *w = worker_list[q];
		uint16_t nrx = PORT_RX_DESC, ntx = PORT_TX_DESC;

		rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
		if (rc < 0)
			return rc;
		rc = rte_eth_rx_queue_setup(port, q, nrx, (unsigned int)w->socket, NULL, w->pool);
		if (rc < 0)
			return rc;
		rc = rte_eth_tx_queue_setup(port, q, ntx, (unsigned int)w->socket, NULL);
		if (rc < 0)
			return rc;
	}
	return rte_eth_dev_start(port);
}

void port_stop_all(uint16_t nports)
{
	for (uint16_t p = 0; p < nports; p++) {
		rte_eth_dev_stop(p);
		rte_eth_dev_close(p);
	}
}
