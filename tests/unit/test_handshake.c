// SPDX-License-Identifier: MIT
/*
 * The shared handshake parsers (include/tlsguard/tls_hello.h, preface.h,
 * names.h, quic.h) on the host: real ClientHellos and ServerHellos recorded
 * from OpenSSL (TLS 1.0-1.3), curl and Python (data/handshakes/record.sh),
 * every truncation of them, hellos split over records, oversized and hostile
 * inputs, the STARTTLS prefaces and SipHash against its reference vectors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include "describe.h"
#include "dests.h"
#include "handshake.h"
#include "handshake_policy.h"
#include "policy.h"
#include "tlsguard/names.h"
#include "tlsguard/preface.h"
#include "tlsguard/quic.h"
#include "tlsguard/tls_hello.h"

#define DATA_DIR "tests/unit/data/handshakes/"

struct blob {
	uint8_t b[TG_HELLO_BUF];	/* parsers want room for masked reads */
	size_t n;
};

static void load(const char *name, struct blob *out)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), DATA_DIR "%s", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the repository root)", path);
	memset(out, 0, sizeof(*out));
	out->n = fread(out->b, 1, TG_HELLO_MAX, f);
	fclose(f);
	assert_true(out->n > 9);
}

/* Records → message → parse, as the BPF side does. Returns the hello result or -1. */
static int parse_stream(struct blob *s, size_t n, int server, int full, struct tg_hello_info *hi)
{
	struct tg_tls_recs recs;
	__u32 off = 0, len = 0;
	int r = tg_tls_records(s->b, 0, n, server, full, &off, &len, &recs);

	if (r != TG_PF_TLS)
		return r == TG_PF_NEED_MORE ? -2 : -1;
	if (recs.n > 1)
		tg_tls_compact(s->b, &recs);
	return tg_parse_hello(s->b, off, len, server, hi);
}

static void expect_client(const char *file, unsigned int version, const char *sni, const char *alpn0)
{
	struct tg_hello_info hi;
	struct blob s;

	load(file, &s);
	assert_int_equal(parse_stream(&s, s.n, 0, 0, &hi), TG_HELLO_OK);
	assert_int_equal(hi.version, version);
	if (sni) {
		assert_true(hi.flags & TG_HELLO_F_SNI);
		assert_int_equal(hi.sni_len, strlen(sni));
		assert_memory_equal(s.b + hi.sni_off, sni, strlen(sni));
	} else {
		assert_false(hi.flags & TG_HELLO_F_SNI);
	}
	if (alpn0) {
		__u32 off = hi.alpn_off, noff, nlen;

		assert_true(hi.flags & TG_HELLO_F_ALPN);
		assert_int_equal(tg_alpn_next(s.b, &off, hi.alpn_off + hi.alpn_len, &noff, &nlen), 1);
		assert_int_equal(nlen, strlen(alpn0));
		assert_memory_equal(s.b + noff, alpn0, nlen);
	}
}

static void test_openssl_client_hellos(void **state)
{
	expect_client("client-openssl-tls10.bin", 0x0301, "storage.test", NULL);
	expect_client("client-openssl-tls11.bin", 0x0302, "storage.test", NULL);
	expect_client("client-openssl-tls12.bin", 0x0303, "storage.test", NULL);
	expect_client("client-openssl-tls13.bin", 0x0304, "storage.test", "h2");
	expect_client("client-openssl-nosni.bin", 0x0304, NULL, NULL);
}

static void test_curl_and_python_client_hellos(void **state)
{
	expect_client("client-curl.bin", 0x0304, "acct.blob.core.windows.net", "h2");
	expect_client("client-python.bin", 0x0304, "mlregistry.azurecr.io", NULL);
}

