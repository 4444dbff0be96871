/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The command table, the line parser and the control socket server.
 *
 * The config file (sluice -f), the socket and the unit tests all go through
 * ctl_exec(), so a command behaves the same wherever it comes from. The
 * server is single-threaded and never blocks: every client socket is
 * non-blocking, a request is assembled across as many polls as it takes, and
 * a client that stops making progress is dropped after CTL_CLIENT_IDLE_MS.
 */
#define _GNU_SOURCE /* accept4(): new clients are non-blocking from the start */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "ctl_priv.h"
#include "ctl_proto.h"

#define CTL_MAX_WORDS	    64
#define CTL_CLIENTS_MAX	    16
#define CTL_CLIENT_IDLE_MS  10000
/* With every slot taken, a client quiet for this long gives its slot to a new one. */
#define CTL_CLIENT_EVICT_MS 1000
#define CTL_REP_KEEP	    (1u << 20) /* reply buffers above this are freed after use */

/* ---- the control lock (ctl.h) ---- */

/* Recursive: a health-check tick that holds it may still call ctl_exec(). */
static pthread_mutex_t ctl_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void ctl_lock(void)
{
	pthread_mutex_lock(&ctl_mutex);
}

void ctl_unlock(void)
{
	pthread_mutex_unlock(&ctl_mutex);
}

/* ---- output buffer ---- */

static int ctl_buf_reserve(struct ctl_buf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->len + extra + 1 <= b->cap)
		return 0;
	cap = b->cap != 0 ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static void ctl_buf_append(struct ctl_buf *b, const void *data, size_t size)
{
	if (ctl_buf_reserve(b, size) < 0)
		return;
	memcpy(b->data + b->len, data, size);
	b->len += size;
	b->data[b->len] = '\0';
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void ctl_buf_reset(struct ctl_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void ctl_vprintf(struct ctl_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	/* Output that does not fit in memory is dropped rather than half-written. */
	if (n < 0 || ctl_buf_reserve(b, (size_t)n) < 0)
		return;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void ctl_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vprintf(b, fmt, ap);
	va_end(ap);
}

int ctl_fail(struct ctl_ctx *x, int err, const char *fmt, ...)
{
	va_list ap;

	ctl_buf_reset(x->out);
	if (x->cmd != NULL)
		ctl_printf(x->out, "%s: ", x->cmd);
	va_start(ap, fmt);
	ctl_vprintf(x->out, fmt, ap);
	va_end(ap);
	return err;
}

int ctl_usage(struct ctl_ctx *x)
{
	return ctl_fail(x, -EINVAL, "usage: %s %s", x->cmd, x->args);
}

void ctl_json_str(struct ctl_buf *b, const char *s)
{
	ctl_buf_append(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			ctl_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			ctl_printf(b, "\\u%04x", ch);
		else
			ctl_buf_append(b, s, 1);
	}
	ctl_buf_append(b, "\"", 1);
}

/* ---- parsers ---- */

int ctl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v)
{
	uint64_t n = 0;

	/* strtoul would accept signs, spaces and hex; configs must not. */
	if (*s == '\0' || strlen(s) > 10)
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n < min || n > max)
		return -EINVAL;
	*v = (uint32_t)n;
	return 0;
}

int ctl_parse_ip(const char *s, uint32_t *ip)
{
	struct in_addr a;

	/* glibc's inet_pton takes only four decimal octets, no leading zeros. */
	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = a.s_addr;
	return 0;
}

int ctl_parse_prefix(const char *s, uint32_t *prefix, uint8_t *plen)
{
	char buf[32];
	char *slash;
	uint32_t len = 32;

	if (strcmp(s, "default") == 0) {
		*prefix = 0;
		*plen = 0;
		return 0;
	}
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (ctl_parse_u32(slash + 1, 0, 32, &len) < 0)
			return -EINVAL;
	}
	if (ctl_parse_ip(buf, prefix) < 0)
		return -EINVAL;
	*plen = (uint8_t)len;
	return 0;
}

