// SPDX-License-Identifier: MIT
/*
 * Policy loader: YAML → struct tg_policy.
 *
 * The file is read with libyaml's document API rather than the event API so
 * that every node, also a key and a list item, keeps its start mark: each
 * message can then point at "FILE:LINE:COL" of exactly what is wrong. The
 * schema is a set of field tables walked by one function; a bad value is
 * reported and skipped, never fatal, so one run shows every problem. Only
 * running out of memory stops the walk. Whatever happens, a caller gets
 * either a complete policy or nothing.
 */
#define _GNU_SOURCE		/* vasprintf */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "ai_config.h"
#include "bytes.h"
#include "escape.h"
#include "policy.h"
#include "yaml_bounded.h"

#define MAX_ERRORS	100		/* past this, more lines only bury the first ones */
#define MAX_FIELDS	32		/* keys per mapping in the tables below */
#define QBUF		96		/* a value echoed in a message, quoted, cut */
#define SUGGEST_MAX	32		/* longest key worth a did-you-mean */

struct ctx {
	const char *name;		/* file name for messages */
	const char *buf;		/* the raw text, for hints about tabs */
	size_t len;
	yaml_document_t *doc;
	struct tg_policy *p;
	struct tg_diag *diag;
	unsigned int nerr;
	bool nomem;
	size_t nhosts;			/* host names so far, against TG_POLICY_MAX_HOSTS */
	yaml_node_t *name_node;		/* "name" of the destination being walked */
	yaml_node_t **dest_names;	/* per destination, for duplicate messages */
	struct tg_policy_dest *entries;	/* port entries, appended to the destinations at the end */
	yaml_node_t **entry_nodes;	/* where each was written */
	size_t nentries;
	size_t cur_dest;		/* index of the destination being walked */
	bool in_entry;			/* walking a port entry: no entries inside it */
	yaml_node_t **override_nodes;	/* per override, for messages about its classes */
	size_t diag_start;		/* messages before this one are the caller's */
	struct pos {
		size_t line, col;
	} pos[MAX_ERRORS + 1];		/* of each message, to sort them by */
};

/* ---- diagnostics ------------------------------------------------------- */

static int diag_push(struct tg_diag *d, char *msg)
{
	char **v;

	v = realloc(d->msgs, (d->n + 1) * sizeof(*v));
	if (!v) {
		free(msg);
		return -ENOMEM;
	}
	v[d->n++] = msg;
	d->msgs = v;
	return 0;
}

int diag_addf(struct tg_diag *d, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	return diag_push(d, msg);
}

void diag_free(struct tg_diag *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	d->msgs = NULL;
	d->n = 0;
}

/* Record one error at LINE:COL (1-based). Returns -EINVAL, or -ENOMEM. */
static int __attribute__((format(printf, 4, 5)))
err_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	int ret;

	if (++c->nerr > MAX_ERRORS) {
		if (c->nerr > MAX_ERRORS + 1)
			return -EINVAL;
		c->pos[MAX_ERRORS] = (struct pos){ SIZE_MAX, SIZE_MAX };
		if (diag_addf(c->diag, "%s: too many errors; only the first %d are shown",
			      c->name, MAX_ERRORS))
			goto nomem;
		return -EINVAL;
	}
	c->pos[c->nerr - 1] = (struct pos){ line, col };
	va_start(ap, fmt);
	ret = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (ret < 0)
		goto nomem;
	ret = diag_addf(c->diag, "%s:%zu:%zu: %s", c->name, line, col, msg);
	free(msg);
	if (ret)
		goto nomem;
	return -EINVAL;
nomem:
	c->nomem = true;
	return -ENOMEM;
}

#define node_err(c, n, ...) \
	err_at(c, (n)->start_mark.line + 1, (n)->start_mark.column + 1, __VA_ARGS__)

/*
 * Echo a user-supplied string inside a message: quoted, escaped like every
 * other outside string that reaches a terminal (escape.h) and cut short (it
 * may be a whole file).
 */
static const char *quote(char *out, const char *s)
{
	size_t n;

	out[0] = '"';
	if (!tg_escape(out + 1, QBUF - 5, s, strlen(s), TG_ESC_QUOTES))
		strcat(out, "...");
	n = strlen(out);
	out[n] = '"';
	out[n + 1] = '\0';
	return out;
}

static bool pos_after(const struct pos *a, const struct pos *b)
{
	return a->line > b->line || (a->line == b->line && a->col > b->col);
}

/*
 * Checks that need a whole section (a destination without hosts, a
 * duplicate name) report after the walk of that section; put every message
 * back in file order, which is how people read and fix them.
 */
static void sort_messages(struct ctx *c)
{
	size_t n = c->diag->n - c->diag_start;
	char **m;

	if (c->nomem || n > MAX_ERRORS + 1 || !c->diag->msgs)
		return;
	m = c->diag->msgs + c->diag_start;	/* no arithmetic on NULL (UB; fuzz_policy) */
	/* insertion sort: stable, and there are at most MAX_ERRORS + 1 */
	for (size_t i = 1; i < n; i++) {
		struct pos p = c->pos[i];
		char *msg = m[i];
		size_t j = i;

		for (; j > 0 && pos_after(&c->pos[j - 1], &p); j--) {
			c->pos[j] = c->pos[j - 1];
			m[j] = m[j - 1];
		}
		c->pos[j] = p;
		m[j] = msg;
	}
}

