// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define TG_LOOP_BATCH 16	/* epoll events taken per wait */

int tg_loop_open(struct tg_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->sigfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

void tg_loop_close(struct tg_loop *l)
{
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->sigfd = l->epfd = -1;
	l->ticks = NULL;
}

int tg_loop_add(struct tg_loop *l, struct tg_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

int tg_loop_listen(struct tg_loop *l, struct tg_watch *w, int fd,
		   void (*handle)(void *ctx, uint32_t events), void *ctx)
{
	*w = (struct tg_watch){ .fd = fd, .handle = handle, .ctx = ctx };
	if (listen(fd, 16) < 0)
		return -errno;
	return tg_loop_add(l, w, EPOLLIN);
}

int tg_loop_modify(struct tg_loop *l, struct tg_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void tg_loop_remove(struct tg_loop *l, struct tg_watch *w)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

static void on_signalfd(void *ctx, uint32_t events)
{
	struct tg_loop *l = ctx;
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == sizeof(si))
		l->on_signal(l->signal_ctx, (int)si.ssi_signo);
}

int tg_loop_signals(struct tg_loop *l, const sigset_t *mask, void (*fn)(void *ctx, int signo),
		    void *ctx)
{
	if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
		return -errno;
	l->sigfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sigfd < 0)
		return -errno;
	l->on_signal = fn;
	l->signal_ctx = ctx;
	l->w_signal = (struct tg_watch){ .fd = l->sigfd, .handle = on_signalfd, .ctx = l };
	return tg_loop_add(l, &l->w_signal, EPOLLIN);
}

void tg_loop_add_tick(struct tg_loop *l, struct tg_tick *t)
{
	t->ran = false;
	t->next = l->ticks;
	l->ticks = t;
}

int tg_loop_dispatch(struct tg_loop *l, int timeout_ms)
{
	struct epoll_event evs[TG_LOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, TG_LOOP_BATCH, timeout_ms);

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct tg_watch *w = evs[i].data.ptr;

		w->handle(w->ctx, evs[i].events);
	}
	return n;
}

void tg_loop_run_ticks(struct tg_loop *l)
{
	struct timespec now;
	uint64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	for (struct tg_tick *t = l->ticks; t; t = t->next) {
		uint64_t slot = ms / (t->period_ms ? t->period_ms : 1);

		if (t->ran && slot == t->last_slot)
			continue;
		t->ran = true;
		t->last_slot = slot;
		t->fn(t->ctx);
	}
}