int ctl_parse_ipport(const char *s, uint32_t *ip, uint16_t *l4port)
{
	char buf[32];
	char *colon;
	uint32_t p;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (colon == NULL)
		return -EINVAL;
	*colon = '\0';
	if (ctl_parse_ip(buf, ip) < 0 || ctl_parse_u32(colon + 1, 1, 65535, &p) < 0)
		return -EINVAL;
	*l4port = htons((uint16_t)p);
	return 0;
}

static int ctl_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int ctl_parse_mac(const char *s, struct rte_ether_addr *mac)
{
	/* Exactly xx:xx:xx:xx:xx:xx; rte_ether_unformat_addr also takes other forms. */
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = ctl_hex(s[3 * i]), lo = ctl_hex(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac->addr_bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int ctl_parse_onoff(const char *s, bool *on)
{
	if (strcmp(s, "on") == 0)
		*on = true;
	else if (strcmp(s, "off") == 0)
		*on = false;
	else
		return -EINVAL;
	return 0;
}

bool ctl_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CFG_NAME_SIZE)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

const char *ctl_fmt_ip(uint32_t ip, char *buf)
{
	struct in_addr a = { .s_addr = ip };

	inet_ntop(AF_INET, &a, buf, CTL_ADDR_SIZE);
	return buf;
}

const char *ctl_fmt_ipport(uint32_t ip, uint16_t l4port, char *buf)
{
	struct in_addr in = { .s_addr = ip };
	char a[INET_ADDRSTRLEN]; /* sized so the compiler can see the result fits */

	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, CTL_ADDR_SIZE, "%s:%u", a, ntohs(l4port));
	return buf;
}

const char *ctl_proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

const char *ctl_port_label(const struct cfg *c, uint16_t port)
{
	if (port >= CFG_MAX_PORTS)
		return "?";
	if (c->ports[port].name[0] != '\0')
		return c->ports[port].name;
	if (c->ports[port].dev[0] != '\0')
		return c->ports[port].dev;
	return "?";
}

/* ---- the command table ---- */

struct ctl_cmd {
	const char *words; /* the command, e.g. "service add" */
	const char *args;  /* what follows, for usage lines */
	ctl_cmd_fn fn;
	bool edit; /* changes the configuration: runs on a copy */
};

static int ctl_help(struct ctl_ctx *x, int argc, char **argv);

