/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The smb3 protocol machine in the kernel (tlsguard/smb.h says what it
 * checks). Three steps, each entered from one dispatch point:
 *
 *   client NEGOTIATE    egress, undecided flow   tg_smb_client_decide()
 *   server NEGOTIATE    ingress, SERVER_HELLO    tg_smb_server_decide()
 *   session messages    egress, SMB_SESSION      tg_smb_session_egress()
 *
 * The last step follows the client's messages by their lengths (it reads
 * TG_SMB_PEEK bytes of each, never the rest) until the first one after
 * session setup: a TRANSFORM allows the flow, anything else is plaintext.
 * From then on the flow costs what a decided TLS flow costs.
 */
#ifndef TLSGUARD_SMB_BPF_H
#define TLSGUARD_SMB_BPF_H

#include "verdict.bpf.h"
#include "tlsguard/smb.h"

/* The parsers as global functions, verified once each (see parse.bpf.h). */
TG_GLOBAL int tg_smb_negotiate_hs(struct tg_hs *hs)
{
	if (!hs)
		return TG_PF_PLAINTEXT;
	return tg_smb_negotiate(hs->buf, tg_hs_len(hs, TG_HELLO_MAX), &hs->smb);
}

TG_GLOBAL int tg_smb_response_hs(struct tg_hs *hs, __u32 full)
{
	if (!hs)
		return TG_PF_PLAINTEXT;
	return tg_smb_negotiate_response(hs->buf, tg_hs_len(hs, TG_HELLO_MAX), full, &hs->smb);
}

TG_GLOBAL int tg_smb_session_msg_hs(struct tg_hs *hs)
{
	if (!hs)
		return TG_SMB_MSG_CLEAR;
	return tg_smb_session_msg(hs->buf, tg_hs_len(hs, TG_SMB_PEEK), &hs->smb);
}

/* What the machine found, where events take it from (event.h: SMB flows). */
static __always_inline void tg_smb_summary(struct tg_hs *hs, __u8 side)
{
	hs->tls.offered = hs->smb.client_max;
	hs->tls.negotiated = hs->smb.dialect;
	hs->tls.hello_flags = hs->smb.cipher;
	hs->tls.legacy = hs->smb.command;
	hs->tls.finding = hs->smb.finding;
	hs->tls.side = side;
}

/* 1. The client's first bytes (hs->buf) must be a NEGOTIATE offering 3.x with encryption. */
static __always_inline int tg_smb_client_decide(struct __sk_buff *skb, struct bpf_sock *sk,
						struct tg_flow *flow, struct tg_hs *hs,
						const struct tg_segment *seg)
{
	__u32 n = hs->have;
	int r;

	hs->smb.command = 0xffff;
	r = tg_smb_negotiate_hs(hs);
	if (r == TG_PF_NEED_MORE && n < TG_HELLO_MAX) {
		tg_count(TG_CNT_PARTIAL_PREFIX);
		return TG_PASS;
	}
	tg_smb_summary(hs, TG_SIDE_CLIENT);
	if (r != TG_PF_TLS)
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
	/* the server's NEGOTIATE response next, from its first byte */
	flow->state = TG_FLOW_SERVER_HELLO;
	hs->dir = 1;
	hs->have = 0;
	return TG_PASS;
}

/* 2. The server's first bytes (hs->buf) must select 3.x with encryption. */
static __always_inline int tg_smb_server_decide(struct __sk_buff *skb, struct bpf_sock *sk,
						struct tg_flow *flow, struct tg_hs *hs,
						const struct tg_segment *seg)
{
	int r = tg_smb_response_hs(hs, hs->have >= TG_HELLO_MAX);

	if (r == TG_PF_NEED_MORE)
		return TG_PASS;
	tg_smb_summary(hs, TG_SIDE_SERVER);
	if (r != TG_PF_TLS)
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
	if (!hs->smb.dialect)
		tg_count(TG_CNT_SERVER_UNJUDGED);	/* the session phase decides alone */
	flow->state = TG_FLOW_SMB_SESSION;
	hs->dir = 0;
	hs->have = 0;
	return TG_PASS;
}

/*
 * The first TG_SMB_PEEK bytes of the client message at stream offset @base
 * that this segment (at stream offset @rel) holds, appended to hs->buf.
 * 0, or -1 for a gap (the segment starts past what was collected).
 */
static __always_inline int tg_smb_collect(struct __sk_buff *skb, struct tg_hs *hs,
					  const struct tg_segment *seg, __u32 rel, __u32 base)
{
	__u32 have = hs->have, want, skip, n;

	if (have >= TG_SMB_PEEK)
		return 0;
	want = base + have;
	if (rel + seg->payload_len <= want)
		return 0;	/* inside the message before, or a retransmission */
	if (rel > want)
		return -1;
	skip = want - rel;
	n = seg->payload_len - skip;
	if (n > TG_SMB_PEEK - have)
		n = TG_SMB_PEEK - have;
	/* masks only for the verifier: have < TG_SMB_PEEK and 1 <= n <= TG_SMB_PEEK hold */
	have &= 31;
	n = ((n - 1) & 31) + 1;
	if (bpf_skb_load_bytes(skb, seg->payload_off + skip, &hs->buf[have], n) < 0)
		return -1;
	hs->have = have + n;
	return 0;
}

/* Messages of one segment looked at; more are left to the retransmission a gap causes. */
#define TG_SMB_MSGS_PER_SEGMENT	4

/* 3. Client segments after the negotiation, up to the first message past session setup. */
static __always_inline int tg_smb_session_egress(struct __sk_buff *skb, struct bpf_sock *sk,
						 struct tg_flow *flow)
{
	int r = TG_SMB_MSG_NEED_MORE;
	struct tg_segment seg;
	struct tg_hs *hs;
	__u32 rel, i;

	if (tg_parse_segment(skb, &seg, TG_DIR_EGRESS) < 0) {
		tg_count(TG_CNT_ERR_HEADER);
		return TG_PASS;
	}
	if (seg.payload_len == 0)
		return TG_PASS;
	hs = tg_hs_get(sk, flow, 0);
	if (!hs)
		return tg_hold(flow, TG_CNT_ERR_HS_STORAGE);
	rel = seg.seq - flow->first_seq;
	for (i = 0; i < TG_SMB_MSGS_PER_SEGMENT; i++) {
		/* on a gap TCP resends; the message is read from its start */
		if (tg_smb_collect(skb, hs, &seg, rel, hs->smb.next_msg) < 0)
			return tg_drop(TG_CNT_OUT_OF_ORDER);
		r = tg_smb_session_msg_hs(hs);
		if (r != TG_SMB_MSG_SKIP)
			break;
		hs->smb.next_msg += hs->smb.msg_len;
		hs->have = 0;
	}
	if (r == TG_SMB_MSG_ENCRYPTED) {
		tg_count(TG_CNT_SMB_ENCRYPTED);
		tg_smb_summary(hs, TG_SIDE_NONE);
		return tg_allow(skb, sk, flow, hs, &seg);
	}
	if (r == TG_SMB_MSG_CLEAR) {
		tg_smb_summary(hs, TG_SIDE_CLIENT);
		return tg_violation(skb, sk, flow, hs, &seg, TG_EV_PLAINTEXT);
	}
	return TG_PASS;
}

#endif /* TLSGUARD_SMB_BPF_H */
