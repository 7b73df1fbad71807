/* SPDX-License-Identifier: MIT */
/*
 * Enum values to the names the JSON, the logs and the text renderers show:
 * a table with designated initializers ({ [TG_X] = "x", ... }) and one
 * bounds-checked lookup, in place of a switch per enum.
 */
#ifndef TLSGUARD_AGENT_ENUM_NAME_H
#define TLSGUARD_AGENT_ENUM_NAME_H

#include <stddef.h>

/*
 * @names[@v], or @fallback when @v is past the table's @n entries or its
 * entry was left out (NULL). @fallback may be NULL.
 */
const char *tg_enum_name(const char *const *names, size_t n, unsigned long v, const char *fallback);

/* tg_enum_name() on an array whose size the compiler knows. */
#define TG_ENUM_NAME(names, v, fallback) \
	tg_enum_name((names), sizeof(names) / sizeof((names)[0]), (v), (fallback))

#endif /* TLSGUARD_AGENT_ENUM_NAME_H */
