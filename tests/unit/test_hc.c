/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Health checks without the EAL: the configuration goes in through
 * ctl_exec(), probes are captured where worker 0 would get them, answers are
 * fed in as a worker would report them, and the clock is the test's. What is
 * checked is what an operator sees: which backends new flows may go to
 * (the published selection table), the health "show backends" prints, and
 * what the probes on the wire would be.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "bsel.h"
#include "cfg.h"
#include "ctl.h"
#include "ctl_env.h"
#include "hc.h"

#define MAX_SENT 256

static struct hc_probe sent[MAX_SENT];
static int nsent;
static bool queue_full;

static bool capture(const struct hc_probe *p)
{
	if (queue_full || nsent == MAX_SENT)
		return false;
	sent[nsent++] = *p;
	return true;
}

static int slot_of(const char *svc, const char *ip, uint16_t port)
{
	const struct cfg *c = cfg_current();
	int b = cfg_backend_find(c, cfg_service_find(c, svc), ip4(ip), htons(port));

	assert_true(b >= 0);
	return b;
}

/* Whether new flows of @svc may go to backend slot @b (its selection table). */
static bool selectable(const char *svc, int b)
{
	const struct cfg *c = cfg_current();
	const struct bsel_table *t = c->services[cfg_service_find(c, svc)].bsel;

	for (uint16_t i = 0; t != NULL && i < t->count; i++)
		if (t->members[i] == b)
			return true;
	return false;
}

static uint8_t health(int b)
{
	return cfg_current()->backends[b].health;
}

/* The last probe captured for backend address @ip, or NULL. */
static const struct hc_probe *probe_to(const char *ip)
{
	for (int i = nsent - 1; i >= 0; i--)
		if (sent[i].dst == ip4(ip))
			return &sent[i];
	return NULL;
}

static int probes_to(const char *ip)
{
	int n = 0;

	for (int i = 0; i < nsent; i++)
		n += sent[i].dst == ip4(ip);
	return n;
}

/* What a worker reports when the backend answers @p (TCP: SYN-ACK or RST). */
static struct hc_report answer(const struct hc_probe *p, bool ok_)
{
	struct hc_report r = { .kind = p->kind, .src = p->dst, .dst = p->src, .ok = ok_ };

	if (p->kind == CFG_CHECK_TCP) {
		r.sport = p->dport;
		r.dport = p->sport;
		r.ack = p->isn + 1;
	} else {
		r.ack = p->isn;
	}
	return r;
}

/* Run the control loop from @from to @to ms in 10 ms steps, as main does. */
static uint64_t run_until(uint64_t from, uint64_t to)
{
	for (uint64_t t = from; t <= to; t += 10)
		hc_poll(t);
	return to;
}

/* Poll until @ip has been probed @n times in all; returns the time. */
static uint64_t until_probed(const char *ip, int n, uint64_t now, uint64_t limit)
{
	while (probes_to(ip) < n && now < limit)
		hc_poll(now += 10);
	assert_true(probes_to(ip) >= n);
	return now;
}

static const char *const conf[] = {
	"interface 0 name ext",
	"interface 1 name int",
	"addr add 198.18.0.1/24 dev ext",
	"addr add 198.19.0.1/24 dev int",
	"snat add 198.19.0.2 ports 2000-2999 dev int",
	"snat add 198.19.0.3 dev int",
	"service add web vip 198.18.0.100 port 80 proto tcp sched maglev snat 198.19.0.3",
	"backend add web 198.19.0.11:8080",
	"backend add web 198.19.0.12:8080",
	"backend add web 198.19.0.13:8080",
	"service add dns vip 198.18.0.100 port 53 proto udp",
	"backend add dns 198.19.0.21:53",
};

static int setup(void **state)
{
	(void)state;
	if (ctl_env_ports("net_ring0", "net_ring1") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(conf) / sizeof(conf[0]); i++)
		ok(conf[i]);
	nsent = 0;
	queue_full = false;
	hc_set_output(capture);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* Checks off: hc forgets every backend, so the next test starts afresh. */
	ok("service set web check off");
	ok("service set dns check off");
	hc_poll(0);
	hc_set_output(NULL);
	ctl_buf_free(&out);
	return 0;
}

