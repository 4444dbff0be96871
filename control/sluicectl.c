/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sluicectl: send commands to the sluice daemon's control socket.
 *
 * Thin on purpose: the daemon parses and validates every command (the same
 * parser as "sluice -f"), so this program only joins words into a line,
 * sends it, prints the reply and turns the status into an exit code:
 *   0 done, 1 the daemon refused (reason on stderr), 2 usage error or the
 *   daemon is unreachable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_proto.h"

#define SLUICECTL_TIMEOUT_S 10 /* a daemon that is alive answers long before this */

enum {
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2
};

static const char sluicectl_help[] =
	"Usage:\n"
	"  sluicectl [-s PATH] [--json] COMMAND ...\n"
	"  sluicectl [-s PATH] -f FILE      apply every line of FILE; stops at the first\n"
	"                                   error and reports FILE:LINE\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH   control socket (default " CTL_DEFAULT_SOCKET ")\n"
	"  -f, --file FILE     apply FILE (one command per line, '#' comments)\n"
	"  -j, --json          every show prints one JSON document on stdout\n"
	"  -h, --help          this text\n"
	"\n"
	"The daemon:\n"
	"  sluice [EAL options] -- [-f FILE] [-s PATH]\n"
	"    -f, --config FILE   apply FILE before forwarding starts; any error aborts\n"
	"                        start-up with \"FILE:LINE: message\" and exit 1\n"
	"    -s, --socket PATH   control socket (default " CTL_DEFAULT_SOCKET ")\n"
	"\n"
	"dev arguments accept an interface name set with \"interface\", the DPDK port id,\n"
	"or the DPDK device name.\n"
	"\n"
	"Interfaces and L3:\n"
	"  interface PORT name NAME                 name a DPDK port, e.g. \"interface 0 name ext\"\n"
	"  addr add A.B.C.D/LEN dev DEV             own address: answers ARP and ICMP echo\n"
	"  addr del A.B.C.D/LEN dev DEV\n"
	"  route add PREFIX via GATEWAY dev DEV     static route; \"default\" = 0.0.0.0/0\n"
	"  route add PREFIX dev DEV                 on-link route\n"
	"  route del PREFIX\n"
	"  neigh add A.B.C.D lladdr MAC dev DEV     static neighbour (dynamic ARP is automatic)\n"
	"  neigh del A.B.C.D dev DEV\n"
	"\n"
	"Source-NAT address pool:\n"
	"  snat add A.B.C.D [ports LO-HI] dev DEV   SNAT source address (answers ARP); default ports "
	"1024-65535\n"
	"  snat del A.B.C.D                         existing flows keep their tuples until they end\n"
	"\n"
	"Services and backends:\n"
	"  service add NAME vip A.B.C.D port N proto tcp|udp [sched maglev|wrr|rr|lc] "
	"[snat A.B.C.D[,A.B.C.D...]]\n"
	"  service set NAME sched maglev|wrr|rr|lc\n"
	"  service set NAME snat A.B.C.D[,...]      which pool addresses this service may use "
	"(default: all)\n"
	"  service set NAME snat all                back to the default\n"
	"  service del NAME\n"
	"  backend add SERVICE A.B.C.D:N [weight W] (W 0..65535, default 1)\n"
	"  backend set SERVICE A.B.C.D:N weight W\n"
	"  backend set SERVICE A.B.C.D:N state up|drain|down\n"
	"                                           drain: no new flows, live flows continue;\n"
	"                                           down: no new flows, live flows are reset\n"
	"  backend del SERVICE A.B.C.D:N            same as down, then removed\n"
	"  service set NAME check tcp [interval S] [timeout S] [rise N] [fall N]\n"
	"                                           active health checks sent by the dataplane\n"
	"                                           (defaults: interval 2, timeout 1, rise 2, "
	"fall 3)\n"
	"                                           from an SNAT address, source ports 1000-1023\n"
	"  service set NAME check icmp [interval S] [timeout S] [rise N] [fall N]\n"
	"                                           the same with ICMP echo (for UDP services)\n"
	"  service set NAME check off\n"
	"\n"
	"TCP/UDP behaviour (global; `service set NAME ...` may override per service)\n"
	"  set tcp tw-quarantine SECONDS            how long a (snat addr, snat port, backend addr,\n"
	"                                           backend port) tuple is not reused after the\n"
	"                                           backend closed first; default 60; 0 disables\n"
	"  service set NAME tw-quarantine SECONDS|default\n"
	"                                           the same for one service; default: the global\n"
	"  set tcp ts-rewrite on|off                per-flow timestamp rewriting; default on\n"
	"                                           (new flows; live flows keep their offset)\n"
	"  set tcp tw-reuse on|off                  when no free tuple exists, reuse a quarantined "
	"one only\n"
	"                                           if the new SYN's rewritten TSval is provably "
	"newer; default off\n"
	"  service set NAME ts-rewrite on|off|default\n"
	"  service set NAME tw-reuse on|off|default the same for one service; default: the global\n"
	"  set tcp timeout STATE SECONDS            STATE: syn, established, closing, closed\n"
	"  set udp timeout SECONDS\n"
	"\n"
	"Observation:\n"
	"  show version\n"
	"  show interfaces                          port, name, MAC, link, rx/tx packets, drops\n"
	"  show addrs | routes | neigh\n"
	"  show services [NAME]                     VIP, proto, sched, backends, active flows, new "
	"flows/s\n"
	"  show backends [SERVICE]                  addr, weight, state, active flows, total flows\n"
	"  show snat                                per pool address: ports, in use, quarantined, "
	"alloc failures\n"
	"  show portspace SERVICE A.B.C.D:N         for one backend: tuples in use, quarantined, "
	"free\n"
	"  show flows [service NAME] [backend A.B.C.D:N] [limit N]\n"
	"                                           client, vip, snat, backend, state, age, ts "
	"offset\n"
	"                                           (default limit 100; limit 0 shows all)\n"
	"  show stats                               totals and per worker: rx, tx, flows "
	"created/active/expired\n"
	"  show drops                               drop counters by reason (one reason per line)\n"
	"  show settings                            the global TCP/UDP settings, as commands\n"
	"  clear stats\n"
	"  help                                     the daemon's list of commands\n"
	"\n"
	"Exit status: 0 done; 1 the daemon refused the command (one-line reason on stderr,\n"
	"nothing changed); 2 usage error or daemon unreachable.\n";

