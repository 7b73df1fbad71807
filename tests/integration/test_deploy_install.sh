#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make install DESTDIR=...` puts every file where docs/install-vm.md's table
# ("make install" column) and the unit say, with the right modes, and nothing
# else; PREFIX=/usr puts the unit in /lib/systemd/system as the package does;
# an existing policy is never overwritten; `make uninstall-files` removes what
# install added and keeps /etc/tlsguard.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d /tmp/tg-deploy-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	if [[ -n $b && -x $b ]]; then
		cp "$b" "$tmp/bin/tlsguard"
		break
	fi
done
[[ -x $tmp/bin/tlsguard ]] || fail "no tlsguard binary to install: run 'make' first"

# install DESTDIR [make variables...]
install_to()
{
	local dest=$1
	shift
	make -C "$root" --no-print-directory install DESTDIR="$dest" INSTALL_BIN="$tmp/bin/tlsguard" \
		INSTALL_POLICY="$tmp/bin/tlsguard.yaml" "$@" >"$tmp/make.log" 2>&1 ||
		{ cat "$tmp/make.log" >&2; fail "make install DESTDIR=$dest $* failed (log above)"; }
}

# ---- default PREFIX: the documented table ------------------------------------------
a=$tmp/a
install_to "$a"
awk '/<!-- installed-files/ { on = 1 } on && /^\|/ { print } on && /^$/ && seen { exit } /^\|/ { seen = on }' \
	"$root/docs/install-vm.md" | awk -F'|' 'NR > 2 { print $3 }' |
	grep -o '`/[^`]*`' | tr -d '`' | sort -u >"$tmp/documented"
[[ -s $tmp/documented ]] || fail "no installed-files table found in docs/install-vm.md"
while read -r p; do
	if [[ $p == */ ]]; then
		[[ -d $a$p ]] || fail "docs/install-vm.md says make install creates directory $p; it does not"
	else
		[[ -f $a$p ]] || fail "docs/install-vm.md says make install installs $p; it does not"
	fi
done <"$tmp/documented"
# and nothing undocumented
(cd "$a" && find . -type f | sed 's/^\.//' | sort) >"$tmp/installed"
grep -v '/$' "$tmp/documented" >"$tmp/documented-files"
if ! diff -u "$tmp/documented-files" "$tmp/installed" >"$tmp/diff"; then
	cat "$tmp/diff" >&2
	fail "make install and docs/install-vm.md's table disagree (- documented, + installed)"
fi
echo "ok: make install puts the $(wc -l <"$tmp/installed") documented files in place"

mode() { stat -c %a "$1"; }
[[ $(mode "$a/usr/local/sbin/tlsguard") == 755 ]] || fail "binary mode $(mode "$a/usr/local/sbin/tlsguard"), expected 755"
[[ $(mode "$a/etc/tlsguard/secrets") == 700 ]] || fail "/etc/tlsguard/secrets mode $(mode "$a/etc/tlsguard/secrets"), expected 700"
for f in usr/local/lib/systemd/system/tlsguard.service usr/local/lib/tmpfiles.d/tlsguard.conf \
	usr/local/share/man/man8/tlsguard.8 usr/local/share/bash-completion/completions/tlsguard \
	etc/tlsguard/tlsguard.yaml; do
	[[ $(mode "$a/$f") == 644 ]] || fail "/$f mode $(mode "$a/$f"), expected 644"
done

# the unit refers to what was installed
unit=$a/usr/local/lib/systemd/system/tlsguard.service
grep -qx 'ExecStart=/usr/local/sbin/tlsguard agent --config /etc/tlsguard/tlsguard.yaml' "$unit" ||
	fail "installed unit's ExecStart= is not the installed binary: $(grep ^ExecStart= "$unit")"
grep -q '/usr/sbin/tlsguard' "$unit" && fail "installed unit still names /usr/sbin/tlsguard under PREFIX=/usr/local"
grep -q 'Documentation=man:tlsguard(8)' "$unit" || fail "the unit does not point at the man page"
# the installed policy is the built-in one and valid
"$tmp/bin/tlsguard" policy show-default | cmp -s - "$a/etc/tlsguard/tlsguard.yaml" ||
	fail "/etc/tlsguard/tlsguard.yaml is not 'tlsguard policy show-default'"
"$tmp/bin/tlsguard" policy check "$a/etc/tlsguard/tlsguard.yaml" >/dev/null ||
	fail "the installed policy does not pass 'tlsguard policy check'"
echo "ok: modes; the unit runs the installed binary with the installed policy"

# ---- an existing policy is kept --------------------------------------------------------
echo "# local change" >>"$a/etc/tlsguard/tlsguard.yaml"
install_to "$a"
grep -qx '# local change' "$a/etc/tlsguard/tlsguard.yaml" || fail "a second make install overwrote /etc/tlsguard/tlsguard.yaml"
grep -q 'KEEP' "$tmp/make.log" || fail "make install kept the policy without saying so"
echo "ok: an existing /etc/tlsguard/tlsguard.yaml is kept"

# ---- PREFIX=/usr: where the Debian package puts things ------------------------------------
b=$tmp/b
install_to "$b" PREFIX=/usr
for f in /usr/sbin/tlsguard /lib/systemd/system/tlsguard.service /usr/lib/tmpfiles.d/tlsguard.conf \
	/usr/share/man/man8/tlsguard.8 /usr/share/bash-completion/completions/tlsguard /etc/tlsguard/tlsguard.yaml; do
	[[ -f $b$f ]] || fail "make install PREFIX=/usr did not install $f"
done
grep -qx 'ExecStart=/usr/sbin/tlsguard agent --config /etc/tlsguard/tlsguard.yaml' "$b/lib/systemd/system/tlsguard.service" ||
	fail "PREFIX=/usr unit ExecStart= is $(grep ^ExecStart= "$b/lib/systemd/system/tlsguard.service")"
[[ ! -e $b/usr/lib/systemd/system/tlsguard.service ]] || fail "PREFIX=/usr installed the unit twice"
echo "ok: PREFIX=/usr puts the unit in /lib/systemd/system"

# ---- uninstall-files ----------------------------------------------------------------------
make -C "$root" --no-print-directory uninstall-files DESTDIR="$a" >"$tmp/make.log" 2>&1 ||
	{ cat "$tmp/make.log" >&2; fail "make uninstall-files failed"; }
left=$(cd "$a" && find . -type f | sed 's/^\.//' | sort | tr '\n' ' ')
[[ $left == "/etc/tlsguard/tlsguard.yaml " ]] || fail "make uninstall-files left: $left (expected only the policy)"
echo "ok: make uninstall-files removes the files and keeps /etc/tlsguard"
exit 0
