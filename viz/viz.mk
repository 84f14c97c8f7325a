# viz/viz.mk: the seeing layer (Graphviz pictures rendered in-process, Chrome traces) and its tests.
#
#   make build/libchalk_viz.a    viz/*.c (no Lua: chalk.viz and chalk.profile are lua/lviz*.c, lua/lprofile.c)
#   make check-viz               the layer check (tests/viz/check_layer.sh), C tests (tests/viz/test_*.c,
#                                Criterion) and the Lua tests (tests/viz/test_*.lua, lua5.4 against chalk.so)
#   make bench-events            cost of the event log per op, off and on (bench/events_overhead.c)

VIZ_SRC := $(sort $(wildcard viz/*.c))
VIZ_OBJ := $(VIZ_SRC:%.c=$(BUILD)/%.o)
VIZ_CFLAGS = $(CFLAGS_COMMON) $(GV_CFLAGS) -Icore -Iviz

$(BUILD)/viz/%.o: viz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(VIZ_CFLAGS) -c $< -o $@

$(BUILD)/libchalk_viz.a: $(VIZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

all: $(BUILD)/libchalk_viz.a

# ---- tests ------------------------------------------------------------------------------------
VIZ_TEST_SRC := $(sort $(wildcard tests/viz/test_*.c))
VIZ_TEST_BIN := $(VIZ_TEST_SRC:tests/viz/%.c=$(BUILD)/tests/viz/%)
VIZ_TEST_LUA := $(sort $(wildcard tests/viz/test_*.lua))
VIZ_TEST_OUT := $(BUILD)/tests/viz/out

$(BUILD)/tests/viz/obj/%.o: tests/viz/%.c
	@mkdir -p $(dir $@)
	$(CC) $(VIZ_CFLAGS) -Itests/viz -c $< -o $@

$(BUILD)/tests/viz/test_%: $(BUILD)/tests/viz/obj/test_%.o $(BUILD)/libchalk_viz.a $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -g $(SAN) $< $(BUILD)/libchalk_viz.a $(BUILD)/libchalk.a -lcriterion $(GV_LIBS) \
	  $(CORE_LIBS) -o $@

.PHONY: check-viz check-viz-c check-viz-lua check-viz-layer bench-events
check-viz: check-viz-layer check-viz-c check-viz-lua

# The one picture layer: DOT text and colour literals only in viz/ (colours only in palette.h),
# no Lua header and no op-table internals in viz/ (tests/viz/check_layer.sh).
check-viz-layer:
	@sh tests/viz/check_layer.sh

# As tests/tests.mk does: under the sanitizers a report fails the run (grepped from the log);
# leaks inside Graphviz and its font stack are suppressed (tests/viz/lsan.supp), chalk's are not.
VIZ_TEST_ENV = VIZ_TEST_OUT=$(VIZ_TEST_OUT) VIZ_TEST_DIR=tests/viz \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/viz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
VIZ_SAN_REPORT := ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:

check-viz-c: $(VIZ_TEST_BIN)
	@mkdir -p $(VIZ_TEST_OUT)
	@failed=""; for t in $(VIZ_TEST_BIN); do \
	  echo "== $$t"; \
	  $(VIZ_TEST_ENV) $$t --jobs 1 > $$t.log 2>&1; rc=$$?; cat $$t.log; \
	  if [ $$rc != 0 ] || grep -Eq '$(VIZ_SAN_REPORT)' $$t.log; then failed="$$failed $$(basename $$t)"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "check-viz: FAILED:$$failed (logs: $(BUILD)/tests/viz/*.log)"; exit 1; fi

# The Lua tests run under stock lua5.4 against chalk.so (the binding with viz inside).
check-viz-lua: $(if $(wildcard lua/lua.mk),$(BUILD)/chalk.so)
	@mkdir -p $(VIZ_TEST_OUT)
	@if [ ! -f $(BUILD)/chalk.so ]; then echo "check-viz-lua: skipped (no $(BUILD)/chalk.so: the binding is not built)"; \
	else failed=""; for t in $(VIZ_TEST_LUA); do \
	  echo "== $$t"; \
	  LUA_CPATH='$(BUILD)/?.so;;' VIZ_TEST_OUT=$(VIZ_TEST_OUT) VIZ_TEST_DIR=tests/viz \
	    $(if $(SAN),LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0) \
	    lua5.4 $$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "check-viz-lua: FAILED:$$failed"; exit 1; fi; fi

CHECKS += check-viz

$(BUILD)/bench/events_overhead: bench/events_overhead.c $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore $< $(BUILD)/libchalk.a $(CORE_LIBS) -o $@

bench-events: $(BUILD)/bench/events_overhead
	$(BUILD)/bench/events_overhead
bench: bench-events

# ---- the Lua surface: chalk.viz and chalk.profile (lua/lviz*.c, lua/lprofile.c) are C modules of the binding ----
LUA_C_MODULES += viz profile
LUA_MODULE_LIBS += $(BUILD)/libchalk_viz.a $(GV_LIBS)
$(BUILD)/chalk.so: $(BUILD)/libchalk_viz.a

# Profile pictures of a training step on the GPU, to look at by eye (skips without a GPU).
$(BUILD)/tests/viz/gpu_pictures: tests/viz/gpu_pictures.c $(BUILD)/libchalk_viz.a $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(VIZ_CFLAGS) $< $(BUILD)/libchalk_viz.a $(BUILD)/libchalk.a $(GV_LIBS) $(CORE_LIBS) -o $@
