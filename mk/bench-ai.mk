# SPDX-License-Identifier: MIT
# `make bench-ai`: CPU cost per event of the Application Insights export
# (bench/ai_sink.c: field protection, envelopes, batches, gzip; no network).

$(BUILD)/bench/ai_sink: bench/ai_sink.c $(patsubst %.c,$(OBJ)/%.o,$(AGENT_LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS_COMMON) -O2 -o $@ $^ $(LDLIBS)

bench-ai: $(BUILD)/bench/ai_sink
	$(Q)$(BUILD)/bench/ai_sink $(BENCH_AI_EVENTS)

.PHONY: bench-ai
