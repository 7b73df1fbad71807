// SPDX-License-Identifier: MIT
#include "enum_name.h"

const char *tg_enum_name(const char *const *names, size_t n, unsigned long v, const char *fallback)
{
	return v < n && names[v] ? names[v] : fallback;
}
