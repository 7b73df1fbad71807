// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "resolve.h"

static void add_addr(struct tg_resolved *out, const uint8_t addr[16])
{
	for (size_t i = 0; i < out->naddrs; i++)
		if (!memcmp(out->addrs[i], addr, 16))
			return;
	if (out->naddrs < TG_RESOLVE_MAX_ADDRS)
		memcpy(out->addrs[out->naddrs++], addr, 16);
}

static void v4_mapped(uint8_t out[16], const void *v4)
{
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

/* One DNS query; adds A or AAAA answers and lowers *ttl to the smallest TTL. */
static int query_dns(const char *name, int type, struct tg_resolved *out, unsigned int *ttl)
{
	unsigned char answer[4096];
	uint8_t addr[16];
	ns_msg msg;
	ns_rr rr;
	int len, found = 0;

	len = res_query(name, ns_c_in, type, answer, sizeof(answer));
	if (len < 0)
		return -ENOENT;
	if (ns_initparse(answer, len, &msg) < 0)
		return -EBADMSG;
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return -EBADMSG;
		if ((int)ns_rr_type(rr) != type)
			continue;	/* CNAMEs on the way: their TTL does not bound the address */
		if (type == ns_t_a && ns_rr_rdlen(rr) == 4)
			v4_mapped(addr, ns_rr_rdata(rr));
		else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16)
			memcpy(addr, ns_rr_rdata(rr), 16);
		else
			continue;
		add_addr(out, addr);
		if (ns_rr_ttl(rr) < *ttl)
			*ttl = ns_rr_ttl(rr);
		found = 1;
	}
	return found ? 0 : -ENOENT;
}

static int query_nss(const char *name, struct tg_resolved *out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *res, *ai;
	uint8_t addr[16];

	if (getaddrinfo(name, NULL, &hints, &res))
		return -ENOENT;
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			v4_mapped(addr, &((struct sockaddr_in *)ai->ai_addr)->sin_addr);
		else if (ai->ai_family == AF_INET6)
			memcpy(addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		else
			continue;
		add_addr(out, addr);
	}
	freeaddrinfo(res);
	return out->naddrs ? 0 : -ENOENT;
}

static unsigned int clamp_ttl(unsigned int ttl)
{
	if (ttl < TG_RESOLVE_MIN_TTL)
		return TG_RESOLVE_MIN_TTL;
	return ttl > TG_RESOLVE_MAX_TTL ? TG_RESOLVE_MAX_TTL : ttl;
}

/*
 * Is @name in the hosts file? gethostent() enumerates only the "files"
 * source, so this sends no DNS query. Its position in the file is one per
 * process: the host refresh and a reload's preparation resolve at the same
 * time, and each walk must see the whole file.
 */
static int in_hosts_file(const char *name)
{
	static pthread_mutex_t walk = PTHREAD_MUTEX_INITIALIZER;
	struct hostent *h;
	int found = 0;

	pthread_mutex_lock(&walk);
	sethostent(0);
	while (!found && (h = gethostent())) {
		if (!strcasecmp(h->h_name, name))
			found = 1;
		for (char **a = h->h_aliases; !found && a && *a; a++)
			found = !strcasecmp(*a, name);
	}
	endhostent();
	pthread_mutex_unlock(&walk);
	return found;
}

int resolve_host(const char *name, struct tg_resolved *out)
{
	unsigned int ttl = TG_RESOLVE_MAX_TTL;
	int a, aaaa;

	memset(out, 0, sizeof(*out));
	/* files before DNS, as the system's resolver order has it; no TTL there */
	if (in_hosts_file(name)) {
		out->ttl_s = TG_RESOLVE_DEFAULT_TTL;
		return query_nss(name, out);
	}
	a = query_dns(name, ns_t_a, out, &ttl);
	aaaa = query_dns(name, ns_t_aaaa, out, &ttl);
	if (a && aaaa) {
		/* other NSS sources (mdns, resolved): addresses without a TTL */
		memset(out, 0, sizeof(*out));
		out->ttl_s = TG_RESOLVE_DEFAULT_TTL;
		return query_nss(name, out);
	}
	out->ttl_s = clamp_ttl(ttl);
	return 0;
}
