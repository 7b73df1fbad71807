// SPDX-License-Identifier: MIT
/*
 * The control server (agent/serve/control.c) on a tg_loop (lib/loop.c), over a
 * real unix socket: a status request answered by the status callback, the
 * recent events filtered, a follower streamed a new event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "loop.h"

static int status_calls;

static json_object *fake_status(void *arg)
{
	json_object *o = json_object_new_object();

	status_calls++;
	json_object_object_add(o, "who", json_object_new_string(arg));
	return o;
}

struct server {
	char dir[64], path[108];
	struct tg_loop loop;
	struct tg_control ctl;
};

static int setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));

	snprintf(s->dir, sizeof(s->dir), "/tmp/tg-ctl-test.XXXXXX");
	if (!s || !mkdtemp(s->dir))
		return -1;
	snprintf(s->path, sizeof(s->path), "%s/tlsguard.sock", s->dir);
	if (tg_loop_open(&s->loop) ||
	    control_open(&s->ctl, &s->loop, s->path, NULL, fake_status, "unit-test"))
		return -1;
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct server *s = *state;

	control_close(&s->ctl);
	tg_loop_close(&s->loop);
	rmdir(s->dir);
	free(s);
	return 0;
}

static int connect_and_send(struct server *s, const char *line)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", s->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(send(fd, line, strlen(line), 0), (ssize_t)strlen(line));
	return fd;
}

/* Turn the loop until @fd has @n newline-terminated lines (or ~2 s pass); they go in @buf. */
static size_t read_lines(struct server *s, int fd, char *buf, size_t cap, int n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int round = 0; round < 200; round++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int lines = 0;

		tg_loop_dispatch(&s->loop, 10);
		while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
			ssize_t r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);

			if (r <= 0)
				break;
			len += r;
			buf[len] = '\0';
		}
		for (const char *c = buf; (c = strchr(c, '\n')); c++)
			lines++;
		if (lines >= n)
			break;
	}
	return len;
}

static void test_status_request_answered_by_the_callback(void **state)
{
	struct server *s = *state;
	char buf[4096];
	int fd = connect_and_send(s, "{\"v\":1,\"cmd\":\"status\"}\n");

	read_lines(s, fd, buf, sizeof(buf), 1);
	assert_string_equal(buf, "{\"v\":1,\"ok\":true,\"status\":{\"who\":\"unit-test\"}}\n");
	assert_int_equal(status_calls, 1);
	close(fd);
}

static void test_bad_request_says_why(void **state)
{
	struct server *s = *state;
	char buf[4096];
	int fd = connect_and_send(s, "{\"v\":1,\"cmd\":\"reboot\"}\n");

	read_lines(s, fd, buf, sizeof(buf), 1);
	assert_string_equal(buf, "{\"v\":1,\"ok\":false,\"error\":\"unknown command\"}\n");
	assert_int_equal(s->ctl.bad_requests, 1);
	close(fd);
}

static void test_recent_events_then_follow(void **state)
{
	struct server *s = *state;
	json_object *tls = json_tokener_parse("{\"type\":\"tls\",\"n\":1}");
	json_object *plain = json_tokener_parse("{\"type\":\"plaintext\",\"n\":2}");
	json_object *later = json_tokener_parse("{\"type\":\"plaintext\",\"n\":3}");
	char buf[4096];
	int fd;

	control_publish_event(&s->ctl, tls);
	control_publish_event(&s->ctl, plain);
	fd = connect_and_send(s, "{\"v\":1,\"cmd\":\"events\",\"type\":\"plaintext\",\"follow\":true}\n");
	read_lines(s, fd, buf, sizeof(buf), 1);
	assert_string_equal(buf, "{\"type\":\"plaintext\",\"n\":2}\n");	/* the recent, filtered */
	control_publish_event(&s->ctl, tls);	/* not for this follower */
	control_publish_event(&s->ctl, later);
	read_lines(s, fd, buf, sizeof(buf), 1);
	assert_string_equal(buf, "{\"type\":\"plaintext\",\"n\":3}\n");
	assert_int_equal(s->ctl.nclients, 1);
	close(fd);
	for (int i = 0; i < 20 && s->ctl.nclients; i++)
		tg_loop_dispatch(&s->loop, 10);	/* the follower left: its client goes */
	assert_int_equal(s->ctl.nclients, 0);
	json_object_put(tls);
	json_object_put(plain);
	json_object_put(later);
}

int main(void)
{
	/* the server answers root and control.group only (peer credentials) */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status_request_answered_by_the_callback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_request_says_why, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_events_then_follow, setup, teardown),
	};

	if (geteuid() != 0) {
		printf("control_server: skipped, the server answers root only\n");
		return 0;
	}
	return cmocka_run_group_tests_name("control_server", tests, NULL, NULL);
}
