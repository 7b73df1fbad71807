#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_dns_first_connect.sh with DNS learning's programs attached as programs
# of their own (agent --dns-hooks separate): how kernels that cannot chain
# them into the verdict's (arm64 before 6.0) run them. Every first connect
# must be judged there too.
set -euo pipefail
TG_DNS_HOOKS=separate exec "$(dirname "$0")/test_dns_first_connect.sh"