static void sluicectl_usage_error(const char *msg)
{
	fprintf(stderr, "sluicectl: %s\nTry 'sluicectl --help'.\n", msg);
	exit(EXIT_USAGE);
}

static int sluicectl_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = SLUICECTL_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "sluicectl: cannot connect to %s: %s\n", path,
			strerror(ENAMETOOLONG));
		exit(EXIT_USAGE);
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "sluicectl: cannot connect to %s: %s\n", path, strerror(errno));
		exit(EXIT_USAGE);
	}
	return fd;
}

static int sluicectl_write_all(int fd, const void *data, size_t size)
{
	const char *p = data;

	while (size > 0) {
		ssize_t n = send(fd, p, size, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

static int sluicectl_read_all(int fd, void *data, size_t size)
{
	char *p = data;

	while (size > 0) {
		ssize_t n = recv(fd, p, size, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

/*
 * Send one command line; the reply text goes to *text (NUL-terminated).
 * Returns the daemon's status (0 or -errno). Transport failures exit 2.
 */
static int sluicectl_request(int fd, const char *path, uint32_t id, bool json, const char *line,
			     char **text)
{
	struct ctl_req req = {
		.magic = CTL_PROTO_MAGIC,
		.id = id,
		.flags = json ? CTL_REQ_JSON : 0,
		.len = (uint32_t)strlen(line),
	};
	struct ctl_rep rep;
	int ret;

	ret = sluicectl_write_all(fd, &req, sizeof(req));
	if (ret == 0)
		ret = sluicectl_write_all(fd, line, req.len);
	if (ret == 0)
		ret = sluicectl_read_all(fd, &rep, sizeof(rep));
	if (ret == 0 && (rep.magic != CTL_PROTO_MAGIC || rep.id != id || rep.len > CTL_REP_MAX))
		ret = -EPROTO;
	if (ret == 0) {
		*text = malloc((size_t)rep.len + 1);
		if (*text == NULL)
			ret = -ENOMEM;
	}
	if (ret == 0)
		ret = sluicectl_read_all(fd, *text, rep.len);
	if (ret < 0) {
		fprintf(stderr, "sluicectl: %s: no reply: %s\n", path, strerror(-ret));
		exit(EXIT_USAGE);
	}
	(*text)[rep.len] = '\0';
	return rep.status;
}

static void sluicectl_print(const char *text)
{
	size_t len = strlen(text);

	fputs(text, stdout);
	if (len > 0 && text[len - 1] != '\n')
		putchar('\n');
}

/* Drop a trailing newline: a reason is one line. */
static const char *sluicectl_reason(char *text)
{
	size_t len = strlen(text);

	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	return text;
}

static int sluicectl_file(const char *sock, const char *file, bool json)
{
	char *line = NULL, *text = NULL;
	size_t cap = 0;
	unsigned int lineno = 0;
	uint32_t id = 0;
	ssize_t n;
	FILE *f;
	int fd, status = 0, ret = 0;

	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "sluicectl: %s: %s\n", file, strerror(errno));
		return EXIT_USAGE;
	}
	fd = sluicectl_connect(sock);
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *p;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		if ((size_t)n > CTL_REQ_MAX) {
			fprintf(stderr, "%s:%u: line longer than %u bytes\n", file, lineno,
				CTL_REQ_MAX);
			ret = EXIT_USAGE;
			break;
		}
		status = sluicectl_request(fd, sock, ++id, json, line, &text);
		if (status != 0) {
			fflush(stdout);
			fprintf(stderr, "%s:%u: %s\n", file, lineno, sluicectl_reason(text));
			ret = EXIT_REFUSED;
			break;
		}
		sluicectl_print(text);
		free(text);
		text = NULL;
	}
	if (ret == 0 && ferror(f)) {
		fprintf(stderr, "sluicectl: %s: %s\n", file, strerror(errno));
		ret = EXIT_USAGE;
	}
	free(text);
	free(line);
	if (f != stdin)
		fclose(f);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = CTL_DEFAULT_SOCKET, *file = NULL;
	char line[CTL_REQ_MAX + 1];
	char *text = NULL;
	size_t len = 0;
	bool json = false;
	int opt, fd, status;

	/* '+': stop at the first command word, so commands never look like options. */
	while ((opt = getopt_long(argc, argv, "+s:f:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(sluicectl_help, stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'sluicectl --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (file != NULL) {
		if (optind < argc)
			sluicectl_usage_error("-f FILE takes no command");
		return sluicectl_file(sock, file, json);
	}
	if (optind >= argc)
		sluicectl_usage_error("no command");
	for (int i = optind; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (len + n + (i > optind) > CTL_REQ_MAX)
			sluicectl_usage_error("command too long");
		if (i > optind)
			line[len++] = ' ';
		memcpy(line + len, argv[i], n);
		len += n;
	}
	line[len] = '\0';
	fd = sluicectl_connect(sock);
	status = sluicectl_request(fd, sock, 1, json, line, &text);
	close(fd);
	if (status != 0) {
		fprintf(stderr, "sluicectl: %s\n", sluicectl_reason(text));
		free(text);
		return EXIT_REFUSED;
	}
	sluicectl_print(text);
	free(text);
	return 0;
}