/* ---- small parsers ------------------------------------------------------ */

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alnum(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * Strict decimal: digits only, no sign, no leading zero (YAML 1.1 readers
 * take 0443 for octal; refusing it avoids two tools disagreeing).
 */
static int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		if (v > (max - (s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *out)
{
	uint64_t v;

	if (parse_uint(s, len, 65535, &v) || v == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "443" or "8000-8100", both ends inclusive and 1..65535. */
static int parse_port_range(const char *s, struct tg_port_range *out)
{
	const char *dash = strchr(s, '-');
	uint16_t lo, hi;

	if (!dash) {
		if (parse_port(s, strlen(s), &lo))
			return -EINVAL;
		out->lo = out->hi = lo;
		return 0;
	}
	if (parse_port(s, dash - s, &lo) || parse_port(dash + 1, strlen(dash + 1), &hi) ||
	    lo > hi)
		return -EINVAL;
	out->lo = lo;
	out->hi = hi;
	return 0;
}

/* Seconds as a bare number, or a number with one of s, m, h, d. */
static int parse_duration(const char *s, unsigned int *out)
{
	static const struct { char unit; unsigned int mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	size_t len = strlen(s);
	unsigned int mult = 1;
	uint64_t v;

	if (len && !is_digit(s[len - 1])) {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (units[i].unit == s[len - 1])
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		mult = units[i].mult;
		len--;
	}
	if (parse_uint(s, len, UINT_MAX / mult, &v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* Bytes as a bare number, or a number with a decimal or binary unit. */
static int parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "B", 1 },
		{ "KB", 1000ULL }, { "MB", 1000000ULL }, { "GB", 1000000000ULL },
		{ "TB", 1000000000000ULL },
		{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 },
		{ "TiB", 1ULL << 40 },
		/* Kubernetes spelling, which people paste from pod specs */
		{ "Ki", 1ULL << 10 }, { "Mi", 1ULL << 20 }, { "Gi", 1ULL << 30 },
		{ "Ti", 1ULL << 40 },
	};
	size_t n = 0;
	uint64_t mult = 1, v;

	while (is_digit(s[n]))
		n++;
	if (s[n]) {
		const char *unit = s[n] == ' ' ? s + n + 1 : s + n;
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(unit, units[i].unit))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		mult = units[i].mult;
	}
	if (parse_uint(s, n, UINT64_MAX / mult, &v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
set_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int check_label(const char *l, size_t len, char *why, size_t whylen)
{
	if (!len)
		return set_why(why, whylen, "empty label");
	if (len > 63)
		return set_why(why, whylen, "label longer than 63 characters");
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = l[i];

		if (ch == '*')
			return set_why(why, whylen,
				       "'*' is only allowed as a whole first label (\"*.example.com\")");
		if (ch >= 0x80)
			return set_why(why, whylen,
				       "non-ASCII character (write the xn-- form of the name)");
		if (!is_alnum(ch) && ch != '-') {
			if (ch < 0x20 || ch == 0x7f)
				return set_why(why, whylen, "invalid character 0x%02x", ch);
			return set_why(why, whylen, "invalid character '%c'", ch);
		}
	}
	if (l[0] == '-' || l[len - 1] == '-')
		return set_why(why, whylen, "label starts or ends with '-'");
	return 0;
}

int policy_check_host(const char *name, char *why, size_t whylen)
{
	unsigned char addr[16];
	const char *l = name;
	size_t len = strlen(name);

	if (!len)
		return set_why(why, whylen, "empty");
	if (len > 253)
		return set_why(why, whylen, "longer than 253 characters");
	if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
		return set_why(why, whylen, "an IP address belongs under \"cidrs\"");
	if (!strncmp(l, "*.", 2))
		l += 2;
	for (;;) {
		const char *dot = strchr(l, '.');
		size_t n = dot ? (size_t)(dot - l) : strlen(l);

		if (check_label(l, n, why, whylen))
			return -EINVAL;
		if (!dot)
			return 0;
		l = dot + 1;
	}
}

/* Clear the bits past the prefix; true when any was set. */
static bool mask_host_bits(uint8_t addr[16], unsigned int prefixlen)
{
	bool dirty = false;

	for (unsigned int i = 0; i < 16; i++) {
		unsigned int keep = prefixlen > i * 8 ? prefixlen - i * 8 : 0;
		uint8_t mask = keep >= 8 ? 0xff : (uint8_t)(0xff00 >> keep);

		if (addr[i] & ~mask)
			dirty = true;
		addr[i] &= mask;
	}
	return dirty;
}

int policy_parse_cidr(const char *text, struct tg_cidr *out)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned int max;
	uint64_t plen;

	memset(out, 0, sizeof(*out));
	if (!alen || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, out->addr + 12) == 1) {
		/* ::ffff:a.b.c.d, the form the kernel's LPM trie is keyed by */
		out->addr[10] = out->addr[11] = 0xff;
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	plen = max;
	if (slash && parse_uint(slash + 1, strlen(slash + 1), max, &plen))
		return -EINVAL;
	out->prefixlen = plen + (out->family == AF_INET ? TG_V4_MAPPED_PREFIX : 0);
	return mask_host_bits(out->addr, out->prefixlen) ? -ERANGE : 0;
}

/* The network as the user wrote its family: "10.0.0.0/8", "2001:db8::/32". */
static void format_cidr(const struct tg_cidr *cidr, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];

	if (cidr->family == AF_INET) {
		inet_ntop(AF_INET, cidr->addr + 12, a, sizeof(a));
		snprintf(out, outlen, "%s/%u", a, cidr->prefixlen - TG_V4_MAPPED_PREFIX);
	} else {
		inet_ntop(AF_INET6, cidr->addr, a, sizeof(a));
		snprintf(out, outlen, "%s/%u", a, cidr->prefixlen);
	}
}

/*
 * "host:port", "1.2.3.4:port" or "[v6]:port"; with @empty_host also ":port"
 * (listen on every address).
 */
static int check_host_port(const char *s, bool empty_host)
{
	char host[256], addr[16];
	const char *port;
	uint16_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, close - s - 1);
		host[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			return -EINVAL;
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, colon - s);
		host[colon - s] = '\0';
		if (!host[0] && !empty_host)
			return -EINVAL;
		/* a wildcard names many hosts, a connection goes to one */
		if (host[0] && inet_pton(AF_INET, host, addr) != 1 &&
		    (strchr(host, '*') || policy_check_host(host, NULL, 0)))
			return -EINVAL;
		port = colon + 1;
	}
	return parse_port(port, strlen(port), &p);
}

/* ---- node helpers ------------------------------------------------------- */

static yaml_node_t *node(struct ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

/* YAML's null: `key:` with nothing after it, `~` or `null`. Treated as absent. */
static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A usable string scalar: not a list or mapping, not null, no NUL inside. */
static int scalar_str(struct ctx *c, const char *key, yaml_node_t *n, const char **out)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return node_err(c, n, "\"%s\" must be a string", key);
	if (strlen(sval(n)) != n->data.scalar.length)
		return node_err(c, n, "\"%s\" must not contain NUL bytes", key);
	*out = sval(n);
	return 0;
}

/* The same for a list item, with the list's key in the message. */
static int item_str(struct ctx *c, const char *key, yaml_node_t *n, const char **out)
{
	if (n->type != YAML_SCALAR_NODE || is_null(n))
		return node_err(c, n, "\"%s\" entries must be strings", key);
	if (strlen(sval(n)) != n->data.scalar.length)
		return node_err(c, n, "\"%s\" entries must not contain NUL bytes", key);
	*out = sval(n);
	return 0;
}

static int set_str(char **dst, const char *s)
{
	char *dup = strdup(s);

	if (!dup)
		return -ENOMEM;
	free(*dst);
	*dst = dup;
	return 0;
}

static int strlist_push(struct tg_strlist *l, const char *s)
{
	char **v = l->v, *dup = strdup(s);

	if (!dup)
		return -ENOMEM;
	/* room for 2^k when the count reaches 2^k, as cidr_item() does */
	if (!(l->n & (l->n - 1))) {
		v = realloc(l->v, (l->n ? l->n * 2 : 1) * sizeof(*v));
		if (!v) {
			free(dup);
			return -ENOMEM;
		}
		l->v = v;
	}
	v[l->n++] = dup;
	return 0;
}

static void strlist_free(struct tg_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The value of @key in mapping @n, or NULL when absent or null. */
static yaml_node_t *map_get(struct ctx *c, yaml_node_t *n, const char *key)
{
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);

		if (k->type == YAML_SCALAR_NODE && !strcmp(sval(k), key))
			return is_null(v) ? NULL : v;
	}
	return NULL;
}

/*
 * Whether @key of mapping @n holds anything, valid or not. "Has no hosts"
 * is only worth saying when none were written: entries that were written
 * but are wrong already have a message of their own.
 */
static bool map_has_entries(struct ctx *c, yaml_node_t *n, const char *key)
{
	yaml_node_t *v = map_get(c, n, key);

	if (!v)
		return false;
	if (v->type == YAML_SEQUENCE_NODE)
		return v->data.sequence.items.top > v->data.sequence.items.start;
	if (v->type == YAML_MAPPING_NODE)
		return v->data.mapping.pairs.top > v->data.mapping.pairs.start;
	return true;
}

typedef int (*item_fn)(struct ctx *c, const char *key, yaml_node_t *item, void *arg);

/* Call @fn on every item of the list @v; stops only when memory runs out. */
static int each_item(struct ctx *c, const char *key, yaml_node_t *v, item_fn fn, void *arg)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return node_err(c, v, "\"%s\" must be a list", key);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		if (fn(c, key, node(c, *it), arg) == -ENOMEM)
			return -ENOMEM;
	}
	return 0;
}

/* ---- the schema --------------------------------------------------------- */

enum ftype {
	F_STR,		/* char * */
	F_STRLIST,	/* struct tg_strlist, appended to */
	F_HOSTS,	/* struct tg_strlist of checked, lower-cased host names */
	F_CIDRS,	/* struct tg_cidr * at off, size_t count at off2 */
	F_BOOL,		/* bool */
	F_TRISTATE,	/* int: 0 or 1, left alone (-1) when absent */
	F_ENUM,		/* int: index into names */
	F_TLSVER,	/* int: TG_TLS_* */
	F_DURATION,	/* unsigned int seconds */
	F_SIZE,		/* uint64_t bytes */
	F_UINT,		/* unsigned int, a plain number */
	F_MAP,		/* nested mapping filling the same object, then .fn on it */
	F_FN,		/* anything else */
};

struct field {
	const char *key;
	enum ftype type;
	size_t off;
	size_t off2;
	const char *const *names;
	const struct field *sub;
	/* F_FN: parses the value; F_MAP (may be NULL): checks the map once its keys are in */
	int (*fn)(struct ctx *c, const char *key, yaml_node_t *v, void *obj);
};

/* Indexed by the enum value they map to. */
static const char *const mode_names[] = { "audit", "enforce", NULL };
static const char *const fail_mode_names[] = { "closed", "open", NULL };
static const char *const protocol_names[] = { "tls", "postgres", "mysql", "tds", "smb3", NULL };
static const char *const tls_names[] = { "1.0", "1.1", "1.2", "1.3", NULL };
/* indexed by enum tg_ai_auth_mode (ai_auth.h) */
static const char *const ai_auth_names[] = { "auto", "none", "managed_identity",
					     "workload_identity", NULL };

static int walk_map(struct ctx *c, const char *what, yaml_node_t *n,
		    const struct field *fields, void *obj);

