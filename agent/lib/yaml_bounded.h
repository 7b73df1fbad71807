/* SPDX-License-Identifier: MIT */
/*
 * libyaml's document loader with bounds, for files an attacker may write (a
 * policy arrives through a ConfigMap). yaml_parser_load() accepts any depth,
 * size and aliasing, and libyaml's scanner costs time proportional to the
 * flow nesting depth for every token: 20,000 nested "[" take seconds, a few
 * MB hours. Here the document is built from the parser's events instead,
 * and the first event past a bound stops the load, at most a few thousand
 * tokens past where the bound was crossed: the time is linear in the input.
 *
 * Aliases are kept as libyaml keeps them (a node referenced twice), but the
 * nodes they make a reader walk again are counted: a "billion laughs" (lists
 * of aliases of lists of aliases) is refused at the alias that crosses the
 * bound, and an alias of a node that contains it at that alias.
 */
#ifndef TLSGUARD_AGENT_YAML_BOUNDED_H
#define TLSGUARD_AGENT_YAML_BOUNDED_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

struct tg_yaml_limits {
	unsigned int depth;		/* lists and mappings inside each other */
	size_t keys;			/* per mapping */
	size_t items;			/* per list */
	size_t scalar;			/* bytes of one value or key */
	size_t nodes;			/* values, lists and mappings in the document */
	size_t aliased;			/* nodes reached again through aliases, in all */
};

struct tg_yaml_error {
	size_t line, col;		/* 1-based, where the bound was crossed */
	char msg[160];
};

/*
 * Load the one document of the stream @y reads into @doc. Returns 0 (then
 * the caller owns @doc, which is empty for an empty stream), -EINVAL with
 * @err filled (a bound, a second document, an alias that is undefined or
 * recursive), -EIO when the YAML itself is invalid (@y's error fields say
 * why), or -ENOMEM. On failure @doc needs no cleanup.
 */
int yaml_load_bounded(yaml_parser_t *y, const struct tg_yaml_limits *lim, yaml_document_t *doc,
		      struct tg_yaml_error *err);

#endif /* TLSGUARD_AGENT_YAML_BOUNDED_H */
