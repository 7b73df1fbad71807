// SPDX-License-Identifier: MIT
/* libFuzzer: control socket requests (from any local peer that may connect). */
#include <stddef.h>
#include <stdint.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_control_request r;
	const char *err;

	if (control_parse_request((const char *)data, size, &r, &err) == 0)
		control_request_free(&r);
	return 0;
}