static int one_of(struct ctx *c, const char *key, yaml_node_t *v,
		  const char *const *names, int *out)
{
	char list[128] = "";

	if (v->type == YAML_SCALAR_NODE) {
		for (int i = 0; names[i]; i++) {
			if (!strcmp(sval(v), names[i])) {
				*out = i;
				return 0;
			}
		}
	}
	for (int i = 0; names[i]; i++) {
		if (i)
			strcat(list, ", ");
		strcat(list, names[i]);
	}
	return node_err(c, v, "\"%s\" must be one of %s", key, list);
}

static int parse_bool(struct ctx *c, const char *key, yaml_node_t *v, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };

	if (v->type == YAML_SCALAR_NODE) {
		for (size_t i = 0; i < 3; i++) {
			if (!strcmp(sval(v), yes[i]) || !strcmp(sval(v), no[i])) {
				*out = !strcmp(sval(v), yes[i]);
				return 0;
			}
		}
	}
	return node_err(c, v, "\"%s\" must be true or false", key);
}

static int host_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	char why[96], qb[QBUF], *lower;
	const char *s;
	int ret;

	if (item_str(c, key, item, &s))
		return c->nomem ? -ENOMEM : 0;
	/* each is resolved at start and on reload, and matched against every DNS answer */
	if (++c->nhosts == TG_POLICY_MAX_HOSTS + 1)
		return node_err(c, item, "more than %d host names in destinations and exceptions",
				TG_POLICY_MAX_HOSTS);
	if (c->nhosts > TG_POLICY_MAX_HOSTS)
		return 0;
	if (policy_check_host(s, why, sizeof(why)))
		return node_err(c, item, "invalid host name %s: %s", quote(qb, s), why);
	/* DNS is case-insensitive; matching code can then compare bytes */
	lower = strdup(s);
	if (!lower)
		return -ENOMEM;
	for (char *p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	ret = strlist_push(arg, lower);
	free(lower);
	return ret;
}

struct cidr_out {
	struct tg_cidr **v;
	size_t *n;
};

static int cidr_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	struct cidr_out *o = arg;
	char qb[QBUF], net[64];
	struct tg_cidr cidr, *v;
	const char *s;
	int ret;

	if (item_str(c, key, item, &s))
		return c->nomem ? -ENOMEM : 0;
	ret = policy_parse_cidr(s, &cidr);
	if (ret == -ERANGE) {
		format_cidr(&cidr, net, sizeof(net));
		return node_err(c, item, "invalid CIDR %s: host bits set (did you mean \"%s\")",
				quote(qb, s), net);
	}
	if (ret)
		return node_err(c, item, "invalid CIDR %s", quote(qb, s));
	/*
	 * Room for 2^k entries when the count reaches 2^k (this is the array's only
	 * writer): a policy at the destination map's bound (65,536 prefixes) would
	 * otherwise copy the array once per entry, minutes under ASan.
	 */
	v = *o->v;
	if (!(*o->n & (*o->n - 1))) {
		v = realloc(v, (*o->n ? *o->n * 2 : 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*o->v = v;
	}
	v[(*o->n)++] = cidr;
	return 0;
}

static int str_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	const char *s;

	if (item_str(c, key, item, &s))
		return c->nomem ? -ENOMEM : 0;
	if (!*s)
		return node_err(c, item, "\"%s\" entries must not be empty", key);
	return strlist_push(arg, s);
}

static int parse_field(struct ctx *c, const struct field *f, yaml_node_t *v, void *obj)
{
	void *dst = (char *)obj + f->off;
	struct cidr_out co;
	const char *s;
	char qb[QBUF];
	bool b;
	int i;

	switch (f->type) {
	case F_STR:
		if (scalar_str(c, f->key, v, &s))
			return c->nomem ? -ENOMEM : 0;
		return set_str(dst, s);
	case F_STRLIST:
		return each_item(c, f->key, v, str_item, dst);
	case F_HOSTS:
		return each_item(c, f->key, v, host_item, dst);
	case F_CIDRS:
		co.v = dst;
		co.n = (size_t *)((char *)obj + f->off2);
		return each_item(c, f->key, v, cidr_item, &co);
	case F_BOOL:
		if (!parse_bool(c, f->key, v, &b))
			*(bool *)dst = b;
		return c->nomem ? -ENOMEM : 0;
	case F_TRISTATE:
		if (!parse_bool(c, f->key, v, &b))
			*(int *)dst = b;
		return c->nomem ? -ENOMEM : 0;
	case F_ENUM:
		if (!one_of(c, f->key, v, f->names, &i))
			*(int *)dst = i;
		return c->nomem ? -ENOMEM : 0;
	case F_TLSVER:
		if (!one_of(c, f->key, v, tls_names, &i))
			*(int *)dst = TG_TLS_1_0 + i;
		return c->nomem ? -ENOMEM : 0;
	case F_DURATION:
		if (v->type != YAML_SCALAR_NODE)
			return node_err(c, v, "\"%s\" must be a duration", f->key);
		if (parse_duration(sval(v), dst))
			return node_err(c, v, "invalid duration %s (%s)", quote(qb, sval(v)),
					"seconds, or a number with s, m, h or d");
		return 0;
	case F_SIZE:
		if (v->type != YAML_SCALAR_NODE)
			return node_err(c, v, "\"%s\" must be a size", f->key);
		if (parse_size(sval(v), dst))
			return node_err(c, v, "invalid size %s (%s)", quote(qb, sval(v)),
					"bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB");
		return 0;
	case F_UINT: {
		uint64_t u;

		if (v->type != YAML_SCALAR_NODE || parse_uint(sval(v), strlen(sval(v)), UINT_MAX, &u))
			return node_err(c, v, "\"%s\" must be a whole number", f->key);
		*(unsigned int *)dst = (unsigned int)u;
		return 0;
	}
	case F_MAP: {
		int ret = walk_map(c, f->key, v, f->sub, obj);

		/* rules on the whole map (a key that needs another) */
		if (ret || !f->fn || v->type != YAML_MAPPING_NODE)
			return ret;
		return f->fn(c, f->key, v, obj);
	}
	case F_FN:
		return f->fn(c, f->key, v, obj);
	}
	return 0;
}

/* Optimal string alignment distance: "prots" is one swap away from "ports". */
static unsigned int edit_distance(const char *a, const char *b)
{
	unsigned int d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > SUGGEST_MAX || lb > SUGGEST_MAX)
		return UINT_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned int cost = a[i - 1] != b[j - 1];
			unsigned int v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static int unknown_key(struct ctx *c, yaml_node_t *k, const struct field *fields)
{
	const char *best = NULL, *key = sval(k);
	unsigned int best_d = 3;
	char qb[QBUF];

	if (c->nerr >= MAX_ERRORS)
		return node_err(c, k, "unknown key");	/* not shown: no suggestion to compute */
	for (const struct field *f = fields; f->key; f++) {
		unsigned int d = edit_distance(key, f->key);

		/* a distance as long as the key itself is no resemblance */
		if (d < best_d && d < strlen(key)) {
			best = f->key;
			best_d = d;
		}
	}
	if (best)
		return node_err(c, k, "unknown key %s (did you mean \"%s\")", quote(qb, key), best);
	return node_err(c, k, "unknown key %s", quote(qb, key));
}

/*
 * Walk a mapping against a field table: unknown and repeated keys are
 * reported, null values are treated as absent, the rest go to parse_field.
 */
static int walk_map(struct ctx *c, const char *what, yaml_node_t *n,
		    const struct field *fields, void *obj)
{
	yaml_node_t *seen[MAX_FIELDS] = { NULL };
	char qb[QBUF];

	if (n->type != YAML_MAPPING_NODE) {
		if (what)
			return node_err(c, n, "\"%s\" must be a mapping", what);
		return node_err(c, n, "the policy must be a mapping of settings");
	}
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
	     pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
		const struct field *f;
		size_t i;
		int ret = 0;

		if (k->type != YAML_SCALAR_NODE) {
			ret = node_err(c, k, "keys must be strings");
		} else {
			for (i = 0, f = fields; f->key; f++, i++)
				if (!strcmp(f->key, sval(k)))
					break;
			/* i is the END entry's index for an unknown key: a table holds fewer */
			assert(i < MAX_FIELDS);
			if (!f->key)
				ret = unknown_key(c, k, fields);
			else if (seen[i])
				ret = node_err(c, k, "duplicate key %s (first defined at %zu:%zu)",
					       quote(qb, sval(k)), seen[i]->start_mark.line + 1,
					       seen[i]->start_mark.column + 1);
			else
				seen[i] = k;
			if (!ret && !is_null(v))
				ret = parse_field(c, f, v, obj);
		}
		if (ret == -ENOMEM || c->nomem)
			return -ENOMEM;
	}
	return 0;
}

/* ---- sections with checks beyond their fields --------------------------- */