static void probes_leave_from_the_service_snat_address_and_check_ports(void **state)
{
	const struct hc_probe *p;
	uint64_t now;

	(void)state;
	ok("service set web check tcp");
	now = run_until(0, 1990); /* the first probes go out within one interval */
	for (int i = 1; i <= 3; i++) {
		char ip[16];

		snprintf(ip, sizeof(ip), "198.19.0.1%d", i);
		p = probe_to(ip);
		assert_non_null(p);
		assert_int_equal(p->kind, CFG_CHECK_TCP);
		assert_int_equal(p->src, ip4("198.19.0.3")); /* the service's pool, not .2 */
		assert_int_equal(p->dport, htons(8080));
		assert_in_range(ntohs(p->sport), CFG_CHECK_PORT_LO, CFG_CHECK_PORT_HI);
		assert_int_equal(probes_to(ip), 1);
	}
	/* Then one per interval (2 s), and the source port moves on. */
	p = probe_to("198.19.0.11");
	{
		uint16_t first = p->sport;

		now = until_probed("198.19.0.11", 2, now, now + 2100);
		assert_int_not_equal(probe_to("198.19.0.11")->sport, first);
	}
	run_until(now, now + 1900);
	assert_int_equal(probes_to("198.19.0.11"), 2);
	/* A UDP service is checked with ICMP echo; the id names the backend. */
	ok("service set dns check icmp");
	run_until(now, now + 2100);
	p = probe_to("198.19.0.21");
	assert_non_null(p);
	assert_int_equal(p->kind, CFG_CHECK_ICMP);
	assert_int_equal(p->isn >> 16, slot_of("dns", "198.19.0.21", 53));
}

/* Answer every outstanding probe of every backend but @silent between probes. */
static uint64_t answer_all_but(const char *silent, uint64_t now, uint64_t to)
{
	int seen = nsent;

	for (; now <= to; now += 10) {
		hc_poll(now);
		for (; seen < nsent; seen++) {
			struct hc_report r;

			if (sent[seen].dst == ip4(silent))
				continue;
			r = answer(&sent[seen], true);
			hc_report_in(&r);
		}
	}
	return to;
}

static void a_silent_backend_goes_down_after_fall_and_back_after_rise(void **state)
{
	int b = slot_of("web", "198.19.0.12", 8080);
	int other = slot_of("web", "198.19.0.11", 8080);
	uint64_t now, down_at = 0;

	(void)state;
	ok("service set web check tcp interval 2 timeout 1 rise 2 fall 3");
	assert_int_equal(health(b), CFG_HEALTH_UP);
	assert_true(selectable("web", b));
	/* From t=0 the backend answers nothing; the others answer everything. */
	for (now = 0; now <= 12000 && down_at == 0; now += 10) {
		answer_all_but("198.19.0.12", now, now);
		if (health(b) == CFG_HEALTH_DOWN)
			down_at = now;
	}
	/* Three probes unanswered: within interval x fall + timeout (+ the first
	 * probe's spread within one interval). */
	assert_int_not_equal(down_at, 0);
	assert_true(down_at <= 2000 + 2 * 2000 + 1000 + 20);
	assert_int_equal(probes_to("198.19.0.12"), 3);
	assert_false(selectable("web", b));
	assert_int_equal(health(other), CFG_HEALTH_UP);
	assert_true(selectable("web", other));
	/* Down by health is not "state down": live flows are not reset. */
	assert_int_equal(cfg_current()->backends[b].state, CFG_BACKEND_UP);
	ok("show backends web");
	assert_non_null(strstr(out.data, "198.19.0.12  8080  1       up     down"));
	assert_non_null(strstr(out.data, "timeout"));
	/* It answers again: one success is not enough (rise 2), two are. */
	for (int ok_ = 0; ok_ < 2; ok_++) {
		int n = probes_to("198.19.0.12");
		struct hc_report r;

		now = until_probed("198.19.0.12", n + 1, now, now + 2100);
		assert_int_equal(health(b), CFG_HEALTH_DOWN);
		r = answer(probe_to("198.19.0.12"), true);
		hc_report_in(&r);
		hc_poll(now += 10);
	}
	assert_int_equal(health(b), CFG_HEALTH_UP);
	assert_true(selectable("web", b));
}

