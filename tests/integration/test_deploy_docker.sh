#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/docker/Dockerfile, read without building it (tests/image builds and
# runs it): the build stage on the BASE argument (default debian:bookworm)
# runs on the build machine (--platform=$BUILDPLATFORM), installs the
# Makefile's build dependencies and runs make, cross-compiling for another
# TARGETARCH; the rootfs stage installs only shared-library packages (plus CA
# certificates), and those cover every library the binary links, writes the
# built-in policy and assembles the tree with deploy/docker/make-rootfs.sh;
# the runtime stage is that tree on scratch and runs /usr/sbin/tlsguard. The
# build context filter keeps build/ out.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

df=$root/deploy/docker/Dockerfile
[[ -f $df ]] || fail "no $df"
bin=""
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	[[ -n $b && -x $b ]] && { bin=$b; break; }
done
[[ -n $bin ]] || fail "no tlsguard binary (to read the libraries it links): run 'make' first"

# packages owning the binary's DT_NEEDED libraries
needed_pkgs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' >/tmp/tg-deploy-docker.ldd.$$
	readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r soname; do
		lib=$(awk -v n="$soname" '$1 == n { print $2 }' /tmp/tg-deploy-docker.ldd.$$)
		[[ -n $lib ]] || { echo "?$soname"; continue; }
		pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
		[[ -n $pkg ]] || pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
		echo "${pkg:-?$soname}"
	done | sort -u)
rm -f /tmp/tg-deploy-docker.ldd.$$
# the build dependencies the Makefile declares (DEB_BUILD_DEPS, continuation lines included)
build_deps=$(sed -n '/^DEB_BUILD_DEPS[[:space:]]*:=/,/[^\\]$/p' "$root/Makefile" |
	sed -e 's/^DEB_BUILD_DEPS[[:space:]]*:=//' -e 's/\\$//' | tr -s ' \t' '\n' | sed '/^$/d')
[[ -n $build_deps ]] || fail "cannot read DEB_BUILD_DEPS from the Makefile"

/usr/bin/python3 - "$df" "$root" "$needed_pkgs" "$build_deps" <<'PYEOF' || fail "Dockerfile structure (reasons above)"
import os, re, shlex, sys
df, root, needed, build_deps = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
text = open(df).read()
problems = []
bad = problems.append

# logical lines: join continuations, drop comments
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    cur += s
    lines.append(cur)
    cur = ""

