// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "describe.h"
#include "tlsguard/preface.h"
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

void describe_payload(const uint8_t *buf, size_t len, struct tg_payload_desc *out)
{
	const char *method;

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
	out->detected = "unknown";
}

static const char *negotiation_name(unsigned int pf_kind)
{
	switch (pf_kind) {
	case TG_PK_PG_SSLREQUEST:
		return "postgres-sslrequest";
	case TG_PK_MYSQL_SSL:
		return "mysql-ssl-request";
	case TG_PK_TDS_PRELOGIN:
		return "tds-prelogin";
	case TG_PK_CONNECT:
		return "http-connect";
	default:
		return NULL;
	}
}

void describe_tls(unsigned int l7, unsigned int pf_kind, struct tg_payload_desc *out)
{
	memset(out, 0, sizeof(*out));
	out->detected = "tls";
	out->negotiation = negotiation_name(pf_kind);
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
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
			out->negotiation = negotiation_name(pf_kind);
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
			out->negotiation = negotiation_name(pf_kind);
			return;
		}
		break;
	}
	describe_payload(buf, len, out);
}
