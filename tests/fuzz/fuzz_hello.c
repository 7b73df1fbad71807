// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the TLS record layer and the ClientHello/ServerHello parser
 * (include/tlsguard/tls_hello.h, preface.h) on untrusted bytes, both
 * directions, complete or cut, and the agent's "tls" event object built
 * from what they found. The buffer is TG_HELLO_BUF bytes with the input in
 * front, as the kernel has it; ASan catches any read past @size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "tlsguard/preface.h"
#include "tlsguard/tls_hello.h"

static void one(const uint8_t *data, size_t size, int server, int full)
{
	struct tg_tls_recs recs;
	struct tg_hello_info hi;
	__u32 off = 0, len = 0;
	uint8_t *b;
	size_t n = size < TG_HELLO_MAX ? size : TG_HELLO_MAX;

	/* exactly n bytes: the parser must not look past what it was given */
	b = malloc(n ? n : 1);
	if (!b)
		return;
	memcpy(b, data, n);
	if (tg_tls_records(b, 0, n, server, full, &off, &len, &recs) == TG_PF_TLS) {
		if (recs.n > 1)
			tg_tls_compact(b, &recs);
		if (tg_parse_hello(b, off, len, server, &hi) != TG_HELLO_BAD && !server &&
		    (hi.flags & TG_HELLO_F_ALPN)) {
			__u32 p = hi.alpn_off, no, nl, end = hi.alpn_off + hi.alpn_len;

			for (int i = 0; i < 64 && tg_alpn_next(b, &p, end, &no, &nl) == 1; i++)
				;
		}
	}
	/* the message parser alone, at any offset */
	if (n > 1)
		tg_parse_hello(b, data[0] % n, n - data[0] % n, server, &hi);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_event ev;
	json_object *o;

	one(data, size, 0, 0);
	one(data, size, 0, 1);
	one(data, size, 1, 1);
	/* the event object from kernel-supplied (so, workload-influenced) fields */
	memset(&ev, 0, sizeof(ev));
	ev.type = TG_EV_TLS;
	memcpy(&ev.tls, data, size < sizeof(ev.tls) ? size : sizeof(ev.tls));
	o = handshake_tls_json(&ev);
	json_object_put(o);
	return 0;
}
