// SPDX-License-Identifier: MIT
/* libFuzzer: the Application Insights connection string parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connstr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_connstr c;
	char err[256];
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (connstr_parse(s, &c, err, sizeof(err)) == 0)
		connstr_free(&c);
	free(s);
	return 0;
}