static void test_openssl_server_hellos(void **state)
{
	static const struct {
		const char *file;
		unsigned int version;
	} cases[] = {
		{ "server-tls10.bin", 0x0301 }, { "server-tls11.bin", 0x0302 },
		{ "server-tls12.bin", 0x0303 }, { "server-tls13.bin", 0x0304 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tg_hello_info hi;
		struct blob s;

		load(cases[i].file, &s);
		assert_int_equal(parse_stream(&s, s.n, 1, 0, &hi), TG_HELLO_OK);
		assert_int_equal(hi.version, cases[i].version);
		/* a ClientHello parser does not take a ServerHello, nor the reverse */
		load(cases[i].file, &s);
		assert_int_equal(parse_stream(&s, s.n, 0, 0, &hi), -1);
	}
}

/* Every cut of a real hello: never BAD, never past the bytes, OK once whole. */
static void test_every_truncation(void **state)
{
	static const char *files[] = { "client-curl.bin", "client-openssl-tls13.bin",
				       "client-openssl-tls10.bin" };

	for (size_t f = 0; f < 3; f++) {
		struct blob whole;

		load(files[f], &whole);
		for (size_t n = 1; n <= whole.n; n++) {
			struct tg_hello_info hi;
			struct blob s;
			int r;

			memset(&s, 0xee, sizeof(s));	/* bytes past n must not matter */
			memcpy(s.b, whole.b, n);
			r = parse_stream(&s, n, 0, 0, &hi);
			if (n < whole.n)
				assert_int_equal(r, -2);	/* need more */
			else
				assert_int_equal(r, TG_HELLO_OK);
			/* the same bytes when no more will come: what fits is parsed */
			memcpy(s.b, whole.b, n);
			r = parse_stream(&s, n, 0, 1, &hi);
			assert_true(r == -1 || r == TG_HELLO_TRUNCATED || r == TG_HELLO_OK);
			if (n >= 6)
				assert_int_not_equal(r, -1);
		}
	}
}

/* The curl hello re-framed into records of @piece bytes of handshake data each. */
static size_t reframe(const struct blob *in, size_t piece, uint8_t *out)
{
	size_t msg = in->n - 5, o = 0;

	for (size_t p = 0; p < msg; p += piece) {
		size_t l = msg - p < piece ? msg - p : piece;

		out[o++] = 0x16;
		out[o++] = 0x03;
		out[o++] = 0x01;
		out[o++] = l >> 8;
		out[o++] = l & 0xff;
		memcpy(out + o, in->b + 5 + p, l);
		o += l;
	}
	return o;
}

static void test_hello_split_over_records(void **state)
{
	static const size_t pieces[] = { 1, 3, 40, 100, 300 };
	struct blob whole;

	load("client-curl.bin", &whole);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct tg_hello_info hi;
		struct blob s;
		int r;

		memset(&s, 0, sizeof(s));
		s.n = reframe(&whole, pieces[i], s.b);
		if (s.n > TG_HELLO_MAX || (512 + pieces[i] - 1) / pieces[i] > TG_MAX_RECORDS) {
			/* more than 16 pieces: no real client; not TLS */
			r = parse_stream(&s, s.n < TG_HELLO_MAX ? s.n : TG_HELLO_MAX, 0, 1, &hi);
			assert_true(r == -1 || r == TG_HELLO_TRUNCATED);
			continue;
		}
		r = parse_stream(&s, s.n, 0, 0, &hi);
		assert_int_equal(r, TG_HELLO_OK);
		assert_int_equal(hi.version, 0x0304);
		assert_int_equal(hi.sni_len, strlen("acct.blob.core.windows.net"));
		assert_memory_equal(s.b + hi.sni_off, "acct.blob.core.windows.net", hi.sni_len);
	}
}

/* A ClientHello bigger than what the kernel assembles: cut, not refused. */
static void test_oversized_hello(void **state)
{
	struct tg_hello_info hi;
	struct blob whole, s;
	size_t pad = 3000, n;
	uint8_t *b = s.b;

	load("client-openssl-tls13.bin", &whole);
	memset(&s, 0, sizeof(s));
	/* grow the extensions block with a padding extension (21) at the end */
	n = whole.n;
	memcpy(b, whole.b, n);
	{
		size_t msg = n - 5 + 4 + pad, body = msg - 4, rec = msg;
		size_t ext_len_off, ext_len;

		b[3] = rec >> 8;
		b[4] = rec & 0xff;
		b[6] = body >> 16;
		b[7] = body >> 8;
		b[8] = body & 0xff;
		/* extensions length sits after session id, suites and compression */
		ext_len_off = 5 + 4 + 2 + 32;
		ext_len_off += 1 + b[ext_len_off];
		ext_len_off += 2 + ((b[ext_len_off] << 8) | b[ext_len_off + 1]);
		ext_len_off += 1 + b[ext_len_off];
		ext_len = ((b[ext_len_off] << 8) | b[ext_len_off + 1]) + 4 + pad;
		b[ext_len_off] = ext_len >> 8;
		b[ext_len_off + 1] = ext_len & 0xff;
		b[n] = 0;
		b[n + 1] = 21;
		b[n + 2] = pad >> 8;
		b[n + 3] = pad & 0xff;
	}
	assert_int_equal(parse_stream(&s, TG_HELLO_MAX, 0, 0, &hi), -2);	/* wants more */
	assert_int_equal(parse_stream(&s, TG_HELLO_MAX, 0, 1, &hi), TG_HELLO_TRUNCATED);
	assert_true(hi.flags & TG_HELLO_F_TRUNCATED);
	assert_true(hi.flags & TG_HELLO_F_SNI);		/* before the cut */
	assert_int_equal(hi.version, 0x0304);
}

