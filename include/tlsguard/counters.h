/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters: one slot for every verdict and every failure reason.
 * Nothing is dropped or skipped in the kernel without one of these moving.
 * Append only: the index is part of the pinned map's meaning.
 */
#ifndef TLSGUARD_COUNTERS_H
#define TLSGUARD_COUNTERS_H

enum tg_counter {
	TG_CNT_FLOWS_TRACKED = 0,	/* connects to protected destinations */
	TG_CNT_EXCEPTION_HIT,		/* connects matching an exception */
	TG_CNT_CONNECT_FLAGGED,		/* disallowed port, audit */
	TG_CNT_CONNECT_BLOCKED,		/* disallowed port, enforce (EPERM) */
	TG_CNT_VERDICT_TLS,		/* first payload was a ClientHello */
	TG_CNT_PLAINTEXT_FLAGGED,	/* plaintext first payload, audit */
	TG_CNT_PLAINTEXT_BLOCKED,	/* plaintext first payload, enforce */
	TG_CNT_SEGMENTS_DROPPED,	/* payload segments dropped on blocked flows */
	TG_CNT_PARTIAL_PREFIX,		/* segment shorter than the TLS prefix, waited */
	TG_CNT_OUT_OF_ORDER,		/* undecided flow segment past the prefix gap, dropped */
	TG_CNT_ERR_STORAGE,		/* sk_storage could not be created: flow untracked */
	TG_CNT_ERR_RINGBUF,		/* event lost: ring buffer full */
	TG_CNT_ERR_HEADER,		/* IP/TCP header unreadable: passed */
	TG_CNT_ERR_NO_SOCK,		/* egress packet without a full socket */
	TG_CNT__MAX,
};

/*
 * Per-class verdict counters: slot class_id * TG_CS_STRIDE + stat of a
 * per-CPU array. Counted once per flow (at connect or at the verdict), never
 * per packet.
 */
enum tg_class_stat {
	TG_CS_TRACKED = 0,
	TG_CS_TLS,
	TG_CS_PLAINTEXT_FLAGGED,
	TG_CS_PLAINTEXT_BLOCKED,
	TG_CS_CONNECT_FLAGGED,
	TG_CS_CONNECT_BLOCKED,
	TG_CS__MAX,
};

#define TG_CS_STRIDE 8
_Static_assert(TG_CS__MAX <= TG_CS_STRIDE, "class stats fit their stride");

#endif /* TLSGUARD_COUNTERS_H */