#define P(field)	.off = offsetof(struct tg_policy, field)
#define D(field)	.off = offsetof(struct tg_policy_dest, field)
#define E(field)	.off = offsetof(struct tg_policy_exception, field)
#define O(field)	.off = offsetof(struct tg_policy_override, field)
#define END		{ .key = NULL }

static int cgroup_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	char qb[QBUF];
	const char *s;

	if (item_str(c, key, item, &s))
		return c->nomem ? -ENOMEM : 0;
	if (!*s)
		return node_err(c, item, "\"%s\" entries must not be empty", key);
	/* paths are joined to the cgroup2 mount; ".." would walk out of it */
	if (!strcmp(s, "..") || !strncmp(s, "../", 3) || strstr(s, "/../") ||
	    (strlen(s) >= 3 && !strcmp(s + strlen(s) - 3, "/..")))
		return node_err(c, item, "invalid cgroup path %s: \"..\" is not allowed",
				quote(qb, s));
	return strlist_push(arg, s);
}

static int parse_cgroups(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	return each_item(c, key, v, cgroup_item, &((struct tg_policy *)obj)->cgroups);
}

static int labels_into(struct ctx *c, const char *key, yaml_node_t *v, struct tg_label **lv,
		       size_t *ln)
{
	char qb[QBUF];

	if (v->type != YAML_MAPPING_NODE)
		return node_err(c, v, "\"%s\" must be a mapping", key);
	for (yaml_node_pair_t *pr = v->data.mapping.pairs.start;
	     pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = node(c, pr->key), *val = node(c, pr->value);
		struct tg_label *l;
		const char *ks, *vs;

		if (k->type != YAML_SCALAR_NODE || is_null(k) || !*sval(k) ||
		    strlen(sval(k)) != k->data.scalar.length) {
			if (node_err(c, k, "label keys must be non-empty strings") == -ENOMEM)
				return -ENOMEM;
			continue;
		}
		ks = sval(k);
		if (val->type != YAML_SCALAR_NODE || is_null(val) ||
		    strlen(sval(val)) != val->data.scalar.length) {
			if (node_err(c, val, "label %s must have a string value (\"*\" for any)",
				     quote(qb, ks)) == -ENOMEM)
				return -ENOMEM;
			continue;
		}
		vs = sval(val);
		l = realloc(*lv, (*ln + 1) * sizeof(*l));
		if (!l)
			return -ENOMEM;
		*lv = l;
		l += *ln;
		l->key = strdup(ks);
		l->value = strdup(vs);
		(*ln)++;
		if (!l->key || !l->value)
			return -ENOMEM;
	}
	return 0;
}

static int parse_labels(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy *p = obj;

	return labels_into(c, key, v, &p->k8s_labels, &p->nk8s_labels);
}

static int parse_port_entry(struct ctx *c, const char *key, yaml_node_t *item,
			    struct tg_policy_dest *d);

static int port_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	struct tg_policy_dest *d = arg;
	struct tg_port_range r;
	char qb[QBUF];

	if (item->type == YAML_MAPPING_NODE && !c->in_entry)
		return parse_port_entry(c, key, item, d);
	if (item->type != YAML_SCALAR_NODE || is_null(item))
		return node_err(c, item, c->in_entry ?
				"\"%s\" entries must be port numbers or \"lo-hi\" ranges" :
				"\"%s\" entries must be port numbers, \"lo-hi\" ranges or port entries "
				"(mappings with \"port\" or \"ports\")", key);
	if (parse_port_range(sval(item), &r))
		return node_err(c, item, strchr(sval(item), '-') ? "invalid port range %s" :
				"invalid port %s", quote(qb, sval(item)));
	if (d->nports == TG_MAX_PORT_RANGES)
		return 0;	/* counted and reported by parse_ports */
	d->port_dest[d->nports] = -1;
	d->ports[d->nports++] = r;
	return 0;
}

/* `port: 445` in a port entry: the same as a one-item `ports`. */
static int parse_entry_port(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	return port_item(c, key, v, obj);
}

static int parse_ports(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	int ret = each_item(c, key, v, port_item, obj);

	if (ret || v->type != YAML_SEQUENCE_NODE)
		return ret;
	if (v->data.sequence.items.top - v->data.sequence.items.start > TG_MAX_PORT_RANGES)
		return node_err(c, v, "too many \"%s\" entries (at most %d)", key,
				TG_MAX_PORT_RANGES);
	return 0;
}

static int parse_dest_name(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy_dest *d = obj;
	const char *s;

	if (scalar_str(c, key, v, &s))
		return c->nomem ? -ENOMEM : 0;
	if (!*s)
		return node_err(c, v, "\"%s\" must not be empty", key);
	c->name_node = v;
	return set_str(&d->name, s);
}

static const struct field service_tag_fields[] = {
	{ "file", F_STR, D(service_tags_file) },
	{ "tags", F_STRLIST, D(service_tags) },
	END
};