static void a_refused_probe_fails_at_once_and_odd_answers_are_ignored(void **state)
{
	int b = slot_of("web", "198.19.0.13", 8080);
	struct hc_probe p;
	struct hc_report r;
	uint64_t now = 0;

	(void)state;
	ok("service set web check tcp interval 1 timeout 1 rise 1 fall 1");
	now = until_probed("198.19.0.13", 1, now, 1100);
	p = *probe_to("198.19.0.13");
	/* Answers that do not match the probe change nothing. */
	r = answer(&p, false);
	r.ack++;
	hc_report_in(&r);
	r = answer(&p, false);
	r.src = ip4("198.19.0.99");
	hc_report_in(&r);
	r = answer(&p, false);
	r.sport = htons(8081);
	hc_report_in(&r);
	r = answer(&p, false);
	r.dport = htons(ntohs(p.sport) + 1);
	hc_report_in(&r);
	r = answer(&p, false);
	r.dst = ip4("198.19.0.2");
	hc_report_in(&r);
	hc_poll(now += 10);
	assert_int_equal(health(b), CFG_HEALTH_UP);
	/* A RST from the backend (nothing listens) fails without waiting. */
	r = answer(&p, false);
	hc_report_in(&r);
	hc_poll(now += 10);
	assert_int_equal(health(b), CFG_HEALTH_DOWN);
	assert_false(selectable("web", b));
	ok("show backends web");
	assert_non_null(strstr(out.data, "refused"));
	/* A late SYN-ACK to that probe is not a success. */
	r = answer(&p, true);
	hc_report_in(&r);
	hc_poll(now += 10);
	assert_int_equal(health(b), CFG_HEALTH_DOWN);
}

static void no_source_address_or_full_queue_count_as_failures(void **state)
{
	int b = slot_of("web", "198.19.0.11", 8080);
	uint64_t now;

	(void)state;
	ok("service set web check tcp interval 1 timeout 1 rise 1 fall 2");
	queue_full = true;
	now = run_until(0, 2100);
	assert_int_equal(health(b), CFG_HEALTH_DOWN);
	ok("show backends web");
	assert_non_null(strstr(out.data, "not_sent"));
	queue_full = false;
	/* With every SNAT address deleted, a service has nothing to probe from. */
	ok("service del web");
	ok("snat del 198.19.0.2");
	ok("snat del 198.19.0.3");
	ok("service set dns check icmp interval 1 timeout 1 rise 1 fall 1");
	nsent = 0;
	run_until(now, now + 2100);
	assert_int_equal(nsent, 0);
	assert_int_equal(health(slot_of("dns", "198.19.0.21", 53)), CFG_HEALTH_DOWN);
	ok("show backends dns");
	assert_non_null(strstr(out.data, "no_source"));
	ok("service add web vip 198.18.0.100 port 80 proto tcp"); /* for teardown */
}

static void checks_off_or_a_new_backend_start_over(void **state)
{
	int b = slot_of("web", "198.19.0.11", 8080);
	const struct hc_probe *p;
	struct hc_report r;
	uint64_t now;

	(void)state;
	ok("service set web check tcp interval 1 timeout 1 rise 1 fall 1");
	now = until_probed("198.19.0.11", 1, 0, 1100);
	now = run_until(now, now + 1010); /* timed out */
	assert_int_equal(health(b), CFG_HEALTH_DOWN);
	/* Checks off: every backend is selectable again, health "unchecked". */
	ok("service set web check off");
	assert_int_equal(health(b), CFG_HEALTH_UNCHECKED);
	assert_true(selectable("web", b));
	/* A backend deleted while its probe is out: the answer finds nobody. */
	ok("service set web check tcp interval 1 timeout 1 rise 1 fall 1");
	nsent = 0;
	now = until_probed("198.19.0.11", 1, now, now + 1100);
	p = probe_to("198.19.0.11");
	ok("backend del web 198.19.0.11:8080");
	ok("backend add web 198.19.0.11:8080");
	b = slot_of("web", "198.19.0.11", 8080);
	r = answer(p, false);
	hc_report_in(&r);
	hc_poll(now += 10);
	assert_int_equal(health(b), CFG_HEALTH_UP); /* the new one starts up */
	assert_true(selectable("web", b));
}

static void a_conclusion_overtaken_by_checks_off_publishes_nothing(void **state)
{
	const struct cfg *before;
	struct hc_report r;
	uint64_t now;

	(void)state;
	ok("service set web check tcp interval 1 timeout 1 rise 1 fall 1");
	now = until_probed("198.19.0.12", 1, 0, 1100);
	/* The RST is taken, then checks go off before the next poll publishes. */
	r = answer(probe_to("198.19.0.12"), false);
	hc_report_in(&r);
	ok("service set web check off");
	before = cfg_current();
	hc_poll(now + 10);
	assert_ptr_equal(cfg_current(), before);
	assert_int_equal(health(slot_of("web", "198.19.0.12", 8080)), CFG_HEALTH_UNCHECKED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(probes_leave_from_the_service_snat_address_and_check_ports),
		T(a_silent_backend_goes_down_after_fall_and_back_after_rise),
		T(a_refused_probe_fails_at_once_and_odd_answers_are_ignored),
		T(no_source_address_or_full_queue_count_as_failures),
		T(checks_off_or_a_new_backend_start_over),
		T(a_conclusion_overtaken_by_checks_off_publishes_nothing),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
