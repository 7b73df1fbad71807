// SPDX-License-Identifier: MIT
/* Ring buffer consumer with commit-before-advance: see ringread.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "ringread.h"

struct tg_ringread {
	int fd;
	size_t page, mask;
	unsigned long *consumer_pos;	/* RW page */
	unsigned long *producer_pos;	/* RO: producer page, then the data twice */
	uint8_t *data;
	size_t ro_len;
	ringread_record_fn on_record;
	ringread_commit_fn on_commit;
	void *ctx;
};

struct tg_ringread *ringread_new(int map_fd, ringread_record_fn on_record,
				 ringread_commit_fn on_commit, void *ctx)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct tg_ringread *r;
	void *p;

	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return NULL;
	if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = map_fd;
	r->page = sysconf(_SC_PAGESIZE);
	r->mask = info.max_entries - 1;
	r->on_record = on_record;
	r->on_commit = on_commit;
	r->ctx = ctx;
	p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	r->consumer_pos = p;
	/* the data area is mapped twice in a row: a record that wraps reads straight */
	r->ro_len = r->page + 2 * (size_t)info.max_entries;
	p = mmap(NULL, r->ro_len, PROT_READ, MAP_SHARED, map_fd, r->page);
	if (p == MAP_FAILED)
		goto fail;
	r->producer_pos = p;
	r->data = (uint8_t *)p + r->page;
	return r;
fail:
	ringread_free(r);
	return NULL;
}

void ringread_free(struct tg_ringread *r)
{
	int saved = errno;

	if (!r)
		return;
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page);
	if (r->producer_pos)
		munmap(r->producer_pos, r->ro_len);
	free(r);
	errno = saved;
}

int ringread_fd(const struct tg_ringread *r)
{
	return r->fd;
}

static size_t roundup_len(uint32_t len)
{
	len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
	return (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
}

uint64_t ringread_consume(struct tg_ringread *r, size_t batch_max)
{
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE), prod;
	uint64_t total = 0;
	size_t n;

	do {
		n = 0;
		prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
		while (cons < prod && n < batch_max) {
			uint32_t *hdr = (uint32_t *)(r->data + (cons & r->mask));
			uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

			if (len & BPF_RINGBUF_BUSY_BIT)
				break;	/* still being written: the next wakeup brings it */
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				r->on_record(r->ctx, (uint8_t *)hdr + BPF_RINGBUF_HDR_SZ, len);
				n++;
			}
			cons += roundup_len(len);
		}
		if (n && r->on_commit)
			r->on_commit(r->ctx);
		/* only now may the kernel reuse the space (and a crash re-read nothing) */
		__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
		total += n;
	} while (n == batch_max);
	return total;
}
