// SPDX-License-Identifier: MIT
/*
 * Strings of outside origin on every way out (escape.h): the escaping itself
 * (exact forms, that it reads back to one byte string, that it never cuts a
 * character or an escape), then one test per output path with a workload
 * named "\x1b]0;pwned\x07" plus bytes that are not UTF-8: the event file
 * line, the App Insights item, `tlsguard events` and `tlsguard status` as
 * text and JSON (through a control socket served here), `tlsguard policy
 * check` messages and the agent's log lines. Each asserts that no raw byte
 * below 0x20 or 0x7f reaches the output except the newline ending a line,
 * and that JSON output is valid UTF-8 that parses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ai_envelope.h"
#include "cgroup.h"
#include "commands.h"
#include "dests.h"
#include "escape.h"
#include "events.h"
#include "log.h"
#include "policy.h"

#define EVIL "\x1b]0;pwned\x07"		/* sets the terminal's title */
#define EVIL_TEXT "\\x1b]0;pwned\\x07"	/* how text output shows it */

/* ---- helpers ------------------------------------------------------------ */

static char *esc(const char *s, size_t len, unsigned int flags)
{
	static char buf[1024];

	assert_true(tg_escape(buf, sizeof(buf), s, len, flags));
	return buf;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1, 0)

/*
 * What every output path must hold: no raw byte below 0x20 or DEL, except
 * the newlines that end lines; no C1 or bidirectional control either.
 */
static void assert_no_raw_controls(const char *what, const char *out, size_t len)
{
	const unsigned char *b = (const unsigned char *)out;

	for (size_t i = 0; i < len; i++) {
		if ((b[i] < 0x20 && b[i] != '\n') || b[i] == 0x7f)
			fail_msg("%s: raw byte 0x%02x at offset %zu of %zu: %.*s", what, b[i], i, len,
				 (int)len, out);
		/* U+0080..U+009F and U+202A..U+202E encoded */
		if (i + 1 < len && b[i] == 0xc2 && b[i + 1] >= 0x80 && b[i + 1] <= 0x9f)
			fail_msg("%s: raw C1 control at offset %zu", what, i);
		if (i + 2 < len && b[i] == 0xe2 && b[i + 1] == 0x80 && b[i + 2] >= 0xa8 && b[i + 2] <= 0xae)
			fail_msg("%s: raw bidirectional control at offset %zu", what, i);
	}
}

static void assert_valid_json_lines(const char *what, const char *out)
{
	char *copy = strdup(out), *save = NULL;
	size_t n = 0;

	assert_non_null(copy);
	assert_true(tg_utf8_valid(out, strlen(out)));
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_tokener *tok = json_tokener_new();
		json_object *o;

		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		o = json_tokener_parse_ex(tok, line, (int)strlen(line));
		if (!o)
			fail_msg("%s: not JSON: %s", what, line);
		json_object_put(o);
		json_tokener_free(tok);
		n++;
	}
	free(copy);
	assert_true(n > 0);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	assert_non_null(f);
	*len = getdelim(&buf, &cap, '\0', f) >= 0 ? strlen(buf) : 0;
	if (!buf)
		buf = strdup("");
	fclose(f);
	return buf;
}

/* Redirect stdout or stderr into a file for the length of a call. */
struct capture {
	int fd, saved;
	char path[64];
};

static void capture_start(struct capture *c, int fd)
{
	int tmp;

	fflush(NULL);
	strcpy(c->path, "/tmp/tg-escape-out-XXXXXX");
	tmp = mkstemp(c->path);
	assert_true(tmp >= 0);
	c->fd = fd;
	c->saved = dup(fd);
	dup2(tmp, fd);
	close(tmp);
}

static char *capture_end(struct capture *c, size_t *len)
{
	char *out;

	fflush(NULL);
	dup2(c->saved, c->fd);
	close(c->saved);
	out = read_all(c->path, len);
	unlink(c->path);
	return out;
}

/* ---- the escaping ------------------------------------------------------- */

