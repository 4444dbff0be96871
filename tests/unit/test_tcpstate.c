/* SPDX-License-Identifier: BSD-3-Clause */
/* tcpstate: handshake, close tracking with sequence numbers, resets; and a reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frame.h"
#include "tcpstate.h"

#include "tcpnames.h"

/*
 * A connection as the load balancer sees it: each side's next sequence number
 * and what it has received, so segments carry real seq/ack values.
 */
struct conn {
	struct flow f;
	uint32_t nxt[2]; /* next sequence number each side sends: [FWD] client, [REV] backend */
	uint32_t rcv[2]; /* what each side acknowledges */
};

static uint8_t seg_len(struct conn *c, enum flow_dir dir, uint8_t flags, uint32_t len)
{
	struct tcpstate_seg s = {
		.flags = flags, .seq = c->nxt[dir], .ack = c->rcv[dir], .len = len
	};

	c->nxt[dir] += len + ((flags & SYN) ? 1 : 0) + ((flags & FIN) ? 1 : 0);
	c->f.state = tcpstate_next(&c->f, dir, &s);
	return c->f.state;
}

static uint8_t seg(struct conn *c, enum flow_dir dir, uint8_t flags)
{
	return seg_len(c, dir, flags, 0);
}

/* The other side received everything @dir sent so far. */
static void deliver(struct conn *c, enum flow_dir dir)
{
	c->rcv[dir == FWD ? REV : FWD] = c->nxt[dir];
}

/* Send and have it arrive. */
static uint8_t sd(struct conn *c, enum flow_dir dir, uint8_t flags)
{
	uint8_t st = seg(c, dir, flags);

	deliver(c, dir);
	return st;
}

static struct conn fresh(void)
{
	struct conn c = { .nxt = { 1000, 50000 } };

	c.f.state = FLOW_SYN;
	c.f.proto = 6;
	return c;
}

static struct conn established(void)
{
	struct conn c = fresh();

	sd(&c, FWD, SYN);
	sd(&c, REV, SYN | ACK);
	sd(&c, FWD, ACK);
	assert_int_equal(c.f.state, FLOW_ESTABLISHED);
	return c;
}

#define SEEN(c, bit) (((c).f.tcp_seen & (bit)) != 0)

static void handshake_reaches_established(void **state)
{
	struct conn c = fresh();

	(void)state;
	assert_int_equal(sd(&c, FWD, SYN), FLOW_SYN);
	assert_int_equal(c.f.isn_c, 1000);
	assert_int_equal(sd(&c, REV, SYN | ACK), FLOW_SYN);
	assert_true(SEEN(c, TCPSTATE_SEEN_SYNACK));
	assert_int_equal(sd(&c, FWD, ACK), FLOW_ESTABLISHED);
	assert_int_equal(sd(&c, REV, ACK), FLOW_ESTABLISHED);
	assert_int_equal(seg_len(&c, FWD, ACK | 0x08, 100), FLOW_ESTABLISHED);
}

static void retransmitted_syn_stays_syn(void **state)
{
	struct conn c = fresh();
	struct tcpstate_seg s = { .flags = SYN, .seq = 1000 };

	(void)state;
	for (int i = 0; i < 5; i++) {
		c.f.state = tcpstate_next(&c.f, FWD, &s);
		assert_int_equal(c.f.state, FLOW_SYN);
		assert_true(tcpstate_syn_retransmit(&c.f, s.flags, s.seq));
	}
	assert_int_equal(c.f.isn_c, 1000);
	c.nxt[FWD] = 1001;
	c.rcv[REV] = 1001;
	assert_int_equal(sd(&c, REV, SYN | ACK), FLOW_SYN);
	/* A SYN retransmitted after the SYN-ACK does not complete the handshake,
	 * nor change the recorded ISN. */
	c.f.state = tcpstate_next(&c.f, FWD, &s);
	assert_int_equal(c.f.state, FLOW_SYN);
	assert_int_equal(c.f.isn_c, 1000);
	assert_int_equal(sd(&c, FWD, ACK), FLOW_ESTABLISHED);
	/* Another ISN is not a retransmission. */
	s.seq = 77;
	assert_false(tcpstate_syn_retransmit(&c.f, s.flags, s.seq));
}

static void ack_without_synack_stays_syn(void **state)
{
	struct conn c = fresh();

	(void)state;
	sd(&c, FWD, SYN);
	assert_int_equal(sd(&c, FWD, ACK), FLOW_SYN);
	/* A SYN-ACK from the client side is not the backend's answer. */
	assert_int_equal(sd(&c, FWD, SYN | ACK), FLOW_SYN);
	assert_int_equal(sd(&c, FWD, ACK), FLOW_SYN);
	/* Nor is a backend ACK. */
	assert_int_equal(sd(&c, REV, ACK), FLOW_SYN);
}

