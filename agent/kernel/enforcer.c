// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enforcer.h"
#include "log.h"

int enforcer_init(struct tg_enforcer *e)
{
	e->own_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return e->own_netns_fd < 0 ? -errno : 0;
}

void enforcer_free(struct tg_enforcer *e)
{
	if (e->own_netns_fd >= 0)
		close(e->own_netns_fd);
	e->own_netns_fd = -1;
}

/* A sock_diag socket in the network namespace of @tgid (ours when it is gone). */
static int diag_socket_for(struct tg_enforcer *e, __u32 tgid)
{
	char path[64];
	int ns_fd = -1, fd, err;

	if (tgid) {
		snprintf(path, sizeof(path), "/proc/%u/ns/net", tgid);
		ns_fd = open(path, O_RDONLY | O_CLOEXEC);
		/*
		 * Only a process that is gone sends us to our own namespace; a
		 * namespace we may not open (no CAP_SYS_PTRACE over the workload)
		 * is a failed destroy, said out loud, not a silent miss.
		 */
		if (ns_fd < 0 && errno != ENOENT && errno != ESRCH)
			return -errno;
	}
	if (ns_fd < 0)
		return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (setns(ns_fd, CLONE_NEWNET) < 0) {
		err = -errno;
		close(ns_fd);
		return err;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	err = fd < 0 ? -errno : 0;
	close(ns_fd);
	/* back home; a failure here would leave the agent in a pod's namespace */
	if (setns(e->own_netns_fd, CLONE_NEWNET) < 0) {
		tg_err("cannot return to the agent's network namespace: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return fd < 0 ? err : fd;
}

static void fill_request(struct inet_diag_req_v2 *req, const struct tg_event *ev)
{
	memset(req, 0, sizeof(*req));
	req->sdiag_family = ev->family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = ~0U;
	req->id.idiag_sport = htons(ev->sport);
	req->id.idiag_dport = htons(ev->dport);
	if (ev->family == AF_INET) {
		/* AF_INET sockets: the v4 address is the last 4 bytes of the mapped form */
		memcpy(&req->id.idiag_src[0], ev->saddr + 12, 4);
		memcpy(&req->id.idiag_dst[0], ev->daddr + 12, 4);
	} else {
		memcpy(req->id.idiag_src, ev->saddr, 16);
		memcpy(req->id.idiag_dst, ev->daddr, 16);
	}
	req->id.idiag_cookie[0] = (__u32)ev->cookie;
	req->id.idiag_cookie[1] = (__u32)(ev->cookie >> 32);
}

static int read_ack(int fd)
{
	char buf[1024];
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	if (n < 0)
		return -errno;
	if (!NLMSG_OK(nlh, (size_t)n) || nlh->nlmsg_type != NLMSG_ERROR)
		return -EPROTO;
	return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
}

int enforcer_destroy(struct tg_enforcer *e, const struct tg_event *ev)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DESTROY,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
		},
	};
	int fd = diag_socket_for(e, ev->tgid), err;

	if (fd < 0)
		return fd;
	fill_request(&msg.req, ev);
	if (send(fd, &msg, sizeof(msg), 0) < 0)
		err = -errno;
	else
		err = read_ack(fd);
	close(fd);
	return err;
}
