// SPDX-License-Identifier: MIT
/*
 * tg-testsrv: the plain TCP server of the integration tests.
 *
 *   tg-testsrv --listen ADDR:PORT|[ADDR6]:PORT --log FILE [--http] [--idle-timeout SEC]
 *              [--greet TEXT] [--reply TEXT]
 *
 * Accepts any number of connections (one poll loop, many at once), reads
 * everything each client sends and appends one line per closed connection to
 * FILE: "conn bytes=N", N being the bytes received on it. With --http it
 * answers "HTTP/1.1 200 OK" and a small body once it has seen the end of the
 * request headers, then half-closes and keeps counting until the client
 * closes. The tests assert on what reached the server, so the count is the
 * point: a connection that is still open when the server stops (SIGTERM,
 * SIGINT) or that stays idle for --idle-timeout seconds is logged too.
 *
 * --greet sends TEXT as soon as a connection is accepted (a server that
 * speaks first); --reply sends TEXT once, after the first bytes arrive (a
 * plain server answering whatever it got, a ClientHello included).
 *
 * Readiness: once bound and listening, FILE exists and "listening ADDR:PORT"
 * is printed on stdout.
 */
#define _GNU_SOURCE /* ppoll, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256

static const char http_response[] = "HTTP/1.1 200 OK\r\n"
				    "Content-Type: text/plain\r\n"
				    "Content-Length: 14\r\n"
				    "Connection: close\r\n"
				    "\r\n"
				    "tg-testsrv ok\n";

struct conn {
	int fd;
	unsigned long long bytes;
	unsigned int eoh_state;	/* how much of "\r\n\r\n" was matched so far */
	bool answered;
	bool replied;
	time_t last_active;
};

static const char *greet_text, *reply_text;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: tg-testsrv --listen ADDR:PORT|[ADDR6]:PORT --log FILE [--http]"
		     " [--idle-timeout SEC] [--greet TEXT] [--reply TEXT]\n");
}

/* "1.2.3.4:80" or "[2001:db8::1]:80" → sockaddr. Returns 0 or -1. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_str;
	char *end;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
			return -1;
		memcpy(host, text + 1, close - text - 1);
		host[close - text - 1] = '\0';
		port_str = close + 2;
	} else {
		const char *colon = strrchr(text, ':');

		if (!colon || (size_t)(colon - text) >= sizeof(host))
			return -1;
		memcpy(host, text, colon - text);
		host[colon - text] = '\0';
		port_str = colon + 1;
	}
	errno = 0;
	port = strtol(port_str, &end, 10);
	if (errno || *port_str == '\0' || *end != '\0' || port < 1 || port > 65535)
		return -1;

	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* One write() per line with O_APPEND, so lines never interleave or tear. */
static void log_conn(int log_fd, const struct conn *c)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "conn bytes=%llu\n", c->bytes);

	if (n > 0 && write(log_fd, line, (size_t)n) != n)
		fprintf(stderr, "tg-testsrv: writing log: %s\n", strerror(errno));
}

static void conn_close(struct conn *c, int log_fd)
{
	log_conn(log_fd, c);
	close(c->fd);
	c->fd = -1;
}

/* Track the end of the request headers across reads of any size. */
static bool saw_end_of_headers(struct conn *c, const char *buf, size_t n)
{
	static const char eoh[] = "\r\n\r\n";

	for (size_t i = 0; i < n; i++) {
		if (buf[i] == eoh[c->eoh_state])
			c->eoh_state++;
		else
			c->eoh_state = buf[i] == '\r' ? 1 : 0;
		if (c->eoh_state == 4)
			return true;
	}
	return false;
}

/* Returns false when the connection is finished and must be closed. */
static bool conn_read(struct conn *c, bool http)
{
	char buf[16384];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0)
			return false;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			return false; /* ECONNRESET and friends: the peer is gone */
		}
		c->bytes += (unsigned long long)n;
		c->last_active = time(NULL);
		if (reply_text && !c->replied) {
			c->replied = true;
			if (send(c->fd, reply_text, strlen(reply_text), MSG_NOSIGNAL) < 0)
				return false;
		}
		if (http && !c->answered && saw_end_of_headers(c, buf, (size_t)n)) {
			c->answered = true;
			/* Small enough for any socket buffer; a short write only
			 * means the client went away, which the next read sees. */
			if (send(c->fd, http_response, sizeof(http_response) - 1, MSG_NOSIGNAL) < 0)
				return false;
			shutdown(c->fd, SHUT_WR);
		}
	}
}

