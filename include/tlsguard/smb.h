/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SMB 3 encryption, judged from the first messages of a connection to port
 * 445 (the `smb3` protocol machine). Pure and shared like preface.h: the BPF
 * programs decide with it, the agent describes events, the unit tests and
 * fuzzers run it on the host. Reads are masked with TG_HELLO_MASK.
 *
 * SMB 3 does not use TLS: it encrypts every message after authentication
 * with AES-CCM/GCM, each wrapped in an SMB2 TRANSFORM header (0xFD 'S' 'M'
 * 'B'). [MS-SMB2] 3.2.4.1.8: NEGOTIATE and SESSION_SETUP are never
 * encrypted; once the session requires it (SMB2_SESSION_FLAG_ENCRYPT_DATA,
 * or the client asked for it) every later message is. So, in order:
 *
 *  1. the client's NEGOTIATE offers an SMB 3.x dialect and encryption: the
 *     SMB2_GLOBAL_CAP_ENCRYPTION capability for 3.0/3.0.2, a cipher in the
 *     SMB2_ENCRYPTION_CAPABILITIES negotiate context for 3.1.1;
 *  2. the server's NEGOTIATE response selects a 3.x dialect with encryption
 *     (the capability, or a cipher in the context);
 *  3. the client's SESSION_SETUP requests (one or more rounds) are skipped by
 *     their length; the first client message after them must be a
 *     TRANSFORM. That message is where the verdict is final.
 *
 * Anything else (SMB1, SMB 2.x, a 3.x session without encryption, a share
 * that only the tree connect would encrypt) is plaintext. A share encrypted
 * only by its own flag (Share.EncryptData without Session.EncryptData) is
 * plaintext on purpose: its TREE_CONNECT and everything on other trees
 * (IPC$: DFS referrals, RPC) would cross in the clear.
 *
 * Direct TCP transport ([MS-SMB2] 2.1): every message is preceded by a zero
 * byte and a 24-bit big-endian length. Offsets below are of the buffer,
 * which starts at that 4-byte header; the SMB2 header follows at 4.
 */
#ifndef TLSGUARD_SMB_H
#define TLSGUARD_SMB_H

#include <linux/types.h>

#include "tlsguard/preface.h"

#define TG_SMB_PORT		445
#define TG_SMB_NBSS		4	/* transport header */
#define TG_SMB_HDR		64	/* SMB2 header */
#define TG_SMB_BODY		(TG_SMB_NBSS + TG_SMB_HDR)
#define TG_SMB_PEEK		20	/* bytes of a message that tell what it is */
#define TG_SMB_MAX_DIALECTS	16	/* real clients offer at most 5 */
#define TG_SMB_MAX_CONTEXTS	16	/* negotiate contexts looked at (clients send < 8) */
#define TG_SMB_MAX_CIPHERS	8
#define TG_SMB_MAX_SETUPS	8	/* SESSION_SETUP rounds before the verdict (NTLM: 2) */

#define TG_SMB_CMD_NEGOTIATE		0x0000
#define TG_SMB_CMD_SESSION_SETUP	0x0001
#define TG_SMB_FLAGS_SERVER_TO_REDIR	0x00000001
#define TG_SMB_CAP_ENCRYPTION		0x00000040
#define TG_SMB_CTX_ENCRYPTION		0x0002
#define TG_SMB_NBSS_KEEPALIVE		0x85

#define TG_SMB_DIALECT_202	0x0202
#define TG_SMB_DIALECT_210	0x0210
#define TG_SMB_DIALECT_300	0x0300
#define TG_SMB_DIALECT_302	0x0302
#define TG_SMB_DIALECT_311	0x0311

/* SMB2_ENCRYPTION_CAPABILITIES cipher ids ([MS-SMB2] 2.2.3.1.2) */
#define TG_SMB_CIPHER_AES128_CCM	1
#define TG_SMB_CIPHER_AES128_GCM	2
#define TG_SMB_CIPHER_AES256_CCM	3
#define TG_SMB_CIPHER_AES256_GCM	4

/* What made an SMB flow plaintext; 0 when it is not (events: protocol.finding). */
enum tg_smb_finding {
	TG_SMB_OK = 0,
	TG_SMB_NOT_SMB = 1,		/* not an SMB2 message where one was due */
	TG_SMB_SMB1 = 2,		/* SMB1 (0xFF 'SMB'): no encryption at all */
	TG_SMB_NO_SMB3 = 3,		/* the client offers no SMB 3.x dialect */
	TG_SMB_CLIENT_NO_ENCRYPTION = 4,/* 3.x offered, encryption not */
	TG_SMB_SERVER_SMB2 = 5,		/* the server selected a 2.x dialect */
	TG_SMB_SERVER_NO_ENCRYPTION = 6,/* the server selected 3.x without encryption */
	TG_SMB_CLEAR_AFTER_SETUP = 7,	/* a message in the clear after session setup */
	TG_SMB_SETUP_ROUNDS = 8,	/* more SESSION_SETUP rounds than any real login */
	TG_SMB_FINDING__MAX,
};