static const struct ctl_cmd ctl_cmds[] = {
	{ "interface", "PORT name NAME", ctl_cmd_interface, true },
	{ "addr add", "A.B.C.D/LEN dev DEV", ctl_cmd_addr_add, true },
	{ "addr del", "A.B.C.D/LEN dev DEV", ctl_cmd_addr_del, true },
	{ "route add", "PREFIX|default [via GATEWAY] dev DEV", ctl_cmd_route_add, true },
	{ "route del", "PREFIX|default", ctl_cmd_route_del, true },
	{ "neigh add", "A.B.C.D lladdr MAC dev DEV", ctl_cmd_neigh_add, true },
	{ "neigh del", "A.B.C.D dev DEV", ctl_cmd_neigh_del, true },
	{ "snat add", "A.B.C.D [ports LO-HI] dev DEV", ctl_cmd_snat_add, true },
	{ "snat del", "A.B.C.D", ctl_cmd_snat_del, true },
	{ "service add",
	  "NAME vip A.B.C.D port N proto tcp|udp [sched maglev|wrr|rr|lc] [snat A.B.C.D[,...]]",
	  ctl_cmd_service_add, true },
	{ "service set",
	  "NAME sched maglev|wrr|rr|lc | snat A.B.C.D[,...]|all | tw-quarantine S|default | "
	  "ts-rewrite on|off|default | tw-reuse on|off|default | check tcp [interval S] "
	  "[timeout S] [rise N] [fall N] | check off",
	  ctl_cmd_service_set, true },
	{ "service del", "NAME", ctl_cmd_service_del, true },
	{ "backend add", "SERVICE A.B.C.D:N [weight W] [state up|drain|down]", ctl_cmd_backend_add,
	  true },
	{ "backend set", "SERVICE A.B.C.D:N weight W | state up|drain|down", ctl_cmd_backend_set,
	  true },
	{ "backend del", "SERVICE A.B.C.D:N", ctl_cmd_backend_del, true },
	{ "set tcp",
	  "tw-quarantine SECONDS | ts-rewrite on|off | tw-reuse on|off | timeout "
	  "syn|established|closing|closed SECONDS",
	  ctl_cmd_set_tcp, true },
	{ "set udp", "timeout SECONDS", ctl_cmd_set_udp, true },
	{ "show version", "", ctl_show_version, false },
	{ "show interfaces", "", ctl_show_interfaces, false },
	{ "show addrs", "", ctl_show_addrs, false },
	{ "show routes", "", ctl_show_routes, false },
	{ "show neigh", "", ctl_show_neigh, false },
	{ "show services", "[NAME]", ctl_show_services, false },
	{ "show backends", "[SERVICE]", ctl_show_backends, false },
	{ "show snat", "", ctl_show_snat, false },
	{ "show portspace", "SERVICE A.B.C.D:N", ctl_show_portspace, false },
	{ "show flows", "[service NAME] [backend A.B.C.D:N] [limit N]", ctl_show_flows, false },
	{ "show stats", "", ctl_show_stats, false },
	{ "show drops", "", ctl_show_drops, false },
	{ "show settings", "", ctl_show_settings, false },
	{ "clear stats", "", ctl_clear_stats, false },
	{ "help", "", ctl_help, false },
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static int ctl_help(struct ctl_ctx *x, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return ctl_usage(x);
	for (size_t i = 0; i < CTL_NCMDS; i++)
		ctl_printf(x->out, "%s%s%s\n", ctl_cmds[i].words, ctl_cmds[i].args[0] ? " " : "",
			   ctl_cmds[i].args);
	return 0;
}

/* Number of words of @cmd that start @argv, or 0 if it does not match. */
static int ctl_cmd_match(const struct ctl_cmd *cmd, int argc, char **argv)
{
	const char *w = cmd->words;
	int n = 0;

	while (*w != '\0') {
		size_t len = strcspn(w, " ");

		if (n >= argc || strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		if (*w == ' ')
			w++;
	}
	return n;
}

/* Refusal for words that name no command; lists the candidates it can. */
static int ctl_unknown(struct ctl_ctx *x, int argc, char **argv)
{
	size_t first = strlen(argv[0]);
	bool any = false;

	ctl_fail(x, -EINVAL, "unknown command \"%s%s%s\"", argv[0], argc > 1 ? " " : "",
		 argc > 1 ? argv[1] : "");
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		const char *w = ctl_cmds[i].words;

		if (strncmp(w, argv[0], first) != 0 || w[first] != ' ')
			continue;
		ctl_printf(x->out, "%s%s", any ? "|" : "; expected: ", w);
		any = true;
	}
	return -EINVAL;
}

/* Split @line in place; '#' starts a comment. Returns the word count or -E2BIG. */
static int ctl_split(char *line, char **argv)
{
	int argc = 0;
	char *p = line;

	p[strcspn(p, "#")] = '\0';
	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			return argc;
		if (argc == CTL_MAX_WORDS)
			return -E2BIG;
		argv[argc++] = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
	}
}

