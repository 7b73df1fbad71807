/* SPDX-License-Identifier: MIT */
/*
 * A BPF ring buffer consumer that advances the consumer position only after
 * the caller said the batch is safe (journaled): libbpf's ring_buffer__consume()
 * moves it past each record before the next, so a SIGKILL between reading a
 * record and writing it down would lose it without a trace. Here a batch of
 * records is handed to @on_record, then @on_commit runs (one journal write +
 * fdatasync), and only then does the kernel see the space as free. The ring
 * buffer map is pinned, so records not committed before a crash are read
 * again by the next agent: at least once, never silently lost.
 */
#ifndef TLSGUARD_RINGREAD_H
#define TLSGUARD_RINGREAD_H

#include <stddef.h>
#include <stdint.h>

struct tg_ringread;

typedef int (*ringread_record_fn)(void *ctx, void *data, size_t size);
typedef void (*ringread_commit_fn)(void *ctx);

/* NULL + errno. @map_fd: a BPF_MAP_TYPE_RINGBUF (borrowed). */
struct tg_ringread *ringread_new(int map_fd, ringread_record_fn on_record,
				 ringread_commit_fn on_commit, void *ctx);
void ringread_free(struct tg_ringread *r);

/* The map fd: readable (EPOLLIN) when records wait. */
int ringread_fd(const struct tg_ringread *r);

/*
 * Read what is there in batches of at most @batch_max records, committing
 * each batch before the consumer position moves. Returns records read.
 */
uint64_t ringread_consume(struct tg_ringread *r, size_t batch_max);

#endif /* TLSGUARD_RINGREAD_H */
