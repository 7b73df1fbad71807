# SPDX-License-Identifier: MIT
# tlsguard build. `make` builds build/tlsguard; `make test` installs what is
# missing, builds with sanitizers and runs every test; `make demo` shows it work.

.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

HOST_ARCH	:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
ARCH		?= $(HOST_ARCH)
# `make ARCH=arm64` on x86: Debian's cross compiler and :arm64 libraries,
# its own build directory (mk/cross.mk installs them, runs the unit tests
# under qemu-user).
ifneq ($(ARCH),$(HOST_ARCH))
CROSS_COMPILE	?= $(if $(filter arm64,$(ARCH)),aarch64-linux-gnu-,x86_64-linux-gnu-)
CC		:= $(CROSS_COMPILE)gcc
MULTIARCH	:= $(shell $(CC) -print-multiarch 2>/dev/null)
PKG_CONFIG	?= PKG_CONFIG_LIBDIR=/usr/lib/$(MULTIARCH)/pkgconfig:/usr/share/pkgconfig pkg-config
BUILD		?= build/$(ARCH)
endif
PKG_CONFIG	?= pkg-config
MULTIARCH	?= $(shell gcc -print-multiarch 2>/dev/null)
VERSION		:= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
BUILD		?= build
CLANG		?= clang
BPFTOOL		?= bpftool
CC		?= gcc

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKGS		:= libbpf json-c yaml-0.1 libcurl openssl zlib libdeflate
WARN		:= -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
# agent/ in layers (docs/architecture.md); headers are found by name in each.
AGENT_DIRS	:= agent/lib agent/kernel agent/policy agent/events agent/sinks agent/workloads \
		   agent/serve agent/daemon
AGENT_INC	:= -iquote agent $(addprefix -iquote ,$(AGENT_DIRS))
CFLAGS_COMMON	:= -std=gnu11 -g $(WARN) $(LAYOUT_DEFS) -Iinclude $(AGENT_INC) -iquote $(BUILD) -DTLSGUARD_VERSION='"$(VERSION)"' -DTG_TEST_DATA='"$(CURDIR)/tests/unit/data"' \
		   $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
CFLAGS		?= -O2
LDLIBS		:= $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo -lbpf -ljson-c -lyaml -lcurl -lssl -lcrypto -lz -ldeflate) -lelf -lz -lresolv -lpthread
SANFLAGS	:= -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

BPF_CFLAGS	:= -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror $(LAYOUT_DEFS) -Iinclude -Ibpf \
		   -I/usr/include/$(MULTIARCH)

