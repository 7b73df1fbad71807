/* SPDX-License-Identifier: MIT */
/*
 * The event loop every long-running part of the agent shares: one epoll fd,
 * the signals it takes through a signalfd, the fds modules watch and the
 * periodic ticks. A module gets the loop (never the daemon) and registers its
 * own fds with a struct tg_watch it owns; the loop calls watch->handle(ctx,
 * epoll events) when an fd is ready (systemd's sd-event style, kept small).
 */
#ifndef TLSGUARD_LOOP_H
#define TLSGUARD_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* One fd in the loop and who handles it. The owner keeps it alive while added. */
struct tg_watch {
	int fd;
	void (*handle)(void *ctx, uint32_t events);
	void *ctx;
};

/*
 * A periodic tick: fn(ctx) runs from tg_loop_run_ticks() when the monotonic
 * clock has entered a new period_ms slot since the last run (the first call
 * runs it). A 1000 ms tick runs once per monotonic second.
 */
struct tg_tick {
	uint64_t period_ms;
	void (*fn)(void *ctx);
	void *ctx;
	uint64_t last_slot;
	bool ran;
	struct tg_tick *next;
};

struct tg_loop {
	int epfd;
	int sigfd;			/* -1: no signals taken */
	struct tg_watch w_signal;
	void (*on_signal)(void *ctx, int signo);
	void *signal_ctx;
	struct tg_tick *ticks;
};

/* Create the epoll fd. 0 or -errno. tg_loop_close() is safe after a failure. */
int tg_loop_open(struct tg_loop *l);
void tg_loop_close(struct tg_loop *l);

/*
 * Take the signals of @mask through a signalfd watched by the loop: they are
 * blocked for the calling thread (threads started later inherit the mask),
 * and fn(ctx, signo) runs for each one that arrives. 0 or -errno.
 */
int tg_loop_signals(struct tg_loop *l, const sigset_t *mask, void (*fn)(void *ctx, int signo),
		    void *ctx);

/* Watch w->fd for @events (EPOLLIN, ...); change them; stop watching. 0 or -errno. */
int tg_loop_add(struct tg_loop *l, struct tg_watch *w, uint32_t events);
int tg_loop_modify(struct tg_loop *l, struct tg_watch *w, uint32_t events);
void tg_loop_remove(struct tg_loop *l, struct tg_watch *w);

/*
 * Listen on the bound stream socket @fd and watch it: handle(ctx, events)
 * runs when a connection waits to be accepted. 0 or -errno; @fd stays the
 * caller's to close either way.
 */
int tg_loop_listen(struct tg_loop *l, struct tg_watch *w, int fd,
		   void (*handle)(void *ctx, uint32_t events), void *ctx);

/* Add a tick (the caller owns @t, set up with period_ms, fn, ctx). Never fails. */
void tg_loop_add_tick(struct tg_loop *l, struct tg_tick *t);

/*
 * Wait up to @timeout_ms (0: only what is ready; -1: forever) and run the
 * handlers of the ready fds. The number of fds handled, or -errno (-EINTR
 * when a signal interrupted the wait).
 */
int tg_loop_dispatch(struct tg_loop *l, int timeout_ms);

/* Run the ticks whose period has come. */
void tg_loop_run_ticks(struct tg_loop *l);

#endif /* TLSGUARD_LOOP_H */
