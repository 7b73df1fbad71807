// SPDX-License-Identifier: MIT
/*
 * loadgen: load generator and sink for `make bench` (bench/run.sh). libc only.
 *
 *   loadgen sink LISTEN...           LISTEN is ADDR:PORT/hello (read the first message,
 *                                    answer a ClientHello with a ServerHello, then reset
 *                                    the connection) or ADDR:PORT/drain (the same answer,
 *                                    then read and discard until the client closes)
 *   loadgen conn -d ADDR:PORT [-c CONC] [-t SEC] [-n MAX] [-p tls|http]
 *                [--open N --open-to ADDR:PORT]
 *                                    short connections: connect, send one ClientHello (or
 *                                    one HTTP request), wait for the server to close; CONC
 *                                    in flight. --open first opens N long-lived flows that
 *                                    each sent a ClientHello and keeps them open meanwhile.
 *   loadgen bulk -d ADDR:PORT [-t SEC]
 *                                    one flow: a ClientHello, the server's ServerHello,
 *                                    then bulk data for SEC
 *   loadgen latency -d ADDR:PORT [-n COUNT] [-t SEC]
 *                                    COUNT sequential connections: connect() time and
 *                                    connect-to-close time, percentiles in microseconds
 *
 * Every client mode stops by itself (after -t seconds or -n connections, whichever
 * comes first; a watchdog ends a stuck run) and prints one line of key=value pairs on
 * stdout. Exit status: 0 ok, 1 the run failed (errors are named on stderr), 2 usage.
 * The sink prints "ready" once it listens and runs until SIGTERM/SIGINT (or --max-time).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN	16
#define MAX_CONC	4096
#define MAX_OPEN	100000
#define BULK_BUF	(256 * 1024)
#define DEFAULT_SECS	3.0
#define MAX_SECS	600.0
#define MAX_ERRORS	1000	/* a client run with more failed connections is broken */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int family;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* "1.2.3.4:443" or "[2001:db8::1]:443" → address. 0 or -1. */
static int parse_addr(const char *text, struct addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_str;
	char *end;
	long port;
	size_t hlen;

	memset(a, 0, sizeof(*a));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -1;
		hlen = (size_t)(close - text - 1);
		if (hlen >= sizeof(host))
			return -1;
		memcpy(host, text + 1, hlen);
		port_str = close + 2;
	} else {
		const char *colon = strrchr(text, ':');

		if (!colon)
			return -1;
		hlen = (size_t)(colon - text);
		if (hlen >= sizeof(host))
			return -1;
		memcpy(host, text, hlen);
		port_str = colon + 1;
	}
	host[hlen] = '\0';
	errno = 0;
	port = strtol(port_str, &end, 10);
	if (errno || *port_str == '\0' || (*end != '\0' && *end != '/') || port < 1 || port > 65535)
		return -1;

	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a->len = sizeof(*sin);
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*sin6);
		a->family = AF_INET6;
		return 0;
	}
	return -1;
}

/* As many descriptors as the hard limit allows (10,000 open flows need them). */
static size_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1 << 20))
		rl.rlim_max = 1 << 20;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

/* ---- payloads ------------------------------------------------------------- */

static uint8_t payload[1024];
static size_t payload_len;