static void test_terminal_controls(void **state)
{
	assert_string_equal(ESC(EVIL), EVIL_TEXT);
	assert_string_equal(ESC("a\tb\nc\rd\x7f"), "a\\x09b\\x0ac\\x0dd\\x7f");
	/* 8-bit CSI as UTF-8, bidirectional override, line separator */
	assert_string_equal(ESC("x\xc2\x9b" "31m"), "x\\xc2\\x9b31m");
	assert_string_equal(ESC("abc\xe2\x80\xae" "cba"), "abc\\xe2\\x80\\xaecba");
	assert_string_equal(ESC("\xe2\x80\xa8"), "\\xe2\\x80\\xa8");
	assert_string_equal(esc("a\0b", 3, 0), "a\\x00b");
}

static void test_backslash_is_escaped(void **state)
{
	/* a name that looks like an escape reads differently from the real one */
	assert_string_equal(ESC("\\x1b"), "\\\\x1b");
	assert_string_equal(ESC("\x1b"), "\\x1b");
	assert_string_equal(esc("a\\b\"c", 5, TG_ESC_QUOTES), "a\\\\b\\\"c");
	assert_string_equal(esc("a\\b\x1b", 4, TG_ESC_KEEP_BACKSLASH), "a\\b\\x1b");
}

static void test_valid_utf8_is_kept(void **state)
{
	static const char s[] = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80 \xc2\xa0";

	assert_string_equal(ESC(s), s);
	assert_true(tg_utf8_valid(s, sizeof(s) - 1));
}

static void test_invalid_utf8_bytes(void **state)
{
	assert_string_equal(ESC("\xff"), "\\xff");
	assert_string_equal(ESC("\xc0\x80"), "\\xc0\\x80");		/* overlong NUL */
	assert_string_equal(ESC("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");	/* overlong '/' */
	assert_string_equal(ESC("\xed\xa0\x80"), "\\xed\\xa0\\x80");	/* surrogate */
	assert_string_equal(ESC("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");	/* > U+10FFFF */
	assert_string_equal(ESC("a\xe6\x97"), "a\\xe6\\x97");		/* cut short */
	assert_string_equal(ESC("\x80z"), "\\x80z");			/* lone continuation */
	assert_false(tg_utf8_valid("\xed\xa0\x80", 3));
	assert_false(tg_utf8_valid("\xc1\xbf", 2));
}

static void test_cut_never_splits(void **state)
{
	char out[8];

	/* "ab" + "\x1b" needs 7 bytes with the NUL; 6 do not take the escape */
	assert_false(tg_escape(out, 6, "ab\x1b", 3, 0));
	assert_string_equal(out, "ab");
	assert_true(tg_escape(out, 7, "ab\x1b", 3, 0));
	assert_string_equal(out, "ab\\x1b");
	/* nor a character: "a" + U+65E5 (3 bytes) in 4 bytes leaves "a" */
	assert_false(tg_escape(out, 4, "a\xe6\x97\xa5", 4, 0));
	assert_string_equal(out, "a");
	assert_false(tg_escape(out, 0, "a", 1, 0));
}

/* Read an escaped text back; -1 when it is not a form tg_escape writes. */
static ssize_t unescape(const char *in, unsigned char *out)
{
	size_t o = 0;

	for (size_t i = 0; in[i]; i++) {
		if (in[i] != '\\') {
			out[o++] = in[i];
			continue;
		}
		if (in[i + 1] == '\\') {
			out[o++] = '\\';
			i++;
		} else if (in[i + 1] == 'x' && in[i + 2] && in[i + 3]) {
			char hex[3] = { in[i + 2], in[i + 3], 0 };

			out[o++] = (unsigned char)strtoul(hex, NULL, 16);
			i += 3;
		} else {
			return -1;
		}
	}
	return (ssize_t)o;
}

/* Any bytes: printable valid UTF-8 out, and exactly the input back. */
static void test_escape_reads_back(void **state)
{
	static const unsigned char alphabet[] = {
		0x00, 0x07, 0x1b, '\\', 'x', '1', 'b', '"', 'a', 0x7f, 0x80, 0x9b, 0xc2, 0xc3,
		0xa9, 0xe2, 0x80, 0xae, 0xed, 0xa0, 0xf0, 0x9f, 0x9a, 0xf4, 0x90, 0xff,
	};
	unsigned int seed = 19;

	for (int round = 0; round < 20000; round++) {
		unsigned char in[24], back[24 * 4];
		char out[24 * 4 + 1];
		size_t len = rand_r(&seed) % sizeof(in);
		ssize_t n;

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rand_r(&seed) % sizeof(alphabet)];
		assert_true(tg_escape(out, sizeof(out), (const char *)in, len, 0));
		assert_no_raw_controls("escaped", out, strlen(out));
		assert_true(tg_utf8_valid(out, strlen(out)));
		n = unescape(out, back);
		assert_int_equal(n, (ssize_t)len);
		assert_memory_equal(back, in, len);
	}
}

static void test_json_string(void **state)
{
	static const char in[] = "a" EVIL "\xff\xc2\x9b\xe2\x80\xae" "b\x7f/";
	json_object *o = tg_json_string(in), *back;
	const char *line;

	assert_non_null(o);
	/* the value is valid UTF-8 already: one U+FFFD for the one bad byte */
	assert_string_equal(json_object_get_string(o),
			    "a" EVIL "\xef\xbf\xbd\xc2\x9b\xe2\x80\xae" "b\x7f/");
	line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	assert_string_equal(line, "\"a\\u001b]0;pwned\\u0007\xef\xbf\xbd\\u009b\\u202eb\\u007f/\"");
	assert_no_raw_controls("json", line, strlen(line));
	/* control characters come back exactly */
	back = json_tokener_parse(line);
	assert_string_equal(json_object_get_string(back), json_object_get_string(o));
	json_object_put(back);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "\"a\\u001b]0;pwned\\u0007\xef\xbf\xbd\\u009b\\u202eb\\u007f\\/\"");
	json_object_put(o);
	assert_null(tg_json_string(NULL));
}