static void corrupt_and_expect_bad(const char *file, size_t at, uint8_t val)
{
	struct tg_hello_info hi;
	struct blob s;

	load(file, &s);
	s.b[at] = val;
	assert_int_equal(parse_stream(&s, s.n, 0, 1, &hi) == TG_HELLO_OK, 0);
}

static void test_hostile_hellos(void **state)
{
	struct tg_hello_info hi;
	struct blob s;
	uint8_t junk[TG_HELLO_BUF];

	/* session id longer than 32 */
	corrupt_and_expect_bad("client-curl.bin", 5 + 4 + 2 + 32, 33);
	/* odd cipher suites length (its low byte, after the session id) */
	load("client-openssl-tls12.bin", &s);
	corrupt_and_expect_bad("client-openssl-tls12.bin", 5 + 4 + 2 + 32 + 1 + s.b[5 + 4 + 2 + 32] + 1,
			       0x35);
	/* handshake length past the record: cut, never read past the bytes */
	load("client-openssl-tls12.bin", &s);
	s.b[6] = 0xff;
	assert_int_not_equal(parse_stream(&s, s.n, 0, 1, &hi), TG_HELLO_OK);
	/* a record of length 0, of 2^14+1, an SSLv2 hello, application data */
	memcpy(junk, "\x16\x03\x01\x00\x00\x01", 6);
	assert_int_equal(tg_classify_prefix(junk, 6), TG_PREFIX_PLAINTEXT);
	memcpy(junk, "\x16\x03\x01\x40\x01\x01", 6);
	assert_int_equal(tg_classify_prefix(junk, 6), TG_PREFIX_PLAINTEXT);
	memcpy(junk, "\x80\x2e\x01\x03\x01\x00", 6);
	assert_int_equal(tg_classify_prefix(junk, 6), TG_PREFIX_PLAINTEXT);
	/* random bytes behind a good header never crash and never read past n */
	srand(1);
	for (int round = 0; round < 2000; round++) {
		size_t n = 9 + rand() % 600;

		memset(junk, 0, sizeof(junk));
		for (size_t i = 0; i < n; i++)
			junk[i] = rand();
		memcpy(junk, "\x16\x03\x01", 3);
		junk[3] = (n - 5) >> 8;
		junk[4] = (n - 5) & 0xff;
		junk[5] = 1;
		memcpy(s.b, junk, sizeof(junk));
		parse_stream(&s, n, 0, 1, &hi);
		memcpy(s.b, junk, sizeof(junk));
		parse_stream(&s, n, 1, 1, &hi);
	}
}

