// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_bounded.h"

struct open_node {
	int id;
	int key;			/* a mapping's key waiting for its value; 0: none */
	size_t n;			/* entries or keys so far */
	size_t size;			/* nodes in it, aliases expanded */
};

struct anchor {
	char *name;
	int id;
};

struct loader {
	yaml_document_t *doc;
	const struct tg_yaml_limits *lim;
	struct tg_yaml_error *err;
	bool doc_started;
	struct open_node *stack;	/* lim->depth of them */
	unsigned int depth;
	size_t *size;			/* per node id; 0 while the node is open */
	size_t size_cap;
	struct anchor *anchors;		/* open addressing, power-of-two capacity */
	size_t anchors_cap, nanchors;
	size_t aliased;
};

static int __attribute__((format(printf, 3, 4)))
fail(struct loader *l, const yaml_mark_t *at, const char *fmt, ...)
{
	va_list ap;

	l->err->line = at->line + 1;
	l->err->col = at->column + 1;
	va_start(ap, fmt);
	vsnprintf(l->err->msg, sizeof(l->err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- anchors: name → node id ----------------------------------------------- */

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct anchor *anchor_slot(struct anchor *v, size_t cap, const char *name)
{
	for (size_t i = hash(name) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!v[i].name || !strcmp(v[i].name, name))
			return &v[i];
}

static int anchors_grow(struct loader *l)
{
	size_t cap = l->anchors_cap ? l->anchors_cap * 2 : 64;
	struct anchor *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->anchors_cap; i++)
		if (l->anchors[i].name)
			*anchor_slot(v, cap, l->anchors[i].name) = l->anchors[i];
	free(l->anchors);
	l->anchors = v;
	l->anchors_cap = cap;
	return 0;
}

/* A later anchor of the same name wins, as YAML says. */
static int anchor_put(struct loader *l, const char *name, int id)
{
	struct anchor *a;

	if ((l->nanchors + 1) * 2 > l->anchors_cap && anchors_grow(l))
		return -ENOMEM;
	a = anchor_slot(l->anchors, l->anchors_cap, name);
	if (!a->name) {
		a->name = strdup(name);
		if (!a->name)
			return -ENOMEM;
		l->nanchors++;
	}
	a->id = id;
	return 0;
}

static int anchor_get(const struct loader *l, const char *name)
{
	const struct anchor *a;

	if (!l->anchors_cap)
		return 0;
	a = anchor_slot(l->anchors, l->anchors_cap, name);
	return a->name ? a->id : 0;
}

/* ---- nodes ---------------------------------------------------------------- */

static size_t node_count(const struct loader *l)
{
	return (size_t)(l->doc->nodes.top - l->doc->nodes.start);
}

static int track_size(struct loader *l, int id, size_t size)
{
	if ((size_t)id >= l->size_cap) {
		size_t cap = l->size_cap ? l->size_cap * 2 : 256;
		size_t *v;

		while (cap <= (size_t)id)
			cap *= 2;
		v = realloc(l->size, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + l->size_cap, 0, (cap - l->size_cap) * sizeof(*v));
		l->size = v;
		l->size_cap = cap;
	}
	l->size[id] = size;
	return 0;
}

/* Make @id the next entry of the open list or mapping, if any; it holds @size nodes. */
static int attach(struct loader *l, int id, size_t size)
{
	struct open_node *top;
	yaml_node_t *parent;

	if (!l->depth)
		return 0;	/* the root */
	top = &l->stack[l->depth - 1];
	parent = yaml_document_get_node(l->doc, top->id);
	top->size += size;
	if (parent->type == YAML_SEQUENCE_NODE) {
		if (++top->n > l->lim->items)
			return fail(l, &parent->start_mark, "a list of more than %zu entries",
				    l->lim->items);
		return yaml_document_append_sequence_item(l->doc, top->id, id) ? 0 : -ENOMEM;
	}
	if (!top->key) {
		if (++top->n > l->lim->keys)
			return fail(l, &parent->start_mark, "a mapping of more than %zu keys",
				    l->lim->keys);
		top->key = id;
		return 0;
	}
	if (!yaml_document_append_mapping_pair(l->doc, top->id, top->key, id))
		return -ENOMEM;
	top->key = 0;
	return 0;
}

static int add_node(struct loader *l, const yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL;
	yaml_node_t *n;
	int id, ret;

	if (node_count(l) >= l->lim->nodes)
		return fail(l, &ev->start_mark, "more than %zu values, lists and mappings in all",
			    l->lim->nodes);
	if (ev->type != YAML_SCALAR_EVENT && l->depth >= l->lim->depth)
		return fail(l, &ev->start_mark, "lists and mappings nested more than %u deep",
			    l->lim->depth);
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		if (ev->data.scalar.length > l->lim->scalar)
			return fail(l, &ev->start_mark, "a value longer than %zu bytes", l->lim->scalar);
		anchor = ev->data.scalar.anchor;
		id = yaml_document_add_scalar(l->doc, NULL, ev->data.scalar.value,
					      (int)ev->data.scalar.length, ev->data.scalar.style);
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		id = yaml_document_add_sequence(l->doc, NULL, ev->data.sequence_start.style);
		break;
	default:
		anchor = ev->data.mapping_start.anchor;
		id = yaml_document_add_mapping(l->doc, NULL, ev->data.mapping_start.style);
		break;
	}
	if (!id)
		return -ENOMEM;
	n = yaml_document_get_node(l->doc, id);
	n->start_mark = ev->start_mark;
	n->end_mark = ev->end_mark;
	/* a scalar is complete at once; a list or mapping when it ends (size 0 until then) */
	ret = track_size(l, id, ev->type == YAML_SCALAR_EVENT);
	if (!ret && anchor)
		ret = anchor_put(l, (const char *)anchor, id);
	if (!ret)
		ret = attach(l, id, ev->type == YAML_SCALAR_EVENT);
	if (ret || ev->type == YAML_SCALAR_EVENT)
		return ret;
	l->stack[l->depth++] = (struct open_node){ .id = id, .size = 1 };
	return 0;
}

static int end_node(struct loader *l, const yaml_event_t *ev)
{
	struct open_node top = l->stack[--l->depth];

	yaml_document_get_node(l->doc, top.id)->end_mark = ev->end_mark;
	l->size[top.id] = top.size;
	if (l->depth)
		l->stack[l->depth - 1].size += top.size;
	return 0;
}

static int add_alias(struct loader *l, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	int id = anchor_get(l, name);
	size_t size;

	if (!id)
		return fail(l, &ev->start_mark, "alias *%.64s has no anchor &%.64s before it",
			    name, name);
	size = l->size[id];
	if (!size)
		return fail(l, &ev->start_mark, "alias *%.64s is inside the node it names", name);
	l->aliased += size;
	if (l->aliased > l->lim->aliased)
		return fail(l, &ev->start_mark, "aliases expand to more than %zu nodes in all",
			    l->lim->aliased);
	return attach(l, id, size);
}

static int on_event(struct loader *l, const yaml_event_t *ev, bool *done)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (l->doc_started)
			return fail(l, &ev->start_mark,
				    "a policy is one YAML document; found another here");
		if (!yaml_document_initialize(l->doc, NULL, NULL, NULL,
					      ev->data.document_start.implicit, 1))
			return -ENOMEM;
		l->doc_started = true;
		l->doc->start_mark = ev->start_mark;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		l->doc->end_mark = ev->end_mark;
		return 0;
	case YAML_SCALAR_EVENT:
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return add_node(l, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return end_node(l, ev);
	case YAML_ALIAS_EVENT:
		return add_alias(l, ev);
	case YAML_STREAM_END_EVENT:
		*done = true;
		return 0;
	default:
		return 0;
	}
}

int yaml_load_bounded(yaml_parser_t *y, const struct tg_yaml_limits *lim, yaml_document_t *doc,
		      struct tg_yaml_error *err)
{
	struct loader l = { .doc = doc, .lim = lim, .err = err };
	bool done = false;
	int ret = 0;

	memset(doc, 0, sizeof(*doc));
	memset(err, 0, sizeof(*err));
	l.stack = calloc(lim->depth ? lim->depth : 1, sizeof(*l.stack));
	if (!l.stack)
		return -ENOMEM;
	while (!done && !ret) {
		yaml_event_t ev;

		if (!yaml_parser_parse(y, &ev)) {
			ret = y->error == YAML_MEMORY_ERROR ? -ENOMEM : -EIO;
			break;
		}
		ret = on_event(&l, &ev, &done);
		yaml_event_delete(&ev);
	}
	/* an empty stream: a document without nodes */
	if (!ret && !l.doc_started && !yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1))
		ret = -ENOMEM;
	else if (ret && l.doc_started)
		yaml_document_delete(doc);
	for (size_t i = 0; i < l.anchors_cap; i++)
		free(l.anchors[i].name);
	free(l.anchors);
	free(l.size);
	free(l.stack);
	return ret;
}
