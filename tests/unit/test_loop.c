// SPDX-License-Identifier: MIT
/* The event loop (agent/lib/loop.c) over real fds: pipes, an eventfd, a timerfd, a signal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

struct seen {
	int calls;
	uint32_t events;
	int fd;
	struct tg_loop *loop;
	struct tg_watch *remove;	/* removed by the handler, when set */
};

static void on_ready(void *ctx, uint32_t events)
{
	struct seen *s = ctx;
	uint64_t v;

	s->calls++;
	s->events = events;
	if (events & EPOLLIN)
		(void)!read(s->fd, &v, sizeof(v));	/* drain: level-triggered */
	if (s->remove)
		tg_loop_remove(s->loop, s->remove);
}

static void test_watch_fires_only_when_ready(void **state)
{
	struct tg_loop l;
	struct seen a = { 0 }, b = { 0 };
	struct tg_watch wa, wb;
	int pa[2], pb[2];

	assert_int_equal(tg_loop_open(&l), 0);
	assert_int_equal(pipe(pa), 0);
	assert_int_equal(pipe(pb), 0);
	a.fd = pa[0];
	b.fd = pb[0];
	wa = (struct tg_watch){ .fd = pa[0], .handle = on_ready, .ctx = &a };
	wb = (struct tg_watch){ .fd = pb[0], .handle = on_ready, .ctx = &b };
	assert_int_equal(tg_loop_add(&l, &wa, EPOLLIN), 0);
	assert_int_equal(tg_loop_add(&l, &wb, EPOLLIN), 0);
	assert_int_equal(tg_loop_add(&l, &wa, EPOLLIN), -EEXIST);	/* errors come back as -errno */

	assert_int_equal(tg_loop_dispatch(&l, 0), 0);	/* nothing ready: no handler */
	assert_int_equal(a.calls + b.calls, 0);
	assert_int_equal(write(pb[1], "x", 1), 1);
	assert_int_equal(tg_loop_dispatch(&l, 1000), 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_true(b.events & EPOLLIN);

	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
	tg_loop_close(&l);
}

static void test_modify_and_remove(void **state)
{
	struct tg_loop l;
	struct seen s = { 0 }, e = { 0 };
	struct tg_watch w, we;
	int p[2], efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(efd >= 0);
	assert_int_equal(tg_loop_open(&l), 0);
	assert_int_equal(pipe(p), 0);
	/* the write end: writable at once, but only once asked for EPOLLOUT */
	s.fd = p[1];
	w = (struct tg_watch){ .fd = p[1], .handle = on_ready, .ctx = &s };
	assert_int_equal(tg_loop_add(&l, &w, EPOLLIN), 0);
	assert_int_equal(tg_loop_dispatch(&l, 0), 0);
	assert_int_equal(tg_loop_modify(&l, &w, EPOLLOUT), 0);
	assert_int_equal(tg_loop_dispatch(&l, 0), 1);
	assert_int_equal(s.calls, 1);
	assert_true(s.events & EPOLLOUT);
	assert_int_equal(tg_loop_modify(&l, &w, EPOLLIN), 0);
	assert_int_equal(tg_loop_dispatch(&l, 0), 0);

	/* an eventfd removed by its own handler fires once, though still readable */
	e.fd = -1;	/* not drained */
	e.loop = &l;
	we = (struct tg_watch){ .fd = efd, .handle = on_ready, .ctx = &e };
	e.remove = &we;
	assert_int_equal(tg_loop_add(&l, &we, EPOLLIN), 0);
	assert_int_equal(eventfd_write(efd, 1), 0);
	assert_int_equal(tg_loop_dispatch(&l, 0), 1);
	assert_int_equal(tg_loop_dispatch(&l, 0), 0);
	assert_int_equal(e.calls, 1);
	tg_loop_remove(&l, &w);
	assert_int_equal(tg_loop_modify(&l, &w, EPOLLOUT), -ENOENT);
	assert_int_equal(tg_loop_dispatch(&l, 0), 0);
	assert_int_equal(s.calls, 1);

	close(efd);
	close(p[0]);
	close(p[1]);
	tg_loop_close(&l);
}

static void test_timerfd_wakes_the_wait(void **state)
{
	struct itimerspec its = { .it_value = { .tv_nsec = 20 * 1000 * 1000 } };
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct seen s = { .fd = tfd };
	struct tg_watch w = { .fd = tfd, .handle = on_ready, .ctx = &s };
	struct tg_loop l;

	assert_true(tfd >= 0);
	assert_int_equal(tg_loop_open(&l), 0);
	assert_int_equal(tg_loop_add(&l, &w, EPOLLIN), 0);
	assert_int_equal(timerfd_settime(tfd, 0, &its, NULL), 0);
	assert_int_equal(tg_loop_dispatch(&l, 5000), 1);	/* 20 ms, not the 5 s timeout */
	assert_int_equal(s.calls, 1);
	close(tfd);
	tg_loop_close(&l);
}

struct ticks {
	int runs;
};

static void on_tick(void *ctx)
{
	((struct ticks *)ctx)->runs++;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_ticks_run_once_per_period(void **state)
{
	struct ticks fast = { 0 }, slow = { 0 };
	struct tg_tick tf = { .period_ms = 100, .fn = on_tick, .ctx = &fast };
	struct tg_tick ts = { .period_ms = 3600 * 1000, .fn = on_tick, .ctx = &slow };
	struct timespec pause = { 0 };
	uint64_t now;
	struct tg_loop l;

	assert_int_equal(tg_loop_open(&l), 0);
	tg_loop_add_tick(&l, &tf);
	tg_loop_add_tick(&l, &ts);
	tg_loop_run_ticks(&l);	/* the first call runs every tick */
	assert_int_equal(fast.runs, 1);
	assert_int_equal(slow.runs, 1);
	/* 10 ms into the next 100 ms period: one run there, however often called */
	now = mono_ms();
	pause.tv_nsec = (long)((now / 100 + 1) * 100 + 10 - now) * 1000000L;
	nanosleep(&pause, NULL);
	tg_loop_run_ticks(&l);
	tg_loop_run_ticks(&l);
	tg_loop_run_ticks(&l);
	assert_int_equal(fast.runs, 2);
	assert_int_equal(slow.runs, 1);	/* its period has not come again */
	tg_loop_close(&l);
}

static int got_signo;

static void on_signal(void *ctx, int signo)
{
	(*(int *)ctx)++;
	got_signo = signo;
}

static void test_signals_arrive_as_callbacks(void **state)
{
	struct tg_loop l;
	sigset_t mask;
	int count = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	assert_int_equal(tg_loop_open(&l), 0);
	assert_int_equal(tg_loop_signals(&l, &mask, on_signal, &count), 0);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);	/* blocked: it waits in the signalfd */
	assert_int_equal(tg_loop_dispatch(&l, 1000), 1);
	assert_int_equal(count, 1);
	assert_int_equal(got_signo, SIGUSR1);
	tg_loop_close(&l);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

static void on_connection(void *ctx, uint32_t events)
{
	struct seen *s = ctx;
	int fd = accept(s->fd, NULL, NULL);

	s->calls++;
	s->events = events;
	if (fd >= 0)
		close(fd);
}

/* A bound socket listens and its waiting connection reaches the handler; an unbound one fails. */
static void test_listen_watches_connections(void **state)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int lfd, cfd, bad = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct seen s = { 0 };
	struct tg_watch w;
	struct tg_loop l;

	/* abstract name: nothing on disk to clean up */
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "tg-test-loop-%d", getpid());
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(lfd >= 0 && cfd >= 0 && bad >= 0);
	assert_int_equal(tg_loop_open(&l), 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	s.fd = lfd;
	assert_int_equal(tg_loop_listen(&l, &w, lfd, on_connection, &s), 0);
	assert_int_equal(w.fd, lfd);
	assert_int_equal(tg_loop_dispatch(&l, 0), 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(tg_loop_dispatch(&l, 1000), 1);
	assert_int_equal(s.calls, 1);
	assert_true(s.events & EPOLLIN);
	assert_int_equal(tg_loop_listen(&l, &w, bad, on_connection, &s), -EOPNOTSUPP);
	tg_loop_close(&l);
	close(bad);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_fires_only_when_ready),
		cmocka_unit_test(test_modify_and_remove),
		cmocka_unit_test(test_timerfd_wakes_the_wait),
		cmocka_unit_test(test_ticks_run_once_per_period),
		cmocka_unit_test(test_signals_arrive_as_callbacks),
		cmocka_unit_test(test_listen_watches_connections),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