static void test_postgres_preface(void **state)
{
	struct tg_preface pf;
	uint8_t b[TG_HELLO_BUF] = { 0 };
	static const uint8_t sslrequest[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	static const uint8_t startup[12] = { 0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r' };

	memcpy(b, sslrequest, 8);
	for (size_t n = 1; n < 8; n++)
		assert_int_equal(tg_preface(TG_L7_POSTGRES, b, n, &pf), TG_PF_NEED_MORE);
	assert_int_equal(tg_preface(TG_L7_POSTGRES, b, 8, &pf), TG_PF_TLS);
	assert_int_equal(pf.tls_off, 8);
	assert_int_equal(pf.kind, TG_PK_PG_SSLREQUEST);
	memcpy(b, startup, sizeof(startup));
	assert_int_equal(tg_preface(TG_L7_POSTGRES, b, sizeof(startup), &pf), TG_PF_PLAINTEXT);
	b[0] = 0x16;	/* sslnegotiation=direct */
	assert_int_equal(tg_preface(TG_L7_POSTGRES, b, 1, &pf), TG_PF_TLS);
	assert_int_equal(pf.tls_off, 0);
	/* the server's side: 'S' then TLS; 'N' means no TLS */
	{
		__u32 off;

		assert_int_equal(tg_server_preface(TG_L7_POSTGRES, TG_PK_PG_SSLREQUEST,
						   (const uint8_t *)"S", 1, &off), TG_PF_TLS);
		assert_int_equal(off, 1);
		assert_int_equal(tg_server_preface(TG_L7_POSTGRES, TG_PK_PG_SSLREQUEST,
						   (const uint8_t *)"N", 1, &off), TG_PF_PLAINTEXT);
	}
}

static void test_mysql_preface(void **state)
{
	struct tg_preface pf;
	uint8_t b[TG_HELLO_BUF] = { 0 };
	__u32 off;

	/* SSL request: length 32, seq 1, caps with CLIENT_SSL | CLIENT_PROTOCOL_41 */
	b[0] = 32;
	b[3] = 1;
	b[4] = 0x00;
	b[5] = 0x0a;	/* 0x0a00: PROTOCOL_41 | SSL */
	assert_int_equal(tg_preface(TG_L7_MYSQL, b, 20, &pf), TG_PF_NEED_MORE);
	assert_int_equal(tg_preface(TG_L7_MYSQL, b, 36, &pf), TG_PF_TLS);
	assert_int_equal(pf.tls_off, 36);
	b[5] = 0x02;	/* no CLIENT_SSL: HandshakeResponse with the user name */
	assert_int_equal(tg_preface(TG_L7_MYSQL, b, 36, &pf), TG_PF_PLAINTEXT);
	b[0] = 0x55;	/* a longer HandshakeResponse */
	assert_int_equal(tg_preface(TG_L7_MYSQL, b, 36, &pf), TG_PF_PLAINTEXT);
	/* the greeting: 4 + length, protocol 10 */
	memset(b, 0, 8);
	b[0] = 0x4a;
	b[4] = 10;
	assert_int_equal(tg_server_preface(TG_L7_MYSQL, TG_PK_NONE, b, 80, &off), TG_PF_TLS);
	assert_int_equal(off, 4 + 0x4a);
}

static void test_tds_preface(void **state)
{
	struct tg_preface pf;
	uint8_t b[TG_HELLO_BUF] = { 0 };
	/* PRELOGIN: VERSION (0) and ENCRYPTION (1) options, terminator, data */
	static const uint8_t prelogin[] = {
		0x12, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00,	/* header, length 26 */
		0x00, 0x00, 0x0b, 0x00, 0x06,			/* VERSION at 11, 6 bytes */
		0x01, 0x00, 0x11, 0x00, 0x01,			/* ENCRYPTION at 17, 1 byte */
		0xff,
		0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00,		/* version */
		0x01,						/* ENCRYPT_ON */
		0x00,
	};
	size_t n = sizeof(prelogin);

	memcpy(b, prelogin, n);
	b[2] = 0;
	b[3] = n;
	assert_int_equal(tg_preface(TG_L7_TDS, b, n, &pf), TG_PF_NEED_MORE);	/* next header */
	memcpy(b + n, "\x12\x01\x01\x00\x00\x00\x01\x00", 8);
	assert_int_equal(tg_preface(TG_L7_TDS, b, n + 8, &pf), TG_PF_TLS);
	assert_int_equal(pf.tls_off, n + 8);
	assert_int_equal(pf.tls_end, n + 0x100);
	b[8 + 0x11] = 0x00;	/* ENCRYPT_OFF: only the login would be encrypted */
	assert_int_equal(tg_preface(TG_L7_TDS, b, n + 8, &pf), TG_PF_PLAINTEXT);
	b[0] = 0x16;		/* TDS 8: TLS first */
	assert_int_equal(tg_preface(TG_L7_TDS, b, 1, &pf), TG_PF_TLS);
	assert_int_equal(pf.tls_off, 0);
	b[0] = 0x10;		/* LOGIN7 straight away */
	assert_int_equal(tg_preface(TG_L7_TDS, b, 8, &pf), TG_PF_PLAINTEXT);
}

static void test_connect_preface(void **state)
{
	static const char req[] = "CONNECT acct.blob.core.windows.net:443 HTTP/1.1\r\n"
				  "Host: acct.blob.core.windows.net:443\r\nUser-Agent: curl\r\n\r\n";
	static const char absolute[] = "GET http://storage.test/x HTTP/1.1\r\nHost: storage.test\r\n\r\n";
	struct tg_preface pf;
	uint8_t b[TG_HELLO_BUF] = { 0 };
	size_t n = strlen(req);
	__u32 off;

	memcpy(b, req, n);
	assert_int_equal(tg_preface(TG_L7_CONNECT, b, n - 2, &pf), TG_PF_NEED_MORE);
	assert_int_equal(tg_preface(TG_L7_CONNECT, b, n, &pf), TG_PF_TLS);
	assert_int_equal(pf.kind, TG_PK_CONNECT);
	assert_int_equal(pf.tls_off, n);
	assert_int_equal(pf.port, 443);
	assert_int_equal(pf.host_len, strlen("acct.blob.core.windows.net"));
	assert_memory_equal(b + pf.host_off, "acct.blob.core.windows.net", pf.host_len);
	memset(b, 0, sizeof(b));
	memcpy(b, absolute, strlen(absolute));
	assert_int_equal(tg_preface(TG_L7_CONNECT, b, strlen(absolute), &pf), TG_PF_PLAINTEXT);
	assert_int_equal(pf.kind, TG_PK_PROXY_ABSOLUTE);
	assert_memory_equal(b + pf.host_off, "storage.test", pf.host_len);
	memcpy(b, "\x16\x03\x01\x00\x10\x01", 6);	/* TLS to the proxy itself */
	assert_int_equal(tg_preface(TG_L7_CONNECT, b, 6, &pf), TG_PF_PLAINTEXT);
	assert_int_equal(pf.host_len, 0);
	/* the proxy's answer */
	assert_int_equal(tg_server_preface(TG_L7_CONNECT, TG_PK_CONNECT,
					   (const uint8_t *)"HTTP/1.0 200 Connection established\r\n"
							    "Proxy-agent: tinyproxy\r\n\r\n", 63, &off),
			 TG_PF_TLS);
	assert_int_equal(off, 63);
	assert_int_equal(tg_server_preface(TG_L7_CONNECT, TG_PK_CONNECT,
					   (const uint8_t *)"HTTP/1.1 403 Forbidden\r\n\r\n", 26, &off),
			 TG_PF_PLAINTEXT);
}

static void test_quic_initial(void **state)
{
	uint8_t b[8] = { 0xc3, 0, 0, 0, 1, 8, 0, 0 };

	assert_true(tg_quic_client_initial(b, 8, 1200));
	assert_false(tg_quic_client_initial(b, 8, 1199));	/* not padded: not a client Initial */
	b[0] = 0xe3;						/* Handshake packet type */
	assert_false(tg_quic_client_initial(b, 8, 1200));
	b[0] = 0xd3;						/* v2 Initial is type 1 */
	b[1] = 0x6b, b[2] = 0x33, b[3] = 0x43, b[4] = 0xcf;
	assert_true(tg_quic_client_initial(b, 8, 1300));
	assert_false(tg_quic_client_initial((const uint8_t *)"GET / HT", 8, 1400));
}

/* SipHash-2-4 reference vectors (key 00..0f, message 00..len-1). */
static void test_siphash_vectors(void **state)
{
	struct tg_sipkey key = { .k0 = 0x0706050403020100ULL, .k1 = 0x0f0e0d0c0b0a0908ULL };
	uint8_t buf[TG_NAME_BUF] = { 0 };

	assert_true(tg_siphash(&key, buf, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(tg_siphash(&key, buf, 1) == 0x74f839c593dc67fdULL);	/* message 00 */
	for (int i = 0; i < 15; i++)
		buf[i] = i;
	assert_true(tg_siphash(&key, buf, 15) == 0xa129ca6149be45e5ULL);
	/* the agent's hash of a host name ignores case, as the kernel's does */
	assert_true(handshake_name_hash(&key, "Acct.Blob.Core.Windows.NET", 26) ==
		    handshake_name_hash(&key, "acct.blob.core.windows.net", 26));
}

static void test_describe_flows(void **state)
{
	static const uint8_t startup[16] = { 0, 0, 0, 16, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'x', 0, 0 };
	static const char tunnel[] = "CONNECT storage.test:80 HTTP/1.1\r\nHost: storage.test:80\r\n\r\n"
				     "GET / HTTP/1.1\r\nHost: storage.test\r\n\r\n";
	struct tg_payload_desc d;

	describe_flow(startup, sizeof(startup), TG_L7_POSTGRES, TG_PK_NONE, 0, &d);
	assert_string_equal(d.detected, "postgres");
	describe_flow((const uint8_t *)tunnel, strlen(tunnel), TG_L7_CONNECT, TG_PK_CONNECT,
		      strlen("CONNECT storage.test:80 HTTP/1.1\r\nHost: storage.test:80\r\n\r\n"), &d);
	assert_string_equal(d.detected, "http");
	assert_string_equal(d.method, "GET");
	assert_string_equal(d.host, "storage.test");
	assert_string_equal(d.negotiation, "http-connect");
	describe_tls(TG_L7_MYSQL, TG_PK_MYSQL_SSL, &d);
	assert_string_equal(d.detected, "tls");
	assert_string_equal(d.negotiation, "mysql-ssl-request");
}

static void test_tls_json(void **state)
{
	struct tg_event ev;
	json_object *o;

	memset(&ev, 0, sizeof(ev));
	ev.type = TG_EV_WEAK_TLS;
	ev.tls.offered = 0x0302;
	ev.tls.min = 0x0303;
	ev.tls.side = TG_SIDE_CLIENT;
	memcpy(ev.tls.sni, "storage.test", 12);
	ev.tls.sni_len = 12;
	memcpy(ev.tls.alpn, "\x02h2\x08http/1.1", 12);
	ev.tls.alpn_len = 12;
	o = handshake_tls_json(&ev);
	assert_non_null(o);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE),
			    "{\"version\":null,\"offered_max\":\"1.1\",\"sni\":\"storage.test\","
			    "\"alpn\":[\"h2\",\"http/1.1\"],\"min_version\":\"1.2\",\"weak_side\":\"client\"}");
	json_object_put(o);
	ev.type = TG_EV_PLAINTEXT;
	assert_null(handshake_tls_json(&ev));
}

/* ---- the names map under the class ids a reload keeps ------------------------- */

static struct tg_policy *load_policy(const char *yaml)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d), 0);
	diag_free(&d);
	return p;
}

