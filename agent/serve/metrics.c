// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

struct scrape {
	struct tg_watch watch;
	struct tg_metrics *m;
	char req[TG_METRICS_REQ_MAX + 1];
	size_t req_len;
	char *out;
	size_t out_len, out_off;
};

static void scrape_free(struct scrape *s)
{
	tg_loop_remove(s->m->loop, &s->watch);
	close(s->watch.fd);
	free(s->out);
	free(s);
}

static int respond(struct scrape *s, const char *status, const char *ctype, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, ctype, len);

	s->out = malloc(n + len);
	if (!s->out)
		return -ENOMEM;
	memcpy(s->out, head, n);
	memcpy(s->out + n, body, len);
	s->out_len = n + len;
	return 0;
}

static void build_response(struct scrape *s)
{
	char *body;
	size_t len;

	if (strncmp(s->req, "GET ", 4)) {
		respond(s, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
		return;
	}
	if (strncmp(s->req + 4, "/metrics ", 9) && strncmp(s->req + 4, "/metrics?", 9)) {
		respond(s, "404 Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	if (s->m->build(s->m->build_arg, &body, &len)) {
		respond(s, "500 Internal Server Error", "text/plain", "out of memory\n", 14);
		return;
	}
	s->m->scrapes++;
	respond(s, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
	free(body);
}

static void on_scrape(void *ctx, uint32_t events)
{
	struct scrape *s = ctx;

	if (!s->out) {
		ssize_t n = recv(s->watch.fd, s->req + s->req_len, TG_METRICS_REQ_MAX - s->req_len,
				 MSG_DONTWAIT);

		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				scrape_free(s);
			return;
		}
		s->req_len += n;
		s->req[s->req_len] = '\0';
		if (!strstr(s->req, "\r\n\r\n") && !strstr(s->req, "\n\n")) {
			if (s->req_len == TG_METRICS_REQ_MAX)
				scrape_free(s);	/* oversized request: no answer */
			return;
		}
		build_response(s);
		if (!s->out) {
			scrape_free(s);
			return;
		}
		tg_loop_modify(s->m->loop, &s->watch, EPOLLOUT);
	}
	while (s->out_off < s->out_len) {
		ssize_t n = send(s->watch.fd, s->out + s->out_off, s->out_len - s->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				scrape_free(s);
			return;
		}
		s->out_off += n;
	}
	scrape_free(s);
}

static void on_listen(void *ctx, uint32_t events)
{
	struct tg_metrics *m = ctx;
	struct scrape *s;
	int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return;
	}
	s->m = m;
	s->watch = (struct tg_watch){ .fd = fd, .handle = on_scrape, .ctx = s };
	if (tg_loop_add(m->loop, &s->watch, EPOLLIN)) {
		close(fd);
		free(s);
	}
}

static int parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon;
	unsigned long port;
	char *end;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1), text + 1);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= sizeof(host))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
	}
	port = strtoul(colon + 1, &end, 10);
	if (*end || !port || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons(port);
		*len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		*len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -EINVAL;
}

int metrics_open(struct tg_metrics *m, struct tg_loop *loop, const char *listen_on,
		 tg_metrics_fn *build, void *arg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, err;

	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->build = build;
	m->build_arg = arg;
	m->listen_fd = -1;
	if (!listen_on)
		return 0;
	if (parse_listen(listen_on, &ss, &len)) {
		tg_err("metrics.listen: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9464)", listen_on);
		return -EINVAL;
	}
	m->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0)
		return -errno;
	setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->listen_fd, (struct sockaddr *)&ss, len) < 0)
		err = -errno;
	else
		err = tg_loop_listen(loop, &m->listen_watch, m->listen_fd, on_listen, m);
	if (err)
		tg_err("metrics: cannot listen on %s: %s", listen_on, strerror(-err));
	return err;
}

void metrics_close(struct tg_metrics *m)
{
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	m->listen_fd = -1;
}
