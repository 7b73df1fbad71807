#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Kubernetes manifests in deploy/kubernetes/: every file parses, every
# object has what docs/install-aks.md and issue 7 promise (checked here, not by
# eye), the DaemonSet's capabilities equal the table in docs/install-aks.md
# ("Capabilities", the one list), and every host path the agent opens (the
# defaults compiled into it, the paths in the shipped policy) is mounted. The
# policy in the ConfigMap passes `tlsguard policy check --offline` and keeps the built-in
# destinations. No cluster needed: python3-yaml parses the files.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

py=/usr/bin/python3
if ! "$py" -c 'import yaml' 2>/dev/null; then
	"$root/scripts/install-deps.sh" python3 python3-yaml >/dev/null ||
		fail "python3-yaml is missing and could not be installed (apt-get install python3-yaml)"
fi

bin=""
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	[[ -n $b && -x $b ]] && { bin=$b; break; }
done
[[ -n $bin ]] || fail "no tlsguard binary (for 'policy check' and 'policy show-default'): run 'make' first"

tmp=$(mktemp -d /tmp/tg-deploy-k8s.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$py" - "$root" "$bin" "$tmp" <<'PYEOF'
import os, re, subprocess, sys
import yaml

root, tlsguard, tmp = sys.argv[1:4]
kdir = os.path.join(root, "deploy", "kubernetes")
problems = []


def bad(msg):
    problems.append(msg)


def get(obj, path, default=None):
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def read(path):
    with open(path) as f:
        return f.read()


version = read(os.path.join(root, "VERSION")).strip()

# ---- every file parses; every object is named and namespaced ---------------
objects = {}   # (kind, name) -> object
files = {}     # file -> [objects]
for dirpath, _, names in os.walk(kdir):
    for n in sorted(names):
        if not n.endswith(".yaml"):
            continue
        path = os.path.join(dirpath, n)
        rel = os.path.relpath(path, kdir)
        try:
            docs = [d for d in yaml.safe_load_all(read(path)) if d is not None]
        except yaml.YAMLError as e:
            bad(f"{rel}: does not parse: {e}")
            continue
        files[rel] = docs
        if n == "kustomization.yaml":
            continue
        for d in docs:
            kind, name = d.get("kind"), get(d, "metadata.name")
            if not d.get("apiVersion") or not kind or not name:
                bad(f"{rel}: an object without apiVersion, kind or metadata.name")
                continue
            if kind not in ("Namespace", "ClusterRole", "ClusterRoleBinding") and \
               get(d, "metadata.namespace") != "tlsguard":
                bad(f"{rel}: {kind}/{name} is not in namespace tlsguard")
            if (kind, name) in objects:
                bad(f"{rel}: {kind}/{name} defined twice")
            objects[(kind, name)] = d
            objects[(kind, name)]["_file"] = rel


def obj(kind, name):
    o = objects.get((kind, name))
    if o is None:
        bad(f"no {kind} named {name} in deploy/kubernetes")
    return o or {}


# ---- kustomization ----------------------------------------------------------
kust = (files.get("kustomization.yaml") or [{}])[0]
want_resources = ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "configmap.yaml", "daemonset.yaml"]
if sorted(kust.get("resources", [])) != sorted(want_resources):
    bad(f"kustomization.yaml resources {kust.get('resources')} != {want_resources}")
for r in kust.get("resources", []):
    if not os.path.exists(os.path.join(kdir, r)):
        bad(f"kustomization.yaml lists {r}, which does not exist")
if "secret.example.yaml" in kust.get("resources", []):
    bad("kustomization.yaml must not apply the secret template")
imgs = {i.get("name"): i for i in kust.get("images", [])}
if get(imgs.get("tlsguard", {}), "newTag") != version:
    bad(f"kustomization.yaml images: tlsguard newTag should be the VERSION {version}")

# ---- namespace, service account, RBAC ----------------------------------------
ns = obj("Namespace", "tlsguard")
if get(ns, "metadata.labels", {}).get("pod-security.kubernetes.io/enforce") != "privileged":
    bad("namespace tlsguard: label pod-security.kubernetes.io/enforce=privileged missing "
        "(hostPID, hostPath and capabilities are outside the baseline standard)")