args = {}
stages = []          # [{"from": image, "name": n, "lines": [...]}]
for l in lines:
    instr, _, rest = l.partition(" ")
    instr = instr.upper()
    if instr == "ARG" and not stages:
        k, _, v = rest.partition("=")
        args[k] = v
    elif instr == "FROM":
        m = re.match(r"(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        img = m.group(2)
        for _ in range(3):   # ARG defaults that name other ARGs
            img = re.sub(r"\$\{(\w+)\}", lambda g: args.get(g.group(1), ""), img)
        stages.append({"from": img, "name": m.group(3), "platform": m.group(1), "lines": []})
    elif stages:
        stages[-1]["lines"].append((instr, rest))

if len(stages) != 3:
    bad(f"expected 3 stages (build, rootfs, runtime), found {len(stages)}")
    stages += [{"from": "", "name": None, "lines": []}] * 3
build, rootfs, runtime = stages[0], stages[1], stages[-1]
if args.get("BASE") != "debian:bookworm":
    bad(f"ARG BASE should default to debian:bookworm (the registry's image), is {args.get('BASE')!r}")
if build.get("platform") != "$BUILDPLATFORM":
    bad("build stage should run on the build machine (FROM --platform=$BUILDPLATFORM) and cross-compile")
if rootfs.get("platform"):
    bad("rootfs stage must be of the target platform (no --platform)")
for st in (build, rootfs):
    if st["from"] != "debian:bookworm" or not st["name"]:
        bad(f"build and rootfs stages should be named 'FROM ${{BASE}} AS ...', one is {st['from']!r}")
if runtime["from"] != "scratch":
    bad(f"runtime stage should be FROM scratch (no shell, no package manager), is {runtime['from']!r}")

def installed(stage):
    pk = []
    for instr, rest in stage["lines"]:
        if instr == "RUN":
            for m in re.finditer(r"apt-get install ([^&;|]*)", rest):
                pk += [w for w in shlex.split(m.group(1)) if not w.startswith("-")]
    return set(pk)


def runs(stage):
    return " && ".join(rest for instr, rest in stage["lines"] if instr == "RUN")


bpk = installed(build)
missing = [d for d in build_deps if d not in bpk and d != "libcmocka-dev"]
if missing:
    bad(f"build stage does not install the Makefile's build dependencies {missing}")
if not re.search(r"(^|[\s&;])make(\s|$)", runs(build)):
    bad("build stage does not run make")

rpk = installed(rootfs)
tools = {"clang", "llvm", "gcc", "make", "pkg-config", "bpftool", "cc", "binutils", "build-essential"}
dev = sorted(p for p in rpk if p in tools or p.endswith("-dev"))
if dev:
    bad(f"rootfs stage installs build tools {dev}")
for p in ("libbpf1", "libelf1", "libjson-c5", "libyaml-0-2", "libcurl4", "libssl3", "zlib1g", "libdeflate0"):
    if p not in rpk:
        bad(f"rootfs stage does not install {p}")
extra = sorted(p for p in rpk if not re.match(r"lib", p) and p not in ("zlib1g", "ca-certificates"))
if extra:
    bad(f"rootfs stage installs non-library packages {extra}")
for p in needed:
    if p.startswith("?"):
        bad(f"no Debian package owns {p[1:]}, which the binary links")
    elif p not in rpk and p != "libc6":
        bad(f"the binary links a library from {p}, which the rootfs stage does not install")
if "--no-install-recommends" not in runs(rootfs) or "rm -rf /var/lib/apt/lists" not in runs(rootfs):
    bad("rootfs apt-get should use --no-install-recommends and remove /var/lib/apt/lists")
if "make-rootfs.sh /rootfs /usr/sbin/tlsguard" not in runs(rootfs):
    bad("rootfs stage does not run deploy/docker/make-rootfs.sh /rootfs /usr/sbin/tlsguard")

def copied(stage, src_dest):
    return any(re.match(rf"--from={re.escape(build['name'] or '')}\s+{src_dest}$", c)
               for c in [rest for instr, rest in stage["lines"] if instr == "COPY"])
if not copied(rootfs, r"\S+\s+/rootfs/usr/sbin/tlsguard"):
    bad("rootfs stage does not COPY --from=<build> the binary to /rootfs/usr/sbin/tlsguard")
copies = [rest for instr, rest in runtime["lines"] if instr == "COPY"]
if copies != [f"--from={rootfs['name']} /rootfs/ /"]:
    bad(f"runtime stage should only COPY --from={rootfs['name']} /rootfs/ /, copies {copies}")
if "policy show-default > /rootfs/etc/tlsguard/tlsguard.yaml" not in runs(rootfs):
    bad("rootfs stage does not write the built-in policy (tlsguard policy show-default)")
if "ARCH=" not in runs(build) or "crossbuild-essential-" not in runs(build):
    bad("build stage does not cross-compile for TARGETARCH (make ARCH=..., crossbuild-essential-...)")
ep = [rest for instr, rest in runtime["lines"] if instr == "ENTRYPOINT"]
if ep != ['["/usr/sbin/tlsguard"]']:
    bad(f"ENTRYPOINT should be [\"/usr/sbin/tlsguard\"], is {ep}")

ign = os.path.join(os.path.dirname(df), "Dockerfile.dockerignore")
if not os.path.exists(ign) or not re.search(r"^build$", open(ign).read(), re.M):
    bad("deploy/docker/Dockerfile.dockerignore must keep build/ out of the build context")

for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
echo "ok: Dockerfile: build stage runs make; rootfs has the libraries for $(echo $needed_pkgs); runtime on scratch"
exit 0