static int check_service_tags(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy_dest *d = obj;

	/* no "file": the policy's service_tags.file (checked when the policy is prepared) */
	if (!d->service_tags.n && node_err(c, v, "\"%s\" has no \"tags\"", key) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

static const struct field dest_fields[] = {
	{ "name", F_FN, .fn = parse_dest_name },
	{ "hosts", F_HOSTS, D(hosts) },
	{ "cidrs", F_CIDRS, D(cidrs), .off2 = offsetof(struct tg_policy_dest, ncidrs) },
	{ "ports", F_FN, .fn = parse_ports },
	{ "mode", F_ENUM, D(mode), .names = mode_names },
	{ "protocol", F_ENUM, D(protocol), .names = protocol_names },
	{ "min_tls_version", F_TLSVER, D(min_tls_version) },
	{ "require_sni", F_TRISTATE, D(require_sni) },
	{ "service_tags", F_MAP, .sub = service_tag_fields, .fn = check_service_tags },
	{ "note", F_STR, D(note) },
	END
};

static void dest_init(struct tg_policy_dest *d, const yaml_node_t *n)
{
	memset(d, 0, sizeof(*d));
	d->mode = -1;
	d->protocol = TG_PROTO_TLS;
	d->require_sni = -1;
	d->parent = -1;
	for (int i = 0; i < TG_MAX_PORT_RANGES; i++)
		d->port_dest[i] = -1;
	d->line = n->start_mark.line + 1;
	d->col = n->start_mark.column + 1;
}

static void dest_free(struct tg_policy_dest *d)
{
	free(d->name);
	strlist_free(&d->hosts);
	free(d->cidrs);
	free(d->service_tags_file);
	strlist_free(&d->service_tags);
	free(d->tag_cidrs);
	free(d->note);
}

/* A port entry: ports with a protocol, mode, minimum or note of their own. */
static const struct field port_entry_fields[] = {
	{ "port", F_FN, .fn = parse_entry_port },
	{ "ports", F_FN, .fn = parse_ports },
	{ "name", F_STR, D(name) },
	{ "protocol", F_ENUM, D(protocol), .names = protocol_names },
	{ "mode", F_ENUM, D(mode), .names = mode_names },
	{ "min_tls_version", F_TLSVER, D(min_tls_version) },
	{ "note", F_STR, D(note) },
	END
};

static int parse_port_entry(struct ctx *c, const char *key, yaml_node_t *item,
			    struct tg_policy_dest *d)
{
	struct tg_policy_dest e, *v;
	yaml_node_t **nodes;
	int ret;

	dest_init(&e, item);
	e.protocol = -1;	/* inherited unless given */
	e.parent = (int)c->cur_dest;
	c->in_entry = true;
	ret = walk_map(c, key, item, port_entry_fields, &e);
	c->in_entry = false;
	if (!ret && !e.nports && !map_get(c, item, "port") && !map_get(c, item, "ports"))
		ret = node_err(c, item, "port entry has no \"port\" or \"ports\"");
	if (!ret && d->nports + e.nports > TG_MAX_PORT_RANGES)
		ret = node_err(c, item, "too many ports in \"%s\" (at most %d ports and ranges, "
			       "port entries included)", key, TG_MAX_PORT_RANGES);
	if (!ret && e.name && !*e.name)
		ret = node_err(c, item, "port entry \"name\" must not be empty");
	if (ret || !e.nports || d->nports + e.nports > TG_MAX_PORT_RANGES) {
		dest_free(&e);
		return ret == -ENOMEM ? ret : 0;
	}
	v = realloc(c->entries, (c->nentries + 1) * sizeof(*v));
	if (v)
		c->entries = v;
	nodes = v ? realloc(c->entry_nodes, (c->nentries + 1) * sizeof(*nodes)) : NULL;
	if (!nodes) {
		dest_free(&e);
		return -ENOMEM;
	}
	c->entry_nodes = nodes;
	nodes[c->nentries] = item;
	/* the destination lists the ports too (connect() checks them there) */
	for (size_t r = 0; r < e.nports; r++) {
		d->port_dest[d->nports] = -2 - (int)c->nentries;	/* made an index later */
		d->ports[d->nports++] = e.ports[r];
	}
	c->entries[c->nentries++] = e;
	return 0;
}

/* "files:445", "files:2048-2049": the name of an unnamed port entry. */
static int entry_default_name(const struct tg_policy_dest *parent, struct tg_policy_dest *e)
{
	char buf[320];

	if (e->ports[0].lo == e->ports[0].hi)
		snprintf(buf, sizeof(buf), "%s:%u", parent->name ? parent->name : "", e->ports[0].lo);
	else
		snprintf(buf, sizeof(buf), "%s:%u-%u", parent->name ? parent->name : "",
			 e->ports[0].lo, e->ports[0].hi);
	return set_str(&e->name, buf);
}

/*
 * The port entries become classes after the destinations: what they do not
 * say they take from their destination, and names stay unique.
 */
static int append_entries(struct ctx *c, struct tg_policy *p)
{
	size_t n = p->ndests, total = n + c->nentries;
	struct tg_policy_dest *v;
	char qb[QBUF];
	int ret = 0;

	if (!c->nentries)
		return 0;
	if (total > TG_MAX_CLASSES - 1)
		return node_err(c, c->entry_nodes[0], "too many destinations and port entries "
				"(at most %d)", TG_MAX_CLASSES - 1) == -ENOMEM ? -ENOMEM : 0;
	v = realloc(p->dests, total * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->dests = v;
	for (size_t k = 0; k < c->nentries; k++) {
		struct tg_policy_dest *e = &c->entries[k];
		const struct tg_policy_dest *parent = &p->dests[e->parent];

		if (e->mode < 0)
			e->mode = parent->mode;
		if (e->protocol < 0)
			e->protocol = parent->protocol;
		if (!e->min_tls_version)
			e->min_tls_version = parent->min_tls_version;
		e->require_sni = parent->require_sni;
		if (!e->note && parent->note && set_str(&e->note, parent->note))
			ret = -ENOMEM;
		e->own_name = e->name != NULL;
		if (!e->name && entry_default_name(parent, e))
			ret = -ENOMEM;
		p->dests[n + k] = *e;
		p->ndests++;
	}
	c->nentries = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < p->dests[i].nports; r++)
			if (p->dests[i].port_dest[r] <= -2)
				p->dests[i].port_dest[r] = (int)n + (-2 - p->dests[i].port_dest[r]);
	for (size_t k = n; k < total && ret != -ENOMEM; k++) {
		for (size_t j = 0; j < k; j++) {
			if (!p->dests[j].name || !p->dests[k].name || strcmp(p->dests[j].name, p->dests[k].name))
				continue;
			ret = node_err(c, c->entry_nodes[k - n], "duplicate destination name %s "
				       "(a port entry's name; first defined at %d:%d)",
				       quote(qb, p->dests[k].name), p->dests[j].line, p->dests[j].col);
			break;
		}
	}
	return ret == -ENOMEM ? ret : 0;
}

static int check_dest(struct ctx *c, struct tg_policy_dest *d, yaml_node_t *n, size_t idx)
{
	struct tg_policy *p = c->p;
	char qb[QBUF];
	int ret = 0;

	if (!map_get(c, n, "name"))
		ret = node_err(c, n, "destination has no \"name\"");
	if (ret != -ENOMEM && !map_has_entries(c, n, "hosts") && !map_has_entries(c, n, "cidrs") &&
	    !map_has_entries(c, n, "service_tags")) {
		if (d->name)
			ret = node_err(c, n, "destination %s has no hosts, cidrs or service_tags",
				       quote(qb, d->name));
		else
			ret = node_err(c, n, "destination has no hosts, cidrs or service_tags");
	}
	for (size_t j = 0; ret != -ENOMEM && d->name && j < idx; j++) {
		yaml_node_t *first = c->dest_names[j];

		if (!p->dests[j].name || strcmp(p->dests[j].name, d->name))
			continue;
		ret = node_err(c, c->dest_names[idx],
			       "duplicate destination name %s (first defined at %zu:%zu)",
			       quote(qb, d->name), first->start_mark.line + 1,
			       first->start_mark.column + 1);
		break;
	}
	return ret == -ENOMEM ? ret : 0;
}

static int parse_dests(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy *p = obj;
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return node_err(c, v, "\"%s\" must be a list", key);
	n = v->data.sequence.items.top - v->data.sequence.items.start;
	/* class id 0 means "no class" in the kernel's table; the entries are not
	 * walked then (the duplicate-name check is quadratic in their number) */
	if (n > TG_MAX_CLASSES - 1)
		return node_err(c, v, "too many destinations (at most %d)", TG_MAX_CLASSES - 1);
	if (!n)
		return 0;
	p->dests = calloc(n, sizeof(*p->dests));
	c->dest_names = calloc(n, sizeof(*c->dest_names));
	if (!p->dests || !c->dest_names)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
		struct tg_policy_dest *d = &p->dests[p->ndests++];

		dest_init(d, item);
		if (item->type != YAML_MAPPING_NODE) {
			if (node_err(c, item, "\"%s\" entries must be mappings", key) == -ENOMEM)
				return -ENOMEM;
			continue;
		}
		c->name_node = NULL;
		c->cur_dest = i;
		if (walk_map(c, NULL, item, dest_fields, d) == -ENOMEM)
			return -ENOMEM;
		c->dest_names[i] = c->name_node;
		if (check_dest(c, d, item, i))
			return -ENOMEM;
	}
	return append_entries(c, p);
}

static const struct field exception_fields[] = {
	{ "name", F_STR, E(name) },
	{ "cidrs", F_CIDRS, E(cidrs), .off2 = offsetof(struct tg_policy_exception, ncidrs) },
	{ "hosts", F_HOSTS, E(hosts) },
	END
};

static int parse_exceptions(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy *p = obj;
	char qb[QBUF];
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return node_err(c, v, "\"%s\" must be a list", key);
	n = v->data.sequence.items.top - v->data.sequence.items.start;
	if (!n)
		return 0;
	p->exceptions = calloc(n, sizeof(*p->exceptions));
	if (!p->exceptions)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
		struct tg_policy_exception *e = &p->exceptions[p->nexceptions++];
		int ret;

		e->line = item->start_mark.line + 1;
		e->col = item->start_mark.column + 1;
		if (item->type != YAML_MAPPING_NODE)
			ret = node_err(c, item, "\"%s\" entries must be mappings", key);
		else if ((ret = walk_map(c, NULL, item, exception_fields, e)) == -ENOMEM)
			return -ENOMEM;
		else if (map_has_entries(c, item, "cidrs") || map_has_entries(c, item, "hosts"))
			continue;
		else if (e->name)
			ret = node_err(c, item, "exception %s has no cidrs or hosts",
				       quote(qb, e->name));
		else
			ret = node_err(c, item, "exception has no cidrs or hosts");
		if (ret == -ENOMEM)
			return ret;
	}
	return 0;
}

static int parse_override_labels(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy_override *o = obj;

	return labels_into(c, key, v, &o->labels, &o->nlabels);
}

static int parse_override_cgroups(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	return each_item(c, key, v, cgroup_item, &((struct tg_policy_override *)obj)->cgroups);
}

static const struct field override_fields[] = {
	{ "name", F_STR, O(name) },
	{ "namespaces", F_STRLIST, O(namespaces) },
	{ "labels", F_FN, .fn = parse_override_labels },
	{ "cgroups", F_FN, .fn = parse_override_cgroups },
	{ "classes", F_STRLIST, O(classes) },
	{ "mode", F_ENUM, O(mode), .names = mode_names },
	END
};

