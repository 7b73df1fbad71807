# SPDX-License-Identifier: MIT
# libFuzzer targets (tests/fuzz/fuzz_*.c), one per parser of untrusted bytes,
# built with clang -fsanitize=fuzzer,address,undefined against the agent's
# sources (instrumented the same way) in $(BUILD)/fuzz.
#
#   make fuzz          build them
#   make fuzz-smoke    run each briefly over its seed corpus (CI; `make test` runs it)
#   make fuzz-run FUZZER=fuzz_hello [FUZZ_SECONDS=600]   a long run of one
#
# Seeds: tests/fuzz/corpus/NAME for fuzz_NAME (recorded handshakes for hello);
# fuzz_policy also starts from tests/policies/ (the policies the agent and
# `policy check` must agree on: hostile ones among them).

FUZZ		:= $(BUILD)/fuzz
FUZZ_SRCS	:= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS	:= $(patsubst tests/fuzz/%.c,$(FUZZ)/%,$(FUZZ_SRCS))
FUZZ_FLAGS	:= -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
		   -fno-sanitize-recover=undefined
FUZZ_CFLAGS	:= $(filter-out -Wshadow,$(CFLAGS_COMMON)) -Wno-unused-command-line-argument
FUZZ_RUNS	?= 3000
FUZZ_SECONDS	?= 600

$(FUZZ)/obj/%.o: %.c $(HEADERS) $(SKELS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_FLAGS) -c $< -o $@

$(FUZZ)/fuzz_%: $(FUZZ)/obj/tests/fuzz/fuzz_%.o $(patsubst %.c,$(FUZZ)/obj/%.o,$(AGENT_LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BINS)

# Each target over its corpus plus FUZZ_RUNS new inputs; ends "fuzz: N passed, M failed".
fuzz-smoke: fuzz
	$(Q)passed=0; failed=0; \
	for bin in $(FUZZ_BINS); do \
		name=$$(basename $$bin); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
		work=$$(mktemp -d /tmp/tg-fuzz.XXXXXX); \
		[ -d $$corpus ] && cp -r $$corpus/. $$work/ 2>/dev/null; \
		[ $$name = fuzz_policy ] && cp tests/policies/*.yaml $$work/ 2>/dev/null; \
		if $$bin -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 $$work >$$work.log 2>&1; then \
			echo "PASS $$name"; passed=$$((passed + 1)); \
		else \
			echo "FAIL $$name"; tail -n 40 $$work.log | sed 's/^/    /'; failed=$$((failed + 1)); \
		fi; \
		rm -rf $$work $$work.log; \
	done; \
	echo "fuzz: $$passed passed, $$failed failed"; [ $$failed -eq 0 ]

fuzz-run: $(FUZZ)/$(FUZZER)
	$(Q)mkdir -p $(FUZZ)/corpus-$(FUZZER)
	$(Q)$(FUZZ)/$(FUZZER) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(FUZZ)/corpus-$(FUZZER) \
		tests/fuzz/corpus/$(patsubst fuzz_%,%,$(FUZZER)) $(if $(filter fuzz_policy,$(FUZZER)),tests/policies)

.PHONY: fuzz fuzz-smoke fuzz-run
