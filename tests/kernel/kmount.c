// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
/*
 * kmount: are the sockets of kernel CIFS and NFS mounts judged? Runs as the
 * init of a qemu guest (tests/kernel/mount-probe.sh) whose kernel has the
 * cifs and nfs modules, with smbd (and a plain TCP listener standing in
 * for an NFS server) on the host's loopback behind qemu's guestfwd. It
 * loads tlsguard's programs (the real object, as the agent sets it up),
 * attaches them to one cgroup, marks the server's address protected (445:
 * smb3, 2049: tls) and mounts from a process in a cgroup, then prints what
 * the kernel counted and which events came, with the cgroup and process
 * each flow was attributed to:
 *
 *   KMOUNT case=NAME attach=CG from=CG mount=ok|ERRNO tracked=N smb_encrypted=N
 *          plaintext_flagged=N plaintext_blocked=N
 *   KMOUNT-EVENT case=NAME type=T action=A l7=L finding=F cgroup=ID pid=P comm=C
 *
 *   kmount SERVER_IP SHARE USER PASSWORD
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "enforcer.h"
#include "kernel_features.h"
#include "tlsguard/counters.h"
#include "tlsguard/dest.h"
#include "tlsguard/event.h"
#include "tlsguard/preface.h"
#include "tlsguard.skel.h"

#define MAX_LINKS	16
#define CLASS_FILES	1
#define CLASS_SMB	2

struct probe {
	struct tlsguard_bpf *skel;
	struct ring_buffer *rb;
	struct tg_enforcer enforcer;
	const char *name;		/* the case, for event lines */
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	char mount[3072];		/* cgroup2 mount */
};

static __u64 counter(struct probe *p, enum tg_counter which)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu > 0 ? ncpu : 1], sum = 0;
	__u32 key = which;

	if (ncpu <= 0 || bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.tg_counters), &key, vals))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

static int on_event(void *arg, void *data, size_t size)
{
	struct probe *p = arg;
	const struct tg_event *ev = data;
	char comm[17] = "";

	if (size < sizeof(*ev))
		return 0;
	memcpy(comm, ev->comm, 16);
	printf("KMOUNT-EVENT case=%s type=%u action=%u l7=%u finding=%u port=%u cgroup=%llu pid=%u "
	       "comm=%s\n", p->name, ev->type, ev->action, ev->tls.l7, ev->tls.finding, ev->dport,
	       (unsigned long long)ev->cgroup_id, ev->tgid, comm[0] ? comm : "-");
	if (ev->action == TG_ACT_BLOCKED && ev->type != TG_EV_BLOCKED_CONNECT)
		enforcer_destroy(&p->enforcer, ev);	/* what the agent does */
	return 0;
}

/* The server's address: class "files" (2049 TLS) with the 445 entry "files_smb" (smb3). */
static int protect(struct probe *p, const char *ip, int mode)
{
	struct tg_dest_key k = { .prefixlen = 128 };
	struct tg_dest_value v = { .class_id = CLASS_FILES };
	struct tg_class files = { .mode = mode, .nranges = 2, .protocol = TG_L7_TLS,
				  .ports = { { 445, 445 }, { 2049, 2049 } },
				  .port_class = { CLASS_SMB, 0 } };
	struct tg_class smb = { .mode = mode, .nranges = 1, .protocol = TG_L7_SMB3,
				.ports = { { 445, 445 } } };
	__u32 id_files = CLASS_FILES, id_smb = CLASS_SMB;
	int classes = bpf_map__fd(p->skel->maps.tg_classes);

	k.addr[10] = k.addr[11] = 0xff;
	if (inet_pton(AF_INET, ip, &k.addr[12]) != 1)
		return -EINVAL;
	if (bpf_map_update_elem(classes, &id_files, &files, 0) ||
	    bpf_map_update_elem(classes, &id_smb, &smb, 0) ||
	    bpf_map_update_elem(bpf_map__fd(p->skel->maps.tg_dests), &k, &v, 0))
		return -errno;
	return 0;
}

static int attach(struct probe *p, const char *cg)
{
	struct bpf_program *prog;
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s%s", p->mount, cg);
	fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_link *link;

		if (bpf_program__type(prog) == BPF_PROG_TYPE_TRACING || p->nlinks == MAX_LINKS)
			continue;	/* the census is no cgroup program */
		link = bpf_program__attach_cgroup(prog, fd);
		if (!link) {
			printf("KMOUNT-ERROR attaching %s to %s: %s\n", bpf_program__name(prog), cg,
			       strerror(errno));
			continue;
		}
		p->links[p->nlinks++] = link;
	}
	close(fd);
	return 0;
}

static void detach(struct probe *p)
{
	for (int i = 0; i < p->nlinks; i++)
		bpf_link__destroy(p->links[i]);
	p->nlinks = 0;
}

/* Move @pid into cgroup @cg (relative to the mount). */
static int join(struct probe *p, const char *cg, pid_t pid)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s/cgroup.procs", p->mount, cg);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", pid);
	return fclose(f) ? -errno : 0;
}

/*
 * A child in cgroup @from mounts @src (type @fs, options @opts) on /mnt and
 * reads a directory of it, within @timeout_s. 0 or the errno it died with.
 */
static int mount_from(struct probe *p, const char *from, const char *fs, const char *src,
		      const char *opts, int timeout_s)
{
	int status, waited = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct stat st;

		if (join(p, from, getpid()))
			_exit(125);
		alarm(timeout_s);
		if (mount(src, "/mnt", fs, 0, opts) < 0)
			_exit(errno & 0x7f);
		_exit(stat("/mnt/.", &st) ? errno & 0x7f : 0);
	}
	if (pid < 0)
		return errno;
	/* events are read meanwhile: a blocked flow's socket is destroyed as the agent would */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		ring_buffer__poll(p->rb, 100);
		if (++waited > (timeout_s + 5) * 10) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return ETIMEDOUT;
		}
	}
	ring_buffer__poll(p->rb, 200);
	if (WIFSIGNALED(status))
		return WTERMSIG(status) == SIGALRM ? ETIMEDOUT : EINTR;
	return WEXITSTATUS(status);
}

