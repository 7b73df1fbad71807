// SPDX-License-Identifier: MIT
/*
 * libFuzzer: what the workload module reads from outside — Kubernetes API
 * answers (a watch-stream line, a PodList page) and cgroup paths. The first
 * byte picks the parser.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wl_pod_table t = { 0 };
	struct wl_cgroup_info info;
	char rv[WL_RV_MAX] = "", cont[256];
	char *s;

	if (!size)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		workload_apply_watch_event(&t, s, size - 1, rv);
		break;
	case 1:
		workload_apply_podlist(&t, s, size - 1, false, rv, cont, sizeof(cont));
		break;
	default:
		workload_parse_cgroup(s, &info);
		break;
	}
	wl_pod_table_clear(&t);
	free(s);
	return 0;
}
