// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the protocol prefaces a flow may start with (postgres, mysql,
 * tds, CONNECT/absolute-form proxy requests), the servers' answers, the
 * QUIC Initial check and the agent's description of such a flow's first
 * bytes (include/tlsguard/preface.h, quic.h, agent/describe.c). The first
 * input byte picks the protocol and the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "tlsguard/preface.h"
#include "tlsguard/quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_payload_desc d;
	struct tg_preface pf;
	__u32 off, proto, n;
	uint8_t *b;

	if (size < 1)
		return 0;
	proto = data[0] % TG_L7__MAX;
	data++;
	size--;
	n = size < TG_HELLO_MAX ? size : TG_HELLO_MAX;
	b = malloc(n ? n : 1);
	if (!b)
		return 0;
	memcpy(b, data, n);
	tg_preface(proto, b, n, &pf);
	for (__u32 kind = TG_PK_NONE; kind <= TG_PK_PROXY_ABSOLUTE; kind++)
		tg_server_preface(proto, kind, b, n, &off);
	if (n >= TG_QUIC_PEEK)
		tg_quic_client_initial(b, TG_QUIC_PEEK, n);
	describe_flow(b, n, proto, pf.kind, pf.tls_off, &d);
	free(b);
	return 0;
}
