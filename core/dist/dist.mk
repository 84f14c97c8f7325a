# core/dist/dist.mk: the MPI transport (only where OpenMPI is found) and the dist tests.
#
#   $(DIST_MPI_OBJ)   core/dist/mpi/transport_mpi.o, built with mpicc's flags and linked into
#                     build/chalk (repl/repl.mk) when MPI is present; empty otherwise, and then
#                     dist.init() and chalk --nproc say what to install
#   make check-dist   the C tests of every algorithm on sim (tests/dist/test_dist_sim.c), the Lua
#                     tests of dist.run (tests/dist/*_spec.lua), and the mpi tests
#                     (tests/dist/mpi.sh: chalk --nproc 2 and 4), skipped with the reason without MPI,
#                     and the nccl tests (tests/dist/nccl.sh: the error without a GPU, the id
#                     exchange over pipe and MPI, the GPU round trip where GPUs are);
#                     under sanitizers OpenMPI's own process-lifetime allocations are not reported
#   make bench-dist   all_reduce algbw/busbw of chalk's ring vs MPI_Allreduce on 4 processes
#   core/dist/transport_nccl.c  the nccl transport: with CUDA built (kernels/), compiled with the
#                     CUDA headers and CT_WITH_CUDA; without, its entries say chalk lacks CUDA.
#                     NCCL itself is dlopen-ed at run time (nccl_load.c): no NCCL at build time
#   make test-gpu-nccl  (part of make test-gpu) the one-rank round trip on one GPU
#                     (tests/dist/test_nccl_gpu.c), skipped with the reason without GPU or NCCL
#   make bench-nccl   nccl-tests-style all_reduce table, NCCL vs chalk's ring over send/recv, on
#                     every GPU present (bench/dist/nccl_bench.c)

HAVE_MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || (mpicc --showme:link >/dev/null 2>&1 && echo 1))
ifeq ($(HAVE_MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
DIST_MPI_OBJ := $(BUILD)/core/dist/mpi/transport_mpi.o
DIST_MPI_LIBS := $(MPI_LIBS)

$(DIST_MPI_OBJ): core/dist/mpi/transport_mpi.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(MPI_CFLAGS) -Icore -c $< -o $@
else
DIST_MPI_OBJ :=
DIST_MPI_LIBS :=
endif

DIST_TEST_BIN := $(BUILD)/tests/dist/test_dist_sim

$(DIST_TEST_BIN): tests/dist/test_dist_sim.c $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore $< $(BUILD)/libchalk.a -lcriterion $(CORE_LIBS) -o $@

.PHONY: check-dist bench-dist
check-dist: $(DIST_TEST_BIN) $(BUILD)/chalk.so $(BUILD)/chalk
	$(TEST_ENV) $(DIST_TEST_BIN) $(TEST_FLAGS)
	@mkdir -p $(BUILD)/tests/lua/out
	$(LUA_TEST_ENV) lua5.4 /usr/bin/busted --lpath='tests/lua/?.lua' --pattern=_spec tests/dist
	@CHALK=$(BUILD)/chalk HAVE_MPI=$(HAVE_MPI) $(if $(SAN),ASAN_OPTIONS=detect_leaks=0) sh tests/dist/mpi.sh
	@CHALK=$(BUILD)/chalk $(if $(SAN),ASAN_OPTIONS=detect_leaks=0) sh tests/dist/nccl.sh

CHECKS += check-dist

bench-dist: $(BUILD)/chalk
	@HAVE_MPI=$(HAVE_MPI) CHALK=$(BUILD)/chalk sh bench/dist/run.sh

# ---- nccl -------------------------------------------------------------------------------------
ifneq ($(strip $(KERNELS_OBJ)),)
$(BUILD)/core/dist/transport_nccl.o: CFLAGS_COMMON += -DCT_WITH_CUDA $(CUDA_CFLAGS)
$(BUILD)/core/dist/transport_nccl.o: core/dist/dist.mk

NCCL_TEST_BIN := $(BUILD)/tests/dist/test_nccl_gpu
NCCL_BENCH_BIN := $(BUILD)/bench/dist/nccl_bench
$(NCCL_TEST_BIN): tests/dist/test_nccl_gpu.c $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CUDA_CFLAGS) -Icore $< $(BUILD)/libchalk.a $(CORE_LIBS) -o $@
$(NCCL_BENCH_BIN): bench/dist/nccl_bench.c $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CUDA_CFLAGS) -Icore $< $(BUILD)/libchalk.a $(CORE_LIBS) -o $@
all: $(NCCL_TEST_BIN) $(NCCL_BENCH_BIN)

.PHONY: test-gpu-nccl bench-nccl
test-gpu-nccl: $(NCCL_TEST_BIN) $(BUILD)/chalk
	$(NCCL_TEST_BIN)
	@CHALK=$(BUILD)/chalk sh tests/dist/nccl.sh
test-gpu: test-gpu-nccl
bench-nccl: $(NCCL_BENCH_BIN)
	NCCL_NVLS_ENABLE=0 $(NCCL_BENCH_BIN)
else
test-gpu-nccl bench-nccl:
	@echo "$@: SKIPPED: chalk was built without CUDA (no nvcc), so the nccl transport is absent"
endif