/* One step of the session phase (tg_smb_session_msg). */
enum tg_smb_msg {
	TG_SMB_MSG_NEED_MORE = 0,
	TG_SMB_MSG_ENCRYPTED = 1,	/* a TRANSFORM: the session is encrypted */
	TG_SMB_MSG_SKIP = 2,		/* SESSION_SETUP or keep-alive: ->msg_len bytes */
	TG_SMB_MSG_CLEAR = 3,		/* anything else: plaintext */
};

/* What the machine found, kept in the handshake state (results live in map values). */
struct tg_smb_info {
	__u32 next_msg;			/* client stream offset of the next message */
	__u32 msg_len;			/* bytes of the message just parsed, transport header included */
	__u16 client_max;		/* highest dialect the client offered */
	__u16 dialect;			/* what the server selected, 0 before */
	__u16 command;			/* the SMB2 command sent in the clear, 0xffff none */
	__u8 cipher;			/* the server's cipher (3.1.1), 0 none */
	__u8 finding;			/* enum tg_smb_finding */
	__u8 setups;			/* SESSION_SETUP requests skipped */
	__u8 client_enc;		/* the client offered encryption */
	__u8 pad[2];
};
_Static_assert(sizeof(struct tg_smb_info) == 20, "tg_smb_info layout");

#define TG_SMB_RD8(b, i)	((__u32)(b)[(i) & TG_HELLO_MASK])

TG_INLINE __u32 tg_smb_le16(const __u8 *b, __u32 i)
{
	return TG_SMB_RD8(b, i) | (TG_SMB_RD8(b, i + 1) << 8);
}

TG_INLINE __u32 tg_smb_le32(const __u8 *b, __u32 i)
{
	return tg_smb_le16(b, i) | (tg_smb_le16(b, i + 2) << 16);
}

/* The transport header's length: the message is 4 + this many bytes. */
TG_INLINE __u32 tg_smb_nbss_len(const __u8 *b)
{
	return (TG_SMB_RD8(b, 1) << 16) | (TG_SMB_RD8(b, 2) << 8) | TG_SMB_RD8(b, 3);
}

/* The 4-byte protocol id at b[4]: 0xFE/0xFF/0xFD/0xFC followed by 'S' 'M' 'B'. */
TG_INLINE __u32 tg_smb_proto_id(const __u8 *b)
{
	if (TG_SMB_RD8(b, 5) != 'S' || TG_SMB_RD8(b, 6) != 'M' || TG_SMB_RD8(b, 7) != 'B')
		return 0;
	return TG_SMB_RD8(b, 4);
}

TG_INLINE int tg_smb_is_smb3(__u32 dialect)
{
	return dialect == TG_SMB_DIALECT_300 || dialect == TG_SMB_DIALECT_302 ||
	       dialect == TG_SMB_DIALECT_311;
}

TG_INLINE int tg_smb_cipher_known(__u32 cipher)
{
	return cipher >= TG_SMB_CIPHER_AES128_CCM && cipher <= TG_SMB_CIPHER_AES256_GCM;
}

/*
 * The SMB2 message at b[0 .. n): transport header, SMB2 protocol id,
 * structure size and @cmd, and the direction flag (@response). Returns
 * TG_PF_NEED_MORE, TG_PF_PLAINTEXT (with si->finding set) or TG_PF_TLS when
 * it is one and all of it is in the buffer (si->msg_len).
 */
TG_INLINE int tg_smb_message(const __u8 *b, __u32 n, __u32 cmd, int response,
				 struct tg_smb_info *si)
{
	__u32 len, id;

	if (n < 8)
		return TG_PF_NEED_MORE;
	id = tg_smb_proto_id(b);
	if (TG_SMB_RD8(b, 0) != 0 || !id) {
		si->finding = TG_SMB_NOT_SMB;
		return TG_PF_PLAINTEXT;
	}
	if (id != 0xfe) {
		si->finding = id == 0xff ? TG_SMB_SMB1 : TG_SMB_NOT_SMB;
		return TG_PF_PLAINTEXT;
	}
	len = tg_smb_nbss_len(b);
	if (n < TG_SMB_BODY)
		return TG_PF_NEED_MORE;
	if (len < TG_SMB_HDR + 8 || len > TG_HELLO_MAX - TG_SMB_NBSS ||
	    tg_smb_le16(b, 8) != TG_SMB_HDR || tg_smb_le16(b, 16) != cmd ||
	    !(tg_smb_le32(b, 20) & TG_SMB_FLAGS_SERVER_TO_REDIR) != !response) {
		si->finding = TG_SMB_NOT_SMB;
		return TG_PF_PLAINTEXT;
	}
	si->msg_len = TG_SMB_NBSS + len;
	return n < si->msg_len ? TG_PF_NEED_MORE : TG_PF_TLS;
}

