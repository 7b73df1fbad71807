#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A protected destination with ports [80, 443]: connect() to 8080 is refused
# with EPERM in enforce mode (curl exit 7 at once, the server sees nothing) and
# reported as blocked_connect; in audit mode it is flagged and goes through.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

# shellcheck source=tests/integration/port_common.sh
. "$(dirname "$0")/port_common.sh"
check_disallowed_port "$TG_PROT4"