/* One whole document, nested at most as deep as asked; json-c's default depth without one. */
static void test_json_parse_depth(void **state)
{
	char doc[2 * 64 + 1];
	json_object *o;

	for (int depth = 2; depth <= 64; depth++) {
		memset(doc, '[', depth);
		memset(doc + depth, ']', depth);
		o = tg_json_parse_depth(doc, 2 * depth, depth);
		assert_non_null(o);
		json_object_put(o);
		assert_null(tg_json_parse_depth(doc, 2 * depth, depth - 1));
	}
	memset(doc, '[', 33);
	memset(doc + 33, ']', 33);
	assert_null(tg_json_parse(doc, 66));
	o = tg_json_parse(doc + 1, 64);
	assert_non_null(o);
	json_object_put(o);
	assert_null(tg_json_parse_depth("{\"a\":", 5, 64));		/* cut short */
	assert_null(tg_json_parse_depth("{}", (size_t)INT_MAX + 1, 64));
	o = tg_json_parse_depth("{\"a\":1} x", 7, 64);			/* @len bounds what is read */
	assert_non_null(o);
	json_object_put(o);
}

/* A member one or two levels down; absent and JSON null are both NULL. */
static void test_json_member(void **state)
{
	json_object *o = json_tokener_parse("{\"a\":{\"b\":\"x\",\"n\":null},\"s\":\"y\",\"z\":null}");

	assert_non_null(o);
	assert_string_equal(json_object_get_string(tg_json_member(o, "a", "b")), "x");
	assert_string_equal(json_object_get_string(tg_json_member(o, "s", NULL)), "y");
	assert_true(json_object_is_type(tg_json_member(o, "a", NULL), json_type_object));
	assert_null(tg_json_member(o, "a", "n"));
	assert_null(tg_json_member(o, "a", "c"));
	assert_null(tg_json_member(o, "z", NULL));
	assert_null(tg_json_member(o, "z", "b"));
	assert_null(tg_json_member(o, "q", "b"));
	assert_null(tg_json_member(o, "s", "b"));	/* a string has no members */
	json_object_put(o);
}

