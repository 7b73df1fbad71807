// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"

struct tg_control_client {
	struct tg_watch watch;
	struct tg_control *ctl;
	char req[TG_CONTROL_REQ_MAX + 1];
	size_t req_len;
	char *out;			/* pending output */
	size_t out_len, out_off, out_cap;
	bool have_request, follow, close_after_flush;
	bool draining;			/* answered; reading the rest until the client closes */
	char *type, *workload;		/* follow filters */
	time_t accepted;
};

static void client_free(struct tg_control_client *cl)
{
	if (!cl)
		return;
	tg_loop_remove(cl->ctl->loop, &cl->watch);
	close(cl->watch.fd);
	free(cl->out);
	free(cl->type);
	free(cl->workload);
	free(cl);
}

static void client_remove(struct tg_control *c, struct tg_control_client *cl)
{
	struct tg_control_client **v = c->clients;

	for (size_t i = 0; i < c->nclients; i++) {
		if (v[i] != cl)
			continue;
		v[i] = v[--c->nclients];
		break;
	}
	client_free(cl);
}

static int flush_out(struct tg_control_client *cl)
{
	while (cl->out_off < cl->out_len) {
		ssize_t n = send(cl->watch.fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		cl->out_off += n;
	}
	cl->out_off = cl->out_len = 0;
	return 0;
}

/* Queue a line; false when the client's cap would be exceeded. */
static bool queue_line(struct tg_control_client *cl, const char *line)
{
	size_t n = strlen(line);
	char *grown;

	if (cl->out_len - cl->out_off + n + 1 > TG_CONTROL_OUT_MAX)
		return false;
	if (cl->out_off) {
		memmove(cl->out, cl->out + cl->out_off, cl->out_len - cl->out_off);
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	if (cl->out_len + n + 1 > cl->out_cap) {
		/* doubling: a follower that does not read must not cost a copy of its
		 * backlog (up to TG_CONTROL_OUT_MAX) for every new line */
		size_t cap = cl->out_cap ? cl->out_cap : 4096;

		while (cap < cl->out_len + n + 1)
			cap *= 2;
		if (cap > TG_CONTROL_OUT_MAX)
			cap = TG_CONTROL_OUT_MAX;
		grown = realloc(cl->out, cap);
		if (!grown)
			return false;
		cl->out = grown;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, line, n);
	cl->out[cl->out_len + n] = '\n';
	cl->out_len += n + 1;
	return true;
}

static void update_interest(struct tg_control_client *cl)
{
	tg_loop_modify(cl->ctl->loop, &cl->watch, (cl->have_request ? 0 : EPOLLIN) | EPOLLRDHUP |
						  (cl->out_len > cl->out_off ? EPOLLOUT : 0));
}

static void reply_error(struct tg_control_client *cl, const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "v", json_object_new_int(TG_CONTROL_VERSION));
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	queue_line(cl, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	cl->ctl->bad_requests++;
	cl->close_after_flush = true;
}

static void reply_status(struct tg_control_client *cl)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "v", json_object_new_int(TG_CONTROL_VERSION));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "status", cl->ctl->status_fn(cl->ctl->status_arg));
	if (!queue_line(cl, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)))
		tg_warn("control: status reply too large for the client buffer");
	json_object_put(o);
	cl->close_after_flush = true;
}

static void reply_events(struct tg_control_client *cl, struct tg_control_request *req)
{
	struct tg_control *c = cl->ctl;

	/* the client keeps the filters for the live part */
	cl->type = req->type;
	cl->workload = req->workload;
	req->type = req->workload = NULL;
	cl->follow = req->follow;
	for (size_t i = 0; i < c->recent_n; i++) {
		size_t idx = (c->recent_head + TG_RECENT_EVENTS - c->recent_n + i) % TG_RECENT_EVENTS;
		json_object *ev = json_tokener_parse(c->recent[idx]);

		if (ev && control_event_matches(ev, cl->type, cl->workload))
			queue_line(cl, c->recent[idx]);
		json_object_put(ev);
	}
	if (!cl->follow)
		cl->close_after_flush = true;
}

