#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns a container of deploy/kubernetes/daemonset.yaml into podman arguments,
so that tests/image runs the image the way the kubelet would: the pod's host
namespaces, the container's securityContext (capabilities, read-only root,
no_new_privs, privileged), its volume mounts with their propagation, its env
and args. Nothing is copied from the manifest by hand.

  pod.py MANIFEST CONTAINER run-args [--host PATH=DIR]... [--volume NAME=DIR]...
        [--drop-cap CAP] [--node NAME]
      podman run arguments (one per line, before the image), then a line
      "--", then the container's args (after the image).
  pod.py MANIFEST CONTAINER caps       the added capabilities, one per line
  pod.py MANIFEST CONTAINER probe KIND the exec command of livenessProbe /
                                       readinessProbe / startupProbe, one word a line

--host PATH=DIR puts DIR where the manifest mounts the host's PATH (a test's
own spool or control socket directory instead of the node's); --volume
NAME=DIR is the directory for a volume that is not a hostPath (configMap,
projected); --drop-cap removes one capability from the added ones.
"""
import argparse
import os
import sys

import yaml

PROPAGATION = {None: "", "None": "", "HostToContainer": "rslave", "Bidirectional": "rshared"}


def pod_spec(path):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "DaemonSet":
            return doc["spec"]["template"]["spec"]
    sys.exit(f"pod.py: no DaemonSet in {path}")


def container(spec, name):
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        if c["name"] == name:
            return c
    sys.exit(f"pod.py: no container {name!r}")


def volume_args(spec, c, hosts, dirs):
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    out = []
    for m in c.get("volumeMounts", []):
        v = vols[m["name"]]
        opts = []
        if m.get("readOnly"):
            opts.append("ro")
        prop = PROPAGATION[m.get("mountPropagation")]
        if prop:
            opts.append(prop)
        if "emptyDir" in v:
            size = (v["emptyDir"] or {}).get("sizeLimit", "")
            size = size.replace("Mi", "m").replace("Gi", "g")
            out.append(f"--tmpfs={m['mountPath']}" + (f":size={size}" if size else ""))
            continue
        if "hostPath" in v:
            src = hosts.get(v["hostPath"]["path"], v["hostPath"]["path"])
        elif m["name"] in dirs:
            src = dirs[m["name"]]
        else:
            sys.exit(f"pod.py: volume {m['name']!r} is neither hostPath nor emptyDir: give --volume {m['name']}=DIR")
        out.append(f"--volume={src}:{m['mountPath']}" + (":" + ",".join(opts) if opts else ""))
    return out


def run_args(spec, c, a):
    hosts = dict(h.split("=", 1) for h in a.host)
    dirs = dict(v.split("=", 1) for v in a.volume)
    sc = c.get("securityContext", {})
    psc = spec.get("securityContext", {})
    out = []
    out.append("--pid=host" if spec.get("hostPID") else "--pid=private")
    # containerd gives every container a cgroup namespace of its own on cgroup v2 nodes (AKS)
    out.append("--cgroupns=private")
    # without hostNetwork the pod has a network namespace of its own (no CNI here: lo only)
    out.append("--network=host" if spec.get("hostNetwork") else "--network=none")
    if sc.get("privileged"):
        out.append("--privileged")
    caps = sc.get("capabilities", {})
    for cap in caps.get("drop", []):
        out.append(f"--cap-drop={cap}")
    for cap in caps.get("add", []):
        if cap != a.drop_cap:
            out.append(f"--cap-add={cap}")
    if sc.get("allowPrivilegeEscalation") is False:
        out.append("--security-opt=no-new-privileges")
    if sc.get("readOnlyRootFilesystem"):
        out += ["--read-only", "--read-only-tmpfs=false"]
    if "runAsUser" in sc:
        out.append(f"--user={sc['runAsUser']}:{sc.get('runAsGroup', 0)}")
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        out.append("--security-opt=seccomp=unconfined")
    elif seccomp != "RuntimeDefault":
        sys.exit(f"pod.py: seccomp profile {seccomp} is not mapped")
    # RuntimeDefault: podman's default profile, as containerd's
    apparmor = (sc.get("appArmorProfile") or psc.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined" and os.path.exists("/sys/kernel/security/apparmor"):
        out.append("--security-opt=apparmor=unconfined")
    for e in c.get("env", []):
        if "value" in e:
            out.append(f"--env={e['name']}={e['value']}")
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            out.append(f"--env={e['name']}={a.node}")
    out += volume_args(spec, c, hosts, dirs)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("manifest")
    p.add_argument("container")
    p.add_argument("what", choices=["run-args", "caps", "probe"])
    p.add_argument("kind", nargs="?", default="livenessProbe")
    p.add_argument("--host", action="append", default=[])
    p.add_argument("--volume", action="append", default=[])
    p.add_argument("--drop-cap", default=None)
    p.add_argument("--node", default="tg-image-test")
    a = p.parse_args()
    spec = pod_spec(a.manifest)
    c = container(spec, a.container)
    if a.what == "caps":
        print("\n".join(c.get("securityContext", {}).get("capabilities", {}).get("add", [])))
    elif a.what == "probe":
        print("\n".join(c[a.kind]["exec"]["command"]))
    else:
        print("\n".join(run_args(spec, c, a)))
        print("--")
        print("\n".join(c.get("args", [])))


if __name__ == "__main__":
    main()
