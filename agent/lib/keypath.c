// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keypath.h"

int tg_keypath_init(struct tg_keypath *p)
{
	p->buf = calloc(1, 64);
	p->len = 0;
	p->cap = p->buf ? 64 : 0;
	return p->buf ? 0 : -ENOMEM;
}

int tg_keypath_push(struct tg_keypath *p, const char *key)
{
	size_t klen = strlen(key), need = p->len + 1 + klen + 1;

	if (need > p->cap) {
		char *b = realloc(p->buf, need * 2);

		if (!b)
			return -ENOMEM;
		p->buf = b;
		p->cap = need * 2;
	}
	if (p->len)
		p->buf[p->len++] = '.';
	memcpy(p->buf + p->len, key, klen + 1);
	p->len += klen;
	return 0;
}

void tg_keypath_cut(struct tg_keypath *p, size_t len)
{
	p->len = len;
	p->buf[len] = '\0';
}

void tg_keypath_free(struct tg_keypath *p)
{
	free(p->buf);
	p->buf = NULL;
	p->len = p->cap = 0;
}
