/* SPDX-License-Identifier: MIT */
/*
 * DNS answers as the learner needs them: the name asked, the CNAME chain
 * from it, and the A/AAAA records of names on that chain, with their TTLs.
 * Parsed with glibc's libresolv (ns_initparse/ns_parserr/ns_name_uncompress),
 * never by hand. Also the TCP side: DNS messages carried over TCP (2-byte
 * length prefix) reassembled from the kernel's per-segment records.
 *
 * Pure (no kernel, no clock): unit-tested on answers captured from dnsmasq
 * and fuzzed (tests/fuzz/fuzz_dns.c).
 */
#ifndef TLSGUARD_AGENT_DNSPARSE_H
#define TLSGUARD_AGENT_DNSPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_DNS_NAME_LEN		256	/* a name in presentation form, NUL included */
#define TG_DNS_MAX_CHAIN	9	/* the name asked + up to 8 CNAME hops */
#define TG_DNS_MAX_CNAMES	32	/* CNAME records looked at per answer */
#define TG_DNS_MAX_ADDRS	64	/* A/AAAA records kept per answer */
#define TG_DNS_MAX_RRS		256	/* answer records looked at, at most */

enum tg_dns_parse_result {
	TG_DNSP_OK = 0,
	TG_DNSP_MALFORMED,		/* libresolv could not parse it */
	TG_DNSP_NOT_ANSWER,		/* a query, or not opcode QUERY */
	TG_DNSP_TRUNCATED,		/* TC set: the client asks again over TCP */
	TG_DNSP_RCODE,			/* NXDOMAIN, SERVFAIL, REFUSED, ... */
	TG_DNSP_NO_QUESTION,		/* nothing says which name was asked */
	TG_DNSP__MAX,
};

struct tg_dns_addr {
	uint8_t addr[16];		/* v4-mapped for IPv4 */
	uint32_t ttl;			/* seconds, as the record says */
	uint8_t owner;			/* index into the chain */
};

struct tg_dns_answer {
	/* chain[0] is the name asked; chain[i + 1] is chain[i]'s CNAME target. Lower case. */
	char chain[TG_DNS_MAX_CHAIN][TG_DNS_NAME_LEN];
	size_t nchain;
	struct tg_dns_addr addrs[TG_DNS_MAX_ADDRS];
	size_t naddrs;
	uint16_t qtype;
	/* scratch: the records as read, before the chain is known */
	struct {
		char owner[TG_DNS_NAME_LEN], target[TG_DNS_NAME_LEN];
	} cnames[TG_DNS_MAX_CNAMES];
	size_t ncnames;
	char addr_owner[TG_DNS_MAX_ADDRS][TG_DNS_NAME_LEN];
	size_t nraw;
	struct tg_dns_addr raw[TG_DNS_MAX_ADDRS];
};

/*
 * Parse one DNS message. TG_DNSP_OK fills @out (possibly with no addresses:
 * a CNAME-only answer); anything else says why nothing can be learned.
 * Records of names off the chain (out-of-bailiwick extras) are ignored.
 */
enum tg_dns_parse_result dns_parse_answer(const uint8_t *msg, size_t len, struct tg_dns_answer *out);
const char *dns_parse_result_name(enum tg_dns_parse_result r);

/* ---- DNS over TCP --------------------------------------------------------- */

#define TG_DNS_MAX_STREAMS	64	/* TCP connections reassembled at once */
#define TG_DNS_STREAM_BUF_MAX	(2 + 65535)	/* one whole message and its length */

struct tg_dns_stream {
	uint64_t cookie;		/* socket cookie; 0: slot free */
	uint32_t next_seq;		/* of the next byte expected */
	bool lost;			/* a gap: ignore the rest of this connection */
	uint8_t *buf;			/* bytes of an incomplete message, length prefix first */
	size_t len, cap;
	uint64_t last_ns;
};

struct tg_dns_streams_stats {
	uint64_t messages, gaps, evicted, oversized;
};

struct tg_dns_streams {
	struct tg_dns_stream v[TG_DNS_MAX_STREAMS];
	struct tg_dns_streams_stats stats;
};

typedef void (*tg_dns_msg_fn)(void *ctx, const uint8_t *msg, size_t len);

/*
 * Feed one kernel record of a TCP stream (flags: enum tg_dns_tcp_flags):
 * calls @fn for every DNS message it completes. A SYN starts a stream; a
 * stream first seen mid-way is assumed to start at a message boundary. A
 * gap (a record lost) ends what can be read of that connection. FIN/RST
 * free the stream. 0 or -ENOMEM.
 */
int dns_streams_feed(struct tg_dns_streams *s, uint64_t cookie, uint32_t seq, uint8_t flags,
		     const uint8_t *data, size_t len, uint64_t now_ns, tg_dns_msg_fn fn, void *ctx);
/* Drop streams idle since before @older_than_ns. */
void dns_streams_expire(struct tg_dns_streams *s, uint64_t older_than_ns);
bool dns_streams_active(const struct tg_dns_streams *s);
void dns_streams_free(struct tg_dns_streams *s);

#endif /* TLSGUARD_AGENT_DNSPARSE_H */