/* A rule needs a mode and something to select; its classes are checked once all are known. */
static int parse_overrides(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy *p = obj;
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return node_err(c, v, "\"%s\" must be a list", key);
	n = v->data.sequence.items.top - v->data.sequence.items.start;
	if (n > TG_MAX_OVERRIDES &&
	    node_err(c, v, "too many overrides (at most %d)", TG_MAX_OVERRIDES) == -ENOMEM)
		return -ENOMEM;
	if (!n || n > TG_MAX_OVERRIDES)
		return 0;
	p->overrides = calloc(n, sizeof(*p->overrides));
	c->override_nodes = calloc(n, sizeof(*c->override_nodes));
	if (!p->overrides || !c->override_nodes)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node(c, v->data.sequence.items.start[i]);
		struct tg_policy_override *o = &p->overrides[p->noverrides++];
		int ret = 0;

		o->mode = -1;
		o->line = item->start_mark.line + 1;
		o->col = item->start_mark.column + 1;
		c->override_nodes[i] = item;
		if (item->type != YAML_MAPPING_NODE)
			ret = node_err(c, item, "\"%s\" entries must be mappings", key);
		else if ((ret = walk_map(c, NULL, item, override_fields, o)) == -ENOMEM)
			return -ENOMEM;
		else if (!map_get(c, item, "mode"))
			ret = node_err(c, item, "override has no \"mode\" (audit or enforce)");
		else if (!map_has_entries(c, item, "namespaces") && !map_has_entries(c, item, "labels") &&
			 !map_has_entries(c, item, "cgroups"))
			ret = node_err(c, item, "override selects nothing: give \"namespaces\", "
				       "\"labels\" or \"cgroups\"");
		if (ret == -ENOMEM)
			return ret;
	}
	return 0;
}

/* Every class an override names must exist (destinations and port entries alike). */
static int check_override_classes(struct ctx *c)
{
	struct tg_policy *p = c->p;
	char qb[QBUF];
	int ret = 0;

	for (size_t i = 0; i < p->noverrides && c->override_nodes && ret != -ENOMEM; i++) {
		yaml_node_t *item = c->override_nodes[i], *cls;

		if (!item || item->type != YAML_MAPPING_NODE)
			continue;
		cls = map_get(c, item, "classes");
		if (!cls || cls->type != YAML_SEQUENCE_NODE)
			continue;
		for (yaml_node_item_t *it = cls->data.sequence.items.start;
		     it < cls->data.sequence.items.top && ret != -ENOMEM; it++) {
			yaml_node_t *name = node(c, *it);
			bool found = false;

			if (name->type != YAML_SCALAR_NODE)
				continue;	/* already reported */
			for (size_t d = 0; d < p->ndests && !found; d++)
				found = p->dests[d].name && !strcmp(p->dests[d].name, sval(name));
			if (!found)
				ret = node_err(c, name, "override names class %s, which no destination "
					       "or port entry is", quote(qb, sval(name)));
		}
	}
	return ret == -ENOMEM ? ret : 0;
}

static int proxy_item(struct ctx *c, const char *key, yaml_node_t *item, void *arg)
{
	char qb[QBUF];
	const char *s;

	if (item_str(c, key, item, &s))
		return c->nomem ? -ENOMEM : 0;
	if (check_host_port(s, false))
		return node_err(c, item, "invalid proxy %s (expected HOST:PORT)", quote(qb, s));
	return strlist_push(arg, s);
}

static int parse_proxies(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	return each_item(c, key, v, proxy_item, &((struct tg_policy *)obj)->proxies);
}

/* key_file is the one-key spelling of key_files; both end up in one list. */
static int parse_key_file(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	const char *s;

	if (scalar_str(c, key, v, &s))
		return c->nomem ? -ENOMEM : 0;
	if (!*s)
		return node_err(c, v, "\"%s\" must not be empty", key);
	return strlist_push(&((struct tg_policy *)obj)->key_files, s);
}

static const struct field ai_fields[] = {
	{ "connection_string_file", F_STR, P(ai_connection_string_file) },
	{ "ca_file", F_STR, P(ai_ca_file) },
	{ "batch_items", F_UINT, P(ai_batch_items) },
	{ "batch_bytes", F_SIZE, P(ai_batch_bytes) },
	{ "batch_age", F_DURATION, P(ai_batch_age_s) },
	{ "queue_max", F_UINT, P(ai_queue_max) },
	{ "timeout", F_DURATION, P(ai_timeout_s) },
	{ "retry_base", F_DURATION, P(ai_retry_base_s) },
	{ "retry_max", F_DURATION, P(ai_retry_max_s) },
	{ "metrics_interval", F_DURATION, P(ai_metrics_interval_s) },
	{ "flood_window", F_DURATION, P(ai_flood_window_s) },
	{ "auth", F_ENUM, P(ai_auth), .names = ai_auth_names },
	{ "client_id", F_STR, P(ai_client_id) },
	{ "imds_url", F_STR, P(ai_imds_url) },
	{ "test_redirect_suffixes", F_STRLIST, P(ai_test_redirect_suffixes) },
	{ "test_resolve", F_STRLIST, P(ai_test_resolve) },
	END
};

static const struct field spool_fields[] = {
	{ "dir", F_STR, P(spool_dir) },
	{ "max_bytes", F_SIZE, P(spool_max_bytes) },
	{ "max_age", F_DURATION, P(spool_max_age_s) },
	{ "journal", F_BOOL, P(spool_journal) },
	END
};

static const struct field events_fields[] = {
	{ "file", F_STR, P(events_file) },
	{ "log_tls_flows", F_BOOL, P(log_tls_flows) },
	{ "application_insights", F_MAP, .sub = ai_fields },
	{ "encrypt_fields", F_STRLIST, P(encrypt_fields) },
	{ "hash_fields", F_STRLIST, P(hash_fields) },
	{ "key_file", F_FN, .fn = parse_key_file },
	{ "key_files", F_STRLIST, P(key_files) },
	{ "spool", F_MAP, .sub = spool_fields },
	END
};

static int check_events(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	struct tg_policy *p = obj;

	/* the agent could not encrypt anything: refuse now, not at the first event */
	if (p->encrypt_fields.n && !p->key_files.n &&
	    node_err(c, v, "\"encrypt_fields\" needs a key: set \"key_file\" or \"key_files\"") ==
	    -ENOMEM)
		return -ENOMEM;
	/* the HMAC key is derived from the event key: no key, no hashing */
	if (p->hash_fields.n && !p->key_files.n &&
	    node_err(c, v, "\"hash_fields\" needs a key: set \"key_file\" or \"key_files\"") ==
	    -ENOMEM)
		return -ENOMEM;
	return 0;
}

static int parse_listen(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	char qb[QBUF];
	const char *s;

	if (scalar_str(c, key, v, &s))
		return c->nomem ? -ENOMEM : 0;
	if (check_host_port(s, true))
		return node_err(c, v, "invalid listen address %s (expected [HOST]:PORT)",
				quote(qb, s));
	return set_str(&((struct tg_policy *)obj)->metrics_listen, s);
}

/* The bearer token must not travel in clear text. */
static int parse_api_server(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	char qb[QBUF];
	const char *s;

	if (scalar_str(c, key, v, &s))
		return c->nomem ? -ENOMEM : 0;
	if (strncmp(s, "https://", 8) || !s[8] || strchr(s + 8, '?') || strchr(s + 8, '#'))
		return node_err(c, v, "invalid API server %s (expected https://HOST[:PORT])",
				quote(qb, s));
	return set_str(&((struct tg_policy *)obj)->k8s_api_server, s);
}

static const struct field kubernetes_api_fields[] = {
	{ "server", F_FN, .fn = parse_api_server },
	{ "token_file", F_STR, P(k8s_token_file) },
	{ "ca_file", F_STR, P(k8s_ca_file) },
	END
};

static const struct field kubernetes_fields[] = {
	{ "namespaces", F_STRLIST, P(k8s_namespaces) },
	{ "labels", F_FN, .fn = parse_labels },
	{ "node_name", F_STR, P(k8s_node_name) },
	{ "api", F_MAP, .sub = kubernetes_api_fields },
	{ "log_dir", F_STR, P(k8s_log_dir) },
	END
};

static const struct field workloads_fields[] = {
	{ "cgroups", F_FN, .fn = parse_cgroups },
	{ "kubernetes", F_MAP, .sub = kubernetes_fields },
	END
};

static const struct field control_fields[] = {
	{ "socket", F_STR, P(control_socket) },
	{ "group", F_STR, P(control_group) },
	END
};

static const struct field metrics_fields[] = {
	{ "listen", F_FN, .fn = parse_listen },
	END
};

/* A whole number from 1 to @max in scalar @v, or the error that names @key. */
static int parse_count(struct ctx *c, const char *key, yaml_node_t *v, uint64_t max, uint64_t *n)
{
	char qb[QBUF];

	if (v->type != YAML_SCALAR_NODE)
		return node_err(c, v, "\"%s\" must be a number", key);
	if (parse_uint(sval(v), strlen(sval(v)), UINT64_MAX, n) || *n < 1 || *n > max)
		return node_err(c, v, "invalid %s %s (1 to %llu)", key, quote(qb, sval(v)),
				(unsigned long long)max);
	return 0;
}

