# chalk: top-level Makefile. Builds out of tree into build/. Each layer adds its rules in a
# fragment of its own (core/core.mk, lua/lua.mk, viz/viz.mk, repl/repl.mk, kernels/kernels.mk,
# tests/tests.mk), so a layer's build is read beside its code.
#
#   make demo      install what is missing, build, play the autodiff lesson
#   make test      install what is missing, build, run every test this machine can run
#   make test-asan the C and Lua tests and the API fuzzer under AddressSanitizer and UBSan
#   make test-gpu  the CUDA parity tests (skips, saying why, without a GPU)
#   make deps      install the missing Debian packages (only those)

BUILD ?= build
NPROC := $(shell nproc 2>/dev/null || echo 2)
CC ?= cc
OPT ?= -O2
SAN ?=
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -fPIC -MMD -MP $(SAN)
LUA_CFLAGS = $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA_LIBS = $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
GV_CFLAGS = $(shell pkg-config --cflags libgvc 2>/dev/null)
GV_LIBS = $(shell pkg-config --libs libgvc libcgraph 2>/dev/null || echo -lgvc -lcgraph -lcdt)
BLAS_CFLAGS = -I/usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIBS = -lopenblas
CORE_LIBS = $(BLAS_LIBS) -lz -lm -lpthread -ldl

.PHONY: all deps demo test check test-asan test-gpu clean bench bench-gpu
.DEFAULT_GOAL := all

-include kernels/kernels.mk
include core/core.mk
-include lua/lua.mk
-include viz/viz.mk
-include repl/repl.mk
-include lessons/lessons.mk
-include tests/tests.mk
-include bench/bench.mk
-include bench/gpu/gpu.mk

deps:
	@./tools/deps.sh

demo:
	@./tools/deps.sh
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@./tools/demo.sh

test:
	@./tools/deps.sh
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(MAKE) --no-print-directory -k check

# LeakSanitizer still reports every leak with a chalk frame; Graphviz, fontconfig, GLib and
# friends keep process-lifetime caches, listed in tests/viz/lsan.supp.
test-asan:
	@./tools/deps.sh
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/viz/lsan.supp:print_suppressions=0 \
	  $(MAKE) --no-print-directory -k BUILD=build/asan OPT=-O1 FUZZ_N=200000 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  check

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
