// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "reload.h"

int reload_init(struct tg_reload *r)
{
	memset(r, 0, sizeof(*r));
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return r->efd < 0 ? -errno : 0;
}

static void free_prev(struct tg_dest_table *t)
{
	for (size_t id = 0; id < TG_MAX_CLASSES; id++)
		free((char *)t->class_names[id]);
	memset(t, 0, sizeof(*t));
}

/* The class names of @t, copied: the thread must not read the loop's table. */
static int copy_class_names(struct tg_dest_table *out, const struct tg_dest_table *t)
{
	memset(out, 0, sizeof(*out));
	for (size_t id = 1; t && id <= t->nclasses && id < TG_MAX_CLASSES; id++) {
		if (!t->class_names[id])
			continue;
		out->class_names[id] = strdup(t->class_names[id]);
		if (!out->class_names[id]) {
			free_prev(out);
			return -ENOMEM;
		}
		out->nclasses = id;
	}
	return 0;
}

static void *reload_main(void *arg)
{
	struct tg_reload *r = arg;
	uint64_t one = 1;

	/*
	 * Parsing a large file is seconds of CPU: at a lower priority than the
	 * event loop (nice applies per thread on Linux), which then keeps
	 * answering promptly even on a node with one free CPU.
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), TG_RELOAD_NICE))
		tg_debug("reload: cannot lower the thread's priority: %s", strerror(errno));
	r->result = prepare_policy(&r->opts, &r->prep, &r->diag);
	if (write(r->efd, &one, sizeof(one)) != sizeof(one))
		tg_err("reload: cannot wake the event loop: %s", strerror(errno));
	return NULL;
}

int reload_start(struct tg_reload *r, const char *path, int mode_override,
		 const struct tg_dest_table *in_force, const char *sha256)
{
	int err;

	if (r->running)
		return -EBUSY;
	r->path = path ? strdup(path) : NULL;
	if ((path && !r->path) || copy_class_names(&r->prev, in_force)) {
		free(r->path);
		r->path = NULL;
		return -ENOMEM;
	}
	snprintf(r->unless_sha256, sizeof(r->unless_sha256), "%s", sha256 ? sha256 : "");
	r->opts = (struct tg_prepare_opts){
		.path = r->path,
		/* cgroups, control.group and secrets take effect at the next start only */
		.scope = TG_PREP_RELOAD,
		.mode_override = mode_override,
		.unless_sha256 = sha256 ? r->unless_sha256 : NULL,
		.prev = &r->prev,
	};
	r->result = 0;
	memset(&r->diag, 0, sizeof(r->diag));
	err = pthread_create(&r->thread, NULL, reload_main, r);
	if (err) {
		free(r->path);
		r->path = NULL;
		free_prev(&r->prev);
		return -err;
	}
	r->running = true;
	return 0;
}

void reload_collect(struct tg_reload *r)
{
	uint64_t v;

	if (!r->running)
		return;
	pthread_join(r->thread, NULL);
	r->running = false;
	if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		tg_debug("reload: eventfd read: %s", strerror(errno));
	free(r->path);
	r->path = NULL;
	free_prev(&r->prev);
}

void reload_release(struct tg_reload *r)
{
	prepared_free(&r->prep);
	diag_free(&r->diag);
	dests_free(&r->next);
	r->applying = false;
}

void reload_close(struct tg_reload *r)
{
	/* a thread may be waiting for a DNS server: it finishes, then everything goes */
	reload_collect(r);
	reload_release(r);
	if (r->efd >= 0)
		close(r->efd);
	r->efd = -1;
}