static uint8_t *put8(uint8_t *p, unsigned int v)
{
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put16(uint8_t *p, unsigned int v)
{
	*p++ = (uint8_t)(v >> 8);
	*p++ = (uint8_t)v;
	return p;
}

static void fill16(uint8_t *at, size_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
}

/*
 * A TLS 1.3 ClientHello as curl/OpenSSL send it: 517 bytes on the wire (record
 * header + a 512-byte handshake message, padded), SNI storage.test, ALPN h2 and
 * http/1.1, an x25519 key share. Fixed random and key bytes: the server never
 * answers it, the classifier only needs it to be well formed.
 */
static size_t build_client_hello(uint8_t *out, const char *sni)
{
	static const unsigned int suites[] = { 0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f,
					       0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x009e,
					       0xc024, 0xc028, 0x006b, 0xc023, 0xc027, 0x0067,
					       0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033,
					       0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f,
					       0x00ff };
	static const unsigned int sigalgs[] = { 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809,
						0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401,
						0x0501, 0x0601 };
	size_t sni_len = strlen(sni), i;
	uint8_t *p = out, *hs_len, *ext_len, *ext_start, *body;

	p = put8(p, 0x16);			/* record: handshake */
	p = put16(p, 0x0301);
	p += 2;					/* record length, below */
	p = put8(p, 0x01);			/* ClientHello */
	hs_len = p;
	p += 3;
	body = p;
	p = put16(p, 0x0303);
	for (i = 0; i < 32; i++)		/* random */
		p = put8(p, 0x5a ^ (unsigned int)i);
	p = put8(p, 32);			/* legacy session id */
	for (i = 0; i < 32; i++)
		p = put8(p, 0xa5 ^ (unsigned int)i);
	p = put16(p, sizeof(suites) / sizeof(suites[0]) * 2);
	for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		p = put16(p, suites[i]);
	p = put8(p, 1);				/* compression: null */
	p = put8(p, 0);
	ext_len = p;
	p += 2;
	ext_start = p;

	p = put16(p, 0x0000);			/* server_name */
	p = put16(p, sni_len + 5);
	p = put16(p, sni_len + 3);
	p = put8(p, 0);
	p = put16(p, sni_len);
	memcpy(p, sni, sni_len);
	p += sni_len;
	p = put16(p, 0x000b);			/* ec_point_formats */
	p = put16(p, 4);
	p = put8(p, 3);
	p = put8(p, 0);
	p = put8(p, 1);
	p = put8(p, 2);
	p = put16(p, 0x000a);			/* supported_groups */
	p = put16(p, 10);
	p = put16(p, 8);
	p = put16(p, 0x001d);
	p = put16(p, 0x0017);
	p = put16(p, 0x001e);
	p = put16(p, 0x0018);
	p = put16(p, 0x0023);			/* session_ticket */
	p = put16(p, 0);
	p = put16(p, 0x0010);			/* ALPN: h2, http/1.1 */
	p = put16(p, 14);
	p = put16(p, 12);
	p = put8(p, 2);
	memcpy(p, "h2", 2);
	p += 2;
	p = put8(p, 8);
	memcpy(p, "http/1.1", 8);
	p += 8;
	p = put16(p, 0x0016);			/* encrypt_then_mac */
	p = put16(p, 0);
	p = put16(p, 0x0017);			/* extended_master_secret */
	p = put16(p, 0);
	p = put16(p, 0x000d);			/* signature_algorithms */
	p = put16(p, sizeof(sigalgs) / sizeof(sigalgs[0]) * 2 + 2);
	p = put16(p, sizeof(sigalgs) / sizeof(sigalgs[0]) * 2);
	for (i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
		p = put16(p, sigalgs[i]);
	p = put16(p, 0x002b);			/* supported_versions: 1.3, 1.2 */
	p = put16(p, 5);
	p = put8(p, 4);
	p = put16(p, 0x0304);
	p = put16(p, 0x0303);
	p = put16(p, 0x002d);			/* psk_key_exchange_modes */
	p = put16(p, 2);
	p = put8(p, 1);
	p = put8(p, 1);
	p = put16(p, 0x0033);			/* key_share: x25519 */
	p = put16(p, 38);
	p = put16(p, 36);
	p = put16(p, 0x001d);
	p = put16(p, 32);
	for (i = 0; i < 32; i++)
		p = put8(p, 0x3c ^ (unsigned int)(i * 7));

	/* padding (RFC 7685): a 512-byte handshake message, as OpenSSL pads it */
	if ((size_t)(p - body) + 4 + 4 < 512) {
		size_t pad = 512 - 4 - (size_t)(p - body) - 4;

		p = put16(p, 0x0015);
		p = put16(p, pad);
		memset(p, 0, pad);
		p += pad;
	}
	fill16(ext_len, (size_t)(p - ext_start));
	hs_len[0] = 0;
	fill16(hs_len + 1, (size_t)(p - body));
	fill16(out + 3, (size_t)(p - out - 5));
	return (size_t)(p - out);
}

static int set_payload(const char *kind)
{
	static const char http[] = "GET /bench HTTP/1.1\r\nHost: storage.test\r\n"
				   "User-Agent: tlsguard-loadgen\r\nAccept: */*\r\n\r\n";

	if (!strcmp(kind, "tls")) {
		payload_len = build_client_hello(payload, "storage.test");
		return 0;
	}
	if (!strcmp(kind, "http")) {
		payload_len = sizeof(http) - 1;
		memcpy(payload, http, payload_len);
		return 0;
	}
	return -1;
}

/*
 * The server's answer to a ClientHello: a TLS 1.3 ServerHello (supported_versions
 * 0x0304, x25519 key share), 127 bytes. Nothing follows; no handshake completes.
 */
static uint8_t server_hello[160];
static size_t server_hello_len;

static void build_server_hello(void)
{
	uint8_t *p = server_hello, *body;
	size_t i;

	p = put8(p, 0x16);
	p = put16(p, 0x0303);
	p += 2;
	p = put8(p, 0x02);			/* ServerHello */
	p += 3;
	body = p;
	p = put16(p, 0x0303);
	for (i = 0; i < 32; i++)
		p = put8(p, 0x42 ^ (unsigned int)(i * 3));
	p = put8(p, 32);			/* legacy session id echo */
	for (i = 0; i < 32; i++)
		p = put8(p, 0xa5 ^ (unsigned int)i);
	p = put16(p, 0x1301);			/* TLS_AES_128_GCM_SHA256 */
	p = put8(p, 0);
	p = put16(p, 6 + 40);
	p = put16(p, 0x002b);			/* supported_versions: TLS 1.3 */
	p = put16(p, 2);
	p = put16(p, 0x0304);
	p = put16(p, 0x0033);			/* key_share */
	p = put16(p, 36);
	p = put16(p, 0x001d);
	p = put16(p, 32);
	for (i = 0; i < 32; i++)
		p = put8(p, 0x77 ^ (unsigned int)(i * 5));
	body[-3] = 0;
	fill16(body - 2, (size_t)(p - body));
	fill16(server_hello + 3, (size_t)(p - server_hello - 5));
	server_hello_len = (size_t)(p - server_hello);
}

/* ---- sink ----------------------------------------------------------------- */

enum { SINK_NONE, SINK_LISTEN_HELLO, SINK_LISTEN_DRAIN, SINK_HELLO, SINK_DRAIN };

struct sink_conn {
	uint8_t kind;
	uint8_t hdr[5];
	uint8_t answered;	/* the first message is complete (and answered if TLS) */
	uint32_t have;
	uint32_t need;
};

static int listen_on(const struct addr *a)
{
	int one = 1, fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reset instead of FIN: no TIME_WAIT piles up over a million connections. */
static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* hello: the first message is one TLS record (its header says how long) or,
 * for anything else, whatever the first read brought. */
static bool sink_hello_done(struct sink_conn *c, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n && c->have + i < 5; i++)
		c->hdr[c->have + i] = buf[i];
	c->have += (uint32_t)n;
	if (c->need == 0) {
		if (c->hdr[0] != 0x16)
			return true;
		if (c->have < 5)
			return false;
		c->need = 5 + ((uint32_t)c->hdr[3] << 8 | c->hdr[4]);
	}
	return c->have >= c->need;
}

static int run_sink(int argc, char **argv)
{
	static uint8_t buf[BULK_BUF];
	struct epoll_event evs[256];
	struct sink_conn *conns;
	double max_time = 1800, deadline;
	size_t maxfd = raise_nofile();
	int epfd, i, nlisten = 0;

	if (argc > 2 && !strcmp(argv[1], "--max-time")) {
		max_time = atof(argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: loadgen sink [--max-time SEC] ADDR:PORT/hello|drain...\n");
		return 2;
	}
	conns = calloc(maxfd, sizeof(*conns));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || epfd < 0) {
		perror("loadgen sink");
		return 1;
	}
	for (i = 1; i < argc; i++) {
		const char *slash = strrchr(argv[i], '/');
		struct epoll_event ev = { .events = EPOLLIN };
		struct addr a;
		int fd;

		if (!slash || parse_addr(argv[i], &a) < 0 ||
		    (strcmp(slash, "/hello") && strcmp(slash, "/drain"))) {
			fprintf(stderr, "loadgen sink: bad listen spec '%s' (ADDR:PORT/hello|drain)\n",
				argv[i]);
			return 2;
		}
		fd = listen_on(&a);
		if (fd < 0 || (size_t)fd >= maxfd) {
			fprintf(stderr, "loadgen sink: listen on %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		conns[fd].kind = strcmp(slash, "/hello") ? SINK_LISTEN_DRAIN : SINK_LISTEN_HELLO;
		ev.data.fd = fd;
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
		nlisten++;
	}
	printf("ready listeners=%d\n", nlisten);
	fflush(stdout);

	deadline = now_s() + max_time;
	while (!stop_requested && now_s() < deadline) {
		int n = epoll_wait(epfd, evs, 256, 1000);

		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct sink_conn *c = &conns[fd];

			if (c->kind == SINK_LISTEN_HELLO || c->kind == SINK_LISTEN_DRAIN) {
				int cfd;

				while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP,
								   .data.fd = cfd };

					if ((size_t)cfd >= maxfd) {
						close(cfd);
						continue;
					}
					conns[cfd] = (struct sink_conn){
						.kind = c->kind == SINK_LISTEN_HELLO ? SINK_HELLO : SINK_DRAIN };
					epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r > 0) {
					if (c->answered || !sink_hello_done(c, buf, (size_t)r))
						continue;	/* read on until EAGAIN */
					c->answered = 1;
					/* one small write into an empty send buffer: it fits */
					if (c->hdr[0] == 0x16 &&
					    send(fd, server_hello, server_hello_len, MSG_NOSIGNAL) < 0)
						c->kind = SINK_HELLO;	/* the client is gone */
					if (c->kind == SINK_HELLO) {
						c->kind = SINK_NONE;
						close_reset(fd);
						break;
					}
					continue;
				}
				if (r < 0 && errno == EAGAIN)
					break;
				if (r < 0 && errno == EINTR)
					continue;
				/* EOF or error: the client is gone */
				c->kind = SINK_NONE;
				close(fd);
				break;
			}
		}
	}
	return 0;
}

/* ---- clients -------------------------------------------------------------- */

struct opts {
	struct addr dest, open_to;
	double secs;
	long max_n;
	int conc;
	long nopen;
	bool have_dest, have_open_to;
};

static int connect_nb(const struct addr *a, int *fd_out)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*fd_out = fd;
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return 0;
	if (errno == EINPROGRESS)
		return 1;
	int err = -errno;

	close(fd);
	*fd_out = -1;
	return err;
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static bool send_payload(int fd)
{
	ssize_t w = send(fd, payload, payload_len, MSG_NOSIGNAL);

	return w == (ssize_t)payload_len;
}

/* --open: N flows that connected and sent their first message, held open. */
static int open_flows(const struct opts *o, int **fds_out)
{
	int *fds = calloc((size_t)o->nopen, sizeof(int));
	int epfd = epoll_create1(EPOLL_CLOEXEC), inflight = 0, errors = 0;
	long started = 0, done = 0;
	struct epoll_event evs[256];
	double deadline = now_s() + 60;

	if (!fds || epfd < 0)
		return -ENOMEM;
	while (done < o->nopen && now_s() < deadline) {
		while (started < o->nopen && inflight < 256) {
			int fd, r = connect_nb(&o->open_to, &fd);

			if (r < 0) {
				fprintf(stderr, "loadgen: open flow %ld: connect: %s\n", started,
					strerror(-r));
				goto fail;
			}
			fds[started++] = fd;
			struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };

			epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
			inflight++;
		}
		int n = epoll_wait(epfd, evs, 256, 1000);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, err = sock_error(fd);

			epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			inflight--;
			if (err || !send_payload(fd)) {
				if (++errors > 10) {
					fprintf(stderr, "loadgen: open flows: %s\n",
						strerror(err ? err : errno));
					goto fail;
				}
				continue;
			}
			done++;
		}
	}
	close(epfd);
	if (done < o->nopen) {
		fprintf(stderr, "loadgen: only %ld of %ld open flows established\n", done, o->nopen);
		for (long i = 0; i < started; i++)
			close(fds[i]);
		free(fds);
		return -ETIMEDOUT;
	}
	*fds_out = fds;
	return 0;
