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
	const char *detected;		/* "tls", "http", "postgres", "mysql", "tds", "smb", "nfs",
					 * "rpcbind", "unknown" */
	const char *negotiation;	/* how TLS was (to be) reached: "postgres-sslrequest", ... */
	const char *dialect;		/* smb: "3.1.1", "2.1", "1"; NULL otherwise */
	const char *encryption;		/* smb: "aes-128-gcm", ..., "none"; NULL otherwise */
	const char *finding;		/* smb: why the flow is plaintext, a sentence; NULL when it is not */
	char method[16];		/* HTTP method, "" otherwise */
	char host[TG_DESCRIBE_HOST_MAX];/* HTTP Host header, "" when absent */
	char finding_buf[160];		/* where ->finding points when it names a command */
};

void describe_payload(const uint8_t *buf, size_t len, struct tg_payload_desc *out);

/*
 * A plaintext flow's first bytes, knowing its protocol machine (enum tg_l7),
 * the preface the client sent (enum tg_preface_kind) and where TLS was due:
 * what was sent instead ("postgres" for a StartupMessage, HTTP inside a
 * CONNECT tunnel, ...).
 */
void describe_flow(const uint8_t *buf, size_t len, unsigned int l7, unsigned int pf_kind,
		   unsigned int tls_off, struct tg_payload_desc *out);

/*
 * An SMB flow (protocol smb3): @finding is enum tg_smb_finding, @client_max
 * the highest dialect the client offered, @dialect the server's choice (0:
 * not seen), @cipher the 3.1.1 cipher id, @command the SMB2 command sent in
 * the clear (0xffff: none).
 */
void describe_smb(unsigned int finding, unsigned int client_max, unsigned int dialect,
		  unsigned int cipher, unsigned int command, struct tg_payload_desc *out);

/* A TLS flow (weak_tls, sni_mismatch, tls events): "tls" and how it was reached. */
void describe_tls(unsigned int l7, unsigned int pf_kind, struct tg_payload_desc *out);

#endif /* TLSGUARD_AGENT_DESCRIBE_H */
