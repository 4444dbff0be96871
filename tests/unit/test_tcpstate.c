/* SPDX-License-Identifier: BSD-3-Clause */
/* tcpstate: handshake, who closed first, resets; and a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "tcpstate.h"

#define FWD FLOW_DIR_FWD
#define REV FLOW_DIR_REV
#define SYN TCPSTATE_SYN
#define ACK TCPSTATE_ACK
#define FIN TCPSTATE_FIN
#define RST TCPSTATE_RST

struct conn {
	uint8_t state;
	uint8_t seen;
};

static uint8_t seg(struct conn *c, enum flow_dir dir, uint8_t flags)
{
	c->state = tcpstate_next(c->state, &c->seen, dir, flags);
	return c->state;
}

static struct conn established(void)
{
	struct conn c = { FLOW_SYN, 0 };

	seg(&c, FWD, SYN);
	seg(&c, REV, SYN | ACK);
	seg(&c, FWD, ACK);
	assert_int_equal(c.state, FLOW_ESTABLISHED);
	return c;
}

static void handshake_reaches_established(void **state)
{
	struct conn c = { FLOW_SYN, 0 };

	(void)state;
	assert_int_equal(seg(&c, FWD, SYN), FLOW_SYN);
	assert_int_equal(seg(&c, REV, SYN | ACK), FLOW_SYN);
	assert_true(c.seen & TCPSTATE_SEEN_SYNACK);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_ESTABLISHED);
	assert_int_equal(seg(&c, REV, ACK), FLOW_ESTABLISHED);
	assert_int_equal(seg(&c, FWD, ACK | 0x08), FLOW_ESTABLISHED);
}

static void retransmitted_syn_stays_syn(void **state)
{
	struct conn c = { FLOW_SYN, 0 };

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(seg(&c, FWD, SYN), FLOW_SYN);
	assert_int_equal(seg(&c, REV, SYN | ACK), FLOW_SYN);
	/* A SYN retransmitted after the SYN-ACK does not complete the handshake. */
	assert_int_equal(seg(&c, FWD, SYN), FLOW_SYN);
	assert_int_equal(seg(&c, FWD, SYN | ACK), FLOW_SYN);
	assert_int_equal(seg(&c, REV, SYN | ACK), FLOW_SYN);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_ESTABLISHED);
}

static void ack_without_synack_stays_syn(void **state)
{
	struct conn c = { FLOW_SYN, 0 };

	(void)state;
	seg(&c, FWD, SYN);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_SYN);
	/* A SYN-ACK from the client side is not the backend's answer. */
	assert_int_equal(seg(&c, FWD, SYN | ACK), FLOW_SYN);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_SYN);
	/* Nor is a backend ACK. */
	assert_int_equal(seg(&c, REV, ACK), FLOW_SYN);
}

static void client_fin_first_is_recorded(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(seg(&c, FWD, FIN | ACK), FLOW_CLOSING);
	assert_true(c.seen & TCPSTATE_CLIENT_FIN_FIRST);
	assert_false(c.seen & TCPSTATE_BACKEND_FIN_FIRST);
	assert_int_equal(seg(&c, REV, ACK), FLOW_CLOSING);
	assert_int_equal(seg(&c, FWD, FIN | ACK), FLOW_CLOSING); /* retransmitted */
	assert_int_equal(seg(&c, REV, FIN | ACK), FLOW_CLOSED);
	assert_true(c.seen & TCPSTATE_CLIENT_FIN_FIRST);
	assert_false(c.seen & TCPSTATE_BACKEND_FIN_FIRST);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_CLOSED);
}

static void backend_fin_first_is_recorded(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(seg(&c, REV, FIN | ACK), FLOW_CLOSING);
	assert_true(c.seen & TCPSTATE_BACKEND_FIN_FIRST);
	assert_int_equal(seg(&c, FWD, FIN | ACK), FLOW_CLOSED);
	assert_true(c.seen & TCPSTATE_BACKEND_FIN_FIRST);
	assert_false(c.seen & TCPSTATE_CLIENT_FIN_FIRST);
	assert_true(c.seen & TCPSTATE_SEEN_FIN_CLIENT);
	assert_true(c.seen & TCPSTATE_SEEN_FIN_BACKEND);
}

static void fin_during_handshake_is_closing(void **state)
{
	struct conn c = { FLOW_SYN, 0 };

	(void)state;
	seg(&c, FWD, SYN);
	assert_int_equal(seg(&c, FWD, FIN), FLOW_CLOSING);
	assert_true(c.seen & TCPSTATE_CLIENT_FIN_FIRST);
}