fail:
	close(epfd);
	for (long i = 0; i < started; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return -EIO;
}

enum { C_CONNECTING = 1, C_WAITING = 2 };

static int run_conn(const struct opts *o)
{
	size_t maxfd = raise_nofile();
	uint8_t *phase = calloc(maxfd, 1);
	struct epoll_event evs[256];
	int epfd = epoll_create1(EPOLL_CLOEXEC), inflight = 0, *open_fds = NULL;
	long done = 0, errors = 0, started = 0;
	int last_err = 0;
	double t0, t_end, t1;
	char buf[4096];

	if (!phase || epfd < 0) {
		perror("loadgen");
		return 1;
	}
	if (o->nopen > 0) {
		int err = open_flows(o, &open_fds);

		if (err)
			return 1;
	}
	t0 = now_s();
	t_end = t0 + o->secs;
	for (;;) {
		bool stopping = stop_requested || now_s() >= t_end || (o->max_n && started >= o->max_n);

		while (!stopping && inflight < o->conc && (!o->max_n || started < o->max_n)) {
			int fd, r = connect_nb(&o->dest, &fd);

			if (r < 0) {
				errors++;
				last_err = -r;
				if (errors > MAX_ERRORS)
					break;
				continue;
			}
			started++;
			if ((size_t)fd >= maxfd) {
				close(fd);
				errors++;
				continue;
			}
			struct epoll_event ev = { .data.fd = fd };

			if (r == 0 && send_payload(fd)) {
				phase[fd] = C_WAITING;
				ev.events = EPOLLIN | EPOLLRDHUP;
			} else {
				phase[fd] = C_CONNECTING;
				ev.events = EPOLLOUT;
			}
			epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
			inflight++;
		}
		if (errors > MAX_ERRORS) {
			fprintf(stderr, "loadgen: %ld failed connections, last: %s\n", errors,
				strerror(last_err));
			return 1;
		}
		if (inflight == 0 && (stopping || o->conc == 0))
			break;
		if (stopping && now_s() > t_end + 5) {
			fprintf(stderr, "loadgen: %d connections did not finish\n", inflight);
			return 1;
		}
		int n = epoll_wait(epfd, evs, 256, 100);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (phase[fd] == C_CONNECTING) {
				int err = sock_error(fd);

				if (!err && send_payload(fd)) {
					struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
								  .data.fd = fd };

					phase[fd] = C_WAITING;
					epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
					continue;
				}
				errors++;
				last_err = err ? err : errno;
				phase[fd] = 0;
				close(fd);
				inflight--;
				continue;
			}
			/* waiting: the server reads the message and resets; EOF or
			 * ECONNRESET both mean the exchange is complete */
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r > 0)
				continue;
			phase[fd] = 0;
			close(fd);
			inflight--;
			done++;
		}
	}
	t1 = now_s();
	if (open_fds) {
		/* reset, not FIN: 10,000 flows per round would otherwise leave as many
		 * TIME_WAIT sockets, and the next rounds would hunt for free ports */
		for (long i = 0; i < o->nopen; i++)
			close_reset(open_fds[i]);
		free(open_fds);
	}
	printf("mode=conn conns=%ld errors=%ld open=%ld secs=%.3f rate=%.1f\n", done, errors,
	       o->nopen, t1 - t0, done / (t1 - t0));
	if (done == 0) {
		fprintf(stderr, "loadgen: no connection completed (last error: %s)\n",
			strerror(last_err));
		return 1;
	}
	return 0;
}