BPF_SRCS	:= bpf/tlsguard.bpf.c bpf/dns.bpf.c
BPF_TEST_SRCS	:= $(wildcard tests/bpf/*.bpf.c)
AGENT_SRCS	:= $(wildcard agent/*.c $(addsuffix /*.c,$(AGENT_DIRS)) agent/cli/*.c)
AGENT_LIB_SRCS	:= $(filter-out agent/main.c,$(AGENT_SRCS))
UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
BPFTEST_SRCS	:= $(wildcard tests/bpf/test_*.c)
HELPER_SRCS	:= $(wildcard tests/helpers/*.c)
HEADERS		:= $(wildcard include/tlsguard/*.h agent/*.h $(addsuffix /*.h,$(AGENT_DIRS)) agent/cli/*.h bpf/lib/*.h)

SKELS		:= $(BUILD)/tlsguard.skel.h $(BUILD)/dns.skel.h $(patsubst tests/bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_TEST_SRCS))

# Two userspace flavours: release (build/obj) and sanitized for tests (build/san).
OBJ		:= $(BUILD)/obj
SAN		:= $(BUILD)/san

all: $(BUILD)/tlsguard

# ---- dependencies ---------------------------------------------------------
# Debian packages the build and the tests need; installed only when missing.
DEB_BUILD_DEPS	:= clang llvm gcc make pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev \
		   libssl-dev libyaml-dev libjson-c-dev libcurl4-openssl-dev libcmocka-dev libdeflate-dev \
		   linux-libc-dev
DEB_TEST_DEPS	:= iproute2 curl openssl procps psmisc python3 libclang-rt-14-dev valgrind passwd util-linux dnsmasq-base python3-yaml lintian postgresql mariadb-server mariadb-client tinyproxy prometheus \
		   podman runc debootstrap samba smbclient tcpdump python3-requests

deps:
	$(Q)scripts/install-deps.sh $(DEB_BUILD_DEPS)

test-deps: deps
	$(Q)scripts/install-deps.sh $(DEB_TEST_DEPS)

# ---- BPF ------------------------------------------------------------------
$(BUILD)/%.bpf.o: bpf/%.bpf.c $(HEADERS) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(BUILD)/%.bpf.o: tests/bpf/%.bpf.c $(HEADERS) | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# ---- userspace ------------------------------------------------------------
$(OBJ)/%.o: %.c $(HEADERS) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

$(SAN)/%.o: %.c $(HEADERS) $(SKELS)
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_COMMON) $(SANFLAGS) -c $< -o $@

$(BUILD)/tlsguard: $(patsubst %.c,$(OBJ)/%.o,$(AGENT_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) -o $@ $^ $(LDLIBS)

$(SAN)/tlsguard: $(patsubst %.c,$(SAN)/%.o,$(AGENT_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(SAN)/unit/%: $(SAN)/tests/unit/%.o $(patsubst %.c,$(SAN)/%.o,$(AGENT_LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(SAN)/bpftest/%: $(SAN)/tests/bpf/%.o $(patsubst %.c,$(SAN)/%.o,$(AGENT_LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(SAN)/helpers/%: $(SAN)/tests/helpers/%.o
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(SANFLAGS) -o $@ $^

$(BUILD):
	$(Q)mkdir -p $@

UNIT_BINS	:= $(patsubst tests/unit/%.c,$(SAN)/unit/%,$(UNIT_SRCS))
BPFTEST_BINS	:= $(patsubst tests/bpf/%.c,$(SAN)/bpftest/%,$(BPFTEST_SRCS))
HELPER_BINS	:= $(patsubst tests/helpers/%.c,$(SAN)/helpers/%,$(HELPER_SRCS))

# The upgrade test needs an agent of another pin layout: this source, built
# with TG_PIN_LAYOUT_VERSION=$(OLD_LAYOUT) and TG_DNS_PIN_LAYOUT_VERSION=$(OLD_DNS_LAYOUT)
# into its own build directory (the upgrade replaces both objects' pins).
OLD_LAYOUT	?= 1003
OLD_DNS_LAYOUT	?= 1002
OLD_LAYOUT_BIN	:= $(SAN)/helpers/tlsguard-layout$(OLD_LAYOUT)

$(OLD_LAYOUT_BIN): $(AGENT_SRCS) $(BPF_SRCS) $(HEADERS)
	$(call msg,MAKE,$@)
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/layout$(OLD_LAYOUT) \
		LAYOUT_DEFS="-DTG_PIN_LAYOUT_VERSION=$(OLD_LAYOUT) -DTG_DNS_PIN_LAYOUT_VERSION=$(OLD_DNS_LAYOUT)" \
		$(BUILD)/layout$(OLD_LAYOUT)/tlsguard
	$(Q)mkdir -p $(dir $@)
	$(Q)cp $(BUILD)/layout$(OLD_LAYOUT)/tlsguard $@

test-build: $(BUILD)/tlsguard $(SAN)/tlsguard $(UNIT_BINS) $(BPFTEST_BINS) $(HELPER_BINS) $(OLD_LAYOUT_BIN)

# ---- tests ----------------------------------------------------------------
# `make test` is what CI runs: dependencies, build, then every suite.
test: test-deps
	$(Q)$(MAKE) --no-print-directory test-build
	$(Q)tests/run-all.sh $(SAN)

unit: test-build
	$(Q)tests/run-suite.sh unit $(UNIT_BINS)

bpf-test: test-build
	$(Q)tests/run-suite.sh bpf $(BPFTEST_BINS)

integration: test-build
	$(Q)tests/integration/run.sh $(SAN)

demo: test-deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/tlsguard
	$(Q)scripts/demo.sh $(BUILD)/tlsguard

clean:
	$(Q)rm -rf $(BUILD)

.PHONY: all deps test-deps test test-build unit bpf-test integration demo clean
.SECONDARY:

# Feature areas add their own targets (install, deb, bench, kernel-test, fuzz) here.
-include $(wildcard mk/*.mk)
