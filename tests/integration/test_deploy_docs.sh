#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The man page and the bash completion follow the CLI: every command that
# `tlsguard --help` lists and every long option its `--help` prints is in
# docs/tlsguard.8 (in that command's section) and in
# contrib/completion/tlsguard.bash, and neither documents an option the binary
# does not have. The man page renders without groff warnings, the completion
# completes, the deployment docs' links resolve, and the man page names the
# same capabilities as docs/install-aks.md.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

bin=""
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	[[ -n $b && -x $b ]] && { bin=$b; break; }
done
[[ -n $bin ]] || fail "no tlsguard binary: run 'make' first"
man=$root/docs/tlsguard.8
comp=$root/contrib/completion/tlsguard.bash
tmp=$(mktemp -d /tmp/tg-deploy-docs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- CLI coverage ----------------------------------------------------------------
"$bin" --help >"$tmp/help" 2>&1 || fail "tlsguard --help failed"
commands=$(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' "$tmp/help")
[[ -n $commands ]] || fail "no 'Commands:' list in 'tlsguard --help'"
for cmd in $commands; do
	"$bin" "$cmd" --help >"$tmp/help.$cmd" 2>&1 || fail "tlsguard $cmd --help failed"
done
/usr/bin/python3 - "$tmp" "$man" "$comp" $commands <<'PYEOF' || fail "the man page or the completion does not match the CLI (above)"
import re, sys
tmp, man_path, comp_path, *commands = sys.argv[1:]
man = open(man_path).read()
comp = open(comp_path).read()
problems = []

# man sections: .SS "tlsguard CMD ..." up to the next .SS/.SH
sections = {}
for m in re.finditer(r'^\.SS "tlsguard ([a-z]+)([^"]*)"\n(.*?)(?=^\.S[SH] )', man, re.M | re.S):
    sections.setdefault(m.group(1), []).append(m.group(2).replace("\\-", "-") + "\n" + m.group(3))
comp_commands = re.search(r'local commands="([^"]*)"', comp)
comp_commands = comp_commands.group(1).split() if comp_commands else []


def comp_opts(cmd):
    m = re.search(r'^\t(?:[a-z|\s]*\b)?%s(?:\s*\|[^)]*)?\)\n(.*?)\n\t\t;;' % re.escape(cmd), comp, re.M | re.S)
    if not m:
        return None
    o = re.search(r'opts="([^"]*)"', m.group(1))
    return set(o.group(1).split()) if o else set()


for cmd in commands:
    text = open(f"{tmp}/help.{cmd}").read()
    opts = set(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", text)) - {"help"}
    if cmd not in sections:
        problems.append(f'docs/tlsguard.8: no section .SS "tlsguard {cmd} ..." for command {cmd}')
    if cmd not in comp_commands:
        problems.append(f"contrib/completion/tlsguard.bash: command {cmd} missing from 'local commands='")
    body = "\n".join(sections.get(cmd, []))
    man_opts = set(re.findall(r"\\-\\-([a-z][a-z\\-]*[a-z])", body))
    man_opts = {o.replace("\\-", "-") for o in man_opts} - {"help"}
    for o in sorted(opts - man_opts):
        problems.append(f"docs/tlsguard.8: option --{o} of 'tlsguard {cmd}' is not in its section")
    for o in sorted(man_opts - opts):
        problems.append(f"docs/tlsguard.8: documents --{o} for 'tlsguard {cmd}', which its --help does not list")
    if cmd == "policy":
        for sub in re.findall(r"^  ([a-z][a-z-]+)\s", text, re.M):
            if not any(s.startswith(" " + sub) for s in sections.get("policy", [])):
                problems.append(f'docs/tlsguard.8: no section .SS "tlsguard policy {sub} ..."')
            if sub not in comp:
                problems.append(f"contrib/completion/tlsguard.bash: policy subcommand {sub} missing")
        continue
    co = comp_opts(cmd)
    if co is None:
        problems.append(f"contrib/completion/tlsguard.bash: no case branch for command {cmd}")
        continue
    co = {o[2:] for o in co if o.startswith("--")} - {"help"}
    for o in sorted(opts - co):
        problems.append(f"contrib/completion/tlsguard.bash: option --{o} of {cmd} is not completed")
    for o in sorted(co - opts):
        problems.append(f"contrib/completion/tlsguard.bash: completes --{o} for {cmd}, which its --help does not list")

for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
echo "ok: man page and completion cover $(echo $commands) and their options"

# ---- the man page renders cleanly -------------------------------------------------
if command -v groff >/dev/null; then
	groff -ww -z -man "$man" 2>"$tmp/groff.log"
	[[ ! -s $tmp/groff.log ]] || { cat "$tmp/groff.log" >&2; fail "groff warns about docs/tlsguard.8"; }
	echo "ok: groff renders docs/tlsguard.8 without warnings"
else
	echo "note: groff not installed; rendering not checked"
fi

# ---- the completion completes ----------------------------------------------------------
bash -n "$comp" || fail "contrib/completion/tlsguard.bash does not parse"
# complete LINE: what the completion offers for the last word of LINE
complete_line()
{
	bash --norc --noprofile -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_tlsguard; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@" | sort | tr '\n' ' '
}
expect_completion()
{
	local want=$1 got
	shift
	got=$(complete_line "$@")
	[[ " $got" == *" $want "* ]] || fail "completing '$*' offers '$got', not '$want'"
}
expect_completion agent tlsguard ag
expect_completion status tlsguard st
expect_completion --mode tlsguard agent --mo
expect_completion enforce tlsguard agent --mode en
expect_completion --check tlsguard status --ch
expect_completion json tlsguard events -o j
expect_completion show-default tlsguard policy sh
expect_completion --pin-path tlsguard uninstall --
echo "ok: bash completion completes commands, options and their values"

# ---- deployment docs: links resolve, capabilities agree ---------------------------------
/usr/bin/python3 - "$root" <<'PYEOF' || fail "deployment docs are inconsistent (above)"
import os, re, sys
root = sys.argv[1]
docs = ["install-aks.md", "install-vm.md", "troubleshooting.md", "threat-model.md"]
problems = []


def slug(h):
    h = re.sub(r"[`*_]", "", h.strip().lower())
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


anchors = {}
for d in os.listdir(os.path.join(root, "docs")):
    if d.endswith(".md"):
        text = open(os.path.join(root, "docs", d)).read()
        anchors[d] = {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.M)}
for d in docs:
    path = os.path.join(root, "docs", d)
    if not os.path.exists(path):
        problems.append(f"docs/{d} is missing")
        continue
    text = open(path).read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        file = file or d
        if not os.path.exists(os.path.join(root, "docs", file)):
            if file in ("policy.md",):
                print(f"note: docs/{d} links to docs/{file}, which does not exist yet")
                continue
            problems.append(f"docs/{d}: link to {target}: no such file docs/{file}")
            continue
        if anchor and anchor not in anchors.get(file, set()):
            problems.append(f"docs/{d}: link to {target}: no heading with that anchor in {file}")

aks = open(os.path.join(root, "docs", "install-aks.md")).read()
m = re.search(r"^## Capabilities\n(.*?)(?=^## )", aks, re.M | re.S)
caps = set(re.findall(r"^\| `(CAP_[A-Z_]+)` \|", m.group(1), re.M)) if m else set()
man = open(os.path.join(root, "docs", "tlsguard.8")).read()
priv = re.search(r"^\.SH PRIVILEGES\n(.*?)(?=^\.SH )", man, re.M | re.S)
man_caps = set(re.findall(r"CAP_[A-Z_]+", priv.group(1))) if priv else set()
if not caps or caps != man_caps:
    problems.append(f"docs/tlsguard.8 PRIVILEGES names {sorted(man_caps)}, docs/install-aks.md {sorted(caps)}")
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
echo "ok: deployment docs' links resolve; man page and install-aks.md name the same capabilities"
exit 0