static int connect_blocking(const struct addr *a)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Read one TLS record (the ServerHello), as a TLS client would before sending data. */
static int read_record(int fd)
{
	struct timeval tv = { .tv_sec = 5 };
	uint8_t rec[5 + 16384];
	size_t have = 0, need = 5;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (have < need) {
		ssize_t r = read(fd, rec + have, need - have);

		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			return -1;
		}
		have += (size_t)r;
		if (have == 5 && need == 5)
			need = 5 + ((size_t)rec[3] << 8 | rec[4]);
		if (need > sizeof(rec)) {
			errno = EMSGSIZE;
			return -1;
		}
	}
	return 0;
}

static int run_bulk(const struct opts *o)
{
	static uint8_t buf[BULK_BUF];
	uint64_t bytes = 0;
	double t0, t_end, t1;
	int fd = connect_blocking(&o->dest);

	if (fd < 0) {
		fprintf(stderr, "loadgen: bulk: connect: %s\n", strerror(errno));
		return 1;
	}
	if (!send_payload(fd)) {
		fprintf(stderr, "loadgen: bulk: sending the first message: %s\n", strerror(errno));
		return 1;
	}
	if (payload[0] == 0x16 && read_record(fd) < 0) {
		fprintf(stderr, "loadgen: bulk: no ServerHello from the server: %s\n", strerror(errno));
		return 1;
	}
	/* TLS application data records, as a TLS client's stream after its handshake
	 * looks (tlsguard walks the client's records until its next flight) */
	memset(buf, 0x17, sizeof(buf));
	for (size_t r = 0; r + 5 <= sizeof(buf); r += 5 + 16384) {
		size_t len = sizeof(buf) - r - 5 < 16384 ? sizeof(buf) - r - 5 : 16384;

		buf[r] = 0x17, buf[r + 1] = 0x03, buf[r + 2] = 0x03;
		buf[r + 3] = len >> 8, buf[r + 4] = len & 0xff;
	}
	t0 = t1 = now_s();
	t_end = t0 + o->secs;
	do {
		ssize_t w = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "loadgen: bulk: send: %s\n", strerror(errno));
			return 1;
		}
		bytes += (uint64_t)w;
	} while (!stop_requested && (t1 = now_s()) < t_end);
	close(fd);
	printf("mode=bulk bytes=%llu secs=%.3f gbit_s=%.3f\n", (unsigned long long)bytes, t1 - t0,
	       bytes * 8 / (t1 - t0) / 1e9);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *v, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);

	return v[i] / 1e3;
}