/* A count of learned addresses: they share the kernel's destination map. */
static int parse_max_learned(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	uint64_t n;
	int ret = parse_count(c, key, v, TG_MAX_DESTS, &n);

	if (ret)
		return ret;
	if (!strcmp(key, "max_learned_per_cgroup"))
		((struct tg_policy *)obj)->dns_max_per_cgroup = n;
	else
		((struct tg_policy *)obj)->dns_max_learned = n;
	return 0;
}

static const struct field dns_fields[] = {
	{ "grace", F_DURATION, P(dns_grace_s) },
	{ "max_learned", F_FN, .fn = parse_max_learned },
	{ "max_learned_per_cgroup", F_FN, .fn = parse_max_learned },
	END
};

/* Tracked flows at once (the kernel's tg_live_flows gauge): see docs/operations.md. */
static int parse_max_tracked_flows(struct ctx *c, const char *key, yaml_node_t *v, void *obj)
{
	uint64_t n;
	int ret = parse_count(c, key, v, TG_MAX_TRACKED_FLOWS_MAX, &n);

	if (ret)
		return ret;
	((struct tg_policy *)obj)->max_tracked_flows = n;
	return 0;
}

static const struct field top_service_tag_fields[] = {
	{ "file", F_STR, P(service_tags_file) },
	{ "optional", F_BOOL, P(service_tags_optional) },
	END
};

static const struct field limits_fields[] = {
	{ "max_tracked_flows", F_FN, .fn = parse_max_tracked_flows },
	END
};

static const struct field top_fields[] = {
	{ "mode", F_ENUM, P(mode), .names = mode_names },
	{ "fail_mode", F_ENUM, P(fail_mode), .names = fail_mode_names },
	{ "fail_open_after", F_DURATION, P(fail_open_after_s) },
	{ "min_tls_version", F_TLSVER, P(min_tls_version) },
	{ "workloads", F_MAP, .sub = workloads_fields },
	{ "destinations", F_FN, .fn = parse_dests },
	{ "exceptions", F_FN, .fn = parse_exceptions },
	{ "overrides", F_FN, .fn = parse_overrides },
	{ "proxies", F_FN, .fn = parse_proxies },
	{ "events", F_MAP, .sub = events_fields, .fn = check_events },
	{ "control", F_MAP, .sub = control_fields },
	{ "metrics", F_MAP, .sub = metrics_fields },
	{ "dns", F_MAP, .sub = dns_fields },
	{ "limits", F_MAP, .sub = limits_fields },
	{ "service_tags", F_MAP, .sub = top_service_tag_fields },
	END
};

/* ---- whole-policy checks ------------------------------------------------ */

struct owner {
	const void *key;	/* a host name or a struct tg_cidr */
	size_t dest;
};

static int cmp_host(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;
	int r = strcmp(x->key, y->key);

	return r ? r : (x->dest > y->dest) - (x->dest < y->dest);
}

static int cidr_cmp(const struct tg_cidr *x, const struct tg_cidr *y)
{
	int r = memcmp(x->addr, y->addr, sizeof(x->addr));

	return r ? r : (int)x->prefixlen - (int)y->prefixlen;
}

static int cmp_cidr(const void *a, const void *b)
{
	const struct owner *x = a, *y = b;
	int r = cidr_cmp(x->key, y->key);

	return r ? r : (x->dest > y->dest) - (x->dest < y->dest);
}

/*
 * The kernel maps an address to exactly one class, so the same host or
 * network in two destinations has no meaning. Sorting finds the pairs in
 * n log n; the later destination gets the message.
 */
static int check_overlaps(struct ctx *c, bool cidrs)
{
	struct tg_policy *p = c->p;
	struct owner *o;
	size_t n = 0, k = 0;
	int ret = 0;

	for (size_t i = 0; i < p->ndests; i++)
		n += cidrs ? p->dests[i].ncidrs : p->dests[i].hosts.n;
	if (n < 2)
		return 0;
	o = calloc(n, sizeof(*o));
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < p->ndests; i++) {
		size_t m = cidrs ? p->dests[i].ncidrs : p->dests[i].hosts.n;

		for (size_t j = 0; j < m; j++, k++) {
			o[k].key = cidrs ? (const void *)&p->dests[i].cidrs[j] :
					   (const void *)p->dests[i].hosts.v[j];
			o[k].dest = i;
		}
	}
	qsort(o, n, sizeof(*o), cidrs ? cmp_cidr : cmp_host);
	for (size_t i = 1; i < n && ret != -ENOMEM; i++) {
		const struct tg_policy_dest *first = &p->dests[o[i - 1].dest];
		const struct tg_policy_dest *d = &p->dests[o[i].dest];
		char qa[QBUF], qb[QBUF], net[64];

		if (o[i].dest == o[i - 1].dest ||
		    (cidrs ? cidr_cmp(o[i - 1].key, o[i].key) : strcmp(o[i - 1].key, o[i].key)))
			continue;
		if (cidrs)
			format_cidr(o[i].key, net, sizeof(net));
		ret = err_at(c, d->line, d->col, "%s %s is already in destination %s",
			     cidrs ? "CIDR" : "host", cidrs ? net : quote(qa, o[i].key),
			     quote(qb, first->name ? first->name : ""));
	}
	free(o);
	return ret == -ENOMEM ? ret : 0;
}

/* ---- loading ------------------------------------------------------------ */

static struct tg_policy *policy_new(const char *name)
{
	struct tg_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->source = strdup(name);
	if (!p->source) {
		free(p);
		return NULL;
	}
	p->mode = TG_MODE_AUDIT;
	p->fail_mode = TG_FAIL_CLOSED;
	p->fail_open_after_s = TG_FAIL_OPEN_AFTER_DEFAULT;
	p->min_tls_version = TG_TLS_1_2;
	p->spool_max_bytes = TG_SPOOL_MAX_BYTES_DEFAULT;
	p->spool_max_age_s = TG_SPOOL_MAX_AGE_DEFAULT;
	p->spool_journal = true;
	p->ai_metrics_interval_s = TG_AI_METRICS_INTERVAL_DEFAULT;
	p->ai_flood_window_s = TG_AI_FLOOD_WINDOW_DEFAULT;
	p->dns_grace_s = TG_DNS_GRACE_DEFAULT;
	p->dns_max_learned = TG_DNS_MAX_LEARNED_DEFAULT;
	p->max_tracked_flows = TG_MAX_FLOWS_DEFAULT;
	return p;
}

void policy_free(struct tg_policy *p)
{
	if (!p)
		return;
	free(p->source);
	free(p->service_tags_file);
	strlist_free(&p->cgroups);
	strlist_free(&p->k8s_namespaces);
	for (size_t i = 0; i < p->nk8s_labels; i++) {
		free(p->k8s_labels[i].key);
		free(p->k8s_labels[i].value);
	}
	free(p->k8s_labels);
	free(p->k8s_node_name);
	free(p->k8s_api_server);
	free(p->k8s_token_file);
	free(p->k8s_ca_file);
	free(p->k8s_log_dir);
	for (size_t i = 0; i < p->ndests; i++)
		dest_free(&p->dests[i]);
	free(p->dests);
	for (size_t i = 0; i < p->noverrides; i++) {
		struct tg_policy_override *o = &p->overrides[i];

		free(o->name);
		strlist_free(&o->namespaces);
		for (size_t l = 0; l < o->nlabels; l++) {
			free(o->labels[l].key);
			free(o->labels[l].value);
		}
		free(o->labels);
		strlist_free(&o->cgroups);
		strlist_free(&o->classes);
	}
	free(p->overrides);
	for (size_t i = 0; i < p->nexceptions; i++) {
		free(p->exceptions[i].name);
		free(p->exceptions[i].cidrs);
		strlist_free(&p->exceptions[i].hosts);
	}
	free(p->exceptions);
	strlist_free(&p->proxies);
	free(p->events_file);
	free(p->ai_connection_string_file);
	free(p->ai_ca_file);
	free(p->ai_client_id);
	free(p->ai_imds_url);
	strlist_free(&p->ai_test_redirect_suffixes);
	strlist_free(&p->ai_test_resolve);
	strlist_free(&p->encrypt_fields);
	strlist_free(&p->hash_fields);
	strlist_free(&p->key_files);
	free(p->spool_dir);
	free(p->control_socket);
	free(p->control_group);
	free(p->metrics_listen);
	free(p);
}