int main(int argc, char **argv)
{
	const char *listen_arg = NULL, *log_path = NULL;
	struct sockaddr_storage ss;
	struct conn conns[MAX_CONNS];
	struct pollfd pfds[MAX_CONNS + 1];
	struct sigaction sa;
	sigset_t block, orig;
	socklen_t sslen = 0;
	long idle_timeout = 0;
	bool http = false;
	int lfd = -1, log_fd = -1, one = 1, ret = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			listen_arg = argv[++i];
		} else if (!strcmp(argv[i], "--log") && i + 1 < argc) {
			log_path = argv[++i];
		} else if (!strcmp(argv[i], "--greet") && i + 1 < argc) {
			greet_text = argv[++i];
		} else if (!strcmp(argv[i], "--reply") && i + 1 < argc) {
			reply_text = argv[++i];
		} else if (!strcmp(argv[i], "--http")) {
			http = true;
		} else if (!strcmp(argv[i], "--idle-timeout") && i + 1 < argc) {
			char *end;

			idle_timeout = strtol(argv[++i], &end, 10);
			if (*end || idle_timeout < 0) {
				fprintf(stderr, "tg-testsrv: bad --idle-timeout '%s'\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "tg-testsrv: unknown or incomplete option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!listen_arg || !log_path) {
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen_arg, &ss, &sslen)) {
		fprintf(stderr, "tg-testsrv: bad --listen '%s' (want ADDR:PORT or [ADDR6]:PORT)\n",
			listen_arg);
		return 2;
	}

	/* SIGTERM/SIGINT are only delivered inside ppoll(), so a stop request
	 * can never slip in between the flag check and the wait. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &orig);

	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0) {
		fprintf(stderr, "tg-testsrv: socket: %s\n", strerror(errno));
		goto out;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, sslen) < 0) {
		fprintf(stderr, "tg-testsrv: bind %s: %s\n", listen_arg, strerror(errno));
		goto out_close_listen;
	}
	if (listen(lfd, 128) < 0) {
		fprintf(stderr, "tg-testsrv: listen %s: %s\n", listen_arg, strerror(errno));
		goto out_close_listen;
	}
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		fprintf(stderr, "tg-testsrv: open %s: %s\n", log_path, strerror(errno));
		goto out_close_listen;
	}
	printf("listening %s\n", listen_arg);
	fflush(stdout);

	while (!stop_requested) {
		struct timespec tmo = { .tv_sec = 1 };
		nfds_t n = 0;
		int slot[MAX_CONNS + 1];

		pfds[n].fd = lfd;
		pfds[n].events = POLLIN;
		slot[n++] = -1;
		for (int i = 0; i < MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			pfds[n].fd = conns[i].fd;
			pfds[n].events = POLLIN;
			slot[n++] = i;
		}

		int rc = ppoll(pfds, n, idle_timeout ? &tmo : NULL, &orig);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "tg-testsrv: poll: %s\n", strerror(errno));
			goto out_close_conns;
		}
		for (nfds_t k = 1; k < n; k++) {
			struct conn *c = &conns[slot[k]];

			if (pfds[k].revents && !conn_read(c, http))
				conn_close(c, log_fd);
		}
		if (pfds[0].revents & POLLIN) {
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				int i;

				if (fd < 0)
					break;
				for (i = 0; i < MAX_CONNS && conns[i].fd >= 0; i++)
					;
				if (i == MAX_CONNS) {
					fprintf(stderr, "tg-testsrv: too many connections\n");
					close(fd);
					continue;
				}
				conns[i] = (struct conn){ .fd = fd, .last_active = time(NULL) };
				if (greet_text)
					send(fd, greet_text, strlen(greet_text), MSG_NOSIGNAL);
			}
		}
		if (idle_timeout) {
			time_t now = time(NULL);

			for (int i = 0; i < MAX_CONNS; i++) {
				if (conns[i].fd >= 0 && now - conns[i].last_active >= idle_timeout)
					conn_close(&conns[i], log_fd);
			}
		}
	}
	ret = 0;

out_close_conns:
	/* Whatever is still open counts: tests read the log after stopping us. */
	for (int i = 0; i < MAX_CONNS; i++) {
		if (conns[i].fd >= 0) {
			conn_read(&conns[i], false);
			conn_close(&conns[i], log_fd);
		}
	}
	close(log_fd);
out_close_listen:
	close(lfd);
out:
	return ret;
}