static void rst_closes_from_any_state(void **state)
{
	(void)state;
	for (uint8_t st = FLOW_SYN; st <= FLOW_CLOSED; st++) {
		for (int d = 0; d < 2; d++) {
			struct conn c = { st, 0 };

			assert_int_equal(seg(&c, (enum flow_dir)d, RST), FLOW_CLOSED);
			assert_true(c.seen & TCPSTATE_SEEN_RST);
			c.state = st;
			c.seen = TCPSTATE_SEEN_FIN_CLIENT | TCPSTATE_CLIENT_FIN_FIRST;
			assert_int_equal(seg(&c, (enum flow_dir)d, RST | ACK), FLOW_CLOSED);
		}
	}
}

static void closed_flow_stays_closed(void **state)
{
	struct conn c = established();

	(void)state;
	seg(&c, FWD, FIN | ACK);
	seg(&c, REV, FIN | ACK);
	assert_int_equal(seg(&c, FWD, SYN), FLOW_CLOSED);
	assert_int_equal(seg(&c, REV, ACK), FLOW_CLOSED);
	c = established();
	seg(&c, REV, RST);
	assert_int_equal(seg(&c, FWD, ACK), FLOW_CLOSED);
	assert_int_equal(seg(&c, REV, SYN | ACK), FLOW_CLOSED);
}

/*
 * After a reset, a FIN still in flight must not reopen the flow: CLOSED (10 s
 * by default) would become CLOSING (240 s) and hold the tuple 24 times longer.
 */
static void late_fin_after_rst_stays_closed(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(seg(&c, REV, RST), FLOW_CLOSED);
	assert_int_equal(seg(&c, FWD, FIN | ACK), FLOW_CLOSED);
}

/* Reference model of the contract in tcpstate.h, up to the first RST. */
struct model {
	int synack, fin_c, fin_b, first; /* first: 0 none, 1 client, 2 backend */
	uint8_t state;
};

static uint8_t model_next(struct model *m, enum flow_dir dir, uint8_t flags)
{
	if (dir == REV && (flags & (SYN | ACK)) == (SYN | ACK))
		m->synack = 1;
	if (flags & FIN) {
		if (!m->fin_c && !m->fin_b)
			m->first = dir == FWD ? 1 : 2;
		if (dir == FWD)
			m->fin_c = 1;
		else
			m->fin_b = 1;
	}
	if (m->fin_c && m->fin_b)
		m->state = FLOW_CLOSED;
	else if (m->fin_c || m->fin_b)
		m->state = FLOW_CLOSING;
	else if (m->state == FLOW_SYN && dir == FWD && m->synack && (flags & (SYN | ACK)) == ACK)
		m->state = FLOW_ESTABLISHED;
	return m->state;
}

static void random_segments_follow_the_model(void **state)
{
	static const uint8_t choices[] = { SYN, SYN | ACK, ACK, ACK | 0x08, FIN, FIN | ACK, 0 };
	uint64_t seed = 0x7c95;

	(void)state;
	for (int run = 0; run < 20000; run++) {
		struct conn c = { FLOW_SYN, 0 };
		struct model m = { 0, 0, 0, 0, FLOW_SYN };
		int n = 1 + (int)(tf_rand(&seed) % 12);

		for (int i = 0; i < n; i++) {
			uint64_t r = tf_rand(&seed);
			enum flow_dir dir = (r & 1) ? REV : FWD;
			uint8_t flags = choices[(r >> 1) % sizeof(choices)];

			assert_int_equal(seg(&c, dir, flags), model_next(&m, dir, flags));
			assert_int_equal(!!(c.seen & TCPSTATE_SEEN_SYNACK), m.synack);
			assert_int_equal(!!(c.seen & TCPSTATE_SEEN_FIN_CLIENT), m.fin_c);
			assert_int_equal(!!(c.seen & TCPSTATE_SEEN_FIN_BACKEND), m.fin_b);
			assert_int_equal(!!(c.seen & TCPSTATE_CLIENT_FIN_FIRST), m.first == 1);
			assert_int_equal(!!(c.seen & TCPSTATE_BACKEND_FIN_FIRST), m.first == 2);
		}
		/* Whatever came before, a reset closes. */
		if (tf_rand(&seed) & 1)
			assert_int_equal(seg(&c, (enum flow_dir)(run & 1), RST), FLOW_CLOSED);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handshake_reaches_established),
		cmocka_unit_test(retransmitted_syn_stays_syn),
		cmocka_unit_test(ack_without_synack_stays_syn),
		cmocka_unit_test(client_fin_first_is_recorded),
		cmocka_unit_test(backend_fin_first_is_recorded),
		cmocka_unit_test(fin_during_handshake_is_closing),
		cmocka_unit_test(rst_closes_from_any_state),
		cmocka_unit_test(closed_flow_stays_closed),
		cmocka_unit_test(late_fin_after_rst_stays_closed),
		cmocka_unit_test(random_segments_follow_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