static void test_json_tree_to_text(void **state)
{
	json_object *o = json_tokener_parse("{\"a\":\"\\u001b[2J\",\"b\":[\"x\\\\y\",{\"c\":\"\\u0007\"}],\"n\":3}");

	assert_int_equal(tg_json_strings_to_text(o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "a")), "\\x1b[2J");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"a\":\"\\\\x1b[2J\",\"b\":[\"x\\\\\\\\y\",{\"c\":\"\\\\x07\"}],\"n\":3}");
	json_object_put(o);
}

/* ---- output paths: events ------------------------------------------------ */

static const char policy_yaml[] =
	"destinations:\n"
	"  - name: storage\n"
	"    cidrs: [\"198.51.100.0/24\"]\n";

struct fixture {
	struct tg_policy *policy;
	struct tg_dest_table dests;
	struct tg_event_ctx ctx;
	char root[64], cgroup[160];
	uint64_t cgroup_id;
	char sock[108];
};

static int setup(void **state)
{
	static struct fixture f;
	struct tg_diag diag = { 0 };
	char *roots[1];
	struct stat st;

	memset(&f, 0, sizeof(f));
	if (policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &f.policy, &diag))
		return -1;
	diag_free(&diag);
	if (dests_build(f.policy, -1, NULL, NULL, &f.dests, NULL, 0))
		return -1;
	events_ctx_init(&f.ctx);
	strcpy(f.ctx.host, "node-1");
	f.ctx.dests = &f.dests;
	/* a directory named like a hostile cgroup stands in for one (ids are inode numbers) */
	strcpy(f.root, "/tmp/tg-escape-cg-XXXXXX");
	if (!mkdtemp(f.root))
		return -1;
	snprintf(f.cgroup, sizeof(f.cgroup), "%s/svc" EVIL "\xff.scope", f.root);
	if (mkdir(f.cgroup, 0700) || stat(f.cgroup, &st))
		return -1;
	f.cgroup_id = st.st_ino;
	roots[0] = f.root;
	f.ctx.cgroups = cgroup_names_new(f.root, roots, 1);
	snprintf(f.sock, sizeof(f.sock), "%s/ctl.sock", f.root);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cgroup_names_free(f->ctx.cgroups);
	rmdir(f->cgroup);
	unlink(f->sock);
	rmdir(f->root);
	dests_free(&f->dests);
	policy_free(f->policy);
	return 0;
}

static void v4(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, s, out + 12), 1);
}

/* A plaintext flow from a process named EVIL + a byte that is not UTF-8. */
static json_object *evil_plaintext(struct fixture *f)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\x1b" "b\r\n\r\n";
	struct tg_event ev = { .ts_ns = 1, .cookie = 7, .cgroup_id = f->cgroup_id, .tgid = 42,
			       .class_id = 1, .type = TG_EV_PLAINTEXT, .action = TG_ACT_FLAGGED,
			       .family = AF_INET, .sport = 40000, .dport = 80 };

	v4(ev.saddr, "10.0.0.1");
	v4(ev.daddr, "198.51.100.2");
	memcpy(ev.comm, EVIL "\xfe", sizeof(EVIL));
	memcpy(ev.payload, req, sizeof(req) - 1);
	ev.payload_len = sizeof(req) - 1;
	return events_to_json(&f->ctx, &ev);
}

/* A TLS flow whose ClientHello named EVIL as SNI and ALPN. */
static json_object *evil_tls(struct fixture *f)
{
	struct tg_event ev = { .ts_ns = 2, .cookie = 8, .cgroup_id = f->cgroup_id, .tgid = 43,
			       .class_id = 1, .type = TG_EV_SNI_MISMATCH, .action = TG_ACT_FLAGGED,
			       .family = AF_INET, .sport = 40001, .dport = 443 };

	v4(ev.saddr, "10.0.0.1");
	v4(ev.daddr, "198.51.100.2");
	strcpy(ev.comm, "curl");
	ev.tls.offered = ev.tls.legacy = 0x0303;
	ev.tls.sni_len = sizeof(EVIL) - 1 + 1;
	memcpy(ev.tls.sni, EVIL "\xff", ev.tls.sni_len);
	ev.tls.alpn[0] = sizeof(EVIL) - 1;
	memcpy(ev.tls.alpn + 1, EVIL, sizeof(EVIL) - 1);
	ev.tls.alpn_len = sizeof(EVIL);
	return events_to_json(&f->ctx, &ev);
}

