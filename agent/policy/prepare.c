// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "ai_config.h"
#include "cgroup.h"
#include "escape.h"
#include "handshake_policy.h"
#include "log.h"
#include "mounts.h"
#include "prepare.h"
#include "servicetags.h"

void prepare_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL))
		return;
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* The first failure decides the outcome; running out of memory beats any. */
static void note(int *ret, int err)
{
	if (err == -ENOMEM || (err && !*ret))
		*ret = err;
}

/* ---- start only: cgroups, control.group, keys and connection string --------- */

/* --cgroup wins over workloads.cgroups; neither means the whole host. */
static int resolve_cgroups(const struct tg_prepare_opts *o, struct tg_prepared *out,
			   struct tg_diag *diag)
{
	const struct tg_policy *p = out->policy;
	char *const *names = o->ncgroups ? o->cgroups : p->cgroups.v;
	size_t n = o->ncgroups ? o->ncgroups : p->cgroups.n;
	char *const root[] = { "/" };
	int ret = 0;

	if (cgroup_find_mount(out->cg_mount, sizeof(out->cg_mount))) {
		/* the agent mounts one at start (mounts.h); its cgroups cannot be checked from here */
		tg_info("no cgroup2 file system is mounted: the agent mounts one at %s; the policy's "
			"cgroups are not checked", TG_PRIVATE_CGROUP2);
		return 0;
	}
	if (!n) {
		names = root;
		n = 1;
	}
	for (size_t i = 0; i < n; i++) {
		/* globs are expanded once, here: cgroups made later are covered by their parent */
		int err = cgroup_expand(out->cg_mount, names[i], &out->cg_paths, &out->ncg);

		if (err == -ENOMEM)
			return err;
		if (err) {
			diag_addf(diag, "cannot attach to cgroup %s: %s", names[i],
				  err == -ENOTDIR ? "not a cgroup2 directory" :
				  err == -ENOENT && strpbrk(names[i], "*?[") ?
				  "the pattern matches no cgroup" : strerror(-err));
			note(&ret, -ENOENT);
		}
	}
	return ret;
}

static int check_group(const struct tg_policy *p, struct tg_diag *diag)
{
	if (!p->control_group || !*p->control_group || getgrnam(p->control_group))
		return 0;
	diag_addf(diag, "%s: control.group: no group named '%s'", p->source, p->control_group);
	return -ENOENT;
}

struct secrets_report {
	const struct tg_policy *p;
	struct tg_diag *diag;
};

static void report_secret(void *arg, const char *msg)
{
	struct secrets_report *r = arg;

	diag_addf(r->diag, "%s: %s", r->p->source, msg);
}

/* The key files and the connection string file, as the agent's sinks would read them. */
static int check_secrets(const struct tg_policy *p, struct tg_diag *diag)
{
	struct secrets_report r = { p, diag };
	struct tg_ai_config c;
	int ret;

	policy_ai_config(p, &c);
	ret = ai_config_check(&c, report_secret, &r);

	return ret == -EINVAL ? -ENOENT : ret;
}

/* ---- reload and start: service tags, host names, the destination map -------- */

