# kernels/kernels.mk: the CUDA backend. When nvcc exists (on PATH or /usr/local/cuda/bin) every
# kernels/*.cu is compiled for sm_80 and sm_90 plus sm_90 PTX, kernels/*.c with the CUDA headers,
# and all of them go into libchalk.a (KERNELS_OBJ); CUDA_LIBS is appended to CORE_LIBS so every
# link line that uses CORE_LIBS gets the CUDA runtime, linked statically: libcudart_static opens
# the driver (libcuda) only at the first CUDA call, and cuBLAS is opened with dlopen at its first
# use (kernels/cublas_dyn.c), so a program built here starts as fast as a CPU-only one (linking
# libcudart.so + libcublas.so cost 0.1-0.2 s of relocations per start). The RUNPATH lets that
# dlopen find libcublas in CUDA's lib64. Without nvcc nothing here is built and
# libchalk is CPU-only. Either way the binaries run on machines without a GPU (the backend
# registers itself only when ct_init() finds one).
#
#   make test-gpu    build tests/gpu/ and run the CUDA parity harness (skips, saying why,
#                    without a GPU; says so when built without nvcc)
#   make bench-gpu   build bench/gpu/ and run the matmul ladder and bandwidth benchmark

NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))

# lua/lchalk_warpspec.c declares lesson 19's kernels from kernels/warpspec.h, built or not
$(BUILD)/lua/lchalk_warpspec.o: CFLAGS_COMMON += -Ikernels

ifneq ($(strip $(NVCC)),)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCC_FLAGS = -std=c++17 -O3 $(CUDA_ARCH) -Xcompiler -fPIC,-Wall,-Wno-unused-function \
             --Werror all-warnings -MMD -MP -Icore -Ikernels $(NVCC_SAN)
CUDA_CFLAGS = -I$(CUDA_HOME)/include
CUDA_LIBS = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lpthread -lstdc++
CORE_LIBS += $(CUDA_LIBS)

KERNELS_CU := $(wildcard kernels/*.cu)
KERNELS_C := $(wildcard kernels/*.c)
KERNELS_OBJ := $(KERNELS_CU:%.cu=$(BUILD)/%.o) $(KERNELS_C:%.c=$(BUILD)/%.o)

$(BUILD)/kernels/%.o: kernels/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# The ladder's wgmma rungs need Hopper's arch-specific target (sm_90a) for their sm_90 code.
$(BUILD)/kernels/ladder_tc.o: CUDA_ARCH = -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a

$(BUILD)/kernels/%.o: kernels/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CUDA_CFLAGS) -Icore -c $< -o $@

# core/tensor/device.c references the backend's hooks strongly, so the archive members that define them
# are linked into every program that can ask for CUDA.
$(BUILD)/core/tensor/device.o: CFLAGS_COMMON += -DCT_WITH_CUDA
$(BUILD)/core/tensor/device.o: kernels/kernels.mk
# likewise lesson 19's binding and its kernels (warpspec.cu, persistent.cu)
$(BUILD)/lua/lchalk_warpspec.o: CFLAGS_COMMON += -DCT_WITH_CUDA
$(BUILD)/lua/lchalk_warpspec.o: kernels/kernels.mk

# ---- GPU programs: one per folder, linked from its .c files and libchalk ---------------------
# $(call gpu_program,DIR,BINARY): compile rule for DIR/*.c (with the CUDA flags) and the link.
define gpu_program
$$(BUILD)/$(1)/%.o: $(1)/%.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_COMMON) $$(CUDA_CFLAGS) -Icore -Ikernels -c $$< -o $$@

$(2): $$(patsubst %.c,$$(BUILD)/%.o,$$(wildcard $(1)/*.c)) $$(BUILD)/libchalk.a
	$$(CC) $$(CFLAGS_COMMON) -o $$@ $$(filter %.o,$$^) $$(BUILD)/libchalk.a $$(CORE_LIBS)
endef

# tests/gpu: the parity harness
GPU_TEST_SRC := $(wildcard tests/gpu/*.c)
GPU_TEST_BIN := $(BUILD)/tests/gpu/parity
$(eval $(call gpu_program,tests/gpu,$(GPU_TEST_BIN)))

test-gpu: $(GPU_TEST_BIN)
	$(GPU_TEST_BIN)

# bench/gpu: the matmul ladder and bandwidth
GPU_BENCH_SRC := $(wildcard bench/gpu/*.c)
GPU_BENCH_BIN := $(BUILD)/bench/gpu/gpu_bench
$(eval $(call gpu_program,bench/gpu,$(GPU_BENCH_BIN)))

# bench/attention: chalk's attention timed with CUDA events around the call (bench/attention/run.sh)
ATTN_BENCH_BIN := $(BUILD)/bench/attention/attn_bench
$(eval $(call gpu_program,bench/attention,$(ATTN_BENCH_BIN)))
all: $(ATTN_BENCH_BIN)

bench-gpu-kernels: $(GPU_BENCH_BIN)
	$(GPU_BENCH_BIN) --out bench/results

ifneq ($(GPU_TEST_SRC),)
all: $(GPU_TEST_BIN)
endif
ifneq ($(GPU_BENCH_SRC),)
all: $(GPU_BENCH_BIN)
endif

else
KERNELS_OBJ :=
$(BUILD)/lua/lchalk_warpspec.o: kernels/kernels.mk

test-gpu:
	@echo "test-gpu: SKIPPED: chalk was built without CUDA (no nvcc on PATH or in /usr/local/cuda/bin)"
endif

.PHONY: bench-gpu-kernels