/* Client closes first: the backend closes passively, no TIME_WAIT there. */
static void client_fin_first_no_tw(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(sd(&c, FWD, FIN | ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_CLIENT_FIN_FIRST));
	assert_false(SEEN(c, TCPSTATE_BACKEND_FIN_FIRST));
	assert_int_equal(sd(&c, REV, ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_FIN_CLIENT_ACKED));
	assert_int_equal(seg(&c, REV, FIN | ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_BACKEND_PASSIVE));
	assert_false(SEEN(c, TCPSTATE_TW));
	deliver(&c, REV);
	/* Both FINs seen, the backend's not yet acknowledged: still closing. */
	assert_int_equal(sd(&c, FWD, ACK), FLOW_CLOSED);
	assert_false(SEEN(c, TCPSTATE_TW));
	assert_false(tcpstate_end_may_tw(c.f.tcp_seen));
}

/* Backend closes first: TIME_WAIT on the backend once the client's FIN passed. */
static void backend_fin_first_tw(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(sd(&c, REV, FIN | ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_BACKEND_FIN_FIRST));
	assert_false(SEEN(c, TCPSTATE_TW));
	/* Idle-out here: the backend may be in FIN-WAIT-2 or TIME_WAIT. */
	assert_true(tcpstate_end_may_tw(c.f.tcp_seen));
	assert_int_equal(sd(&c, FWD, ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_FIN_BACKEND_ACKED));
	assert_int_equal(sd(&c, FWD, FIN | ACK), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_TW));
	assert_false(SEEN(c, TCPSTATE_BACKEND_PASSIVE));
	assert_false(SEEN(c, TCPSTATE_CLIENT_FIN_FIRST));
	/* The quarantine is running already; the end adds nothing. */
	assert_false(tcpstate_end_may_tw(c.f.tcp_seen));
	assert_int_equal(sd(&c, REV, ACK), FLOW_CLOSED);
}

/* Both send FIN before receiving the other's: both end in TIME_WAIT. */
static void simultaneous_close_tw(void **state)
{
	for (int order = 0; order < 2; order++) {
		struct conn c = established();
		enum flow_dir first = order ? REV : FWD;
		enum flow_dir second = order ? FWD : REV;

		(void)state;
		seg(&c, first, FIN | ACK);
		seg(&c, second, FIN | ACK); /* does not acknowledge the first FIN */
		assert_true(SEEN(c, TCPSTATE_TW));
		assert_false(SEEN(c, TCPSTATE_BACKEND_PASSIVE));
		deliver(&c, FWD);
		deliver(&c, REV);
		seg(&c, FWD, ACK);
		assert_int_equal(seg(&c, REV, ACK), FLOW_CLOSED);
		assert_true(SEEN(c, TCPSTATE_TW));
	}
}

static void fin_with_data_and_retransmission(void **state)
{
	struct conn c = established();
	uint32_t at = c.nxt[REV];
	struct tcpstate_seg s = { .flags = FIN | ACK, .seq = at, .ack = c.rcv[REV], .len = 300 };

	(void)state;
	c.f.state = tcpstate_next(&c.f, REV, &s);
	assert_int_equal(c.f.fin_b, at + 300);
	c.f.state = tcpstate_next(&c.f, REV, &s); /* retransmitted */
	assert_true(SEEN(c, TCPSTATE_FIN_RETRANSMITTED));
	assert_int_equal(c.f.fin_b, at + 300);
	/* An ACK short of the FIN does not acknowledge it. */
	s = (struct tcpstate_seg){ .flags = ACK, .seq = c.nxt[FWD], .ack = at + 300 };
	tcpstate_next(&c.f, FWD, &s);
	assert_false(SEEN(c, TCPSTATE_FIN_BACKEND_ACKED));
	s.ack = at + 301;
	tcpstate_next(&c.f, FWD, &s);
	assert_true(SEEN(c, TCPSTATE_FIN_BACKEND_ACKED));
}

static void sequence_numbers_wrap(void **state)
{
	struct conn c = { .nxt = { 0xfffffff0u, 0xffffffffu } };

	(void)state;
	c.f.state = FLOW_SYN;
	sd(&c, FWD, SYN);
	sd(&c, REV, SYN | ACK);
	sd(&c, FWD, ACK);
	seg_len(&c, REV, ACK, 40);
	deliver(&c, REV);
	sd(&c, REV, FIN | ACK);
	sd(&c, FWD, ACK);
	assert_true(SEEN(c, TCPSTATE_FIN_BACKEND_ACKED));
	sd(&c, FWD, FIN | ACK);
	assert_true(SEEN(c, TCPSTATE_TW));
	assert_int_equal(sd(&c, REV, ACK), FLOW_CLOSED);
}