static int append_tag_cidr(const struct tg_cidr *cidr, void *arg)
{
	struct tg_policy_dest *d = arg;
	struct tg_cidr *v = d->tag_cidrs;

	/* room for 2^k when the count reaches 2^k */
	if (!(d->ntag_cidrs & (d->ntag_cidrs - 1))) {
		v = realloc(v, (d->ntag_cidrs ? d->ntag_cidrs * 2 : 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->tag_cidrs = v;
	}
	v[d->ntag_cidrs++] = *cidr;
	return 0;
}

/* The policy-wide file (service_tags.file) for destinations naming tags without one. */
static const char *tags_file_of(const struct tg_policy *p, const struct tg_policy_dest *d)
{
	return d->service_tags_file ? d->service_tags_file : p->service_tags_file;
}

/* An optional policy-wide file that is not there: not loaded, said in status, no error. */
static bool skip_optional_tags_file(struct tg_policy *p, const struct tg_policy_dest *d)
{
	struct stat st;

	if (d->service_tags_file || !p->service_tags_optional || !p->service_tags_file)
		return false;
	if (!stat(p->service_tags_file, &st))
		return false;
	snprintf(p->service_tags_why, sizeof(p->service_tags_why), "%s", strerror(errno));
	return true;
}

static int read_service_tags(struct tg_policy *p, struct tg_diag *diag)
{
	struct stat st;
	int ret = 0;

	p->service_tags_loaded = false;
	p->service_tags_prefixes = 0;
	snprintf(p->service_tags_why, sizeof(p->service_tags_why), "%s",
		 p->service_tags_file ? "no destination names service tags" : "no service_tags.file");
	for (size_t i = 0; i < p->ndests; i++) {
		struct tg_policy_dest *d = &p->dests[i];
		const char *file = tags_file_of(p, d);
		char err[512], name[96];
		int e;

		if (!d->service_tags.n)
			continue;
		/* quoted as the loader quotes what the file says (escape.h) */
		tg_escape(name, sizeof(name), d->name, strlen(d->name), TG_ESC_QUOTES);
		if (!file) {
			diag_addf(diag, "%s:%d:%d: destination \"%s\": service_tags has no \"file\", and "
				  "the policy's service_tags.file is not set", p->source, d->line, d->col,
				  name);
			note(&ret, -EINVAL);
			continue;
		}
		if (skip_optional_tags_file(p, d))
			continue;
		e = servicetags_load(file, &d->service_tags, append_tag_cidr, d, err, sizeof(err));
		if (e == -ENOMEM)
			return e;
		if (e) {
			diag_addf(diag, "%s:%d:%d: destination \"%s\": %s", p->source, d->line, d->col,
				  name, err);
			note(&ret, -ENOENT);
			continue;
		}
		if (file == p->service_tags_file) {
			p->service_tags_loaded = true;
			p->service_tags_prefixes += d->ntag_cidrs;
			p->service_tags_why[0] = '\0';
			if (!stat(file, &st))
				p->service_tags_mtime = st.st_mtime;
		}
	}
	return ret;
}

static bool is_address(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Exact names of destinations and exceptions, and the proxies' host names. */
static int collect_names(const struct tg_policy *p, char ***out, size_t *n, char **storage)
{
	size_t total = p->proxies.n, k = 0;
	char **v, *next;

	for (size_t i = 0; i < p->ndests; i++)
		total += p->dests[i].hosts.n;
	for (size_t i = 0; i < p->nexceptions; i++)
		total += p->exceptions[i].hosts.n;
	v = calloc(total ? total : 1, sizeof(char *));
	*storage = next = malloc(p->proxies.n * 256 + 1);
	if (!v || !next) {
		free(v);
		free(*storage);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->ndests; i++)
		for (size_t j = 0; j < p->dests[i].hosts.n; j++)
			v[k++] = p->dests[i].hosts.v[j];
	for (size_t i = 0; i < p->nexceptions; i++)
		for (size_t j = 0; j < p->exceptions[i].hosts.n; j++)
			v[k++] = p->exceptions[i].hosts.v[j];
	for (size_t i = 0; i < p->proxies.n; i++) {
		uint16_t port;

		if (handshake_proxy_host(p->proxies.v[i], next, 256, &port) || is_address(next))
			continue;
		v[k++] = next;
		next += 256;
	}
	*out = v;
	*n = k;
	return 0;
}

static bool resolved(struct tg_hosts *h, const char *name)
{
	const struct tg_host *e = hosts_find(h, name);

	return e && e->addrs.naddrs;
}

/* Say once per policy what will not work yet; none of it refuses the policy. */
static void warn_unresolved(const struct tg_policy *p, struct tg_hosts *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (!h->v[i].addrs.naddrs)
			tg_warn("host %s has no address yet; it is protected once it resolves",
				h->v[i].name);
	for (size_t i = 0; i < p->proxies.n; i++) {
		char host[256];
		uint16_t port;

		if (!handshake_proxy_host(p->proxies.v[i], host, sizeof(host), &port) &&
		    !is_address(host) && !resolved(h, host))
			tg_warn("proxy %s: the name does not resolve; its flows are not followed until it does",
				p->proxies.v[i]);
	}
}

static int resolve_hosts(struct tg_prepared *out)
{
	char **names, *storage;
	size_t n;
	int err = collect_names(out->policy, &names, &n, &storage);

	if (err)
		return err;
	out->hosts = calloc(1, sizeof(*out->hosts));
	err = out->hosts ? hosts_init(out->hosts, names, n) : -ENOMEM;
	free(names);
	free(storage);
	if (!err)
		warn_unresolved(out->policy, out->hosts);
	return err;
}

/*
 * Wildcard hosts of destinations are learned from DNS answers (dnslearn.h);
 * those of exceptions are not: an answer a workload can forge to itself
 * must never exempt an address.
 */
static void warn_wildcards(const struct tg_policy *p)
{
	for (size_t i = 0; i < p->nexceptions; i++)
		for (size_t j = 0; j < p->exceptions[i].hosts.n; j++)
			if (hosts_is_wildcard(p->exceptions[i].hosts.v[j]))
				tg_warn("exception%s%s: wildcard host %s is ignored (exceptions are "
					"not learned from DNS answers); list exact names or cidrs",
					p->exceptions[i].name ? " " : "",
					p->exceptions[i].name ? p->exceptions[i].name : "",
					p->exceptions[i].hosts.v[j]);
}

/* The map capacity, with whatever the scope resolved (a lower bound for the file alone). */
static int build_dests(const struct tg_prepare_opts *o, struct tg_prepared *out, struct tg_diag *diag)
{
	struct tg_host_addrs resolved;
	char why[300];
	int err = hosts_snapshot(out->hosts, &resolved);

	if (!err)
		err = dests_build(out->policy, o->mode_override, &resolved, o->prev, &out->dests, why,
				  sizeof(why));
	host_addrs_free(&resolved);
	if (err == -E2BIG)
		diag_addf(diag, "%s: %s", out->policy->source, why);
	return err;
}

static int check(const struct tg_prepare_opts *o, struct tg_prepared *out, struct tg_diag *diag)
{
	struct tg_policy *p = out->policy;
	int ret = 0;

	warn_wildcards(p);
	if (o->scope >= TG_PREP_START)
		note(&ret, resolve_cgroups(o, out, diag));
	if (o->scope >= TG_PREP_RELOAD) {
		note(&ret, read_service_tags(p, diag));
		note(&ret, resolve_hosts(out));
	}
	if (ret != -ENOMEM)
		note(&ret, build_dests(o, out, diag));
	if (o->scope >= TG_PREP_START && ret != -ENOMEM) {
		note(&ret, check_group(p, diag));
		note(&ret, check_secrets(p, diag));
	}
	return ret;
}

int prepare_policy(const struct tg_prepare_opts *o, struct tg_prepared *out, struct tg_diag *diag)
{
	const char *name = o->name ? o->name : o->path ? o->path : "built-in";
	char *buf = NULL;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!o->path) {
		len = strlen(tg_default_policy_yaml);
	} else if ((ret = policy_read_file(o->path, &buf, &len))) {
		/* a ConfigMap swaps its ..data link: gone for a moment, not changed */
		if (o->unless_sha256 && ret == -ENOENT)
			return -EALREADY;
		diag_addf(diag, "%s: cannot read: %s", name, strerror(-ret));
		return ret == -ENOMEM ? ret : -EIO;
	}
	prepare_sha256_hex(buf ? buf : tg_default_policy_yaml, len, out->sha256);
	if (o->unless_sha256 && !strcmp(out->sha256, o->unless_sha256)) {
		free(buf);
		return -EALREADY;
	}
	ret = policy_load_buffer(name, buf ? buf : tg_default_policy_yaml, len, &out->policy, diag);
	free(buf);
	if (ret)
		return ret == -ENOMEM ? ret : -EINVAL;
	ret = check(o, out, diag);
	if (ret == -ENOMEM)
		diag_addf(diag, "%s: out of memory", name);
	if (ret)
		prepared_free(out);
	return ret;
}

void prepared_free(struct tg_prepared *p)
{
	policy_free(p->policy);
	for (size_t i = 0; i < p->ncg; i++)
		free(p->cg_paths[i]);
	free(p->cg_paths);
	if (p->hosts) {
		hosts_free(p->hosts);
		free(p->hosts);
	}
	dests_free(&p->dests);
	memset(p, 0, sizeof(*p));
}
