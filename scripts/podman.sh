#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podman as it works on a Debian 12 machine without a Docker engine: runc
# (crun refuses on hybrid cgroup hierarchies and with the default rlimits),
# cgroupfs (no systemd as PID 1 to ask), and a containers.conf that sets no
# default ulimits. Every tlsguard script that runs podman goes through here.
#
#   scripts/podman.sh ARGS...     same arguments as podman
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
exec podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs "$@"
