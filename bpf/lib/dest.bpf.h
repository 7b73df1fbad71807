/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * "Which class protects this address?" for every lookup outside connect():
 * unconnected UDP sendmsg(), raw sockets' packets, the target of a proxy
 * request. One helper, so that another source of protected addresses (DNS
 * answers learned in the kernel) joins all of them with one more lookup.
 */
#ifndef TLSGUARD_DEST_BPF_H
#define TLSGUARD_DEST_BPF_H

#include "count.bpf.h"

/* The destination entry of @key (prefixlen 128, v4-mapped for IPv4), NULL when unprotected. */
static __always_inline const struct tg_dest_value *tg_addr_class(const struct tg_dest_key *key)
{
	return bpf_map_lookup_elem(&tg_dests, key);
}

/* The class id protecting @key, 0 when none does (or an exception lists it). */
static __always_inline __u32 tg_addr_class_id(const struct tg_dest_key *key)
{
	const struct tg_dest_value *dest = tg_addr_class(key);

	if (!dest || (dest->flags & TG_DEST_EXCEPTION))
		return 0;
	return dest->class_id;
}

#endif /* TLSGUARD_DEST_BPF_H */
