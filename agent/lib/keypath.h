/* SPDX-License-Identifier: MIT */
/*
 * The dotted path of the JSON member a walk is at ("workload.pod"): the App
 * Insights envelope flattens events into properties by it (ai_envelope.c),
 * field protection binds each encrypted value to it (fieldcrypt.c). A walk
 * pushes a key on the way down and cuts back to the length it saved on the
 * way up; the path is always NUL-terminated.
 */
#ifndef TLSGUARD_AGENT_KEYPATH_H
#define TLSGUARD_AGENT_KEYPATH_H

#include <stddef.h>

struct tg_keypath {
	char *buf;		/* "" at the top */
	size_t len, cap;
};

/* An empty path. 0 or -ENOMEM. */
int tg_keypath_init(struct tg_keypath *p);

/* Append ".@key" (@key alone at the top). 0 or -ENOMEM (the path unchanged). */
int tg_keypath_push(struct tg_keypath *p, const char *key);

/* Back to @len, a length saved before a push. */
void tg_keypath_cut(struct tg_keypath *p, size_t len);

void tg_keypath_free(struct tg_keypath *p);

#endif /* TLSGUARD_AGENT_KEYPATH_H */