static int run_latency(const struct opts *o)
{
	long n = o->max_n ? o->max_n : 2000, i, errors = 0;
	uint64_t *conn_ns = calloc((size_t)n, sizeof(*conn_ns));
	uint64_t *txn_ns = calloc((size_t)n, sizeof(*txn_ns));
	double t_end = now_s() + o->secs, csum = 0;
	char buf[4096];

	if (!conn_ns || !txn_ns)
		return 1;
	for (i = 0; i < n && !stop_requested && now_s() < t_end;) {
		uint64_t a = now_ns(), b, c;
		int fd = connect_blocking(&o->dest);

		b = now_ns();
		if (fd < 0 || !send_payload(fd)) {
			if (fd >= 0)
				close(fd);
			if (++errors > MAX_ERRORS) {
				fprintf(stderr, "loadgen: latency: %s\n", strerror(errno));
				return 1;
			}
			continue;
		}
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		c = now_ns();
		close(fd);
		conn_ns[i] = b - a;
		txn_ns[i] = c - a;
		csum += (double)(b - a);
		i++;
	}
	if (i < 10) {
		fprintf(stderr, "loadgen: latency: only %ld samples\n", i);
		return 1;
	}
	qsort(conn_ns, (size_t)i, sizeof(*conn_ns), cmp_u64);
	qsort(txn_ns, (size_t)i, sizeof(*txn_ns), cmp_u64);
	printf("mode=latency n=%ld errors=%ld connect_mean_us=%.2f connect_p50_us=%.2f "
	       "connect_p90_us=%.2f connect_p99_us=%.2f txn_p50_us=%.2f txn_p99_us=%.2f\n",
	       i, errors, csum / (double)i / 1e3, pct_us(conn_ns, i, 0.50), pct_us(conn_ns, i, 0.90),
	       pct_us(conn_ns, i, 0.99), pct_us(txn_ns, i, 0.50), pct_us(txn_ns, i, 0.99));
	free(conn_ns);
	free(txn_ns);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loadgen sink [--max-time SEC] ADDR:PORT/hello|drain...\n"
		"       loadgen conn -d ADDR:PORT [-c CONC] [-t SEC] [-n MAX] [-p tls|http]\n"
		"                    [--open N --open-to ADDR:PORT]\n"
		"       loadgen bulk -d ADDR:PORT [-t SEC]\n"
		"       loadgen latency -d ADDR:PORT [-n COUNT] [-t SEC] [-p tls|http]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dest", required_argument, NULL, 'd' },
		{ "conc", required_argument, NULL, 'c' },
		{ "time", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "payload", required_argument, NULL, 'p' },
		{ "open", required_argument, NULL, 'o' },
		{ "open-to", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .secs = DEFAULT_SECS, .conc = 32 };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *mode;
	int c, ret;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	mode = argv[1];
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	set_payload("tls");
	build_server_hello();
	if (!strcmp(mode, "sink"))
		return run_sink(argc - 1, argv + 1);

	optind = 2;
	while ((c = getopt_long(argc, argv, "d:c:t:n:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_addr(optarg, &o.dest) < 0)
				goto bad;
			o.have_dest = true;
			break;
		case 'O':
			if (parse_addr(optarg, &o.open_to) < 0)
				goto bad;
			o.have_open_to = true;
			break;
		case 'c':
			o.conc = atoi(optarg);
			if (o.conc < 1 || o.conc > MAX_CONC)
				goto bad;
			break;
		case 't':
			o.secs = atof(optarg);
			if (!(o.secs > 0 && o.secs <= MAX_SECS))
				goto bad;
			break;
		case 'n':
			o.max_n = atol(optarg);
			if (o.max_n < 1)
				goto bad;
			break;
		case 'o':
			o.nopen = atol(optarg);
			if (o.nopen < 0 || o.nopen > MAX_OPEN)
				goto bad;
			break;
		case 'p':
			if (set_payload(optarg) < 0)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || !o.have_dest || (o.nopen && !o.have_open_to))
		goto bad;
	/* the watchdog: a run that does not stop by itself is a broken benchmark */
	alarm((unsigned int)o.secs + 90);

	if (!strcmp(mode, "conn"))
		ret = run_conn(&o);
	else if (!strcmp(mode, "bulk"))
		ret = run_bulk(&o);
	else if (!strcmp(mode, "latency"))
		ret = run_latency(&o);
	else
		goto bad;
	fflush(stdout);
	return ret;
bad:
	usage(stderr);
	return 2;
}