/* The character at a (0-based) libyaml mark, to recognise a tab there. */
static int char_at(const struct ctx *c, size_t line, size_t col)
{
	size_t i = 0;

	for (; i < c->len && line; i++)
		if (c->buf[i] == '\n')
			line--;
	/* columns count characters: skip UTF-8 continuation bytes */
	for (; i < c->len && col; i++)
		if (((unsigned char)c->buf[i] & 0xc0) != 0x80 && c->buf[i] != '\n')
			col--;
	while (i < c->len && ((unsigned char)c->buf[i] & 0xc0) == 0x80)
		i++;
	return i < c->len ? (unsigned char)c->buf[i] : -1;
}

static int syntax_error(struct ctx *c, const yaml_parser_t *y)
{
	size_t line = y->problem_mark.line, col = y->problem_mark.column;
	char context[128] = "";
	const char *hint = "";

	if (y->error == YAML_MEMORY_ERROR) {
		c->nomem = true;
		return -ENOMEM;
	}
	if (y->error == YAML_READER_ERROR) {
		/* the reader reports a byte offset, not a mark */
		line = col = 0;
		for (size_t i = 0; i < y->problem_offset && i < c->len; i++) {
			if (c->buf[i] == '\n') {
				line++;
				col = 0;
			} else {
				col++;
			}
		}
	} else if (char_at(c, line, col) == '\t') {
		hint = "; YAML does not allow tabs for indentation, use spaces";
	}
	/* where the construct began helps with an unclosed bracket far above */
	if (y->context && (y->context_mark.line != line || y->context_mark.column != col))
		snprintf(context, sizeof(context), " (%s at %zu:%zu)", y->context,
			 y->context_mark.line + 1, y->context_mark.column + 1);
	else if (y->context)
		snprintf(context, sizeof(context), " (%s)", y->context);
	return err_at(c, line + 1, col + 1, "YAML syntax error: %s%s%s",
		      y->problem ? y->problem : "unknown problem", context, hint);
}

static const struct tg_yaml_limits limits = {
	.depth = TG_POLICY_MAX_DEPTH,
	.keys = TG_POLICY_MAX_KEYS,
	.items = TG_POLICY_MAX_ITEMS,
	.scalar = TG_POLICY_MAX_SCALAR,
	.nodes = TG_POLICY_MAX_NODES,
	.aliased = TG_POLICY_MAX_ALIASED,
};

/* Load the one document of the stream into @doc, within the bounds above. */
static int load_document(struct ctx *c, yaml_parser_t *y, yaml_document_t *doc)
{
	struct tg_yaml_error e;
	int ret = yaml_load_bounded(y, &limits, doc, &e);

	if (ret == -EIO)
		return syntax_error(c, y);
	if (ret == -EINVAL)
		return err_at(c, e.line, e.col, "%s", e.msg);
	if (ret == -ENOMEM)
		c->nomem = true;
	return ret;
}

/* Where byte @off of the text is, as libyaml counts: lines and characters from 1. */
static struct pos offset_pos(const struct ctx *c, size_t off)
{
	struct pos p = { 1, 1 };

	for (size_t i = 0; i < off && i < c->len; i++) {
		if (c->buf[i] == '\n')
			p = (struct pos){ p.line + 1, 1 };
		else if (((unsigned char)c->buf[i] & 0xc0) != 0x80)
			p.col++;
	}
	return p;
}

int policy_load_buffer(const char *name, const char *yaml, size_t len,
		       struct tg_policy **out, struct tg_diag *diag)
{
	struct ctx c = { .name = name, .buf = yaml ? yaml : "", .len = yaml ? len : 0,
			 .diag = diag, .diag_start = diag->n };
	yaml_document_t doc;
	yaml_parser_t y;
	yaml_node_t *root;
	int ret;

	*out = NULL;
	if (c.len > TG_POLICY_MAX_BYTES) {
		struct pos at = offset_pos(&c, TG_POLICY_MAX_BYTES);

		ret = err_at(&c, at.line, at.col, "the file is larger than %d MiB, the most a "
			     "policy may be", TG_POLICY_MAX_BYTES >> 20);
		goto out_free;
	}
	c.p = policy_new(name);
	if (!c.p || !yaml_parser_initialize(&y)) {
		ret = -ENOMEM;
		goto out_free;
	}
	yaml_parser_set_input_string(&y, (const unsigned char *)c.buf, c.len);
	ret = load_document(&c, &y, &doc);
	yaml_parser_delete(&y);
	if (ret)
		goto out_free;
	c.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	/* nothing but comments, or an explicit null: every default, no destinations */
	if (root && !is_null(root)) {
		ret = walk_map(&c, NULL, root, top_fields, c.p);
		if (!ret)
			ret = check_overlaps(&c, false);
		if (!ret)
			ret = check_overlaps(&c, true);
		if (!ret)
			ret = check_override_classes(&c);
		/* a failed strdup deep in a handler only shows up here */
		if (ret == -ENOMEM)
			c.nomem = true;
	}
	yaml_document_delete(&doc);
	ret = c.nomem ? -ENOMEM : c.nerr ? -EINVAL : 0;
out_free:
	sort_messages(&c);
	free(c.dest_names);
	for (size_t k = 0; k < c.nentries; k++)	/* left when parsing stopped early */
		dest_free(&c.entries[k]);
	free(c.entries);
	free(c.entry_nodes);
	free(c.override_nodes);
	if (ret == -ENOMEM)
		diag_addf(diag, "%s: out of memory", name);
	if (ret) {
		policy_free(c.p);
		return ret;
	}
	*out = c.p;
	return 0;
}

int policy_read_file(const char *path, char **buf, size_t *len)
{
	size_t cap = 0, n = 0;
	char *b = NULL, *nb;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* one byte past the limit is read, so that a file over it is told apart */
	while (!ret && n <= TG_POLICY_MAX_BYTES) {
		size_t got;

		cap = cap ? cap * 2 : 4096;
		if (cap > TG_POLICY_MAX_BYTES + 1UL)
			cap = TG_POLICY_MAX_BYTES + 1UL;
		nb = realloc(b, cap);
		if (!nb) {
			ret = -ENOMEM;
			break;
		}
		b = nb;
		ret = tg_read_full(fd, b + n, cap - n, -1, &got);
		n += got;
		if (n < cap)
			break;		/* the end of the file */
	}
	close(fd);
	if (ret) {
		free(b);
		return ret;
	}
	*buf = b;
	*len = n;
	return 0;
}

int policy_load_file(const char *path, struct tg_policy **out, struct tg_diag *diag)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = policy_read_file(path, &buf, &len);
	if (ret) {
		diag_addf(diag, "%s: cannot read: %s", path, strerror(-ret));
		return ret;
	}
	ret = policy_load_buffer(path, buf, len, out, diag);
	free(buf);
	return ret;
}

int policy_load_default(struct tg_policy **out, struct tg_diag *diag)
{
	return policy_load_buffer("built-in", tg_default_policy_yaml,
				  strlen(tg_default_policy_yaml), out, diag);
}

int policy_dest_mode(const struct tg_policy *p, const struct tg_policy_dest *d)
{
	return d->mode >= 0 ? d->mode : p->mode;
}

const struct tg_policy_dest *policy_dest_owner(const struct tg_policy *p, const struct tg_policy_dest *d)
{
	return d->parent >= 0 && (size_t)d->parent < p->ndests ? &p->dests[d->parent] : d;
}

static bool strlist_has(const struct tg_strlist *l, const char *s)
{
	for (size_t i = 0; s && i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

bool policy_override_covers(const struct tg_policy *p, const struct tg_policy_override *o,
			    const struct tg_policy_dest *d)
{
	if (!o->classes.n || strlist_has(&o->classes, d->name))
		return true;
	/* "files" covers its unnamed port entries ("files:445"); a named one is its own */
	return d->parent >= 0 && !d->own_name && strlist_has(&o->classes, policy_dest_owner(p, d)->name);
}

int policy_dest_min_tls_version(const struct tg_policy *p, const struct tg_policy_dest *d)
{
	return d->min_tls_version ? d->min_tls_version : p->min_tls_version;
}

bool policy_dest_require_sni(const struct tg_policy *p, const struct tg_policy_dest *d)
{
	return d->require_sni > 0;
}

void policy_ai_config(const struct tg_policy *p, struct tg_ai_config *out)
{
	*out = (struct tg_ai_config){
		.key_files = p->key_files.v, .nkey_files = p->key_files.n,
		.encrypt_fields = p->encrypt_fields.v, .nencrypt_fields = p->encrypt_fields.n,
		.hash_fields = p->hash_fields.v, .nhash_fields = p->hash_fields.n,
		.connection_string_file = p->ai_connection_string_file,
	};
}