static void test_event_json_keeps_the_names(void **state)
{
	struct fixture *f = *state;
	json_object *o = evil_plaintext(f), *w, *v;

	assert_true(json_object_object_get_ex(o, "workload", &w));
	assert_true(json_object_object_get_ex(w, "comm", &v));
	assert_string_equal(json_object_get_string(v), EVIL "\xef\xbf\xbd");
	assert_true(json_object_object_get_ex(w, "cgroup", &v));
	assert_string_equal(json_object_get_string(v), "/svc" EVIL "\xef\xbf\xbd.scope");
	json_object_put(o);
}

/* The file sink's lines (and the control socket's: the same string, event_line). */
static void test_event_file_line(void **state)
{
	struct fixture *f = *state;
	json_object *evs[2] = { evil_plaintext(f), evil_tls(f) };
	char path[] = "/tmp/tg-escape-events-XXXXXX";
	struct tg_event_file ef;
	int fd = mkstemp(path);
	size_t len;
	char *out;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(event_file_open(&ef, path), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(event_file_write(&ef, evs[i]), 0);
		json_object_put(evs[i]);
	}
	event_file_close(&ef);
	out = read_all(path, &len);
	unlink(path);
	assert_no_raw_controls("event file", out, len);
	assert_valid_json_lines("event file", out);
	assert_non_null(strstr(out, "\"comm\":\"\\u001b]0;pwned\\u0007\xef\xbf\xbd\""));
	assert_non_null(strstr(out, "\"sni\":\"\\u001b]0;pwned\\u0007\xef\xbf\xbd\""));
	free(out);
}

static void test_app_insights_item(void **state)
{
	struct fixture *f = *state;
	struct tg_ai_envelope *e = ai_envelope_new("00000000-0000-0000-0000-000000000000", "node-1", "0");
	json_object *evs[2] = { evil_plaintext(f), evil_tls(f) };

	assert_non_null(e);
	for (int i = 0; i < 2; i++) {
		struct tg_ai_line line = { 0 };

		assert_int_equal(ai_envelope_event(e, evs[i], &line), 0);
		assert_no_raw_controls("App Insights item", line.p, line.len);
		assert_valid_json_lines("App Insights item", line.p);
		assert_non_null(strstr(line.p, "\\u001b]0;pwned\\u0007"));
		ai_line_free(&line);
		json_object_put(evs[i]);
	}
	ai_envelope_free(e);
}

/* ---- output paths: the CLI over a control socket served here --------------- */

struct server {
	int fd;
	const char *reply;
};

/*
 * Answer one request with @reply, the way the agent does, then close: in a
 * child process, so the CLI under test runs as it does for real, alone.
 */
static pid_t serve_one(int fd, const char *reply)
{
	pid_t pid = fork();
	char req[4096];
	int c;

	if (pid != 0)
		return pid;
	c = accept(fd, NULL, NULL);
	if (c >= 0) {
		size_t got = 0;
		ssize_t n;

		/* the whole request line first, as the agent reads it */
		while (got < sizeof(req) && (n = recv(c, req + got, sizeof(req) - got, 0)) > 0 &&
		       !memchr(req + got, '\n', (size_t)n))
			got += (size_t)n;
		if (write(c, reply, strlen(reply)) < 0)
			perror("write");
		close(c);
	}
	_exit(0);
}