static void handle_request(struct tg_control_client *cl)
{
	struct tg_control_request req;
	const char *err;

	cl->have_request = true;
	cl->req[cl->req_len] = '\0';
	if (control_parse_request(cl->req, cl->req_len, &req, &err)) {
		reply_error(cl, err);
		return;
	}
	if (req.cmd == TG_CMD_STATUS)
		reply_status(cl);
	else
		reply_events(cl, &req);
	control_request_free(&req);
}

static void read_request(struct tg_control_client *cl, bool *gone)
{
	ssize_t n;
	char *nl;

	n = recv(cl->watch.fd, cl->req + cl->req_len, TG_CONTROL_REQ_MAX - cl->req_len, MSG_DONTWAIT);
	if (n < 0) {
		*gone = errno != EAGAIN && errno != EWOULDBLOCK;
		return;
	}
	if (n == 0) {
		/* half-closed: what arrived is the whole request, if anything did */
		if (!cl->req_len) {
			*gone = true;
			return;
		}
		handle_request(cl);
		return;
	}
	cl->req_len += n;
	nl = memchr(cl->req, '\n', cl->req_len);
	if (nl) {
		cl->req_len = nl - cl->req;
		handle_request(cl);
	} else if (cl->req_len == TG_CONTROL_REQ_MAX) {
		reply_error(cl, "request too large");
	}
}

/*
 * Closing a unix socket with unread input resets the peer, which can then
 * lose our answer: after answering, shut down our side and discard what the
 * client still sends until it closes (or the request timeout passes).
 */
