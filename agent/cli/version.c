// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <bpf/libbpf.h>

#include "cli/cli.h"

static const char *yes_no(int probe)
{
	return probe == 1 ? "yes" : probe == 0 ? "no" : "unknown";
}

int cmd_version(int argc, char **argv)
{
	struct utsname u;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: tlsguard version\n\nPrint the version, the libbpf version and the "
		       "kernel features tlsguard probes for.\n");
		return TG_EXIT_OK;
	}
	printf("tlsguard %s\n", TLSGUARD_VERSION);
	printf("libbpf %s\n", libbpf_version_string());
	if (uname(&u) == 0)
		printf("kernel %s\n", u.release);
	printf("features:\n");
	printf("  cgroup/connect programs:     %s\n",
	       yes_no(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL)));
	printf("  cgroup_skb programs:         %s\n",
	       yes_no(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, NULL)));
	printf("  sk_storage maps:             %s\n",
	       yes_no(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL)));
	printf("  ring buffer maps:            %s\n",
	       yes_no(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL)));
	printf("  caller pid/comm at connect:  %s\n",
	       yes_no(libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
					      BPF_FUNC_get_current_pid_tgid, NULL)));
	return TG_EXIT_OK;
}