/*
 * Negotiate contexts ([MS-SMB2] 2.2.3.1) at SMB2-header offset @ctx_off,
 * @count of them, within the message's @end: the best cipher of the
 * SMB2_ENCRYPTION_CAPABILITIES context (the client lists several, the
 * server one), or 0 when there is none. Each context starts 8-byte aligned
 * from the SMB2 header.
 */
TG_INLINE __u32 tg_smb_cipher(const __u8 *b, __u32 ctx_off, __u32 count, __u32 end)
{
	__u32 p = TG_SMB_NBSS + ctx_off, i, j, type, len, nc, c;

	if (ctx_off > TG_HELLO_MAX)
		return 0;	/* past any message we hold (and no overflow below) */
	for (i = 0; i < TG_SMB_MAX_CONTEXTS && i < count; i++) {
		if (p >= end || end - p < 8)
			return 0;
		type = tg_smb_le16(b, p);
		len = tg_smb_le16(b, p + 2);
		if (len > end - p - 8)
			return 0;
		if (type == TG_SMB_CTX_ENCRYPTION && len >= 2) {
			nc = tg_smb_le16(b, p + 8);
			for (j = 0; j < TG_SMB_MAX_CIPHERS && j < nc && 2 + 2 * j + 2 <= len; j++) {
				c = tg_smb_le16(b, p + 10 + 2 * j);
				if (tg_smb_cipher_known(c))
					return c;
			}
			return 0;
		}
		p += 8 + len;
		p = ((p - TG_SMB_NBSS + 7) & ~7U) + TG_SMB_NBSS;
	}
	return 0;
}

/*
 * 1. The client's NEGOTIATE request at b[0 .. n) (n <= TG_HELLO_MAX).
 * TG_PF_TLS: it offers 3.x with encryption, and the client's next message
 * starts at si->next_msg. TG_PF_PLAINTEXT with si->finding.
 */
TG_INLINE int tg_smb_negotiate(const __u8 *b, __u32 n, struct tg_smb_info *si)
{
	__u32 count, caps, i, d, best = 0, has311 = 0, end;
	int r;

	r = tg_smb_message(b, n, TG_SMB_CMD_NEGOTIATE, 0, si);
	if (r != TG_PF_TLS)
		return r;
	end = si->msg_len;
	if (end < TG_SMB_BODY + 36) {		/* the request's fixed part */
		si->finding = TG_SMB_NOT_SMB;
		return TG_PF_PLAINTEXT;
	}
	count = tg_smb_le16(b, TG_SMB_BODY + 2);
	caps = tg_smb_le32(b, TG_SMB_BODY + 8);
	if (tg_smb_le16(b, TG_SMB_BODY) != 36 || count == 0 || count > TG_SMB_MAX_DIALECTS ||
	    TG_SMB_BODY + 36 + 2 * count > end) {
		si->finding = TG_SMB_NOT_SMB;
		return TG_PF_PLAINTEXT;
	}
	for (i = 0; i < TG_SMB_MAX_DIALECTS && i < count; i++) {
		d = tg_smb_le16(b, TG_SMB_BODY + 36 + 2 * i);
		if (d > best && d != 0x02ff)
			best = d;	/* for the event: 2.x when nothing better */
		if (!tg_smb_is_smb3(d))
			continue;
		if (d > si->client_max)
			si->client_max = d;
		if (d != TG_SMB_DIALECT_311 && (caps & TG_SMB_CAP_ENCRYPTION))
			si->client_enc = 1;
		if (d == TG_SMB_DIALECT_311)
			has311 = 1;
	}
	/* 3.1.1 says it with a cipher list; CAP_ENCRYPTION means nothing there */
	if (has311 && tg_smb_cipher(b, tg_smb_le32(b, TG_SMB_BODY + 28),
				    tg_smb_le16(b, TG_SMB_BODY + 32), end))
		si->client_enc = 1;
	if (!si->client_max) {
		si->client_max = best;
		si->finding = TG_SMB_NO_SMB3;
		return TG_PF_PLAINTEXT;
	}
	if (!si->client_enc) {
		si->finding = TG_SMB_CLIENT_NO_ENCRYPTION;
		return TG_PF_PLAINTEXT;
	}
	si->next_msg = si->msg_len;
	return TG_PF_TLS;
}