static int ctl_exec_locked(const char *line, bool json, struct ctl_buf *out)
{
	struct ctl_ctx x = { .out = out, .json = json };
	char copy[CTL_REQ_MAX + 1];
	char *argv[CTL_MAX_WORDS];
	const struct ctl_cmd *cmd = NULL;
	size_t len = strlen(line);
	int argc, n = 0, ret;

	ctl_buf_reset(out);
	if (len > CTL_REQ_MAX)
		return ctl_fail(&x, -E2BIG, "command longer than %u bytes", CTL_REQ_MAX);
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
			return ctl_fail(&x, -EINVAL, "control character in command");
	memcpy(copy, line, len + 1);
	argc = ctl_split(copy, argv);
	if (argc < 0)
		return ctl_fail(&x, -E2BIG, "more than %d words", CTL_MAX_WORDS);
	if (argc == 0)
		return 0;
	for (size_t i = 0; i < CTL_NCMDS && n == 0; i++) {
		n = ctl_cmd_match(&ctl_cmds[i], argc, argv);
		cmd = &ctl_cmds[i];
	}
	if (n == 0)
		return ctl_unknown(&x, argc, argv);
	x.cmd = cmd->words;
	x.args = cmd->args;
	if (!cmd->edit) {
		x.c = cfg_current();
		ret = cmd->fn(&x, argc - n, argv + n);
		goto out;
	}
	x.c = cfg_clone(cfg_current());
	if (x.c == NULL)
		return ctl_fail(&x, -ENOMEM, "out of memory");
	ret = cmd->fn(&x, argc - n, argv + n);
	if (ret == 0) {
		ret = cfg_derive(x.c);
		if (ret < 0)
			ctl_fail(&x, ret, "cannot build the new configuration: %s", strerror(-ret));
	}
	if (ret < 0) {
		cfg_free(x.c);
		goto out;
	}
	cfg_publish(x.c);
out:
	/* A refusal always carries a reason, even if a handler forgot one. */
	if (ret < 0 && out->len == 0)
		ctl_fail(&x, ret, "%s", strerror(-ret));
	return ret;
}

int ctl_exec(const char *line, bool json, struct ctl_buf *out)
{
	int ret;

	ctl_lock();
	ret = ctl_exec_locked(line, json, out);
	ctl_unlock();
	return ret;
}

int ctl_apply_file(const char *path, FILE *err)
{
	struct ctl_buf out = { 0 };
	char *line = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	ssize_t n;
	int ret = 0;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		int rc;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		rc = ctl_exec(line, false, &out);
		if (rc < 0) {
			fprintf(err, "%s:%u: %s\n", path, lineno,
				out.data != NULL ? out.data : strerror(-rc));
			ret = -1;
			break;
		}
	}
	if (ret == 0 && ferror(f)) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		ret = -1;
	}
	free(line);
	ctl_buf_free(&out);
	fclose(f);
	return ret;
}

/* ---- rates ---- */

struct ctl_rate {
	uint32_t gen;
	uint64_t last_total;
	uint64_t per_s;
};

static struct ctl_rate ctl_rates[CFG_MAX_SERVICES];
static uint64_t ctl_rate_ms;

uint64_t ctl_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ctl_tick_locked(void)
{
	const struct cfg *c = cfg_current();
	uint64_t now = ctl_clock_ms();
	uint64_t dt = now - ctl_rate_ms;

	if (c == NULL)
		return;
	/* The caller promises "about once a second"; measure instead of trusting it. */
	if (ctl_rate_ms != 0 && dt < 500)
		return;
	for (int s = 0; s < CFG_MAX_SERVICES; s++) {
		const struct cfg_service *svc = &c->services[s];
		struct ctl_rate *r = &ctl_rates[s];
		uint64_t total;

		if (!svc->used) {
			memset(r, 0, sizeof(*r));
			continue;
		}
		total = ctl_stats_service_total(c, s);
		if (r->gen == svc->gen && ctl_rate_ms != 0 && total >= r->last_total)
			r->per_s = (total - r->last_total) * 1000 / dt;
		else
			r->per_s = 0;
		r->gen = svc->gen;
		r->last_total = total;
	}
	ctl_rate_ms = now;
	ctl_snat_reap();
}

void ctl_tick(void)
{
	ctl_lock();
	ctl_tick_locked();
	ctl_unlock();
}

uint64_t ctl_rate_service(int slot, uint32_t gen)
{
	if (slot < 0 || slot >= CFG_MAX_SERVICES || ctl_rates[slot].gen != gen)
		return 0;
	return ctl_rates[slot].per_s;
}

/* ---- the socket server ---- */

