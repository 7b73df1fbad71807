#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Debian bookworm base image without a container registry: debootstrap
# --variant=minbase from the Debian mirror apt already uses on this machine,
# imported into podman as localhost/tlsguard-base:bookworm-ARCH. The rootfs
# tarball is cached in CACHE_DIR, so a second run only checks (and a machine
# whose podman storage was wiped only re-imports). Prints the image name.
#
#   scripts/image-base.sh ARCH CACHE_DIR        ARCH: amd64 | arm64 (Debian names)
#
# A foreign ARCH needs qemu-user-static registered with binfmt_misc (the
# second debootstrap stage runs the target's binaries); this script mounts
# binfmt_misc and enables the Debian binfmt entry when they are not there.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
arch=${1:?usage: image-base.sh ARCH CACHE_DIR}
cache=${2:?usage: image-base.sh ARCH CACHE_DIR}
suite=bookworm
image=localhost/tlsguard-base:$suite-$arch
tar=$cache/debian-$suite-minbase-$arch.tar
stamp=$cache/debian-$suite-minbase-$arch.image-id
podman=$here/podman.sh

say() { echo "image-base: $*" >&2; }

# The first Debian archive URI apt is configured with for $suite (deb822
# .sources or one-line sources.list), and the security archive's, if any.
apt_uri()
{
	local want=$1
	python3 - "$suite" "$want" /etc/apt/sources.list /etc/apt/sources.list.d/* <<'PY'
import sys, re, os
suite, want, files = sys.argv[1], sys.argv[2], sys.argv[3:]
target = suite + ("-security" if want == "security" else "")
for path in files:
    if not os.path.isfile(path):
        continue
    text = open(path, errors="replace").read()
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            f = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                f[k.strip().lower()] = v.split()
            if "deb" in f.get("types", []) and target in f.get("suites", []) and f.get("uris") \
                    and f.get("enabled", ["yes"])[0] != "no":
                print(f["uris"][0]); sys.exit(0)
    elif path.endswith(".list"):
        for line in text.splitlines():
            w = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(w) >= 3 and w[0] == "deb" and w[2] == target:
                print(w[1]); sys.exit(0)
sys.exit(1)
PY
}

ensure_binfmt()
{
	local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
	[[ $arch == arm64 && $(dpkg --print-architecture) != arm64 ]] || return 0
	[[ -x /usr/bin/qemu-aarch64-static ]] || { say "qemu-user-static is not installed"; return 1; }
	if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
			{ say "cannot mount binfmt_misc (needed to run $arch binaries)"; return 1; }
	fi
	if [[ ! -e $entry ]]; then
		update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
			update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
	fi
	[[ -e $entry && $(head -n 1 "$entry") == enabled ]] ||
		{ say "binfmt_misc has no enabled qemu-aarch64 entry (update-binfmts --enable qemu-aarch64)"; return 1; }
}

make_tar()
{
	local mirror security dir
	mirror=$(apt_uri main) || mirror=http://deb.debian.org/debian
	security=$(apt_uri security) || security=""
	dir=$cache/rootfs-$arch.tmp
	rm -rf "$dir"
	mkdir -p "$dir"
	say "debootstrap --variant=minbase --arch=$arch $suite from $mirror"
	local log=$cache/debootstrap-$arch.log ok=1
	if [[ $arch == "$(dpkg --print-architecture)" ]]; then
		debootstrap --variant=minbase --arch="$arch" "$suite" "$dir" "$mirror" >"$log" 2>&1 || ok=0
	else
		ensure_binfmt
		debootstrap --foreign --variant=minbase --arch="$arch" "$suite" "$dir" "$mirror" >"$log" 2>&1 || ok=0
		if [[ $ok == 1 ]]; then
			cp /usr/bin/qemu-aarch64-static "$dir/usr/bin/"
			chroot "$dir" /debootstrap/debootstrap --second-stage >>"$log" 2>&1 || ok=0
			rm -f "$dir/usr/bin/qemu-aarch64-static"
		fi
	fi
	if [[ $ok == 0 ]]; then
		tail -n 20 "$log" >&2
		say "debootstrap failed (log: $log)"
		return 1
	fi
	# the archive apt uses here, with updates and security, for the images' apt-get
	rm -f "$dir/etc/apt/sources.list"
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		[[ -z $security ]] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$suite"
	} >"$dir/etc/apt/sources.list.d/debian.sources"
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/* "$dir/debootstrap"
	: >"$dir/etc/resolv.conf"
	tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
	mv "$tar.tmp" "$tar"
	rm -rf "$dir" "$stamp"
}

mkdir -p "$cache"
if [[ ! -s $tar ]]; then
	make_tar
fi
if [[ -s $stamp ]] && "$podman" image exists "$image" &&
	[[ $("$podman" image inspect -f '{{.Id}}' "$image") == "$(cat "$stamp")" ]]; then
	say "$image is up to date ($tar)"
else
	say "podman import $tar as $image"
	# arm64 images are variant v8: without it podman looks for the image in a registry
	variant=()
	[[ $arch == arm64 ]] && variant=(--variant v8)
	"$podman" import --quiet --arch "$arch" "${variant[@]}" -c 'CMD ["/bin/bash"]' -m "debootstrap --variant=minbase $suite" \
		"$tar" "$image" >/dev/null
	"$podman" image inspect -f '{{.Id}}' "$image" >"$stamp"
fi
echo "$image"