/*
 * 2. The server's NEGOTIATE response at b[0 .. n); @full: no more bytes
 * will come. TG_PF_TLS: 3.x with encryption was selected, or the response
 * could not be judged (an error status, cut short): the session phase
 * decides either way. TG_PF_PLAINTEXT: 2.x, or 3.x without encryption.
 */
TG_INLINE int tg_smb_negotiate_response(const __u8 *b, __u32 n, int full,
					    struct tg_smb_info *si)
{
	__u32 dialect, caps;
	int r;

	r = tg_smb_message(b, n, TG_SMB_CMD_NEGOTIATE, 1, si);
	if (r == TG_PF_NEED_MORE && !full)
		return TG_PF_NEED_MORE;
	if (r == TG_PF_PLAINTEXT || n < TG_SMB_BODY + 64 || si->msg_len < TG_SMB_BODY + 64 ||
	    tg_smb_le32(b, 12) != 0 || tg_smb_le16(b, TG_SMB_BODY) != 65)
		return TG_PF_TLS;	/* unjudged: the client's next messages decide */
	dialect = tg_smb_le16(b, TG_SMB_BODY + 4);
	caps = tg_smb_le32(b, TG_SMB_BODY + 24);
	si->dialect = dialect;
	if (!tg_smb_is_smb3(dialect)) {
		si->finding = TG_SMB_SERVER_SMB2;
		return TG_PF_PLAINTEXT;
	}
	if (dialect != TG_SMB_DIALECT_311) {
		if (caps & TG_SMB_CAP_ENCRYPTION)
			return TG_PF_TLS;
		si->finding = TG_SMB_SERVER_NO_ENCRYPTION;
		return TG_PF_PLAINTEXT;
	}
	if (r == TG_PF_NEED_MORE)
		return TG_PF_TLS;	/* its contexts did not fit: unjudged */
	si->cipher = tg_smb_cipher(b, tg_smb_le32(b, TG_SMB_BODY + 60),
				   tg_smb_le16(b, TG_SMB_BODY + 6), si->msg_len);
	if (si->cipher)
		return TG_PF_TLS;
	si->finding = TG_SMB_SERVER_NO_ENCRYPTION;
	return TG_PF_PLAINTEXT;
}

/*
 * 3. A client message after the negotiation, its first @n bytes at b[0 ..)
 * (at most TG_SMB_PEEK are needed). SESSION_SETUP requests and keep-alives
 * are skipped (TG_SMB_MSG_SKIP, si->msg_len bytes), a TRANSFORM ends the
 * judgement, anything else is in the clear (si->command, si->finding).
 */
TG_INLINE int tg_smb_session_msg(const __u8 *b, __u32 n, struct tg_smb_info *si)
{
	__u32 id, cmd;

	if (n < 4)
		return TG_SMB_MSG_NEED_MORE;
	if (TG_SMB_RD8(b, 0) == TG_SMB_NBSS_KEEPALIVE && tg_smb_nbss_len(b) == 0) {
		si->msg_len = TG_SMB_NBSS;
		return TG_SMB_MSG_SKIP;
	}
	if (n < 8)
		return TG_SMB_MSG_NEED_MORE;
	id = tg_smb_proto_id(b);
	if (TG_SMB_RD8(b, 0) == 0 && id == 0xfd && tg_smb_nbss_len(b) >= 52)
		return TG_SMB_MSG_ENCRYPTED;	/* 52: the TRANSFORM header itself */
	if (TG_SMB_RD8(b, 0) != 0 || id != 0xfe) {
		si->finding = TG_SMB_CLEAR_AFTER_SETUP;
		si->command = 0xffff;
		return TG_SMB_MSG_CLEAR;
	}
	if (n < 18)
		return TG_SMB_MSG_NEED_MORE;
	cmd = tg_smb_le16(b, 16);
	if (cmd != TG_SMB_CMD_SESSION_SETUP) {
		si->finding = TG_SMB_CLEAR_AFTER_SETUP;
		si->command = cmd;
		return TG_SMB_MSG_CLEAR;
	}
	if (si->setups >= TG_SMB_MAX_SETUPS) {
		si->finding = TG_SMB_SETUP_ROUNDS;
		si->command = cmd;
		return TG_SMB_MSG_CLEAR;
	}
	si->setups++;
	si->msg_len = TG_SMB_NBSS + tg_smb_nbss_len(b);
	return TG_SMB_MSG_SKIP;
}

#endif /* TLSGUARD_SMB_H */
