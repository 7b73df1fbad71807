# SPDX-License-Identifier: MIT
# `make kernel-test`: the kernel matrix. Builds tests/kernel/kmatrix (static:
# libbpf.a, libelf.a, libz.a) and runs it on the host kernel and, under
# qemu-system-x86_64, on Debian's newest 6.1 cloud kernel (fetched with
# apt-get download into $(KT_DIR), kept there). Writes the table in
# docs/kernel-matrix.md; fails unless every kernel passes.

KT_DIR		:= $(BUILD)/kernel-test
KT_DEB_DEPS	:= qemu-system-x86 busybox-static cpio gzip xz-utils libbpf-dev libelf-dev zlib1g-dev
KMATRIX		:= $(KT_DIR)/kmatrix
# tests/kernel first: its cmocka.h stands in for the shared-only libcmocka
KT_CFLAGS	:= -std=gnu11 -g -O2 $(WARN) -Itests/kernel -Iinclude -Iagent $(addprefix -I,$(AGENT_DIRS)) -I$(BUILD)
KT_SRCS		:= tests/kernel/kmatrix.c tests/kernel/cmocka_shim.c agent/kernel/kernel_features.c agent/kernel/cgroup.c \
		   agent/kernel/enforcer.c agent/lib/log.c agent/lib/escape.c agent/lib/enum_name.c
KT_LIBS		:= -lbpf -lelf -lz -ljson-c

$(KMATRIX): $(KT_SRCS) tests/bpf/test_verdict.c tests/bpf/test_dns.c tests/kernel/cmocka.h \
	    tests/bpf/handshakes.h tests/unit/smb_fixtures.h tests/unit/tds_fixtures.h \
	    $(HEADERS) $(SKELS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(KT_CFLAGS) -Dmain=tg_verdict_main -c tests/bpf/test_verdict.c \
		-o $(KT_DIR)/test_verdict.o
	$(Q)$(CC) $(KT_CFLAGS) -Dmain=tg_dns_main -c tests/bpf/test_dns.c -o $(KT_DIR)/test_dns.o
	$(Q)$(CC) $(KT_CFLAGS) -static -o $@ $(KT_SRCS) $(KT_DIR)/test_verdict.o \
		$(KT_DIR)/test_dns.o $(KT_LIBS)

kernel-test:
	$(Q)scripts/install-deps.sh $(DEB_BUILD_DEPS) $(KT_DEB_DEPS)
	$(Q)$(MAKE) --no-print-directory $(KMATRIX)
	$(Q)tests/kernel/kernel-test.sh $(KT_DIR) $(KMATRIX) docs/kernel-matrix.md

.PHONY: kernel-test

# `make kernel-mount-probe`: are kernel CIFS/NFS mounts' sockets judged? Boots
# the 6.1 and 6.12 kernels `make kernel-test` fetched with their cifs/nfs
# modules, smbd on the host's loopback behind qemu's guestfwd, and runs
# tests/kernel/kmount.c as the guest's init (see docs/verdicts.md, "Kernel mounts").
KMOUNT		:= $(KT_DIR)/kmount
KM_SRCS		:= tests/kernel/kmount.c agent/kernel/kernel_features.c agent/kernel/cgroup.c agent/kernel/enforcer.c agent/lib/log.c agent/lib/escape.c agent/lib/enum_name.c

$(KMOUNT): $(KM_SRCS) $(HEADERS) $(SKELS)
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(KT_CFLAGS) -static -o $@ $(KM_SRCS) $(KT_LIBS)

kernel-mount-probe:
	$(Q)scripts/install-deps.sh $(DEB_BUILD_DEPS) $(KT_DEB_DEPS) samba smbclient socat kmod
	$(Q)$(MAKE) --no-print-directory $(KMOUNT)
	$(Q)tests/kernel/mount-probe.sh $(KT_DIR) $(KMOUNT)

.PHONY: kernel-mount-probe
