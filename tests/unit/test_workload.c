// SPDX-License-Identifier: MIT
/*
 * Workload attribution: every cgroup naming scheme (systemd and cgroupfs
 * drivers; containerd, CRI-O, Docker; nested hierarchies; static pods;
 * systemd units), PodList and watch-stream parsing on real-shaped fixtures
 * (tests/unit/data/k8s), the /var/log/pods fallback, the selector, and the
 * policy keys and environment the API client is configured from.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "workload.h"

#define UID_A	"7c1a9d0e-3b2f-4e8a-9f61-2d4c5b6a7e80"
#define UID_A_	"7c1a9d0e_3b2f_4e8a_9f61_2d4c5b6a7e80"
#define CID_A	"4b825dc642cb6eb9a060e54bf8d69288fbee4904c8a1b2c3d4e5f60718293a4b"
#define CID_B	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NODE	"aks-nodepool1-12345678-vmss000000"

/* ---- fixtures ---------------------------------------------------------------- */

static char data_dir[PATH_MAX];

/* tests/unit/data/k8s from the repository root (make test), else next to the binary's tree. */
static void find_data_dir(void)
{
	char exe[PATH_MAX - 64];
	ssize_t n;

	if (!access("tests/unit/data/k8s/podlist.json", R_OK)) {
		snprintf(data_dir, sizeof(data_dir), "tests/unit/data/k8s");
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	/* <root>/build/san/unit/test_workload */
	for (int i = 0; i < 4; i++)
		*strrchr(exe, '/') = '\0';
	snprintf(data_dir, sizeof(data_dir), "%s/tests/unit/data/k8s", exe);
}

static char *slurp(const char *name, size_t *len)
{
	char path[PATH_MAX + 64];
	FILE *f;
	char *buf;
	long n;

	if (!data_dir[0])
		find_data_dir();
	snprintf(path, sizeof(path), "%s/%s", data_dir, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open fixture %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---- cgroup paths ------------------------------------------------------------ */

static void parse_ok(const char *path, struct wl_cgroup_info *info)
{
	if (workload_parse_cgroup(path, info))
		fail_msg("not recognised: %s", path);
}

static void test_systemd_burstable_containerd(void **state)
{
	static const char path[] = "/kubepods.slice/kubepods-burstable.slice/"
				   "kubepods-burstable-pod" UID_A_ ".slice/cri-containerd-" CID_A ".scope";
	struct wl_cgroup_info i;

	parse_ok(path, &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, CID_A);
	assert_int_equal(i.runtime, WL_RT_CONTAINERD);
	assert_int_equal(i.qos, WL_QOS_BURSTABLE);
	assert_string_equal(i.unit, "");
	assert_int_equal(i.pod_path_len, strstr(path, "/cri-containerd-") - path);
	assert_string_equal(workload_runtime_name(i.runtime), "containerd");
	assert_string_equal(workload_qos_name(i.qos), "burstable");
}

static void test_systemd_besteffort_crio(void **state)
{
	struct wl_cgroup_info i;

	parse_ok("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_A_
		 ".slice/crio-" CID_B ".scope", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, CID_B);
	assert_int_equal(i.runtime, WL_RT_CRIO);
	assert_int_equal(i.qos, WL_QOS_BESTEFFORT);
	assert_string_equal(workload_runtime_name(i.runtime), "cri-o");

	/* CRI-O's monitor process is not the container */
	parse_ok("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_A_
		 ".slice/crio-conmon-" CID_B ".scope", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, "");
}

static void test_systemd_guaranteed_and_docker(void **state)
{
	struct wl_cgroup_info i;

	parse_ok("/kubepods.slice/kubepods-pod" UID_A_ ".slice/docker-" CID_A ".scope", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_int_equal(i.qos, WL_QOS_GUARANTEED);
	assert_int_equal(i.runtime, WL_RT_DOCKER);
	assert_string_equal(i.container_id, CID_A);

	/* the pod level itself: a pod, no container */
	parse_ok("/kubepods.slice/kubepods-pod" UID_A_ ".slice", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, "");
	assert_int_equal(i.pod_path_len, strlen("/kubepods.slice/kubepods-pod" UID_A_ ".slice"));
}

static void test_cgroupfs_driver(void **state)
{
	struct wl_cgroup_info i;

	parse_ok("/kubepods/burstable/pod" UID_A "/" CID_A, &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, CID_A);
	assert_int_equal(i.qos, WL_QOS_BURSTABLE);
	assert_int_equal(i.runtime, WL_RT_CONTAINERD);

	parse_ok("/kubepods/pod" UID_A "/" CID_B, &i);
	assert_int_equal(i.qos, WL_QOS_GUARANTEED);
	assert_string_equal(i.container_id, CID_B);

	parse_ok("/kubepods/besteffort/pod" UID_A "/crio-" CID_B, &i);
	assert_int_equal(i.qos, WL_QOS_BESTEFFORT);
	assert_int_equal(i.runtime, WL_RT_CRIO);
	assert_string_equal(i.container_id, CID_B);

	/* not under kubepods, or a QoS class that does not exist: not a pod */
	assert_int_equal(workload_parse_cgroup("/other/pod" UID_A "/" CID_A, &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/kubepods/premium/pod" UID_A "/" CID_A, &i), -ENOENT);
	assert_string_equal(i.pod_uid, "");
}

static void test_nested_and_static_pods(void **state)
{
	struct wl_cgroup_info i;

	/* kind: a node in a container, the kubelet's hierarchy below */
	parse_ok("/system.slice/docker-" CID_B ".scope/kubelet.slice/kubelet-kubepods.slice/"
		 "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_A_
		 ".slice/cri-containerd-" CID_A ".scope", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, CID_A);
	assert_int_equal(i.qos, WL_QOS_BESTEFFORT);
	assert_string_equal(i.unit, "");

	/* under a test's own cgroup, as the integration test makes them */
	parse_ok("/tg-it-1-2/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_A_
		 ".slice/cri-containerd-" CID_A ".scope", &i);
	assert_string_equal(i.pod_uid, UID_A);

	/* static pods are named by the kubelet's config hash */
	parse_ok("/kubepods/pod6b0c4f1e2d3a49587a6b5c4d3e2f1a0b/" CID_A, &i);
	assert_string_equal(i.pod_uid, "6b0c4f1e2d3a49587a6b5c4d3e2f1a0b");
	parse_ok("/kubepods.slice/kubepods-pod6b0c4f1e2d3a49587a6b5c4d3e2f1a0b.slice", &i);
	assert_string_equal(i.pod_uid, "6b0c4f1e2d3a49587a6b5c4d3e2f1a0b");
}

static void test_systemd_units(void **state)
{
	struct wl_cgroup_info i;

	parse_ok("/system.slice/nginx.service", &i);
	assert_string_equal(i.unit, "nginx.service");
	assert_string_equal(i.pod_uid, "");

	parse_ok("/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-42.scope", &i);
	assert_string_equal(i.unit, "app-firefox-42.scope");
	parse_ok("/user.slice/user-1000.slice/session-3.scope", &i);
	assert_string_equal(i.unit, "session-3.scope");

	/* Docker without Kubernetes: a unit that is also a container */
	parse_ok("/system.slice/docker-" CID_A ".scope", &i);
	assert_string_equal(i.unit, "docker-" CID_A ".scope");
	assert_string_equal(i.container_id, CID_A);
	assert_int_equal(i.runtime, WL_RT_DOCKER);

	assert_int_equal(workload_parse_cgroup("/", &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("", &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/user.slice", &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/system.slice/foo-pod" UID_A_ ".slice", &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/kubepods/burstable/podnot-a-uid/x", &i), -ENOENT);
}

static void test_bad_uids_and_ids(void **state)
{
	struct wl_cgroup_info i;

	/* wrong length, non-hex, dashes in the wrong places */
	assert_int_equal(workload_parse_cgroup("/kubepods/pod7c1a9d0e-3b2f/" CID_A, &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/kubepods/podZc1a9d0e-3b2f-4e8a-9f61-2d4c5b6a7e80/x",
					       &i), -ENOENT);
	assert_int_equal(workload_parse_cgroup("/kubepods/pod7c1a9d0e3-b2f-4e8a-9f61-2d4c5b6a7e80/x",
					       &i), -ENOENT);
	/* a pod with something that is not a container id under it */
	parse_ok("/kubepods/pod" UID_A "/not-a-container", &i);
	assert_string_equal(i.pod_uid, UID_A);
	assert_string_equal(i.container_id, "");
	parse_ok("/kubepods/pod" UID_A "/abc", &i);
	assert_string_equal(i.container_id, "");
}

/* ---- PodList and watch ------------------------------------------------------- */

static const struct wl_pod *must_find(const struct wl_pod_table *t, const char *uid)
{
	const struct wl_pod *p = wl_pod_table_find(t, uid);

	if (!p)
		fail_msg("pod %s not in the table", uid);
	return p;
}

static const char *container_name(const struct wl_pod *p, const char *id)
{
	for (size_t i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i].id, id))
			return p->containers[i].name;
	return NULL;
}

static const char *label(const struct wl_pod *p, const char *key)
{
	for (size_t i = 0; i < p->nlabels; i++)
		if (!strcmp(p->labels[i].key, key))
			return p->labels[i].value;
	return NULL;
}

static void test_podlist(void **state)
{
	struct wl_pod_table t = { 0 };
	char rv[WL_RV_MAX] = "", cont[256] = "x";
	size_t len;
	char *body = slurp("podlist.json", &len);
	const struct wl_pod *p;

	assert_int_equal(workload_apply_podlist(&t, body, len, false, rv, cont, sizeof(cont)), 0);
	free(body);
	assert_string_equal(rv, "4815162");
	assert_string_equal(cont, "");
	assert_int_equal(t.n, 4);

	p = must_find(&t, UID_A);
	assert_string_equal(p->name, "train-0");
	assert_string_equal(p->namespace, "azureml");
	assert_true(p->labels_known);
	assert_int_equal(p->nlabels, 4);
	assert_string_equal(label(p, "ml.azure.com/compute"), "gpu-cluster");
	assert_int_equal(p->ncontainers, 3);	/* two containers and the init container */
	assert_string_equal(container_name(p, CID_A), "trainer");
	assert_string_equal(container_name(p, "9a8b7c6d5e4f30219a8b7c6d5e4f30219a8b7c6d5e4f30219a8b7c6d5e4f3021"),
			    "log-shipper");
	assert_string_equal(container_name(p, "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988"),
			    "fetch-data");

	/* cri-o:// ids too */
	p = must_find(&t, "e5d4c3b2-a190-4f8e-8d7c-6b5a49382716");
	assert_string_equal(container_name(p, CID_B), "coredns");

	/* a mirror pod is found by the static pod's hash, which names its cgroup */
	p = must_find(&t, "6b0c4f1e2d3a49587a6b5c4d3e2f1a0b");
	assert_string_equal(p->name, "kube-proxy-" NODE);
	assert_null(wl_pod_table_find(&t, "3a1f0c2e-9d8b-4c7a-b6e5-f4d3c2b1a090"));

	/* a pending pod has no container ids yet */
	p = must_find(&t, "11111111-2222-4333-8444-555555555555");
	assert_int_equal(p->ncontainers, 0);
	wl_pod_table_clear(&t);
}

static void test_podlist_pages_and_garbage(void **state)
{
	static const char page1[] =
		"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\","
		"\"continue\":\"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTB9\",\"remainingItemCount\":1},"
		"\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\",\"uid\":\"u-a\"}}]}";
	static const char page2[] =
		"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"10\"},"
		"\"items\":[{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\",\"uid\":\"u-b\"}},"
		"{\"metadata\":{\"name\":\"no-uid\",\"namespace\":\"n\"}}]}";
	struct wl_pod_table t = { 0 };
	char rv[WL_RV_MAX] = "", cont[256];

	assert_int_equal(workload_apply_podlist(&t, page1, strlen(page1), false, rv, cont, sizeof(cont)), 0);
	assert_string_equal(cont, "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTB9");
	assert_int_equal(workload_apply_podlist(&t, page2, strlen(page2), true, rv, cont, sizeof(cont)), 0);
	assert_string_equal(cont, "");
	assert_int_equal(t.n, 2);	/* the item without a uid is skipped */
	assert_non_null(wl_pod_table_find(&t, "u-a"));
	assert_non_null(wl_pod_table_find(&t, "u-b"));

	/* a first page replaces the table */
	assert_int_equal(workload_apply_podlist(&t, page2, strlen(page2), false, rv, cont, sizeof(cont)), 0);
	assert_int_equal(t.n, 1);

	assert_int_equal(workload_apply_podlist(&t, "{", 1, false, rv, NULL, 0), -EINVAL);
	assert_int_equal(workload_apply_podlist(&t, "{\"kind\":\"Status\",\"items\":[]}", 29, false,
						rv, NULL, 0), -EINVAL);
	assert_int_equal(workload_apply_podlist(&t, "[]", 2, false, rv, NULL, 0), -EINVAL);
	assert_int_equal(t.n, 1);	/* a bad answer leaves the table alone */
	wl_pod_table_clear(&t);
}

static void test_watch_stream(void **state)
{
	struct wl_pod_table t = { 0 };
	char rv[WL_RV_MAX] = "", *body = slurp("podlist.json", &(size_t){ 0 }), *stream, *line, *save;
	static const int want[] = { WL_WATCH_CHANGED, WL_WATCH_CHANGED, WL_WATCH_UNCHANGED,
				    WL_WATCH_CHANGED, WL_WATCH_GONE };
	static const char *const want_rv[] = { "4815200", "4815230", "4815300", "4815310", "4815310" };
	size_t len, k = 0;
	const struct wl_pod *p;

	assert_int_equal(workload_apply_podlist(&t, body, strlen(body), false, rv, NULL, 0), 0);
	free(body);
	stream = slurp("watch.jsonl", &len);
	for (line = strtok_r(stream, "\n", &save); line; line = strtok_r(NULL, "\n", &save), k++) {
		assert_true(k < 5);
		assert_int_equal(workload_apply_watch_event(&t, line, strlen(line), rv), want[k]);
		assert_string_equal(rv, want_rv[k]);
		if (k == 0) {	/* ADDED while Pending: no containers yet */
			p = must_find(&t, "2f3e4d5c-6b7a-4988-a7b6-c5d4e3f2a1b0");
			assert_int_equal(p->ncontainers, 0);
			assert_int_equal(t.n, 5);
		} else if (k == 1) {	/* MODIFIED: running, with its container id */
			p = must_find(&t, "2f3e4d5c-6b7a-4988-a7b6-c5d4e3f2a1b0");
			assert_string_equal(container_name(p, "5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d"),
					    "job");
			assert_int_equal(t.n, 5);
		} else if (k == 3) {	/* DELETED */
			assert_null(wl_pod_table_find(&t, "e5d4c3b2-a190-4f8e-8d7c-6b5a49382716"));
			assert_int_equal(t.n, 4);
		}
	}
	assert_int_equal(k, 5);
	free(stream);

	/* other ERRORs and garbage: re-list */
	assert_int_equal(workload_apply_watch_event(&t, "{\"type\":\"ERROR\",\"object\":{\"kind\":"
				"\"Status\",\"status\":\"Failure\",\"code\":500}}", 75, rv), WL_WATCH_ERROR);
	assert_int_equal(workload_apply_watch_event(&t, "not json", 8, rv), WL_WATCH_ERROR);
	assert_int_equal(workload_apply_watch_event(&t, "{\"type\":\"ADDED\"}", 16, rv), WL_WATCH_ERROR);
	/* deleting what we do not know changes nothing */
	assert_int_equal(workload_apply_watch_event(&t, "{\"type\":\"DELETED\",\"object\":{\"metadata\":"
				"{\"name\":\"x\",\"namespace\":\"y\",\"uid\":\"nope\"}}}", 85, rv),
			 WL_WATCH_UNCHANGED);
	assert_int_equal(t.n, 4);
	wl_pod_table_clear(&t);
}

/* ---- /var/log/pods fallback ---------------------------------------------------- */

static void mkdirf(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void touchf(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
}

static void test_log_dir_fallback(void **state)
{
	char dir[] = "/tmp/tg-unit-logs.XXXXXX", cmd[PATH_MAX + 16];
	struct wl_pod_table t = { 0 };
	const struct wl_pod *p;

	assert_non_null(mkdtemp(dir));
	mkdirf("%s/pods", dir);
	mkdirf("%s/containers", dir);
	mkdirf("%s/pods/azureml_train-0_" UID_A, dir);
	mkdirf("%s/pods/azureml_train-0_" UID_A "/trainer", dir);
	mkdirf("%s/pods/azureml_train-0_" UID_A "/log-shipper", dir);
	mkdirf("%s/pods/kube-system_kube-proxy-n1_6b0c4f1e2d3a49587a6b5c4d3e2f1a0b", dir);
	mkdirf("%s/pods/kube-system_kube-proxy-n1_6b0c4f1e2d3a49587a6b5c4d3e2f1a0b/kube-proxy", dir);
	mkdirf("%s/pods/not-a-pod-dir", dir);
	mkdirf("%s/pods/a_b_c_d", dir);
	touchf("%s/containers/train-0_azureml_trainer-" CID_A ".log", dir);
	touchf("%s/containers/train-0_azureml_log-shipper-short.log", dir);
	touchf("%s/containers/other_ns_c-" CID_B ".log", dir);

	assert_int_equal(workload_scan_log_dir(&t, dir), 0);
	assert_int_equal(t.n, 2);
	p = must_find(&t, UID_A);
	assert_string_equal(p->namespace, "azureml");
	assert_string_equal(p->name, "train-0");
	assert_false(p->labels_known);
	assert_int_equal(p->ncontainers, 2);
	assert_string_equal(container_name(p, CID_A), "trainer");
	p = must_find(&t, "6b0c4f1e2d3a49587a6b5c4d3e2f1a0b");
	assert_string_equal(p->name, "kube-proxy-n1");

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(workload_scan_log_dir(&t, dir), -ENOENT);
	assert_int_equal(t.n, 0);
	wl_pod_table_clear(&t);
}

/* ---- selector -------------------------------------------------------------------- */

static void test_selector(void **state)
{
	char *nss[] = { "azureml", "batch" };
	struct tg_label want_any[] = { { "ml.azure.com/compute", "*" } };
	struct tg_label want_exact[] = { { "app", "trainer" }, { "ml.azure.com/compute", "*" } };
	struct tg_label have[] = { { "app", "trainer" }, { "ml.azure.com/compute", "gpu-cluster" } };
	struct wl_pod pod = { .name = "train-0", .namespace = "azureml", .labels = have,
			      .nlabels = 2, .labels_known = true };
	struct wl_selector s = { 0 };

	assert_true(workload_selector_empty(&s));
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);

	s.namespaces = nss;
	s.nnamespaces = 2;
	assert_false(workload_selector_empty(&s));
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);
	pod.namespace = "default";
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_NO);
	pod.namespace = "batch";
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);

	s.labels = want_any;
	s.nlabels = 1;
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);
	s.labels = want_exact;
	s.nlabels = 2;
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);
	have[0].value = "scorer";
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_NO);
	have[0].value = "trainer";
	pod.nlabels = 1;	/* ml.azure.com/compute missing */
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_NO);

	/* labels not known (log directory): the namespace still decides "no" */
	pod.labels_known = false;
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_UNKNOWN);
	pod.namespace = "default";
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_NO);

	/* labels only, any namespace */
	s.nnamespaces = 0;
	pod.labels_known = true;
	pod.nlabels = 2;
	assert_int_equal(workload_selected(&s, &pod), WL_SEL_YES);
}

