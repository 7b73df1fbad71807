#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/docker/Dockerfile, without a Docker engine: two stages on Debian
# bookworm; the build stage installs the Makefile's build dependencies and runs
# make; the runtime stage installs only shared-library packages (plus CA
# certificates), and those cover every library the binary links; it copies the
# binary and the built-in policy from the build stage and runs
# /usr/sbin/tlsguard. The build context filter keeps build/ out.
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
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        img = re.sub(r"\$\{(\w+)\}", lambda g: args.get(g.group(1), ""), m.group(1))
        stages.append({"from": img, "name": m.group(2), "lines": []})
    elif stages:
        stages[-1]["lines"].append((instr, rest))

if len(stages) != 2:
    bad(f"expected 2 stages (build, runtime), found {len(stages)}")
    stages += [{"from": "", "name": None, "lines": []}] * 2
build, runtime = stages[0], stages[-1]
if build["from"] != "debian:bookworm" or not build["name"]:
    bad(f"build stage should be a named 'FROM debian:bookworm AS ...', is {build['from']!r}")
if not runtime["from"].startswith("debian:bookworm"):
    bad(f"runtime stage should be Debian bookworm, is {runtime['from']!r}")


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

rpk = installed(runtime)
tools = {"clang", "llvm", "gcc", "make", "pkg-config", "bpftool", "cc", "binutils", "build-essential"}
dev = sorted(p for p in rpk if p in tools or p.endswith("-dev"))
if dev:
    bad(f"runtime stage installs build tools {dev}")
for p in ("libbpf1", "libelf1", "libjson-c5", "libyaml-0-2", "libcurl4", "libssl3", "zlib1g"):
    if p not in rpk:
        bad(f"runtime stage does not install {p}")
extra = sorted(p for p in rpk if not re.match(r"lib", p) and p not in ("zlib1g", "ca-certificates"))
if extra:
    bad(f"runtime stage installs non-library packages {extra}")
for p in needed:
    if p.startswith("?"):
        bad(f"no Debian package owns {p[1:]}, which the binary links")
    elif p not in rpk and p != "libc6":
        bad(f"the binary links a library from {p}, which the runtime stage does not install")
if "--no-install-recommends" not in runs(runtime) or "rm -rf /var/lib/apt/lists" not in runs(runtime):
    bad("runtime apt-get should use --no-install-recommends and remove /var/lib/apt/lists")

copies = [rest for instr, rest in runtime["lines"] if instr == "COPY"]
def copied_to(dest):
    return any(re.match(rf"--from={re.escape(build['name'] or '')}\s+\S+\s+{re.escape(dest)}$", c) for c in copies)
if not copied_to("/usr/sbin/tlsguard"):
    bad("runtime stage does not COPY --from=<build> the binary to /usr/sbin/tlsguard")
if not copied_to("/etc/tlsguard/tlsguard.yaml"):
    bad("runtime stage does not COPY --from=<build> the built-in policy to /etc/tlsguard/tlsguard.yaml")
if any(not c.startswith("--from=") for c in copies):
    bad(f"runtime stage copies from the build context: {[c for c in copies if not c.startswith('--from=')]}")
if "policy show-default" not in runs(build):
    bad("build stage does not write the built-in policy (tlsguard policy show-default)")
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
echo "ok: Dockerfile: bookworm build stage runs make; runtime has the libraries for $(echo $needed_pkgs), no build tools"
exit 0
