/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TG_OPAQUE(x): x, with the compiler forgetting what it knows about it.
 *
 * The parsers mask every index (TG_HELLO_MASK, 255) for the verifier. When
 * clang can prove a mask is a no-op (the loop bound already keeps the index
 * below it) it drops the mask, or turns the indexed reads into a pointer that
 * walks the buffer. Verifiers from 6.6 on still see the loop end; older ones
 * (Debian's 6.1) walk it past the end of the map value and reject the
 * program. Hiding the index behind an empty asm keeps the mask in the object.
 * Outside BPF it is the value itself.
 */
#ifndef TLSGUARD_OPAQUE_H
#define TLSGUARD_OPAQUE_H

#ifdef __bpf__
#define TG_OPAQUE(x)						\
	({							\
		__typeof__(x) tg_opaque_v = (x);		\
		__asm__ __volatile__("" : "+r"(tg_opaque_v));	\
		tg_opaque_v;					\
	})
#else
#define TG_OPAQUE(x)	(x)
#endif

#endif /* TLSGUARD_OPAQUE_H */