sa = obj("ServiceAccount", "tlsguard")
role = obj("ClusterRole", "tlsguard")
rules = role.get("rules", [])
if len(rules) != 1 or rules[0].get("apiGroups") != [""] or rules[0].get("resources") != ["pods"] \
   or sorted(rules[0].get("verbs", [])) != ["get", "list", "watch"] \
   or set(rules[0]) - {"apiGroups", "resources", "verbs"}:
    bad(f"ClusterRole tlsguard must grant exactly get/list/watch on pods, has {rules}")
binding = obj("ClusterRoleBinding", "tlsguard")
if get(binding, "roleRef") != {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "tlsguard"}:
    bad(f"ClusterRoleBinding tlsguard roleRef is {get(binding, 'roleRef')}")
if binding.get("subjects") != [{"kind": "ServiceAccount", "name": "tlsguard", "namespace": "tlsguard"}]:
    bad(f"ClusterRoleBinding tlsguard subjects are {binding.get('subjects')}")

# ---- the capability table: docs/install-aks.md, "## Capabilities" --------------
doc = read(os.path.join(root, "docs", "install-aks.md"))
m = re.search(r"^## Capabilities\n(.*?)(?=^## )", doc, re.M | re.S)
doc_caps = sorted(re.findall(r"^\| `CAP_([A-Z_]+)` \|", m.group(1), re.M)) if m else []
if not doc_caps:
    bad("docs/install-aks.md: no capability table under '## Capabilities'")

# ---- DaemonSet ----------------------------------------------------------------
ds = obj("DaemonSet", "tlsguard")
spec = get(ds, "spec.template.spec", {})
if get(ds, "spec.updateStrategy.type") != "RollingUpdate" or \
   get(ds, "spec.updateStrategy.rollingUpdate.maxUnavailable") != 1 or \
   get(ds, "spec.updateStrategy.rollingUpdate.maxSurge", 0) != 0:
    bad(f"DaemonSet updateStrategy must be RollingUpdate, maxUnavailable 1, maxSurge 0: {get(ds, 'spec.updateStrategy')}")
sel = get(ds, "spec.selector.matchLabels", {})
tlabels = get(ds, "spec.template.metadata.labels", {})
if not sel or any(tlabels.get(k) != v for k, v in sel.items()):
    bad("DaemonSet selector does not match the pod template labels")
if spec.get("priorityClassName") != "system-node-critical":
    bad("DaemonSet priorityClassName must be system-node-critical")
if spec.get("hostPID") is not True:
    bad("DaemonSet needs hostPID: true (/proc/<pid>/ns/net of pod processes)")
if spec.get("hostNetwork"):
    bad("DaemonSet must not use hostNetwork")
if spec.get("serviceAccountName") != "tlsguard" or spec.get("automountServiceAccountToken") is False:
    bad("DaemonSet must run as service account tlsguard with its token mounted")
if {"operator": "Exists"} not in spec.get("tolerations", []):
    bad("DaemonSet needs a toleration {operator: Exists} (every node, every taint)")
if get(spec, "nodeSelector", {}).get("kubernetes.io/os") != "linux":
    bad("DaemonSet must select kubernetes.io/os: linux")
if get(spec, "securityContext.seccompProfile.type") != "RuntimeDefault":
    bad("DaemonSet pod seccompProfile should be RuntimeDefault")
containers = spec.get("containers", [])
if len(containers) != 1:
    bad(f"DaemonSet should have one container, has {len(containers)}")
c = containers[0] if containers else {}
cname = c.get("name", "")
sc = c.get("securityContext", {})
apparmor_field = get(sc, "appArmorProfile.type") or get(spec, "securityContext.appArmorProfile.type")
apparmor_ann = get(ds, "spec.template.metadata.annotations", {}).get(
    f"container.apparmor.security.beta.kubernetes.io/{cname}")
if apparmor_field != "Unconfined" or apparmor_ann != "unconfined":
    bad(f"agent AppArmor: field {apparmor_field!r} and annotation {apparmor_ann!r} must both say unconfined "
        "(the default profile denies writes to /sys/fs/bpf)")
if sc.get("privileged") is not False:
    bad("agent container: privileged must be false, explicitly")
if sc.get("allowPrivilegeEscalation") is not False:
    bad("agent container: allowPrivilegeEscalation must be false")
if sc.get("readOnlyRootFilesystem") is not True:
    bad("agent container: readOnlyRootFilesystem must be true")
if get(sc, "capabilities.drop") != ["ALL"]:
    bad(f"agent container: capabilities.drop must be [ALL], is {get(sc, 'capabilities.drop')}")