struct ctl_client {
	int fd; /* -1: unused */
	uint64_t last_ms;
	struct ctl_req req;
	size_t got; /* bytes of req and text received */
	char text[CTL_REQ_MAX + 1];
	struct ctl_buf rep; /* struct ctl_rep and text, while being sent */
	size_t sent;
};

static int ctl_listen_fd = -1;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct ctl_client ctl_clients[CTL_CLIENTS_MAX];
static bool ctl_clients_ready;

static void ctl_clients_init(void)
{
	if (ctl_clients_ready)
		return;
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		ctl_clients[i].fd = -1;
	ctl_clients_ready = true;
}

static void ctl_client_close(struct ctl_client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	cl->got = 0;
	cl->sent = 0;
	ctl_buf_free(&cl->rep);
}

/* mkdir -p of the directory part of @path. */
static int ctl_mkdir_parents(const char *path)
{
	char dir[sizeof(ctl_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Whether a daemon answers on @addr: then the socket is not stale. */
static bool ctl_socket_alive(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	return alive;
}

int ctl_server_open(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (ctl_listen_fd >= 0)
		return -EALREADY;
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	ctl_clients_init();
	ret = ctl_mkdir_parents(path);
	if (ret < 0)
		return ret;
	if (lstat(path, &st) == 0) {
		/* Never unlink something that is not ours to replace. */
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (ctl_socket_alive(&addr))
			return -EADDRINUSE;
		if (unlink(path) < 0)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto fail_close;
	if (listen(fd, CTL_CLIENTS_MAX) < 0)
		goto fail_unlink;
	ctl_listen_fd = fd;
	strcpy(ctl_path, path);
	return 0;
fail_unlink:
	ret = -errno;
	unlink(path);
	close(fd);
	return ret;
fail_close:
	ret = -errno;
	close(fd);
	return ret;
}

/* A free slot, or the slot of the client quiet longest if that is long enough. */
static struct ctl_client *ctl_client_slot(uint64_t now)
{
	struct ctl_client *oldest = NULL;

	for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
		struct ctl_client *cl = &ctl_clients[i];

		if (cl->fd < 0)
			return cl;
		if (oldest == NULL || cl->last_ms < oldest->last_ms)
			oldest = cl;
	}
	if (oldest != NULL && now - oldest->last_ms >= CTL_CLIENT_EVICT_MS)
		return oldest;
	return NULL;
}

static void ctl_client_accept(uint64_t now)
{
	for (;;) {
		struct ctl_client *cl = ctl_client_slot(now);
		int fd;

		if (cl == NULL)
			return; /* the rest wait in the backlog */
		if (cl->fd >= 0) {
			/* Idle clients must not lock operators out of the daemon. */
			ctl_client_close(cl);
		}
		fd = accept4(ctl_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		cl->fd = fd;
		cl->last_ms = now;
		cl->got = 0;
		cl->sent = 0;
	}
}

/* Send what is pending. Returns 0 to keep the client, -1 to close it. */
static int ctl_client_write(struct ctl_client *cl)
{
	while (cl->sent < cl->rep.len) {
		ssize_t n = send(cl->fd, cl->rep.data + cl->sent, cl->rep.len - cl->sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		cl->sent += (size_t)n;
	}
	/* Done: back to reading the next request. */
	if (cl->rep.cap > CTL_REP_KEEP)
		ctl_buf_free(&cl->rep);
	ctl_buf_reset(&cl->rep);
	cl->sent = 0;
	return 0;
}

static int ctl_client_execute(struct ctl_client *cl)
{
	struct ctl_buf out = { 0 };
	struct ctl_rep rep = { .magic = CTL_PROTO_MAGIC, .id = cl->req.id };
	struct ctl_ctx x = { .out = &out };

	cl->text[cl->req.len] = '\0';
	if (memchr(cl->text, '\0', cl->req.len) != NULL)
		rep.status = ctl_fail(&x, -EINVAL, "NUL byte in command");
	else
		rep.status = ctl_exec(cl->text, (cl->req.flags & CTL_REQ_JSON) != 0, &out);
	if (out.len > CTL_REP_MAX)
		rep.status = ctl_fail(&x, -EMSGSIZE, "reply longer than %u bytes", CTL_REP_MAX);
	rep.len = (uint32_t)out.len;
	ctl_buf_reset(&cl->rep);
	ctl_buf_append(&cl->rep, &rep, sizeof(rep));
	if (out.len != 0)
		ctl_buf_append(&cl->rep, out.data, out.len);
	ctl_buf_free(&out);
	cl->got = 0;
	cl->sent = 0;
	if (cl->rep.len != sizeof(rep) + rep.len)
		return -1; /* out of memory: the client sees the connection close */
	return ctl_client_write(cl);
}

/* Receive what is there. Returns 0 to keep the client, -1 to close it. */
static int ctl_client_read(struct ctl_client *cl)
{
	for (;;) {
		size_t want;
		char *dst;
		ssize_t n;

		if (cl->got < sizeof(cl->req)) {
			dst = (char *)&cl->req + cl->got;
			want = sizeof(cl->req) - cl->got;
		} else {
			dst = cl->text + (cl->got - sizeof(cl->req));
			want = cl->req.len - (cl->got - sizeof(cl->req));
		}
		if (want == 0)
			return ctl_client_execute(cl);
		n = recv(cl->fd, dst, want, MSG_DONTWAIT);
		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		cl->got += (size_t)n;
		/* Garbage or an oversized request: drop the client, there is no resync. */
		if (cl->got == sizeof(cl->req) &&
		    (cl->req.magic != CTL_PROTO_MAGIC || cl->req.len > CTL_REQ_MAX))
			return -1;
	}
}

void ctl_server_poll(int timeout_ms)
{
	struct pollfd fds[CTL_CLIENTS_MAX + 1];
	struct ctl_client *owner[CTL_CLIENTS_MAX + 1];
	nfds_t nfds = 0;
	bool room;
	uint64_t now;

	if (ctl_listen_fd < 0) {
		if (timeout_ms > 0)
			poll(NULL, 0, timeout_ms);
		return;
	}
	room = ctl_client_slot(ctl_clock_ms()) != NULL;
	for (int i = 0; i < CTL_CLIENTS_MAX; i++) {
		struct ctl_client *cl = &ctl_clients[i];

		if (cl->fd < 0)
			continue;
		fds[nfds] = (struct pollfd){
			.fd = cl->fd,
			.events = cl->rep.len > 0 ? POLLOUT : POLLIN,
		};
		owner[nfds++] = cl;
	}
	if (room) {
		fds[nfds] = (struct pollfd){ .fd = ctl_listen_fd, .events = POLLIN };
		owner[nfds++] = NULL;
	}
	if (poll(fds, nfds, timeout_ms) < 0)
		return;
	now = ctl_clock_ms();
	for (nfds_t i = 0; i < nfds; i++) {
		struct ctl_client *cl = owner[i];
		int ret = 0;

		if (fds[i].revents == 0)
			continue;
		if (cl == NULL) {
			ctl_client_accept(now);
			continue;
		}
		cl->last_ms = now;
		if (fds[i].revents & (POLLERR | POLLNVAL))
			ret = -1;
		else if (cl->rep.len > 0)
			ret = ctl_client_write(cl);
		else
			ret = ctl_client_read(cl);
		if (ret < 0)
			ctl_client_close(cl);
	}
	/* A client that stalls must not hold a slot (or its memory) forever. */
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		if (ctl_clients[i].fd >= 0 && now - ctl_clients[i].last_ms > CTL_CLIENT_IDLE_MS)
			ctl_client_close(&ctl_clients[i]);
}

void ctl_server_close(void)
{
	ctl_clients_init();
	for (int i = 0; i < CTL_CLIENTS_MAX; i++)
		if (ctl_clients[i].fd >= 0)
			ctl_client_close(&ctl_clients[i]);
	if (ctl_listen_fd >= 0) {
		close(ctl_listen_fd);
		ctl_listen_fd = -1;
		unlink(ctl_path);
	}
}
