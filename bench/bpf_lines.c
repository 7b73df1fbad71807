// SPDX-License-Identifier: MIT
/*
 * bpf_lines: where a loaded BPF program spends its time, by source line.
 * Reads instruction addresses sampled by perf (one hexadecimal address per
 * line, as `perf script -F ip` prints them) and counts each against the
 * source line the kernel's jited_line_info places it on, for the program
 * and every one of its subprograms. Prints the busiest lines, with their
 * share of the samples that fell in the program.
 *
 *   perf record -e cpu-clock -F 20000 -a -o P -- sleep 8   (while it runs)
 *   perf script -i P -F ip | bpf_lines PROG_ID [TOP]
 *
 * perf itself annotates BPF code only when linked with libopcodes, which
 * Debian's perf is not; the kernel's line table needs no disassembler.
 * The program must still be loaded (bpftool prog show gives its id): e.g.
 * `verdict_cost --only TEXT --seconds 20` in the background. Samples land
 * on the instruction after a stall, so a helper call's cost shows on the
 * line of the call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

struct prog_lines {
	__u32 nlines, nfuncs;
	struct bpf_line_info *lines;	/* sorted by insn offset within each function */
	__u64 *addrs;			/* jited address of each line */
	__u64 *func_addrs;
	__u32 *func_lens;
	struct btf *btf;
};

struct line_count {
	const char *file, *text;
	__u32 line;
	long samples;
};

static int prog_lines_load(struct prog_lines *p, __u32 id)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = -EINVAL;

	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		goto out_close;
	p->nlines = info.nr_jited_line_info;
	p->nfuncs = info.nr_jited_ksyms;
	if (!p->nlines || info.nr_line_info != p->nlines || !info.btf_id) {
		fprintf(stderr, "bpf_lines: program %u has no line info (built without -g?)\n", id);
		goto out_close;
	}
	p->lines = calloc(p->nlines, sizeof(*p->lines));
	p->addrs = calloc(p->nlines, sizeof(*p->addrs));
	p->func_addrs = calloc(p->nfuncs, sizeof(*p->func_addrs));
	p->func_lens = calloc(p->nfuncs, sizeof(*p->func_lens));
	err = -ENOMEM;
	if (!p->lines || !p->addrs || !p->func_addrs || !p->func_lens)
		goto out_close;
	memset(&info, 0, sizeof(info));
	info.nr_line_info = p->nlines;
	info.line_info_rec_size = sizeof(*p->lines);
	info.line_info = (__u64)(unsigned long)p->lines;
	info.nr_jited_line_info = p->nlines;
	info.jited_line_info_rec_size = sizeof(*p->addrs);
	info.jited_line_info = (__u64)(unsigned long)p->addrs;
	info.nr_jited_ksyms = p->nfuncs;
	info.jited_ksyms = (__u64)(unsigned long)p->func_addrs;
	info.nr_jited_func_lens = p->nfuncs;
	info.jited_func_lens = (__u64)(unsigned long)p->func_lens;
	len = sizeof(info);
	err = -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		goto out_close;
	p->btf = btf__load_from_kernel_by_id(info.btf_id);
	err = p->btf ? 0 : -errno;
out_close:
	close(fd);
	return err;
}

/* The line an address of the program is on, or -1 when it is not the program's. */
static long line_of(const struct prog_lines *p, __u64 ip)
{
	long best = -1;
	__u32 i;

	for (i = 0; i < p->nfuncs; i++)
		if (ip >= p->func_addrs[i] && ip < p->func_addrs[i] + p->func_lens[i])
			break;
	if (i == p->nfuncs)
		return -1;
	for (i = 0; i < p->nlines; i++)
		if (p->addrs[i] <= ip && (best < 0 || p->addrs[i] > p->addrs[best]))
			best = i;
	return best;
}

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path ? path : "?";
}

static int by_samples(const void *a, const void *b)
{
	const struct line_count *x = a, *y = b;

	return (y->samples > x->samples) - (y->samples < x->samples);
}

/* Sum @hits (per line_info entry) by source line: entries of one line share file and number. */
static size_t sum_by_line(const struct prog_lines *p, const long *hits, struct line_count *out)
{
	size_t n = 0, k;

	for (__u32 i = 0; i < p->nlines; i++) {
		const char *file = btf__name_by_offset(p->btf, p->lines[i].file_name_off);
		__u32 line = BPF_LINE_INFO_LINE_NUM(p->lines[i].line_col);

		if (!hits[i])
			continue;
		for (k = 0; k < n; k++)
			if (out[k].line == line && out[k].file == file)
				break;
		if (k == n) {
			out[n].file = file;
			out[n].line = line;
			out[n].text = btf__name_by_offset(p->btf, p->lines[i].line_off);
			out[n++].samples = 0;
		}
		out[k].samples += hits[i];
	}
	qsort(out, n, sizeof(*out), by_samples);
	return n;
}

static int usage(void)
{
	fprintf(stderr, "usage: perf script -F ip | bpf_lines PROG_ID [TOP]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct prog_lines p = { 0 };
	struct line_count *lines = NULL;
	long *hits = NULL, in_prog = 0, outside = 0, at;
	unsigned long long ip;
	int top = argc > 2 ? atoi(argv[2]) : 30, ret = 1, err;
	size_t n;

	if (argc < 2 || argc > 3 || atoi(argv[1]) <= 0 || top <= 0)
		return usage();
	err = prog_lines_load(&p, atoi(argv[1]));
	if (err) {
		fprintf(stderr, "bpf_lines: program %s: %s\n", argv[1], strerror(-err));
		goto cleanup;
	}
	hits = calloc(p.nlines, sizeof(*hits));
	lines = calloc(p.nlines, sizeof(*lines));
	if (!hits || !lines)
		goto cleanup;
	while (scanf("%llx", &ip) == 1) {
		at = line_of(&p, ip);
		if (at < 0) {
			outside++;
			continue;
		}
		hits[at]++;
		in_prog++;
	}
	printf("%ld samples in program %s (its subprograms too), %ld elsewhere\n", in_prog, argv[1],
	       outside);
	n = sum_by_line(&p, hits, lines);
	for (size_t i = 0; i < n && i < (size_t)top; i++)
		printf("%7ld %5.1f%%  %s:%u  %s\n", lines[i].samples, 100.0 * lines[i].samples / in_prog,
		       base_name(lines[i].file), lines[i].line, lines[i].text ? lines[i].text : "");
	ret = 0;
cleanup:
	free(lines);
	free(hits);
	btf__free(p.btf);
	free(p.lines);
	free(p.addrs);
	free(p.func_addrs);
	free(p.func_lens);
	return ret;
}