static void run_case(struct probe *p, const char *name, const char *attach_cg, const char *from,
		     int mode, const char *fs, const char *src, const char *opts, int timeout_s)
{
	__u64 t0 = counter(p, TG_CNT_FLOWS_TRACKED), e0 = counter(p, TG_CNT_SMB_ENCRYPTED),
	      f0 = counter(p, TG_CNT_PLAINTEXT_FLAGGED), b0 = counter(p, TG_CNT_PLAINTEXT_BLOCKED);
	const char *ip = strstr(opts, "ip=") ? strstr(opts, "ip=") + 3 : strstr(opts, "addr=") + 5;
	char addr[64];
	int err;

	snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(ip, ","), ip);
	p->name = name;
	if (protect(p, addr, mode) || attach(p, attach_cg)) {
		printf("KMOUNT-ERROR case=%s: cannot set up the programs\n", name);
		return;
	}
	err = mount_from(p, from, fs, src, opts, timeout_s);
	if (!err)
		umount2("/mnt", MNT_DETACH);
	sleep(1);
	ring_buffer__poll(p->rb, 200);
	printf("KMOUNT case=%s fs=%s attach=%s from=%s mode=%s mount=%s tracked=%llu smb_encrypted=%llu "
	       "plaintext_flagged=%llu plaintext_blocked=%llu\n", name, fs, attach_cg, from,
	       mode == TG_MODE_ENFORCE ? "enforce" : "audit", err ? strerror(err) : "ok",
	       (unsigned long long)(counter(p, TG_CNT_FLOWS_TRACKED) - t0),
	       (unsigned long long)(counter(p, TG_CNT_SMB_ENCRYPTED) - e0),
	       (unsigned long long)(counter(p, TG_CNT_PLAINTEXT_FLAGGED) - f0),
	       (unsigned long long)(counter(p, TG_CNT_PLAINTEXT_BLOCKED) - b0));
	detach(p);
	if (err && !strcmp(fs, "cifs"))
		sleep(2);	/* let the cifs reconnect worker give up before the next case */
}

int main(int argc, char **argv)
{
	struct probe p = { 0 };
	struct tg_features f;
	char src[256], enc[512], clear[512], nfs[256];
	int err;

	if (argc != 5) {
		fprintf(stderr, "usage: kmount SERVER_IP SHARE USER PASSWORD\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	features_probe(&f);
	err = cgroup_find_mount(p.mount, sizeof(p.mount));
	if (err) {
		printf("KMOUNT-ERROR no cgroup2 mount: %s\n", strerror(-err));
		return 1;
	}
	p.skel = tlsguard_bpf__open();
	if (!p.skel)
		return 1;
	p.skel->rodata->tg_have_current_task = f.current_task == 1;
	p.skel->rodata->tg_have_current_cgroup = f.current_cgroup == 1;
	bpf_program__set_autoload(p.skel->progs.tg_census, false);
	err = tlsguard_bpf__load(p.skel);
	if (err) {
		printf("KMOUNT-ERROR loading the tlsguard object: %s\n", strerror(-err));
		return 1;
	}
	p.rb = ring_buffer__new(bpf_map__fd(p.skel->maps.tg_events), on_event, &p, NULL);
	if (!p.rb || enforcer_init(&p.enforcer))
		return 1;
	mkdir("/mnt", 0755);
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/watched", p.mount);
		mkdir(path, 0755);
	}
	snprintf(src, sizeof(src), "//%s/%s", argv[1], argv[2]);
	snprintf(enc, sizeof(enc), "ip=%s,username=%s,password=%s,vers=3.1.1,seal,echo_interval=10",
		 argv[1], argv[3], argv[4]);
	snprintf(clear, sizeof(clear), "ip=%s,username=%s,password=%s,vers=3.1.1,echo_interval=10",
		 argv[1], argv[3], argv[4]);
	snprintf(nfs, sizeof(nfs), "addr=%s,vers=4.1,proto=tcp,soft,timeo=20,retrans=1", argv[1]);

	/* programs on a child cgroup, the mount made from it */
	run_case(&p, "cifs-seal-watched", "/watched", "/watched", TG_MODE_AUDIT, "cifs", src, enc, 30);
	run_case(&p, "cifs-clear-watched-audit", "/watched", "/watched", TG_MODE_AUDIT, "cifs", src, clear, 30);
	run_case(&p, "cifs-clear-watched-enforce", "/watched", "/watched", TG_MODE_ENFORCE, "cifs", src, clear, 40);
	/* programs on the root cgroup */
	run_case(&p, "cifs-clear-root-enforce", "/", "/watched", TG_MODE_ENFORCE, "cifs", src, clear, 40);
	run_case(&p, "cifs-seal-root-enforce", "/", "/watched", TG_MODE_ENFORCE, "cifs", src, enc, 30);
	/* NFS: the client's socket is made by a kernel worker, not by mount(2)'s caller */
	snprintf(src, sizeof(src), "%s:/", argv[1]);
	run_case(&p, "nfs-watched-audit", "/watched", "/watched", TG_MODE_AUDIT, "nfs4", src, nfs, 15);
	run_case(&p, "nfs-root-audit", "/", "/watched", TG_MODE_AUDIT, "nfs4", src, nfs, 15);
	printf("KMOUNT-DONE\n");
	return 0;
}