/* Run a CLI subcommand against @reply; its stdout (and stderr when @err). */
static char *run_cli(struct fixture *f, int (*cmd)(int, char **), const char *reply,
		     char **args, int nargs, int *rc, size_t *len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char *argv[16] = { "x", "--socket", f->sock };
	struct capture cap;
	char *out;
	pid_t server;
	int fd, status;

	/* qemu-user hangs in the child (or thread) that serves the socket; these
	 * cases run natively in make test (mk/cross.mk sets TG_QEMU_USER) */
	if (getenv("TG_QEMU_USER")) {
		print_message("not under qemu-user: needs a second process serving the socket\n");
		skip();
	}
	for (int i = 0; i < nargs; i++)
		argv[3 + i] = args[i];
	unlink(f->sock);
	strcpy(addr.sun_path, f->sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 1), 0);
	fflush(NULL);
	server = serve_one(fd, reply);
	assert_true(server > 0);
	capture_start(&cap, STDOUT_FILENO);
	*rc = cmd(3 + nargs, argv);
	out = capture_end(&cap, len);
	assert_int_equal(waitpid(server, &status, 0), server);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	return out;
}

static char *event_lines(struct fixture *f)
{
	json_object *a = evil_plaintext(f), *b = evil_tls(f);
	char *lines = NULL;

	assert_true(asprintf(&lines, "%s\n%s\n", event_line(a), event_line(b)) > 0);
	json_object_put(a);
	json_object_put(b);
	return lines;
}

static void test_events_text(void **state)
{
	struct fixture *f = *state;
	char *lines = event_lines(f), *out;
	size_t len;
	int rc;

	out = run_cli(f, cmd_events, lines, NULL, 0, &rc, &len);
	assert_int_equal(rc, 0);
	assert_no_raw_controls("tlsguard events", out, len);
	assert_non_null(strstr(out, EVIL_TEXT "\xef\xbf\xbd[42]"));	/* comm[pid] */
	assert_non_null(strstr(out, "/svc" EVIL_TEXT));
	free(out);
	free(lines);
}

static void test_events_json(void **state)
{
	struct fixture *f = *state;
	char *lines = event_lines(f), *out, *args[] = { "-o", "json" };
	size_t len;
	int rc;

	out = run_cli(f, cmd_events, lines, args, 2, &rc, &len);
	assert_int_equal(rc, 0);
	assert_no_raw_controls("tlsguard events -o json", out, len);
	assert_valid_json_lines("tlsguard events -o json", out);
	free(out);
	free(lines);
}

/* Every string field `tlsguard status` prints, set to a hostile name (JSON-escaped, as sent). */
#define E "\"\\u001b]0;pwned\\u0007\\u202e\\u009b\""

static char *evil_status(void)
{
	json_object *st = json_tokener_parse(
		"{\"agent\":{\"version\":\"1\",\"pid\":1,\"uptime_s\":1,\"started_at\":" E ","
		"\"mode\":\"audit\",\"mode_source\":\"policy\",\"fail_mode\":\"closed\",\"pin_path\":" E ","
		"\"adopted_pins\":false},"
		"\"health\":{\"state\":\"degraded\",\"reasons\":[" E "],\"warnings\":[" E "]},"
		"\"hooks\":[{\"name\":" E ",\"attached\":true,\"cgroup\":" E ",\"prog_id\":1,\"pinned\":" E "}],"
		"\"policy\":{\"source\":" E ",\"sha256\":" E ",\"loaded_at\":" E ",\"classes\":"
		"[{\"name\":" E ",\"mode\":" E ",\"ports\":" E ",\"flows\":{\"tracked\":1}}]},"
		"\"handoff\":{\"layout\":5,\"draining\":false},"
		"\"control\":{\"socket\":" E "},"
		"\"sinks\":[{\"name\":" E ",\"state\":\"error\",\"target\":" E ",\"last_error\":" E "}],"
		"\"top\":{\"workloads\":[{\"workload\":" E ",\"violations\":3}],"
		"\"destinations\":[{\"destination\":" E ",\"violations\":3}]}}");
	json_object *reply = json_object_new_object();
	char *line;

	assert_non_null(st);
	json_object_object_add(reply, "v", json_object_new_int(1));
	json_object_object_add(reply, "ok", json_object_new_boolean(1));
	json_object_object_add(reply, "status", st);
	tg_json_strings_safe(reply);
	assert_true(asprintf(&line, "%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN)) > 0);
	json_object_put(reply);
	return line;
}

static void test_status_text(void **state)
{
	struct fixture *f = *state;
	char *reply = evil_status(), *out, *args[] = { "--check" };
	size_t len;
	int rc;

	out = run_cli(f, cmd_status, reply, NULL, 0, &rc, &len);
	assert_int_equal(rc, 0);
	assert_no_raw_controls("tlsguard status", out, len);
	assert_non_null(strstr(out, EVIL_TEXT "\\xe2\\x80\\xae\\xc2\\x9b"));
	free(out);
	out = run_cli(f, cmd_status, reply, args, 1, &rc, &len);
	assert_int_equal(rc, 1);	/* degraded */
	assert_no_raw_controls("tlsguard status --check", out, len);
	assert_non_null(strstr(out, "degraded: " EVIL_TEXT));
	free(out);
	free(reply);
}

static void test_status_json(void **state)
{
	struct fixture *f = *state;
	char *reply = evil_status(), *out, *args[] = { "-o", "json" };
	json_object *o;
	size_t len;
	int rc;

	out = run_cli(f, cmd_status, reply, args, 2, &rc, &len);
	assert_int_equal(rc, 0);
	assert_no_raw_controls("tlsguard status -o json", out, len);
	o = json_tokener_parse(out);	/* pretty-printed: one document */
	assert_non_null(o);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(o, "policy"),
									  "source")),
			    EVIL "\xe2\x80\xae\xc2\x9b");
	json_object_put(o);
	free(out);
	free(reply);
}