added = get(sc, "capabilities.add", []) or []
if sorted(added) != doc_caps:
    bad(f"agent capabilities {sorted(added)} != docs/install-aks.md table {doc_caps}")
# one comment per capability, naming it, right above it
ds_lines = read(os.path.join(kdir, "daemonset.yaml")).splitlines()
for cap in added:
    idx = [i for i, l in enumerate(ds_lines) if re.match(rf"^\s*- {cap}\s*$", l)]
    if not idx:
        bad(f"daemonset.yaml: capability {cap} not found as a list item")
        continue
    j = idx[0] - 1
    comment = []
    while j >= 0 and ds_lines[j].strip().startswith("#"):
        comment.insert(0, ds_lines[j].strip())
        j -= 1
    if not comment or not comment[0].startswith(f"# CAP_{cap}:") or len(" ".join(comment)) < 40:
        bad(f"daemonset.yaml: capability {cap} needs a comment above it starting '# CAP_{cap}:' that says why")

image = c.get("image", "")
if image.rsplit(":", 1) != ["tlsguard", version]:
    bad(f"agent image is {image!r}, expected tlsguard:{version} (kustomize rewrites the registry)")
for probe in ("livenessProbe", "readinessProbe"):
    cmd = get(c, f"{probe}.exec.command", [])
    if len(cmd) != 3 or os.path.basename(cmd[0]) != "tlsguard" or cmd[1:] != ["status", "--check"]:
        bad(f"agent {probe} must exec 'tlsguard status --check', is {cmd}")
for kind in ("requests", "limits"):
    for res in ("cpu", "memory"):
        if not get(c, f"resources.{kind}.{res}"):
            bad(f"agent resources.{kind}.{res} missing")

# the agent's command line uses options the binary has
args = c.get("args", [])
if args[:1] != ["agent"]:
    bad(f"agent args should start with 'agent': {args}")
agent_help = subprocess.run([tlsguard, "agent", "--help"], capture_output=True, text=True).stdout
for a in args:
    if a.startswith("--") and a not in agent_help:
        bad(f"agent args use {a}, which 'tlsguard agent --help' does not list")
config_path = args[args.index("--config") + 1] if "--config" in args else None

# ---- host paths -----------------------------------------------------------------
volumes = {v["name"]: v for v in spec.get("volumes", [])}
mounts = c.get("volumeMounts", [])
for mnt in mounts:
    if mnt["name"] not in volumes:
        bad(f"volumeMount {mnt['name']} has no volume")
for name, v in volumes.items():
    if not any(mnt["name"] == name for mnt in mounts):
        bad(f"volume {name} is not mounted")


