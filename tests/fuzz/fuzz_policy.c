// SPDX-License-Identifier: MIT
/* libFuzzer: the policy loader (YAML from an operator, or from a ConfigMap). */
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;

	if (policy_load_buffer("fuzz.yaml", (const char *)data, size, &p, &diag) == 0)
		policy_free(p);
	diag_free(&diag);
	return 0;
}