/* The class id the names map gives @name for SNI binding (its TG_NAME_ANY_CLASS entry). */
static int name_class(int names_fd, int sipkey_fd, const char *name)
{
	struct tg_name_key k = { 0 };
	struct tg_name_value v;
	struct tg_sipkey key;
	uint32_t zero = 0;

	assert_int_equal(bpf_map_lookup_elem(sipkey_fd, &zero, &key), 0);
	k.hash = handshake_name_hash(&key, name, strlen(name));
	k.class_id = TG_NAME_ANY_CLASS;
	return bpf_map_lookup_elem(names_fd, &k, &v) ? -1 : v.class_id;
}

/*
 * After a reload that drops the first destination, the second keeps its
 * class id (2): the names map must say 2 too, or a ClientHello to its host
 * would not match its own class (an SNI mismatch, blocked in enforce).
 */
static void test_names_follow_kept_class_ids(void **state)
{
	struct tg_policy *p1 = load_policy("destinations:\n"
					   "  - {name: a, hosts: [a.example]}\n"
					   "  - {name: b, hosts: [b.example]}\n");
	struct tg_policy *p2 = load_policy("destinations:\n  - {name: b, hosts: [b.example]}\n");
	struct tg_dest_table t1, t2;
	int names, sipkey, proxies;
	struct tg_kmaps km;

	if (geteuid() != 0)
		skip();	/* creating BPF maps needs root */
	names = bpf_map_create(BPF_MAP_TYPE_HASH, "t_names", sizeof(struct tg_name_key),
			       sizeof(struct tg_name_value), TG_MAX_NAMES, NULL);
	sipkey = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_sipkey", sizeof(uint32_t),
				sizeof(struct tg_sipkey), 1, NULL);
	proxies = bpf_map_create(BPF_MAP_TYPE_HASH, "t_proxies", sizeof(struct tg_proxy_key),
				 sizeof(uint32_t), TG_MAX_PROXIES, NULL);
	if (names == -ENOSYS)
		skip();	/* qemu-user (make ARCH=arm64 cross-test) implements no bpf(2) */
	assert_true(names >= 0 && sipkey >= 0 && proxies >= 0);
	kmaps_none(&km);
	km.names = names;
	km.sipkey = sipkey;
	km.proxies = proxies;

	assert_int_equal(dests_build(p1, -1, NULL, NULL, &t1, NULL, 0), 0);
	assert_int_equal(handshake_sync_names(&km, p1, &t1), 0);
	assert_int_equal(name_class(names, sipkey, "a.example"), 1);
	assert_int_equal(name_class(names, sipkey, "b.example"), 2);

	assert_int_equal(dests_build(p2, -1, NULL, &t1, &t2, NULL, 0), 0);
	assert_string_equal(dests_class_name(&t2, 2), "b");
	assert_int_equal(handshake_sync_names(&km, p2, &t2), 0);
	assert_int_equal(name_class(names, sipkey, "b.example"), 2);
	assert_int_equal(name_class(names, sipkey, "a.example"), -1);	/* gone with its class */

	close(names);
	close(sipkey);
	close(proxies);
	dests_free(&t1);
	dests_free(&t2);
	policy_free(p1);
	policy_free(p2);
}

