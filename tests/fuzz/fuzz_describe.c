// SPDX-License-Identifier: MIT
/* libFuzzer: describing a flow's first payload bytes (untrusted, from any workload). */
#include <stddef.h>
#include <stdint.h>

#include "describe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_payload_desc d;

	describe_payload(data, size, &d);
	return 0;
}
