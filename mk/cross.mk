# SPDX-License-Identifier: MIT
# arm64 from an x86 machine (AKS arm64 node pools):
#
#   make ARCH=arm64                 build/arm64/tlsguard, BPF objects with
#                                   -D__TARGET_ARCH_arm64, userspace with
#                                   aarch64-linux-gnu-gcc and Debian's :arm64 libraries
#   make ARCH=arm64 cross-test      the unit tests, built for arm64 (release
#                                   flags: the sanitizers do not run under
#                                   qemu-user), run under qemu-aarch64; the
#                                   cases that need bpf(2) or a second process
#                                   serving a socket skip there (qemu-user has
#                                   no bpf(2) and hangs in that child) and run
#                                   natively in make test
#   make ARCH=arm64 cross-deps      installs the cross compiler, qemu-user and the
#                                   :arm64 -dev packages (adds arm64 to dpkg's
#                                   architectures first)
#
# The image for arm64: make image IMAGE_ARCH=arm64 (mk/image.mk).

CROSS_DEB_ARCH	:= $(if $(filter arm64,$(ARCH)),arm64,amd64)
CROSS_DEB_DEPS	:= crossbuild-essential-$(CROSS_DEB_ARCH) qemu-user \
		   $(addsuffix :$(CROSS_DEB_ARCH),libbpf-dev libelf-dev zlib1g-dev libssl-dev \
		   libyaml-dev libjson-c-dev libcurl4-openssl-dev libcmocka-dev libdeflate-dev)
QEMU_USER	:= $(if $(filter arm64,$(ARCH)),qemu-aarch64,qemu-x86_64)
CROSS_UNIT_BINS	:= $(patsubst tests/unit/%.c,$(OBJ)/unit/%,$(UNIT_SRCS))

$(OBJ)/unit/%: $(OBJ)/tests/unit/%.o $(patsubst %.c,$(OBJ)/%.o,$(AGENT_LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS) -lcmocka

cross-deps:
	$(Q)dpkg --print-foreign-architectures | grep -qx $(CROSS_DEB_ARCH) || \
	  [ "$$(dpkg --print-architecture)" = $(CROSS_DEB_ARCH) ] || \
	  { echo "adding $(CROSS_DEB_ARCH) to dpkg's architectures"; dpkg --add-architecture $(CROSS_DEB_ARCH) && \
	    apt-get update -qq; }
	$(Q)scripts/install-deps.sh $(DEB_BUILD_DEPS) $(CROSS_DEB_DEPS)

cross-test: cross-deps
	$(Q)$(MAKE) --no-print-directory ARCH=$(ARCH) $(BUILD)/tlsguard $(CROSS_UNIT_BINS)
	$(Q)file -b $(BUILD)/tlsguard | grep -q "$(if $(filter arm64,$(ARCH)),ARM aarch64,x86-64)" || \
	  { echo "cross-test: $(BUILD)/tlsguard is not an $(ARCH) binary: $$(file -b $(BUILD)/tlsguard)" >&2; exit 1; }
	$(Q)TG_QEMU_USER=1 TG_RUNNER="$(QEMU_USER) -L /usr/$(MULTIARCH)" tests/run-suite.sh unit-$(ARCH) $(CROSS_UNIT_BINS)

.PHONY: cross-deps cross-test
