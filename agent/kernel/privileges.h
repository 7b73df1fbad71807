/* SPDX-License-Identifier: MIT */
/*
 * Dropping capabilities once the programs are loaded and attached. What the
 * agent still needs afterwards (docs/install-aks.md, "Capabilities"):
 *
 *   CAP_NET_ADMIN   cgroup_skb attach for new cgroups, sock_diag SOCK_DESTROY
 *   CAP_SYS_ADMIN   setns(2) into the network namespace of a blocked socket;
 *                   bpf(2) on the pinned maps and links (bpf_capable()
 *                   accepts it: kernels with kernel.unprivileged_bpf_disabled
 *                   check on every command), attaching to cgroups that
 *                   appear later
 *   CAP_SYS_PTRACE  opening /proc/PID/ns/net of another user's process
 *
 * Everything else goes: CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN covers them),
 * CAP_NET_BIND_SERVICE (the listeners are bound by then), and whatever a
 * plain root start brought along (CAP_DAC_OVERRIDE, CAP_SETUID,
 * CAP_SYS_MODULE, ...). Capabilities are per thread: call it before the
 * first thread starts, so every thread inherits the reduced set.
 */
#ifndef TLSGUARD_AGENT_PRIVILEGES_H
#define TLSGUARD_AGENT_PRIVILEGES_H

#include <stddef.h>
#include <stdint.h>

/*
 * Whether the effective set @effective (a mask of 1 << CAP_*) holds every
 * capability the agent needs (docs/install-aks.md, "Capabilities"): 0, or
 * -EPERM with one line in @msg naming the first one missing and what needs it.
 */
int privileges_missing(uint64_t effective, char *msg, size_t len);

/* privileges_missing() of the calling thread's effective set; -errno. */
int privileges_check(char *msg, size_t len);

/* The capabilities kept, as a mask of 1 << CAP_*. */
uint64_t privileges_kept_mask(void);

/*
 * Sets no_new_privs, clears the ambient and inheritable sets, keeps only
 * privileges_kept_mask() in the permitted and effective sets and drops the
 * rest from the bounding set where CAP_SETPCAP allows. 0, or -errno with one
 * line in @msg. On success @msg says what was dropped.
 */
int privileges_drop(char *msg, size_t len);

#endif /* TLSGUARD_AGENT_PRIVILEGES_H */
