// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "describe.h"
#include "enum_name.h"
#include "tlsguard/preface.h"
#include "tlsguard/smb.h"
#include "tlsguard/tls_prefix.h"

static const char *const http_methods[] = {
	"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
};

/* "METHOD " at the start; returns the method or NULL. */
static const char *http_method(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		size_t n = strlen(http_methods[i]);

		if (len > n && !memcmp(buf, http_methods[i], n) && buf[n] == ' ')
			return http_methods[i];
	}
	return NULL;
}

/* Host header value: printable characters only, so an event stays one clean line. */
static void copy_header_value(const uint8_t *v, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (!isgraph(v[i]))
			break;
		out[o++] = v[i];
	}
	out[o] = '\0';
}

static void http_host(const uint8_t *buf, size_t len, char *out, size_t outlen)
{
	size_t line = 0;

	out[0] = '\0';
	/* skip the request line: its target may carry a path, which is never kept */
	while (line < len && buf[line] != '\n')
		line++;
	while (++line < len) {
		size_t end = line;

		while (end < len && buf[end] != '\n')
			end++;
		if (end == len)
			return;	/* a header cut off by the capture limit is not trusted */
		if (end - line >= 5 && !strncasecmp((const char *)buf + line, "host:", 5)) {
			copy_header_value(buf + line + 5, end - line - 5, out, outlen);
			return;
		}
		if (end - line <= 1)
			return;	/* blank line: end of headers */
		line = end;
	}
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/*
 * An ONC RPC call over TCP (RFC 5531): record mark, xid, CALL (0), RPC
 * version 2, then the program: NFS (100003) and its MOUNT protocol
 * (100005), or the portmapper (100000) that Blob NFS 3.0 clients ask first.
 */
static const char *onc_rpc_program(const uint8_t *buf, size_t len)
{
	uint32_t prog;

	if (len < 20 || !(buf[0] & 0x80) || be32(buf + 8) != 0 || be32(buf + 12) != 2)
		return NULL;
	prog = be32(buf + 16);
	if (prog == 100003 || prog == 100005)
		return "nfs";
	if (prog == 100000)
		return "rpcbind";
	return NULL;
}

void describe_payload(const uint8_t *buf, size_t len, struct tg_payload_desc *out)
{
	const char *method, *rpc;

	memset(out, 0, sizeof(*out));
	if (tg_classify_prefix(buf, len) == TG_PREFIX_TLS) {
		out->detected = "tls";
		return;
	}
	if (len >= 7 && !memcmp(buf, "HTTP/1.", 7)) {
		out->detected = "http";		/* a response: a plain server's answer */
		return;
	}
	method = http_method(buf, len);
	if (method) {
		out->detected = "http";
		strcpy(out->method, method);
		http_host(buf, len, out->host, sizeof(out->host));
		return;
	}
	rpc = onc_rpc_program(buf, len);
	if (rpc) {
		out->detected = rpc;
		return;
	}
	if (len >= 8 && buf[0] == 0 && buf[5] == 'S' && buf[6] == 'M' && buf[7] == 'B' &&
	    (buf[4] == 0xfe || buf[4] == 0xff)) {
		out->detected = "smb";	/* SMB where TLS was due (an smb3 class is on 445) */
		return;
	}
	out->detected = "unknown";
}

static const char *smb_dialect_name(unsigned int d)
{
	switch (d) {
	case TG_SMB_DIALECT_202:
		return "2.0.2";
	case TG_SMB_DIALECT_210:
		return "2.1";
	case TG_SMB_DIALECT_300:
		return "3.0";
	case TG_SMB_DIALECT_302:
		return "3.0.2";
	case TG_SMB_DIALECT_311:
		return "3.1.1";
	default:
		return NULL;
	}
}

static const char *smb_cipher_name(unsigned int dialect, unsigned int cipher)
{
	static const char *const names[] = { "none", "aes-128-ccm", "aes-128-gcm", "aes-256-ccm",
					     "aes-256-gcm" };

	/* 3.0 and 3.0.2 have one cipher, AES-128-CCM (key size not negotiated) */
	if (!cipher && (dialect == TG_SMB_DIALECT_300 || dialect == TG_SMB_DIALECT_302))
		return "aes-ccm";
	return TG_ENUM_NAME(names, cipher, "unknown");
}

static const char *smb_command_name(unsigned int cmd)
{
	static const char *const names[] = {
		"NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT",
		"CREATE", "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO",
		"QUERY_DIRECTORY", "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK",
	};

	return TG_ENUM_NAME(names, cmd, "a message");
}

/* What each finding means for the flow (TG_SMB_CLEAR_AFTER_SETUP names the command). */
static const char *const smb_findings[TG_SMB_FINDING__MAX] = {
	[TG_SMB_NOT_SMB] = "not an SMB2 message where one was due",
	[TG_SMB_SMB1] = "SMB1 has no encryption: use SMB 3 with encryption",
	[TG_SMB_NO_SMB3] = "the client offers no SMB 3 dialect: SMB 2.x has no encryption",
	[TG_SMB_CLIENT_NO_ENCRYPTION] = "the client offers SMB 3 without encryption",
	[TG_SMB_SERVER_SMB2] = "the server selected SMB 2.x, which has no encryption",
	[TG_SMB_SERVER_NO_ENCRYPTION] = "the server selected SMB 3 without encryption",
	[TG_SMB_SETUP_ROUNDS] = "more SESSION_SETUP rounds than a login takes",
};

void describe_smb(unsigned int finding, unsigned int client_max, unsigned int dialect,
		  unsigned int cipher, unsigned int command, struct tg_payload_desc *out)
{
	memset(out, 0, sizeof(*out));
	out->detected = "smb";
	out->dialect = smb_dialect_name(dialect ? dialect : client_max);
	if (finding == TG_SMB_OK) {
		out->encryption = smb_cipher_name(dialect, cipher);
		return;
	}
	out->encryption = "none";
	if (finding == TG_SMB_SMB1)
		out->dialect = "1";
	if (finding != TG_SMB_CLEAR_AFTER_SETUP) {
		out->finding = TG_ENUM_NAME(smb_findings, finding, smb_findings[TG_SMB_NOT_SMB]);
		return;
	}
	snprintf(out->finding_buf, sizeof(out->finding_buf),
		 "SMB2 %s sent in the clear after session setup: the session is not "
		 "encrypted (require it: mount -o seal, or encryption on the server)",
		 smb_command_name(command));
	out->finding = command == 0xffff ?
		"a message that is not SMB2 sent in the clear after session setup" :
		out->finding_buf;
}

/* the prefaces that negotiate TLS inside a protocol (TG_PK_TLS starts with it) */
static const char *const negotiation_names[] = {
	[TG_PK_PG_SSLREQUEST] = "postgres-sslrequest",
	[TG_PK_MYSQL_SSL] = "mysql-ssl-request",
	[TG_PK_TDS_PRELOGIN] = "tds-prelogin",
	[TG_PK_CONNECT] = "http-connect",
};

void describe_tls(unsigned int l7, unsigned int pf_kind, struct tg_payload_desc *out)
{
	memset(out, 0, sizeof(*out));
	out->detected = "tls";
	out->negotiation = TG_ENUM_NAME(negotiation_names, pf_kind, NULL);
}

void describe_flow(const uint8_t *buf, size_t len, unsigned int l7, unsigned int pf_kind,
		   unsigned int tls_off, struct tg_payload_desc *out)
{
	switch (l7) {
	case TG_L7_POSTGRES:
		memset(out, 0, sizeof(*out));
		/* StartupMessage (protocol 3.0), CancelRequest, GSSENCRequest: all postgres */
		if (len >= 8 && (be32(buf + 4) == 0x00030000 || be32(buf + 4) == 80877102 ||
				 be32(buf + 4) == 80877104)) {
			out->detected = "postgres";
			return;
		}
		if (pf_kind == TG_PK_PG_SSLREQUEST && len >= 16 && be32(buf + 12) == 0x00030000) {
			out->detected = "postgres";	/* server said 'N', startup in the clear */
			out->negotiation = TG_ENUM_NAME(negotiation_names, pf_kind, NULL);
			return;
		}
		break;
	case TG_L7_MYSQL:
		memset(out, 0, sizeof(*out));
		/* a client packet with sequence id 1: HandshakeResponse */
		if (len >= 4 && buf[3] == 1) {
			out->detected = "mysql";
			return;
		}
		break;
	case TG_L7_TDS:
		memset(out, 0, sizeof(*out));
		if (len >= 8 && (buf[0] == 0x12 || buf[0] == 0x10 || buf[0] == 0x01)) {
			out->detected = "tds";	/* PRELOGIN without encryption, LOGIN7, SQL batch */
			return;
		}
		break;
	case TG_L7_CONNECT:
		if (pf_kind == TG_PK_CONNECT && tls_off < len) {
			/* what went into the tunnel instead of a ClientHello */
			describe_payload(buf + tls_off, len - tls_off, out);
			out->negotiation = TG_ENUM_NAME(negotiation_names, pf_kind, NULL);
			return;
		}
		break;
	}
	describe_payload(buf, len, out);
}