static bool drain(struct tg_control_client *cl)
{
	char scratch[4096];
	ssize_t n;

	while ((n = recv(cl->watch.fd, scratch, sizeof(scratch), MSG_DONTWAIT)) > 0)
		;
	return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

static void on_client(void *ctx, uint32_t events)
{
	struct tg_control_client *cl = ctx;
	bool gone = false;

	if (cl->draining) {
		if (drain(cl))
			client_remove(cl->ctl, cl);
		return;
	}
	if (!cl->have_request && (events & EPOLLIN))
		read_request(cl, &gone);
	else if (cl->have_request && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		gone = true;	/* a follower left */
	if (!gone && flush_out(cl) < 0)
		gone = true;
	if (gone) {
		client_remove(cl->ctl, cl);
		return;
	}
	if (cl->close_after_flush && cl->out_len == 0) {
		shutdown(cl->watch.fd, SHUT_WR);
		cl->draining = true;
		cl->accepted = time(NULL);	/* the drain gets its own timeout */
		if (drain(cl))
			client_remove(cl->ctl, cl);
		else
			tg_loop_modify(cl->ctl->loop, &cl->watch, EPOLLIN | EPOLLRDHUP);
		return;
	}
	update_interest(cl);
}

static bool peer_in_group(pid_t pid, gid_t group)
{
	char path[64], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *tok, *save;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (tok = strtok_r(line + 7, " \t\n", &save); tok && !found;
		     tok = strtok_r(NULL, " \t\n", &save))
			found = (gid_t)strtoul(tok, NULL, 10) == group;
	}
	fclose(f);
	return found;
}

static bool peer_allowed(struct tg_control *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	if (cred.uid == 0)
		return true;
	if (c->group == (gid_t)-1)
		return false;
	return cred.gid == c->group || peer_in_group(cred.pid, c->group);
}

static void on_listen(void *ctx, uint32_t events)
{
	struct tg_control *c = ctx;
	struct tg_control_client *cl, **grown;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (!peer_allowed(c, fd) || c->nclients >= TG_CONTROL_MAX_CLIENTS) {
		c->refused_peers++;
		close(fd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	grown = realloc(c->clients, (c->nclients + 1) * sizeof(*grown));
	if (!cl || !grown) {
		free(cl);
		if (grown)
			c->clients = grown;
		close(fd);
		return;
	}
	c->clients = grown;
	cl->ctl = c;
	cl->accepted = time(NULL);
	cl->watch = (struct tg_watch){ .fd = fd, .handle = on_client, .ctx = cl };
	if (tg_loop_add(c->loop, &cl->watch, EPOLLIN | EPOLLRDHUP)) {
		close(fd);
		free(cl);
		return;
	}
	grown[c->nclients++] = cl;
}

static int resolve_group(const char *name, gid_t *out)
{
	struct group *g;

	*out = (gid_t)-1;
	if (!name || !*name)
		return 0;
	g = getgrnam(name);
	if (!g) {
		tg_err("control.group: no group named '%s'", name);
		return -ENOENT;
	}
	*out = g->gr_gid;
	return 0;
}

static int make_parent_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int control_open(struct tg_control *c, struct tg_loop *loop, const char *path, const char *group,
		 tg_control_status_fn *status_fn, void *arg)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->status_fn = status_fn;
	c->status_arg = arg;
	c->listen_fd = -1;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		tg_err("control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	err = resolve_group(group, &c->group);
	if (err)
		return err;
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(addr.sun_path, path);
	c->recent = calloc(TG_RECENT_EVENTS, sizeof(char *));
	if (!c->recent)
		return -ENOMEM;
	err = make_parent_dir(path);
	if (err) {
		tg_err("cannot create the directory of %s: %s", path, strerror(-err));
		return err;
	}
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0)
		return -errno;
	unlink(path);	/* a stale socket from an agent that died */
	/* no window in which the socket exists with wider permissions */
	fchmod(c->listen_fd, 0600);
	if (bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, c->group == (gid_t)-1 ? 0600 : 0660) < 0 ||
	    (c->group != (gid_t)-1 && chown(path, 0, c->group) < 0))
		err = -errno;
	else
		err = tg_loop_listen(loop, &c->listen_watch, c->listen_fd, on_listen, c);
	if (err)
		tg_err("cannot listen on %s: %s", path, strerror(-err));
	return err;
}

void control_close(struct tg_control *c)
{
	struct tg_control_client **v = c->clients;

	while (c->nclients)
		client_remove(c, v[c->nclients - 1]);
	free(c->clients);
	c->clients = NULL;
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	c->listen_fd = -1;
	for (size_t i = 0; c->recent && i < TG_RECENT_EVENTS; i++)
		free(c->recent[i]);
	free(c->recent);
	c->recent = NULL;
}

void control_publish_event(struct tg_control *c, json_object *ev)
{
	control_publish_line(c, ev, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
}

void control_publish_line(struct tg_control *c, json_object *ev, const char *line)
{
	struct tg_control_client **v = c->clients;
	char *copy;

	if (!c->recent)
		return;
	copy = strdup(line);
	if (copy) {
		free(c->recent[c->recent_head]);
		c->recent[c->recent_head] = copy;
		c->recent_head = (c->recent_head + 1) % TG_RECENT_EVENTS;
		if (c->recent_n < TG_RECENT_EVENTS)
			c->recent_n++;
	}
	for (size_t i = 0; i < c->nclients; i++) {
		struct tg_control_client *cl = v[i];

		if (!cl->follow || !control_event_matches(ev, cl->type, cl->workload))
			continue;
		if (!queue_line(cl, line)) {
			c->follower_drops++;	/* a follower that does not read loses events, not us */
			continue;
		}
		flush_out(cl);
		update_interest(cl);
	}
}

void control_sweep(struct tg_control *c)
{
	struct tg_control_client **v = c->clients;
	time_t now = time(NULL);

	for (size_t i = c->nclients; i-- > 0;) {
		if ((!v[i]->have_request || v[i]->draining) &&
		    now - v[i]->accepted > TG_CONTROL_REQ_TIMEOUT_S) {
			c->bad_requests += !v[i]->have_request;
			client_remove(c, v[i]);
		}
	}
}
