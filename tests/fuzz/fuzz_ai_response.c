// SPDX-License-Identifier: MIT
/*
 * libFuzzer: Application Insights response bodies (ai_response_parse) and
 * Retry-After values. The first byte picks how many items the request had,
 * so indexes in errors[] land inside and outside the batch.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_ai_response r;
	size_t nsent, accounted;
	uint64_t delay;
	char *s;

	if (!size)
		return 0;
	nsent = data[0];
	data++;
	size--;
	if (!ai_response_parse((const char *)data, size, nsent, &r)) {
		/* every index named once, inside the request, ascending */
		for (size_t i = 0; i < r.nretry; i++)
			if (r.retry[i] >= nsent || (i && r.retry[i] <= r.retry[i - 1]))
				abort();
		for (size_t i = 0; i < r.nlost; i++)
			if (r.lost[i] >= nsent || (i && r.lost[i] <= r.lost[i - 1]))
				abort();
		accounted = r.nretry + r.nlost + r.unaccounted;
		if (accounted > nsent)
			abort();
		ai_response_free(&r);
	}
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	ai_retry_after_parse(s, 1795374000, &delay);
	free(s);
	return 0;
}
