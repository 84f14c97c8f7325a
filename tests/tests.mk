# tests/tests.mk: the C tests of the core (Criterion) and the PyTorch reference cases.
# Every tests/core/test_*.c becomes one executable $(BUILD)/tests/test_*; every other .c in
# tests/core/ (gradcheck.c, testutil.c) is a helper linked into each of them. `make check-c`
# builds them, regenerates the PyTorch reference cases with Debian's /usr/bin/python3 and runs
# every test executable, failing the make if any test fails (or, under ASan, leaks).
# This fragment is included last by the top Makefile, so CHECKS already holds the other layers'
# test targets (check-lua, ...) when `check` is defined here.

TEST_SRC := $(sort $(wildcard tests/core/test_*.c))
TEST_HELPER_SRC := $(filter-out $(TEST_SRC),$(wildcard tests/core/*.c))
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:tests/core/%.c=$(BUILD)/tests/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/core/%.c=$(BUILD)/tests/%)
TEST_REFS := $(BUILD)/tests/refs.txt
TEST_PYTHON ?= /usr/bin/python3
TEST_FLAGS ?= --jobs 2
# Under the sanitizers every report aborts the worker, which Criterion then counts against the
# run: Criterion forks a worker per test, LeakSanitizer checks it at exit, and an abort there is
# the one signal that reaches the exit status. The recipe also greps the output for sanitizer
# reports, so that no report can pass unnoticed.
TEST_ENV := CHALK_TORCH_REFS=$(TEST_REFS) \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=1 \
  UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
TEST_SAN_REPORT := ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer

CHECKS ?=

# The house rules (tools/check_house.py, tools/check_layers.py): include direction, the 700-line budget, clang-format on
# tools/format_files.txt, core's call loops from nm (tools/check_layers.py), and the checks' own
# test on planted violations, and CHALK_DEBUG's levels (tests/house/debug_test.sh). Exceptions: tools/house_allow.txt, one line and owner each.
CHECKS += check-house
.PHONY: check-house
check-house: $(BUILD)/libchalk.a $(BUILD)/chalk
	@tests/house/house_test.sh $(CC)
	@tests/house/debug_test.sh $(BUILD)/chalk
	@python3 tools/check_house.py includes
	@python3 tools/check_house.py lines
	@python3 tools/check_house.py format
	@python3 tools/check_layers.py $(BUILD) --quiet

# The API fuzzer (tests/fuzz/fuzz_api.lua, issue 14): FUZZ_N random calls over chalk's Lua API from
# a fixed seed; a crash, a sanitizer report or a failed check fails it. `make check` runs a short
# run (a few seconds), `make test-asan` a long one (FUZZ_N=200000) under ASan and UBSan.
FUZZ_N ?= 20000
FUZZ_SEED ?= 1
CHECKS += check-fuzz
.PHONY: check-fuzz
check-fuzz: $(BUILD)/chalk.so
	$(LUA_TEST_ENV) lua5.4 tests/fuzz/fuzz_api.lua $(FUZZ_N) $(FUZZ_SEED)

# Keep the objects (they are intermediates of the pattern rules otherwise).
.SECONDARY: $(TEST_HELPER_OBJ) $(TEST_SRC:tests/core/%.c=$(BUILD)/tests/obj/%.o)

.PHONY: check check-c test-c-build

$(BUILD)/tests/obj/%.o: tests/core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore -Itests/core -c $< -o $@

$(BUILD)/tests/test_%: $(BUILD)/tests/obj/test_%.o $(TEST_HELPER_OBJ) $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -g $(SAN) $< $(TEST_HELPER_OBJ) $(BUILD)/libchalk.a -lcriterion $(CORE_LIBS) -o $@

# The reference cases are regenerated whenever the generator changes (and on a fresh build).
$(TEST_REFS): tests/ref/gen_torch_refs.py
	@mkdir -p $(dir $@)
	$(TEST_PYTHON) tests/ref/gen_torch_refs.py $@.tmp
	@mv $@.tmp $@

test-c-build: $(TEST_BIN) $(TEST_REFS)

# Runs every test executable even when one fails, then fails if any did (or if a sanitizer spoke).
check-c: test-c-build
	@failed=""; \
	for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  $(TEST_ENV) $$t $(TEST_FLAGS) > $$t.log 2>&1; rc=$$?; cat $$t.log; \
	  if [ $$rc != 0 ] || grep -Eq '$(TEST_SAN_REPORT)' $$t.log; then failed="$$failed $$(basename $$t)"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "check-c: FAILED:$$failed (logs: $(BUILD)/tests/*.log)"; exit 1; fi; \
	echo "check-c: all C test executables passed"

check: check-c $(CHECKS)

# Capture on a GPU (tests/capture/gpu_capture.c: a step replayed as NVRTC kernels and a CUDA Graph,
# against the same eager steps on the CPU); part of `make test-gpu`, skips without a GPU.
$(BUILD)/tests/gpu_capture: tests/capture/gpu_capture.c tests/capture/gpu_test.h $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore $< $(BUILD)/libchalk.a $(CORE_LIBS) -o $@
.PHONY: test-gpu-capture
test-gpu-capture: $(BUILD)/tests/gpu_capture
	$(BUILD)/tests/gpu_capture
test-gpu: test-gpu-capture

# The private memory pool of CUDA Graphs (tests/capture/graph_pool.c: scratch taken while a graph
# is recorded is never handed to another tensor); part of `make test-gpu`, skips without a GPU.
$(BUILD)/tests/graph_pool: tests/capture/graph_pool.c tests/capture/gpu_test.h $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore $< $(BUILD)/libchalk.a $(CORE_LIBS) -o $@
.PHONY: test-gpu-graph-pool
test-gpu-graph-pool: $(BUILD)/tests/graph_pool
	$(BUILD)/tests/graph_pool
test-gpu: test-gpu-graph-pool

# The char GPT generating on CUDA equals the CPU (tests/gpu/chargpt_generate.lua); part of `make
# test-gpu`, prints SKIPPED and why without a GPU.
.PHONY: test-gpu-chargpt
test-gpu-chargpt: $(BUILD)/chalk
	$(BUILD)/chalk tests/gpu/chargpt_generate.lua
test-gpu: test-gpu-chargpt
