/* SPDX-License-Identifier: MIT */
/*
 * Say what a flow's first bytes were, without keeping them: the protocol,
 * and for HTTP only the method and the Host header. Never paths, other
 * headers or bodies (metadata only: no payload leaves the host).
 */
#ifndef TLSGUARD_AGENT_DESCRIBE_H
#define TLSGUARD_AGENT_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#define TG_DESCRIBE_HOST_MAX 256

struct tg_payload_desc {
	const char *detected;		/* "tls", "http", "unknown" */
	char method[16];		/* HTTP method, "" otherwise */
	char host[TG_DESCRIBE_HOST_MAX];/* HTTP Host header, "" when absent */
};

void describe_payload(const uint8_t *buf, size_t len, struct tg_payload_desc *out);

#endif /* TLSGUARD_AGENT_DESCRIBE_H */
