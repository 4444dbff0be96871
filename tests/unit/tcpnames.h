/* SPDX-License-Identifier: BSD-3-Clause */
/* Short names for directions and TCP flags in the close-tracking tests. */
#ifndef SLUICE_TEST_TCPNAMES_H
#define SLUICE_TEST_TCPNAMES_H

#include "flow.h"
#include "tcpstate.h"

#define FWD FLOW_DIR_FWD
#define REV FLOW_DIR_REV
#define SYN TCPSTATE_SYN
#define ACK TCPSTATE_ACK
#define FIN TCPSTATE_FIN
#define RST TCPSTATE_RST

#endif
