/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * port: ethdev ports and mbuf pools, set up once by the main thread before
 * the workers start.
 *
 * Every port gets one rx and one tx queue per worker (queue i belongs to
 * worker i), with descriptors on the worker's NUMA socket. Mbuf pools are
 * created per NUMA socket that has a worker, so a worker's packets come from
 * memory local to it.
 */
#ifndef SLUICE_PORT_H
#define SLUICE_PORT_H

#include <stdint.h>

#include <rte_mempool.h>

#define PORT_RX_DESC 1024
#define PORT_TX_DESC 1024

/* The pool for @socket, creating it on first use. NULL on failure. */
struct rte_mempool *port_pool(int socket, uint16_t nports, uint16_t nworkers);

/* Configure and start @port with @nworkers queue pairs. 0 or -errno. */
int port_setup(uint16_t port, uint16_t nworkers);

void port_stop_all(uint16_t nports);

#endif
