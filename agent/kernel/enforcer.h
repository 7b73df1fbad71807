/* SPDX-License-Identifier: MIT */
/*
 * Destroy blocked sockets so the application fails at once instead of
 * retransmitting into the kernel's drop. sock_diag only reaches sockets of
 * its own network namespace, and pods each have one, so the request is sent
 * from the namespace of the process that connected.
 */
#ifndef TLSGUARD_AGENT_ENFORCER_H
#define TLSGUARD_AGENT_ENFORCER_H

#include "tlsguard/event.h"

struct tg_enforcer {
	int own_netns_fd;
};

int enforcer_init(struct tg_enforcer *e);
void enforcer_free(struct tg_enforcer *e);

/* 0 when destroyed, -ENOENT when the socket is already gone, else -errno. */
int enforcer_destroy(struct tg_enforcer *e, const struct tg_event *ev);

#endif /* TLSGUARD_AGENT_ENFORCER_H */