/* A client must not be able to make an active backend look passive. */
static void forged_client_fins_do_not_skip_tw(void **state)
{
	struct conn c = fresh();
	struct tcpstate_seg s = { .flags = SYN | FIN, .seq = 1000 };

	(void)state;
	/* SYN+FIN: not a close. */
	c.f.state = tcpstate_next(&c.f, FWD, &s);
	assert_false(SEEN(c, TCPSTATE_SEEN_FIN_CLIENT));
	c.nxt[FWD] = 1001;
	c.rcv[REV] = 1001;
	sd(&c, REV, SYN | ACK);
	sd(&c, FWD, ACK);
	/* A stale client FIN the backend never accepted, then the backend's
	 * active FIN acknowledging more than that FIN: not passive. */
	s = (struct tcpstate_seg){ .flags = FIN | ACK, .seq = c.nxt[FWD] - 500, .ack = c.rcv[FWD] };
	c.f.state = tcpstate_next(&c.f, FWD, &s);
	seg_len(&c, FWD, ACK, 100);
	deliver(&c, FWD);
	sd(&c, REV, FIN | ACK);
	assert_false(SEEN(c, TCPSTATE_BACKEND_PASSIVE));
	assert_true(SEEN(c, TCPSTATE_TW));
}

static void fin_during_handshake_is_closing(void **state)
{
	struct conn c = fresh();

	(void)state;
	sd(&c, FWD, SYN);
	assert_int_equal(sd(&c, FWD, FIN), FLOW_CLOSING);
	assert_true(SEEN(c, TCPSTATE_CLIENT_FIN_FIRST));
}

static void rst_closes_from_any_state_without_tw(void **state)
{
	(void)state;
	for (uint8_t st = FLOW_SYN; st <= FLOW_CLOSED; st++) {
		for (int d = 0; d < 2; d++) {
			struct conn c = established();

			c.f.state = st;
			assert_int_equal(sd(&c, (enum flow_dir)d, RST), FLOW_CLOSED);
			assert_true(SEEN(c, TCPSTATE_SEEN_RST));
			assert_false(SEEN(c, TCPSTATE_TW));
			assert_false(tcpstate_end_may_tw(c.f.tcp_seen));
		}
	}
	/* A reset after the backend's FIN: it leaves FIN-WAIT for CLOSED. */
	struct conn c = established();

	sd(&c, REV, FIN | ACK);
	sd(&c, FWD, RST);
	assert_false(SEEN(c, TCPSTATE_TW));
	assert_false(tcpstate_end_may_tw(c.f.tcp_seen));
}

/* A reset after both FINs does not cancel the TIME_WAIT (tcp_rfc1337). */
static void rst_after_tw_keeps_tw(void **state)
{
	struct conn c = established();

	(void)state;
	sd(&c, REV, FIN | ACK);
	sd(&c, FWD, FIN | ACK);
	assert_true(SEEN(c, TCPSTATE_TW));
	assert_int_equal(sd(&c, FWD, RST), FLOW_CLOSED);
	assert_true(SEEN(c, TCPSTATE_TW));
}

static void closed_flow_stays_closed(void **state)
{
	struct conn c = established();

	(void)state;
	sd(&c, FWD, FIN | ACK);
	sd(&c, REV, FIN | ACK);
	sd(&c, FWD, ACK);
	assert_int_equal(c.f.state, FLOW_CLOSED);
	assert_int_equal(sd(&c, FWD, SYN), FLOW_CLOSED);
	assert_int_equal(sd(&c, REV, ACK), FLOW_CLOSED);
	c = established();
	sd(&c, REV, RST);
	assert_int_equal(sd(&c, FWD, ACK), FLOW_CLOSED);
	assert_int_equal(sd(&c, REV, SYN | ACK), FLOW_CLOSED);
}

/*
 * After a reset, a FIN still in flight must not reopen the flow: CLOSED (10 s
 * by default) would become CLOSING (240 s) and hold the tuple 24 times longer.
 */
static void late_fin_after_rst_stays_closed(void **state)
{
	struct conn c = established();

	(void)state;
	assert_int_equal(sd(&c, REV, RST), FLOW_CLOSED);
	assert_int_equal(sd(&c, FWD, FIN | ACK), FLOW_CLOSED);
}