/*
 * The names map's entries are built without the kernel: every host under its
 * class id and once as TG_NAME_ANY_CLASS, a wildcard flagged, sorted, the
 * same for the same key and another for another key.
 */
static void test_names_build_is_plain_data(void **state)
{
	struct tg_policy *p = load_policy("destinations:\n"
					  "  - {name: a, hosts: [a.example, \"*.w.example\"]}\n"
					  "  - {name: b, hosts: [b.example]}\n");
	struct tg_sipkey k1 = { .k0 = 1, .k1 = 2 }, k2 = { .k0 = 3, .k1 = 4 };
	struct tg_name_set s1, s2, s3;
	struct tg_name_key any = { .class_id = TG_NAME_ANY_CLASS };
	struct tg_dest_table t;
	int i;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, NULL, 0), 0);
	assert_int_equal(handshake_names_build(p, &t, &k1, &s1), 0);
	assert_int_equal(handshake_names_build(p, &t, &k1, &s2), 0);
	assert_int_equal(handshake_names_build(p, &t, &k2, &s3), 0);
	/* each name under its class and as TG_NAME_ANY_CLASS */
	assert_int_equal(s1.n, 6);
	assert_int_equal(s2.n, s1.n);
	assert_memory_equal(s1.k, s2.k, s1.n * sizeof(s1.k[0]));
	assert_memory_equal(s1.v, s2.v, s1.n * sizeof(s1.v[0]));
	for (size_t j = 1; j < s1.n; j++)
		assert_true(memcmp(&s1.k[j - 1], &s1.k[j], sizeof(s1.k[0])) < 0);
	any.hash = handshake_name_hash(&k1, "a.example", 9);
	i = name_set_find(&s1, &any);
	assert_true(i >= 0);
	assert_int_equal(s1.v[i].class_id, 1);
	any.hash = handshake_name_hash(&k1, "B.example", 9);	/* hashed lower-cased */
	i = name_set_find(&s1, &any);
	assert_true(i >= 0);
	assert_int_equal(s1.v[i].class_id, 2);
	any.hash = handshake_name_hash(&k1, ".w.example", 10);
	any.flags = TG_NAME_WILDCARD;
	assert_true(name_set_find(&s1, &any) >= 0);
	assert_true(name_set_find(&s3, &any) < 0);	/* another key, other hashes */
	name_set_free(&s1);
	name_set_free(&s2);
	name_set_free(&s3);
	dests_free(&t);
	policy_free(p);
}

