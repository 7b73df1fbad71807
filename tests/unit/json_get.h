/* SPDX-License-Identifier: MIT */
/* The unit tests' one way to read an event's member: o[a] or o[a][b] as a string. */
#ifndef TLSGUARD_TEST_JSON_GET_H
#define TLSGUARD_TEST_JSON_GET_H

#include <stddef.h>

#include <json-c/json.h>

/* The string of @o's member @a, or of its member @b when @b is not NULL; NULL when absent. */
static inline const char *get_str(json_object *o, const char *a, const char *b)
{
	json_object *x;

	if (!json_object_object_get_ex(o, a, &x))
		return NULL;
	if (b && !json_object_object_get_ex(x, b, &x))
		return NULL;
	return json_object_get_string(x);
}

#endif /* TLSGUARD_TEST_JSON_GET_H */