/*
 * Reference model of the contract in tcpstate.h, up to the first RST: who sent
 * FIN first, whether the backend's FIN acknowledged the client's (it did iff
 * the client's FIN had been delivered when the backend sent its own), both
 * FINs acknowledged.
 */
struct model {
	int synack, fin_c, fin_b, first; /* first: 0 none, 1 client, 2 backend */
	int passive, acked_c, acked_b;
	uint8_t state;
};

static uint8_t model_next(struct model *m, enum flow_dir dir, uint8_t flags, int peer_has_fin)
{
	if (dir == REV && (flags & (SYN | ACK)) == (SYN | ACK))
		m->synack = 1;
	if ((flags & ACK) && peer_has_fin) {
		if (dir == REV && m->fin_c)
			m->acked_c = 1;
		if (dir == FWD && m->fin_b)
			m->acked_b = 1;
	}
	if (flags & FIN) {
		if (!m->fin_c && !m->fin_b)
			m->first = dir == FWD ? 1 : 2;
		if (dir == FWD) {
			m->fin_c = 1;
		} else if (!m->fin_b) {
			m->fin_b = 1;
			m->passive = m->fin_c && (flags & ACK) && peer_has_fin;
		}
	}
	if (m->acked_c && m->acked_b)
		m->state = FLOW_CLOSED;
	else if (m->fin_c || m->fin_b)
		m->state = FLOW_CLOSING;
	else if (m->state == FLOW_SYN && dir == FWD && m->synack && (flags & (SYN | ACK)) == ACK)
		m->state = FLOW_ESTABLISHED;
	return m->state;
}

static void random_segments_follow_the_model(void **state)
{
	static const uint8_t choices[] = { SYN | ACK, ACK, ACK | 0x08, FIN, FIN | ACK, 0 };
	uint64_t seed = 0x7c95;

	(void)state;
	for (int run = 0; run < 20000; run++) {
		struct conn c = fresh();
		struct model m = { .state = FLOW_SYN };
		int n = 1 + (int)(tf_rand(&seed) % 14);
		int got_fin[2] = { 0, 0 }; /* [dir]: the other side has received dir's FIN */

		sd(&c, FWD, SYN);
		for (int i = 0; i < n; i++) {
			uint64_t r = tf_rand(&seed);
			enum flow_dir dir = (r & 1) ? REV : FWD;
			enum flow_dir other = dir == FWD ? REV : FWD;
			uint8_t flags = choices[(r >> 1) % sizeof(choices)];
			int peer_has_fin;

			/* Sometimes what the other side sent arrives first. */
			if ((r >> 8) & 1) {
				deliver(&c, other);
				if (other == FWD ? m.fin_c : m.fin_b)
					got_fin[other] = 1;
			}
			/* A side sends nothing after its own FIN but ACKs. */
			if ((dir == FWD ? m.fin_c : m.fin_b) && (flags & ~ACK))
				flags = ACK;
			peer_has_fin = got_fin[other];
			assert_int_equal(seg(&c, dir, flags),
					 model_next(&m, dir, flags, peer_has_fin));
			assert_int_equal(SEEN(c, TCPSTATE_SEEN_SYNACK), m.synack);
			assert_int_equal(SEEN(c, TCPSTATE_SEEN_FIN_CLIENT), m.fin_c);
			assert_int_equal(SEEN(c, TCPSTATE_SEEN_FIN_BACKEND), m.fin_b);
			assert_int_equal(SEEN(c, TCPSTATE_CLIENT_FIN_FIRST), m.first == 1);
			assert_int_equal(SEEN(c, TCPSTATE_BACKEND_FIN_FIRST), m.first == 2);
			assert_int_equal(SEEN(c, TCPSTATE_BACKEND_PASSIVE), m.passive);
			assert_int_equal(SEEN(c, TCPSTATE_TW), m.fin_c && m.fin_b && !m.passive);
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
		cmocka_unit_test(client_fin_first_no_tw),
		cmocka_unit_test(backend_fin_first_tw),
		cmocka_unit_test(simultaneous_close_tw),
		cmocka_unit_test(fin_with_data_and_retransmission),
		cmocka_unit_test(sequence_numbers_wrap),
		cmocka_unit_test(forged_client_fins_do_not_skip_tw),
		cmocka_unit_test(fin_during_handshake_is_closing),
		cmocka_unit_test(rst_closes_from_any_state_without_tw),
		cmocka_unit_test(rst_after_tw_keeps_tw),
		cmocka_unit_test(closed_flow_stays_closed),
		cmocka_unit_test(late_fin_after_rst_stays_closed),
		cmocka_unit_test(random_segments_follow_the_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