/* ---- output paths: policy messages and log lines ------------------------------ */

static void test_policy_messages(void **state)
{
	/* YAML's double-quoted escapes put any byte in a key or a value */
	static const char yaml[] =
		"\"mo\\e]0;pwned\\ade\": audit\n"
		"destinations:\n"
		"  - name: \"s\\e[2J\"\n"
		"    hosts: [\"a\\x1b.example\"]\n"
		"    cidrs: [\"10.0.0.1\\u202e/8\"]\n";
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d), -EINVAL);
	assert_int_equal(d.n, 3);
	for (size_t i = 0; i < d.n; i++)
		assert_no_raw_controls("policy message", d.msgs[i], strlen(d.msgs[i]));
	assert_string_equal(d.msgs[0], "t.yaml:1:1: unknown key \"mo\\x1b]0;pwned\\x07de\"");
	assert_string_equal(d.msgs[1], "t.yaml:4:13: invalid host name \"a\\x1b.example\": "
			    "invalid character 0x1b");
	assert_string_equal(d.msgs[2], "t.yaml:5:13: invalid CIDR \"10.0.0.1\\xe2\\x80\\xae/8\"");
	diag_free(&d);
}

static void test_log_lines(void **state)
{
	struct capture cap;
	size_t len;
	char *out;

	capture_start(&cap, STDERR_FILENO);
	tg_warn("workload %s sent %s", EVIL "\xff", "a\\b");
	tg_err("pod \"%s\"", "x\xc2\x9b" "y\n" "tlsguard: forged line");
	out = capture_end(&cap, &len);
	assert_no_raw_controls("log", out, len);
	/* one line per message, and a backslash of the caller's is left alone */
	assert_string_equal(out, "tlsguard: warning: workload " EVIL_TEXT "\\xff sent a\\b\n"
			    "tlsguard: pod \"x\\xc2\\x9by\\x0atlsguard: forged line\"\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_terminal_controls),
		cmocka_unit_test(test_backslash_is_escaped),
		cmocka_unit_test(test_valid_utf8_is_kept),
		cmocka_unit_test(test_invalid_utf8_bytes),
		cmocka_unit_test(test_cut_never_splits),
		cmocka_unit_test(test_escape_reads_back),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_json_parse_depth),
		cmocka_unit_test(test_json_member),
		cmocka_unit_test(test_json_tree_to_text),
		cmocka_unit_test(test_event_json_keeps_the_names),
		cmocka_unit_test(test_event_file_line),
		cmocka_unit_test(test_app_insights_item),
		cmocka_unit_test(test_events_text),
		cmocka_unit_test(test_events_json),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_policy_messages),
		cmocka_unit_test(test_log_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