def mount_for(path):
    best = None
    for mnt in mounts:
        mp = mnt["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = mnt
    return best


def header_default(rel, macro):
    m = re.search(rf'#define\s+{macro}\s+"([^"]+)"', read(os.path.join(root, rel)))
    if not m:
        bad(f"{rel}: no {macro} (where the agent's default path is defined)")
        return None
    return m.group(1)


pin_path = header_default("agent/kernel/loader.h", "TG_DEFAULT_PIN_PATH")
socket_path = header_default("agent/serve/control_proto.h", "TG_DEFAULT_SOCKET")
default_config = header_default("agent/daemon/agent.h", "TG_DEFAULT_CONFIG")
if config_path and default_config and config_path != default_config:
    bad(f"DaemonSet --config {config_path} differs from the agent's default {default_config}")

# Host state the agent opens on the node: each must be a hostPath volume mounted
# at the same path it has on the host.
host_state = {
    pin_path: "pinned programs and maps (bpffs)",
    "/sys/fs/cgroup/kubepods.slice": "the cgroup2 hierarchy the policy watches",
    socket_path: "control socket",
    "/var/lib/tlsguard/spool": "event spool",
    "/var/log/pods/ns_pod_uid/container/0.log": "pod log metadata (attribution)",
    "/var/log/containers/pod_ns_container-0123.log": "container ids by name (attribution)",
}
readonly_expected = {"/sys/fs/cgroup", "/var/log/pods", "/var/log/containers"}
for path, why in host_state.items():
    if not path:
        continue
    mnt = mount_for(path)
    if not mnt:
        bad(f"{path} ({why}) is not under any volumeMount")
        continue
    hp = get(volumes.get(mnt["name"], {}), "hostPath.path")
    if hp is None:
        bad(f"{path} ({why}) is under volume {mnt['name']}, which is not a hostPath")
    elif hp.rstrip("/") != mnt["mountPath"].rstrip("/"):
        bad(f"{path} ({why}): hostPath {hp} is mounted at {mnt['mountPath']}; host and container paths must match")
    if mnt["mountPath"] in readonly_expected and not mnt.get("readOnly"):
        bad(f"{mnt['mountPath']} should be mounted readOnly")
bpf_mnt = mount_for(pin_path or "/sys/fs/bpf/tlsguard")
if bpf_mnt and bpf_mnt.get("mountPropagation") != "HostToContainer":
    bad("the bpffs mount should use mountPropagation: HostToContainer")

# A node without bpffs: the mount-bpffs init container mounts it on the node
# (Bidirectional), so the agent's pins outlive its container (issue 14).
dinits = spec.get("initContainers", [])
mb = [i for i in dinits if i.get("name") == "mount-bpffs"]
if len(mb) != 1:
    bad("DaemonSet needs one init container mount-bpffs running 'tlsguard mount'")
else:
    mb = mb[0]
    if mb.get("args") != ["mount", "--pin-path", pin_path]:
        bad(f"mount-bpffs args {mb.get('args')} should be mount --pin-path {pin_path}")
    if mb.get("image") != image:
        bad(f"mount-bpffs image {mb.get('image')!r} should be the agent's {image!r}")
    if get(mb, "securityContext.privileged") is not True:
        bad("mount-bpffs must be privileged (Kubernetes allows Bidirectional propagation only then)")
    mbm = [m for m in mb.get("volumeMounts", []) if m.get("mountPath") == "/sys/fs/bpf"]
    if not mbm or mbm[0].get("mountPropagation") != "Bidirectional" or \
            get(volumes.get(mbm[0]["name"], {}), "hostPath.path") != "/sys/fs/bpf":
        bad("mount-bpffs must mount the host's /sys/fs/bpf at /sys/fs/bpf with mountPropagation: Bidirectional")
    mount_help = subprocess.run([tlsguard, "mount", "--help"], capture_output=True, text=True)
    if mount_help.returncode != 0 or "--pin-path" not in mount_help.stdout:
        bad("'tlsguard mount --help' does not document --pin-path")

# Files the policy names (also the commented-out Application Insights block):
# each must be inside a mounted volume that provides it.
cm = obj("ConfigMap", "tlsguard-policy")
policy_text = get(cm, "data", {}).get("tlsguard.yaml", "")
if not policy_text:
    bad("ConfigMap tlsguard-policy has no data key tlsguard.yaml")
uncommented = re.sub(r"^(\s*)# (\s*(application_insights|connection_string_file|spool|dir|encrypt_fields|key_file):)",
                     r"\1\2", policy_text, flags=re.M)
projected = {}
for name, v in volumes.items():
    for src in get(v, "projected.sources", []) or []:
        for kind in ("configMap", "secret"):
            if kind in src:
                for item in src[kind].get("items", []):
                    projected[(name, item["path"])] = (kind, src[kind]["name"], item["key"])
provided = {}
for mnt in mounts:
    for (vname, p), what in projected.items():
        if vname == mnt["name"]:
            provided[os.path.join(mnt["mountPath"], p)] = what
if config_path not in provided or provided[config_path][:2] != ("configMap", "tlsguard-policy"):
    bad(f"{config_path} is not provided by ConfigMap tlsguard-policy")
path_keys = ("file", "connection_string_file", "ca_file", "key_file", "key_files", "dir", "socket")
policy_paths = []
for m in re.finditer(r"^\s*(%s):\s*(\S+)" % "|".join(path_keys), uncommented, re.M):
    val = m.group(2).strip("\"'")
    if val.startswith("/"):
        policy_paths.append((m.group(1), val))
if not any(k == "connection_string_file" for k, _ in policy_paths):
    bad("configmap.yaml: the (commented) application_insights.connection_string_file example is missing")
secret = obj("Secret", "tlsguard-secrets")
secret_keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
for key, val in policy_paths:
    mnt = mount_for(val)
    if not mnt:
        bad(f"policy {key}: {val} is not under any volumeMount")
    elif val.startswith("/etc/tlsguard/secrets/"):
        what = provided.get(val)
        if not what or what[:2] != ("secret", "tlsguard-secrets"):
            bad(f"policy {key}: {val} is not provided by Secret tlsguard-secrets")
        elif what[2] not in secret_keys:
            bad(f"policy {key}: {val} comes from key {what[2]}, which secret.example.yaml does not have")
    elif not get(volumes.get(mnt["name"], {}), "hostPath") and get(volumes.get(mnt["name"], {}), "emptyDir") is None:
        bad(f"policy {key}: {val} is on volume {mnt['name']}, neither a host path nor writable")
for (vname, p), (kind, sname, key) in projected.items():
    if kind == "secret":
        if sname != "tlsguard-secrets" or key not in secret_keys:
            bad(f"volume {vname} projects secret {sname} key {key}, not in secret.example.yaml")
if secret and secret.get("_file") != "secret.example.yaml":
    bad("the Secret template should be secret.example.yaml")

# ---- the policy itself ---------------------------------------------------------
def check_policy(text, label):
    p = os.path.join(tmp, label + ".yaml")
    with open(p, "w") as f:
        f.write(text)
    # away from a node: the file alone (its cgroups and secrets are the pods')
    r = subprocess.run([tlsguard, "policy", "check", "--offline", p], capture_output=True, text=True)
    if r.returncode != 0:
        bad(f"tlsguard policy check rejects the {label} policy: {r.stdout}{r.stderr}")


if policy_text:
    check_policy(policy_text, "configmap")
    check_policy(uncommented, "configmap-with-app-insights")
    pol = yaml.safe_load(policy_text)
    builtin = yaml.safe_load(subprocess.run([tlsguard, "policy", "show-default"],
                                            capture_output=True, text=True).stdout)
    for key in ("destinations", "exceptions", "mode", "fail_mode", "min_tls_version"):
        if pol.get(key) != builtin.get(key):
            bad(f"configmap policy '{key}' differs from `tlsguard policy show-default`; "
                "regenerate it from the built-in policy")
    if get(pol, "workloads.cgroups") != ["/kubepods.slice"]:
        bad(f"configmap policy should watch ['/kubepods.slice'], watches {get(pol, 'workloads.cgroups')}")

# ---- the uninstall DaemonSet ------------------------------------------------------
un = obj("DaemonSet", "tlsguard-uninstall")
uspec = get(un, "spec.template.spec", {})
inits = uspec.get("initContainers", [])
if len(inits) != 1:
    bad("tlsguard-uninstall needs one init container running 'tlsguard uninstall'")
else:
    ic = inits[0]
    if ic.get("args", [])[:1] != ["uninstall"] or (pin_path and pin_path not in ic.get("args", [])):
        bad(f"tlsguard-uninstall init container args {ic.get('args')} should be uninstall --pin-path {pin_path}")
    iadd = get(ic, "securityContext.capabilities.add", []) or []
    # CAP_BPF: the job holds no CAP_SYS_ADMIN, so bpf(2) needs CAP_BPF there
    if not set(iadd) <= set(doc_caps) | {"BPF"} or get(ic, "securityContext.capabilities.drop") != ["ALL"]:
        bad(f"tlsguard-uninstall capabilities {iadd} must drop ALL and add a subset of {doc_caps} and BPF")
    if get(ic, "securityContext.appArmorProfile.type") != "Unconfined" or \
       get(un, "spec.template.metadata.annotations", {}).get(
           f"container.apparmor.security.beta.kubernetes.io/{ic.get('name')}") != "unconfined":
        bad("tlsguard-uninstall init container must be AppArmor unconfined (it unlinks pins in /sys/fs/bpf)")
    uvol = {v["name"]: v for v in uspec.get("volumes", [])}
    if not any(get(uvol.get(mn["name"], {}), "hostPath.path") == "/sys/fs/bpf" and mn["mountPath"] == "/sys/fs/bpf"
               for mn in ic.get("volumeMounts", [])):
        bad("tlsguard-uninstall init container must mount the host's /sys/fs/bpf at /sys/fs/bpf")
    if {"operator": "Exists"} not in uspec.get("tolerations", []):
        bad("tlsguard-uninstall must tolerate every taint (it must reach every node the agent ran on)")

if problems:
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(objects)} objects in {len(files)} files; capabilities {doc_caps}; host paths mounted")
PYEOF
rc=$?
[[ $rc -eq 0 ]] || fail "the manifests do not hold what docs/install-aks.md promises (reasons above)"
exit 0
