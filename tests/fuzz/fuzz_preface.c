// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the protocol prefaces a flow may start with (postgres, mysql,
 * tds, CONNECT/absolute-form proxy requests, smb3), the servers' answers, the
 * QUIC Initial check and the agent's description of such a flow's first
 * bytes (include/tlsguard/preface.h, quic.h, agent/events/describe.c). The first
 * input byte picks the protocol and the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "tlsguard/preface.h"
#include "tlsguard/quic.h"
#include "tlsguard/smb.h"

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
	if (proto == TG_L7_SMB3) {
		struct tg_smb_info si = { 0 };
		int full = n >= TG_HELLO_MAX;

		tg_smb_negotiate(b, n, &si);
		tg_smb_negotiate_response(b, n, full, &si);
		/* the session phase on every message start the lengths lead to */
		for (__u32 at = 0, i = 0; at < n && i < 64; i++) {
			int r = tg_smb_session_msg(b + at, n - at < TG_SMB_PEEK ? n - at : TG_SMB_PEEK, &si);

			if (r != TG_SMB_MSG_SKIP || !si.msg_len)
				break;
			at += si.msg_len;
		}
		describe_smb(si.finding, si.client_max, si.dialect, si.cipher, si.command, &d);
	}
	free(b);
	return 0;
}
