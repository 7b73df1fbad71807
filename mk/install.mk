# SPDX-License-Identifier: MIT
# `make install`, `make uninstall-files` and `make deb`.
#
#   make install [DESTDIR=/staging] [PREFIX=/usr/local]
#
# installs (paths for the default PREFIX /usr/local; docs/install-vm.md has
# the table, which tests/integration/test_deploy_install.sh checks):
#
#   $(PREFIX)/sbin/tlsguard                            the binary
#   $(UNITDIR)/tlsguard.service                        systemd unit, ExecStart= rewritten to $(SBINDIR)
#   $(PREFIX)/lib/tmpfiles.d/tlsguard.conf             /run/tlsguard, /var/lib/tlsguard at boot
#   $(PREFIX)/share/man/man8/tlsguard.8                man page
#   $(PREFIX)/share/bash-completion/completions/tlsguard
#   /etc/tlsguard/tlsguard.yaml                        the built-in policy; an existing file is kept
#   /etc/tlsguard/secrets/                             mode 0700, empty
#
# UNITDIR is /lib/systemd/system when PREFIX is /usr (where Debian 12 packages
# put units) and $(PREFIX)/lib/systemd/system otherwise: systemd also reads
# /usr/local/lib/systemd/system (`systemd-analyze unit-paths`), so a
# /usr/local install needs no symlinks and `make uninstall-files` finds it.
# Configuration always goes to SYSCONFDIR (/etc), whatever the PREFIX.
#
#   make deb
#
# builds $(BUILD)/tlsguard_$(VERSION)_$(DEB_ARCH).deb with dpkg-deb: the
# install above with PREFIX=/usr, stripped, Depends computed by
# dpkg-shlibdeps, /etc/tlsguard/tlsguard.yaml a conffile, maintainer scripts
# from deploy/debian/. `lintian $(BUILD)/tlsguard_*.deb` reports no error.

PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
SYSCONFDIR	?= /etc
DATADIR		?= $(PREFIX)/share
MANDIR		?= $(DATADIR)/man
BASHCOMPDIR	?= $(DATADIR)/bash-completion/completions
TMPFILESDIR	?= $(PREFIX)/lib/tmpfiles.d
UNITDIR		?= $(if $(filter /usr /usr/,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL		?= install
# What gets installed: the binary `make` builds and the built-in policy it
# prints. Tests point INSTALL_BIN at a binary they already have, so that they
# never rebuild (or break on) a tree someone is editing.
INSTALL_BIN	?= $(BUILD)/tlsguard
INSTALL_POLICY	?= $(BUILD)/tlsguard.yaml

# The built-in policy as a file, the starting point for /etc/tlsguard/tlsguard.yaml.
$(INSTALL_POLICY): $(INSTALL_BIN)
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$< policy show-default > $@.tmp && mv $@.tmp $@

install: $(INSTALL_BIN) $(INSTALL_POLICY)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/tlsguard
	$(Q)$(INSTALL) -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/tlsguard/secrets
	$(Q)$(INSTALL) -m 0755 $(INSTALL_BIN) $(DESTDIR)$(SBINDIR)/tlsguard
	$(Q)sed -e 's|/usr/sbin/tlsguard|$(SBINDIR)/tlsguard|g' \
		-e 's|/etc/tlsguard/|$(SYSCONFDIR)/tlsguard/|g' \
		deploy/systemd/tlsguard.service > $(DESTDIR)$(UNITDIR)/tlsguard.service.tmp
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/tlsguard.service.tmp
	$(Q)mv $(DESTDIR)$(UNITDIR)/tlsguard.service.tmp $(DESTDIR)$(UNITDIR)/tlsguard.service
	$(Q)$(INSTALL) -m 0644 deploy/systemd/tlsguard.conf $(DESTDIR)$(TMPFILESDIR)/tlsguard.conf
	$(Q)$(INSTALL) -m 0644 docs/tlsguard.8 $(DESTDIR)$(MANDIR)/man8/tlsguard.8
	$(Q)$(INSTALL) -m 0644 contrib/completion/tlsguard.bash $(DESTDIR)$(BASHCOMPDIR)/tlsguard
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/tlsguard/tlsguard.yaml ]; then \
		echo "  KEEP     $(DESTDIR)$(SYSCONFDIR)/tlsguard/tlsguard.yaml (exists; the built-in policy is $(INSTALL_POLICY))"; \
	else \
		$(INSTALL) -m 0644 $(INSTALL_POLICY) $(DESTDIR)$(SYSCONFDIR)/tlsguard/tlsguard.yaml; \
	fi

# Removes what `make install` put there, except /etc/tlsguard (your policy and
# secrets). Stop the service and run `tlsguard uninstall` first
# (docs/install-vm.md, "Uninstall").
uninstall-files:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/tlsguard $(DESTDIR)$(UNITDIR)/tlsguard.service \
		$(DESTDIR)$(TMPFILESDIR)/tlsguard.conf $(DESTDIR)$(MANDIR)/man8/tlsguard.8 \
		$(DESTDIR)$(BASHCOMPDIR)/tlsguard

# ---- Debian package -------------------------------------------------------
DEB_ARCH	:= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_VERSION	?= $(VERSION)
DEB_MAINTAINER	?= tlsguard maintainers <tlsguard@example.com>
DEB		:= $(BUILD)/tlsguard_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_DIR		:= $(BUILD)/deb
DEB_ROOT	:= $(DEB_DIR)/root
DEB_DOC		:= $(DEB_ROOT)/usr/share/doc/tlsguard
DEB_INPUTS	:= $(INSTALL_BIN) $(INSTALL_POLICY) deploy/systemd/tlsguard.service \
		   deploy/systemd/tlsguard.conf docs/tlsguard.8 contrib/completion/tlsguard.bash \
		   $(wildcard deploy/debian/*) LICENSE VERSION mk/install.mk
# Reproducible: the date of the last commit, else now.
DEB_DATE	= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

deb: $(DEB)

# /etc/tlsguard/secrets (0700) is made by postinst, not shipped: lintian wants
# packaged directories 0755.
$(DEB): $(DEB_INPUTS)
	$(Q)scripts/install-deps.sh dpkg-dev binutils
	$(call msg,DEB,$@)
	$(Q)rm -rf $(DEB_DIR)
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr \
		SYSCONFDIR=/etc >/dev/null
	$(Q)strip --strip-unneeded --remove-section=.comment --remove-section=.note \
		$(DEB_ROOT)/usr/sbin/tlsguard
	$(Q)gzip -9n $(DEB_ROOT)/usr/share/man/man8/tlsguard.8
	$(Q)rmdir $(DEB_ROOT)/etc/tlsguard/secrets
	$(Q)$(INSTALL) -d $(DEB_DOC) $(DEB_ROOT)/DEBIAN
	$(Q){ echo 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'; \
	      echo 'Upstream-Name: tlsguard'; echo; \
	      echo 'Files: *'; echo 'Copyright: 2026 The tlsguard authors'; \
	      echo 'License: MIT and (GPL-2.0-only or BSD-2-Clause)'; \
	      sed -e 's/^$$/./' -e 's/^/ /' LICENSE; } > $(DEB_DOC)/copyright
	$(Q){ echo 'tlsguard ($(DEB_VERSION)) unstable; urgency=medium'; echo; \
	      echo '  * Release $(DEB_VERSION).'; echo; \
	      echo ' -- $(DEB_MAINTAINER)  '"$$(LC_ALL=C date -u -R -d @$(DEB_DATE))"; \
	    } | gzip -9n > $(DEB_DOC)/changelog.gz
	$(Q)chmod 0644 $(DEB_DOC)/copyright $(DEB_DOC)/changelog.gz
	$(Q)mkdir -p $(DEB_DIR)/shlibs/debian
	$(Q)printf 'Source: tlsguard\n\nPackage: tlsguard\nArchitecture: any\n' > $(DEB_DIR)/shlibs/debian/control
	$(Q)cd $(DEB_DIR)/shlibs && dpkg-shlibdeps -O -e$(abspath $(DEB_ROOT))/usr/sbin/tlsguard \
		2>$(abspath $(DEB_DIR))/shlibdeps.log | sed -n 's/^shlibs:Depends=//p' > ../depends
	$(Q)test -s $(DEB_DIR)/depends || { cat $(DEB_DIR)/shlibdeps.log >&2; \
		echo "tlsguard: dpkg-shlibdeps found no dependencies for $(DEB_ROOT)/usr/sbin/tlsguard" >&2; exit 1; }
	$(Q)sed -e 's|@VERSION@|$(DEB_VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
		-e 's|@MAINTAINER@|$(DEB_MAINTAINER)|' \
		-e "s|@DEPENDS@|$$(cat $(DEB_DIR)/depends)|" \
		-e "s|@INSTALLED_SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
		deploy/debian/control.in > $(DEB_ROOT)/DEBIAN/control
	$(Q)echo /etc/tlsguard/tlsguard.yaml > $(DEB_ROOT)/DEBIAN/conffiles
	$(Q)$(INSTALL) -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm \
		$(DEB_ROOT)/DEBIAN/
	$(Q)cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | \
		LC_ALL=C sort -z | xargs -0 md5sum | grep -v ' etc/' > DEBIAN/md5sums
	$(Q)chmod 0644 $(DEB_ROOT)/DEBIAN/control $(DEB_ROOT)/DEBIAN/conffiles $(DEB_ROOT)/DEBIAN/md5sums
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $@.tmp >/dev/null
	$(Q)mv $@.tmp $@

.PHONY: install uninstall-files deb
