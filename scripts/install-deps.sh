#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the given Debian packages when any is missing. Runs `apt-get update`
# once, only when something has to be installed. Nothing comes from anywhere
# but the Debian archive.
set -euo pipefail

missing=()
for pkg in "$@"; do
	# one line per installed architecture (foo and foo:arm64 both installed)
	status=$(dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null || true)
	grep -qx "install ok installed" <<<"$status" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "tlsguard: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
