# SPDX-License-Identifier: MIT
# `make bench`: what tlsguard costs against the same run without it (bench/run.sh).
# Builds the agent, bench/loadgen and the empty yardstick programs, installs what is
# missing from Debian, runs every workload A/B and writes bench/results.md. Exits
# non-zero only when the benchmark itself broke, never because a target is missed.
# BENCH_QUICK=1 runs fewer, shorter rounds (for working on the bench, not for results).

BENCH_DIR	:= $(BUILD)/bench
BENCH_DEB_DEPS	:= iproute2 nftables procps python3 coreutils linux-perf
BENCH_RESULTS	?= bench/results.md

$(BENCH_DIR)/loadgen: bench/loadgen.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $<

$(BENCH_DIR)/empty.bpf.o: bench/empty.bpf.c
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# the DNS programs per packet through BPF_PROG_TEST_RUN (results section 8)
$(BENCH_DIR)/dns_cost: bench/dns_cost.c $(HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -o $@ $< -lbpf -lelf -lz

# judging per segment through BPF_PROG_TEST_RUN on the BPF tests' object (results section 9)
$(BENCH_DIR)/verdict_cost: bench/verdict_cost.c $(BUILD)/verdict_test.skel.h tests/bpf/handshakes.h $(HEADERS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iinclude -I$(BUILD) -Itests/bpf -o $@ $< \
		-lbpf -lelf -lz

# a loaded program's perf samples by source line (profiling, not part of the run)
$(BENCH_DIR)/bpf_lines: bench/bpf_lines.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $< -lbpf -lelf -lz

bench-build: $(BUILD)/tlsguard $(BENCH_DIR)/loadgen $(BENCH_DIR)/empty.bpf.o $(BENCH_DIR)/dns_cost \
	$(BENCH_DIR)/verdict_cost $(BUILD)/dns.bpf.o $(BENCH_DIR)/ai_sink $(BENCH_DIR)/bpf_lines

bench:
	$(Q)scripts/install-deps.sh $(DEB_BUILD_DEPS) $(BENCH_DEB_DEPS)
	$(Q)$(MAKE) --no-print-directory bench-build
	$(Q)bench/run.sh $(BUILD)/tlsguard $(BENCH_DIR) $(BENCH_RESULTS)

# `make bench-policy`: CPU time of `policy check` against the size of hostile and of
# large valid policy files (bench/policy_parse.py); BENCH_BASELINE=OLD_TLSGUARD
# adds a column for another build. Writes bench/policy-results.md.
bench-policy: $(BUILD)/tlsguard
	$(Q)bench/policy_parse.py $(BUILD)/tlsguard $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE)) \
		--out bench/policy-results.md

.PHONY: bench bench-build bench-policy
