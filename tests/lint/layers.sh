#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The include rules of docs/architecture.md, checked on the tree:
#   - a file includes headers of its own layer or of lower layers only;
#   - no header of agent/daemon/ is included from outside agent/daemon/;
#   - agent/cli/ includes only agent/serve/control_proto.h and agent/lib/;
#   - no include cycle between modules (a module is X.c with X.h; tsort finds cycles).
# Prints one line per broken rule and "layers: N passed, M failed".
#
#   tests/lint/layers.sh [REPO]
set -uo pipefail

repo=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$repo" || exit 2

# Lowest first. main.c is the root: it may include anything.
layers=(lib kernel sinks policy workloads events serve daemon cli)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done

failed=0 passed=0 edges=$(mktemp /tmp/tg-layers.XXXXXX)
trap 'rm -f "$edges"' EXIT

fail() { echo "layers: $*"; failed=$((failed + 1)); }

declare -A where   # header name -> layer directory
for h in agent/*/*.h; do
	name=${h##*/}
	dir=${h#agent/}; dir=${dir%%/*}
	if [[ -n ${where[$name]:-} ]]; then
		fail "header name $name is in two layers: ${where[$name]} and $dir"
	fi
	where[$name]=$dir
done


check_file()
{
	local f=$1 from=${1#agent/} inc to target ok=1
	from=${from%%/*}
	[[ $f == agent/main.c ]] && from=main
	while read -r inc; do
		case $inc in
		tlsguard/*) continue ;;            # include/: the kernel/user contract
		*.skel.h) to=kernel; target=$inc ;; # generated skeletons belong to the loader layer
		*/*) to=${inc%%/*}; target=agent/$inc ;;
		*)
			to=${where[$inc]:-}
			target=agent/$to/$inc
			if [[ -z $to ]]; then
				fail "$f includes \"$inc\", which is no header of agent/"
				ok=0
				continue
			fi
			;;
		esac
		[[ $from == main ]] && continue
		echo "${f%.[ch]} ${target%.h}" >>"$edges"
		if [[ ${rank[$to]} -gt ${rank[$from]} ]]; then
			fail "$f ($from) includes $inc ($to): an arrow up"
			ok=0
		fi
		if [[ $to == daemon && $from != daemon ]]; then
			fail "$f includes the daemon header $inc"
			ok=0
		fi
		if [[ $from == cli && $to != lib && $to != cli && $inc != control_proto.h ]]; then
			fail "$f (cli) includes $inc: the CLI may include only control_proto.h and lib/"
			ok=0
		fi
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	[[ $ok -eq 1 ]] && passed=$((passed + 1))
}

for f in agent/main.c agent/*/*.[ch]; do
	check_file "$f"
done

# tsort prints "tsort: -: input contains a loop:" and the loop's members.
cycles=$(awk '$1 != $2' "$edges" | tsort 2>&1 >/dev/null | grep -v 'input contains a loop' |
	sed 's/^tsort: //' | sort -u)
if [[ -n $cycles ]]; then
	fail "include cycle among: $(tr '\n' ' ' <<<"$cycles")"
else
	passed=$((passed + 1))
fi

echo "layers: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