/* ---- configuration ---------------------------------------------------------------- */

static struct tg_policy *load_policy(const char *yaml)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	int ret = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);

	for (size_t i = 0; i < d.n; i++)
		print_error("unexpected: %s\n", d.msgs[i]);
	assert_int_equal(ret, 0);
	diag_free(&d);
	return p;
}

static void test_config_in_cluster(void **state)
{
	struct tg_policy *p = load_policy("workloads:\n"
					  "  kubernetes:\n"
					  "    namespaces: [azureml]\n"
					  "    labels: {\"ml.azure.com/compute\": \"*\"}\n");
	struct wl_config c;

	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("NODE_NAME", NODE, 1);
	assert_int_equal(workload_config_from_policy(p, &c), 0);
	assert_string_equal(c.server, "https://10.0.0.1:443");
	assert_string_equal(c.token_file, WL_DEFAULT_SA_DIR "/token");
	assert_string_equal(c.ca_file, WL_DEFAULT_SA_DIR "/ca.crt");
	assert_string_equal(c.node_name, NODE);
	assert_string_equal(c.log_dir, "/var/log");
	assert_int_equal(c.sel.nnamespaces, 1);
	assert_string_equal(c.sel.namespaces[0], "azureml");
	assert_int_equal(c.sel.nlabels, 1);
	assert_string_equal(c.sel.labels[0].value, "*");
	workload_config_free(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_int_equal(workload_config_from_policy(p, &c), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	workload_config_free(&c);

	/* a VM: no service variables, no API */
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("NODE_NAME");
	assert_int_equal(workload_config_from_policy(p, &c), 0);
	assert_null(c.server);
	assert_non_null(c.node_name);	/* the host name */
	workload_config_free(&c);
	policy_free(p);
}

static void test_config_from_policy_keys(void **state)
{
	struct tg_policy *p = load_policy("workloads:\n"
					  "  kubernetes:\n"
					  "    node_name: node-7\n"
					  "    log_dir: /tmp/logs\n"
					  "    api:\n"
					  "      server: https://127.0.0.1:6443\n"
					  "      token_file: /tmp/sa/token\n"
					  "      ca_file: /tmp/sa/ca.crt\n");
	struct wl_config c;

	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("NODE_NAME", "from-env", 1);
	assert_int_equal(workload_config_from_policy(p, &c), 0);
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.token_file, "/tmp/sa/token");
	assert_string_equal(c.ca_file, "/tmp/sa/ca.crt");
	assert_string_equal(c.node_name, "node-7");
	assert_string_equal(c.log_dir, "/tmp/logs");
	assert_true(workload_selector_empty(&c.sel));
	workload_config_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("NODE_NAME");
	policy_free(p);
}

static void test_policy_rejects_plain_http_api(void **state)
{
	static const char yaml[] = "workloads:\n"
				   "  kubernetes:\n"
				   "    api: {server: \"http://10.0.0.1\", tokn_file: x}\n";
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d), -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.msgs[0], "t.yaml:3:19: invalid API server \"http://10.0.0.1\" "
					"(expected https://HOST[:PORT])");
	assert_string_equal(d.msgs[1], "t.yaml:3:38: unknown key \"tokn_file\" "
					"(did you mean \"token_file\")");
	diag_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_systemd_burstable_containerd),
		cmocka_unit_test(test_systemd_besteffort_crio),
		cmocka_unit_test(test_systemd_guaranteed_and_docker),
		cmocka_unit_test(test_cgroupfs_driver),
		cmocka_unit_test(test_nested_and_static_pods),
		cmocka_unit_test(test_systemd_units),
		cmocka_unit_test(test_bad_uids_and_ids),
		cmocka_unit_test(test_podlist),
		cmocka_unit_test(test_podlist_pages_and_garbage),
		cmocka_unit_test(test_watch_stream),
		cmocka_unit_test(test_log_dir_fallback),
		cmocka_unit_test(test_selector),
		cmocka_unit_test(test_config_in_cluster),
		cmocka_unit_test(test_config_from_policy_keys),
		cmocka_unit_test(test_policy_rejects_plain_http_api),
	};

	return cmocka_run_group_tests_name("workload", tests, NULL, NULL);
}