/*
 * The proxies map keys, built without the kernel: an address is itself, a
 * host name has what the host table resolved, a name it does not know none.
 */
static void test_proxies_build_is_plain_data(void **state)
{
	struct tg_policy *p = load_policy("proxies: [\"proxy.corp:3128\", \"10.0.0.1:8080\", "
					  "\"[2001:db8::1]:3128\", \"unknown.corp:80\"]\n"
					  "destinations:\n  - {name: a, cidrs: [10.9.0.0/16]}\n");
	struct tg_proxy_key keys[TG_MAX_PROXIES];
	uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 };
	uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	uint8_t corp[16] = { [10] = 0xff, [11] = 0xff, [12] = 192, [13] = 0, [14] = 2, [15] = 7 };
	struct tg_host host = { .name = "proxy.corp", .addrs.naddrs = 1 };
	struct tg_host_addrs h = { .v = &host, .n = 1 };

	memcpy(host.addrs.addrs[0], corp, 16);

	assert_int_equal(handshake_proxies_build(p, NULL, keys), 2);	/* no table: the addresses */
	assert_memory_equal(keys[0].addr, v4, 16);
	assert_int_equal(keys[0].port, 8080);
	assert_memory_equal(keys[1].addr, v6, 16);
	assert_int_equal(keys[1].port, 3128);
	assert_int_equal(handshake_proxies_build(p, &h, keys), 3);
	assert_memory_equal(keys[0].addr, corp, 16);
	assert_int_equal(keys[0].port, 3128);
	policy_free(p);
}

/* Proxy targets: the kernel reads host text as inet_aton() and inet_pton() do. */
static void test_host_numeric_forms_match_libc(void **state)
{
	static const char *const v4[] = {
		"127.0.0.2", "127.0.2", "127.2", "2130706434", "0x7f000002", "0177.0.0.2",
		"0x7f.0.0.2", "1.2.3.4.5", "256.1.1.1", "1..2", "08.1.1.1", "0x", "0x1g",
		"acct.storage.test", "198.51.100.10", "0xc6.0x33.0x64.0x0a", "3325256714",
		"0306.063.0144.012", "1.2.3.", ".1.2.3", "4294967296", "4294967295",
		"00000000000000000000177.1", "0X7F.1", "1.0x", "9",
	};
	static const char *const v6[] = {
		"::ffff:198.51.100.10", "::ffff:c633:640a", "2001:db8::10", "::1", "::", "1::",
		"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", ":1", "1:", "12345::",
		"::ffff:1.2.3", "fe80::1:2:3:4:5:6", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
		"2001:DB8::A", "::ffff:198.51.100.256", "1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7",
		"::ffff:0x7f.1.1.1", "::ffff:127.1", "::ffff:010.1.1.1", "::ffff:0.0.0.0",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		struct tg_host_scan st;
		struct in_addr want;
		__u32 got = 0;
		int r = tg_host_inet_aton((const __u8 *)v4[i], 0, strlen(v4[i]), &got, &st);
		int w = inet_aton(v4[i], &want);

		if (r != w || (r && got != ntohl(want.s_addr)))
			fail_msg("inet_aton(\"%s\"): kernel %d %08x, libc %d %08x", v4[i], r, got, w,
				 ntohl(want.s_addr));
	}
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		struct tg_host_scan st;
		__u8 got[16] = { 0 }, want[16] = { 0 };
		int r = tg_host_ipv6((const __u8 *)v6[i], 0, strlen(v6[i]), got, &st);
		int w = inet_pton(AF_INET6, v6[i], want);

		if (r != w || (r && memcmp(got, want, 16)))
			fail_msg("inet_pton(AF_INET6, \"%s\"): kernel %d, libc %d", v6[i], r, w);
	}
}


