// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <bpf/libbpf.h>

#include "commands.h"
#include "kernel_features.h"

int cmd_version(int argc, char **argv)
{
	struct tg_features f;
	struct utsname u;
	char msg[320];

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: tlsguard version\n\nPrint the version, the libbpf version and the "
		       "kernel features tlsguard probes for (run as root for the probes).\n");
		return TG_EXIT_OK;
	}
	printf("tlsguard %s\n", TLSGUARD_VERSION);
	printf("libbpf %s\n", libbpf_version_string());
	if (uname(&u) == 0)
		printf("kernel %s (tlsguard needs %s+)\n", u.release, TG_MIN_KERNEL);
	features_probe(&f);
	printf("required:\n");
	printf("  cgroup/connect programs:     %s\n", features_str(f.prog_cgroup_sock_addr));
	printf("  cgroup_skb programs:         %s\n", features_str(f.prog_cgroup_skb));
	printf("  LPM trie maps:               %s\n", features_str(f.map_lpm_trie));
	printf("  sk_storage maps:             %s\n", features_str(f.map_sk_storage));
	printf("  ring buffer maps:            %s\n", features_str(f.map_ringbuf));
	printf("  sk_storage at sock_release:  %s\n", features_str(f.sock_storage));
	printf("optional (a fallback is used when absent):\n");
	printf("  caller pid/comm at connect:  %s\n", features_str(f.current_task));
	printf("  caller cgroup at connect:    %s\n", features_str(f.current_cgroup));
	printf("  tail calls with subprograms: %s (else DNS learning runs as programs of its own)\n",
	       features_str(f.tail_call_in_subprogs));
	printf("  bpf_sock_destroy kfunc:      %s (not used: sock_diag SOCK_DESTROY everywhere)\n",
	       features_str(f.sock_destroy_kfunc));
	printf("  kernel BTF:                  %s (not needed: the programs use UAPI headers only)\n",
	       features_str(f.vmlinux_btf));
	if (features_check_required(&f, msg, sizeof(msg))) {
		printf("status: cannot run here: %s\n", msg);
		return TG_EXIT_FAIL;
	}
	printf("status: this kernel can run tlsguard\n");
	return TG_EXIT_OK;
}