/* Keep-alive proxy requests: kind, host, where the next request starts. */
static void test_http_request_framing(void **state)
{
	static const struct {
		const char *req;
		int result;
		unsigned int kind, head, body;
	} cases[] = {
		{ "GET http://a.b/x HTTP/1.1\r\nHost: a.b\r\n\r\n", TG_REQ_FRAMED, TG_PK_PROXY_ABSOLUTE, 40, 0 },
		{ "POST http://a.b/x HTTP/1.1\r\nHost: a.b\r\nContent-Length: 12\r\n\r\nhello world!",
		  TG_REQ_FRAMED, TG_PK_PROXY_ABSOLUTE, 61, 12 },
		{ "PUT http://a.b/ HTTP/1.1\r\nCONTENT-LENGTH:5\r\nConnection: keep-alive\r\n\r\n",
		  TG_REQ_FRAMED, TG_PK_PROXY_ABSOLUTE, 70, 5 },
		{ "POST http://a.b/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", TG_REQ_UNFRAMED, 0, 0, 0 },
		{ "POST http://a.b/x HTTP/1.1\r\nContent-Length: x\r\n\r\n", TG_REQ_UNFRAMED, 0, 0, 0 },
		{ "GET https://a.b/x HTTP/1.1\r\nHost: a.b\r\n\r\n", TG_REQ_FRAMED, TG_PK_PROXY_ABSOLUTE, 41, 0 },
		{ "GET / HTTP/1.1\r\nHost: a.b\r\n\r\n", TG_REQ_FRAMED, TG_PK_NONE, 29, 0 },
		{ "CONNECT a.b:443 HTTP/1.1\r\nHost: a.b\r\n\r\n", TG_REQ_FRAMED, TG_PK_CONNECT, 39, 0 },
		{ "GET http://a.b/x HTTP/1.1\r\nHost: a.b\r\n", TG_REQ_NEED_MORE, 0, 0, 0 },
		{ "\x16\x03\x01\x00\x10", TG_REQ_NOT_REQUEST, 0, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tg_preface pf = { 0 };
		struct tg_http_req rq = { 0 };
		int r = tg_http_request((const __u8 *)cases[i].req, strlen(cases[i].req), &pf, &rq);

		if (r != cases[i].result)
			fail_msg("case %zu: result %d, want %d", i, r, cases[i].result);
		if (r == TG_REQ_FRAMED && (rq.kind != cases[i].kind || rq.head_end != cases[i].head ||
					   rq.body_len != cases[i].body))
			fail_msg("case %zu: kind %u head %u body %u", i, rq.kind, rq.head_end, rq.body_len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_request_framing),
		cmocka_unit_test(test_host_numeric_forms_match_libc),
		cmocka_unit_test(test_openssl_client_hellos),
		cmocka_unit_test(test_curl_and_python_client_hellos),
		cmocka_unit_test(test_openssl_server_hellos),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_hello_split_over_records),
		cmocka_unit_test(test_oversized_hello),
		cmocka_unit_test(test_hostile_hellos),
		cmocka_unit_test(test_postgres_preface),
		cmocka_unit_test(test_mysql_preface),
		cmocka_unit_test(test_tds_preface),
		cmocka_unit_test(test_connect_preface),
		cmocka_unit_test(test_quic_initial),
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_describe_flows),
		cmocka_unit_test(test_tls_json),
		cmocka_unit_test(test_names_follow_kept_class_ids),
		cmocka_unit_test(test_names_build_is_plain_data),
		cmocka_unit_test(test_proxies_build_is_plain_data),
	};

	return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}
